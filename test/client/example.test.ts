/**
 * The README's client example is examples/remote.ts, verbatim, and it runs: against a real
 * `commy serve`, once mapping the service (this host) and once over WSS (no addon).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { addonPath, bundleEntry, packageRoot } from "../support/bundle.js"
import { makeKey, startTestServer, stopTestServer } from "../support/server.js"
import { tempDir } from "../support/tempDir.js"

const example = path.join(packageRoot, "examples", "remote.ts")

const run = (bundle: string, env: NodeJS.ProcessEnv) =>
  Effect.async<{ stdout: string; stderr: string }>((resume) => {
    const child = execFile(process.execPath, [bundle], { env: { ...process.env, ...env }, timeout: 30_000 }, (_, stdout, stderr) =>
      resume(Effect.succeed({ stdout, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("examples/remote.ts", () => {
  it("is the README's client snippet", () => {
    const readme = fs.readFileSync(path.join(packageRoot, "README.md"), "utf8")
    const after = readme.slice(readme.indexOf("A client (`examples/remote.ts`"))
    const snippet = /```ts\n([\s\S]*?)```/.exec(after)?.[1]
    expect(snippet).toBe(fs.readFileSync(example, "utf8"))
  })

  it.live("runs on both paths: mapped on the server's host, over WSS without the addon", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* Effect.acquireRelease(Effect.promise(() => startTestServer(dir)), (s) => Effect.promise(() => stopTestServer(s)))
      const key = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const bundle = bundleEntry(example, "commy-examples", { commy: path.join(packageRoot, "src", "index.ts") })
      const env = { COMMY_URL: server.url, COMMY_DATA_DIR: dir, COMMY_KEY: key, COMMY_NATIVE_PATH: addonPath }

      const mapped = yield* run(bundle, env)
      expect(mapped.stderr).toBe("")
      expect(mapped.stdout).toContain("requests = 1 (version 1, local)")
      const remote = yield* run(bundle, { ...env, COMMY_NATIVE: "off" })
      expect(remote.stderr).toBe("")
      expect(remote.stdout).toContain("requests = 2 (version 2, remote)")
    }).pipe(Effect.scoped))
})
