import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { defaultDataDir, ensureDir } from "../../src/server/DataDir.js"
import { tempDir } from "../support/tempDir.js"

describe("DataDir", () => {
  it("defaults to COMMY_DATA_DIR, then XDG_DATA_HOME/commy, then ~/.local/share/commy", () => {
    const home = "/home/u"
    expect(defaultDataDir({ COMMY_DATA_DIR: "/srv/commy", XDG_DATA_HOME: "/x" }, home)).toBe("/srv/commy")
    expect(defaultDataDir({ COMMY_DATA_DIR: "", XDG_DATA_HOME: "/x" }, home)).toBe("/x/commy")
    expect(defaultDataDir({ XDG_DATA_HOME: "/x" }, home)).toBe("/x/commy")
    // XDG: relative values are invalid and ignored.
    expect(defaultDataDir({ XDG_DATA_HOME: "rel" }, home)).toBe("/home/u/.local/share/commy")
    expect(defaultDataDir({}, home)).toBe("/home/u/.local/share/commy")
    expect(defaultDataDir({ COMMY_DATA_DIR: "rel" }, home)).toBe(path.resolve("rel"))
  })

  it.effect("creates missing directories 0700 and tightens an existing one", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const fresh = path.join(dir, "a", "b")
      expect(yield* ensureDir(fresh)).toBe(fresh)
      expect(fs.statSync(fresh).mode & 0o777).toBe(0o700)
      const open = path.join(dir, "open")
      fs.mkdirSync(open, { mode: 0o755 })
      fs.chmodSync(open, 0o755)
      yield* ensureDir(open, { tighten: false })
      expect(fs.statSync(open).mode & 0o777).toBe(0o755)
      yield* ensureDir(open)
      expect(fs.statSync(open).mode & 0o777).toBe(0o700)
    }).pipe(Effect.scoped))

  it.effect("fails with FILE_ERROR when the path is a file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "f")
      fs.writeFileSync(file, "")
      const error = yield* Effect.flip(ensureDir(path.join(file, "sub")))
      expect(error.code).toBe("FILE_ERROR")
    }).pipe(Effect.scoped))
})
