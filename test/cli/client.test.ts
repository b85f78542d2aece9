/**
 * The redis-cli-like commands, run as real `commy` processes against a real server.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { runChild, startChild } from "../support/child.js"
import { makeKey, startTestServer, stopTestServer } from "../support/server.js"
import { tempDir } from "../support/tempDir.js"

describe("commy client commands", () => {
  it.live("create, define, set, get, ls and watch, human and --json", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* Effect.acquireRelease(Effect.promise(() => startTestServer(dir)), (s) => Effect.promise(() => stopTestServer(s)))
      const key = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const env = { COMMY_URL: server.url, COMMY_TENANT: "acme", COMMY_KEY: key, COMMY_CA: path.join(dir, "tls-cert.pem") }
      const commy = (...args: Array<string>) => Effect.promise(() => runChild("serve.ts", args, { env }))

      expect((yield* commy("create", "plant", "--persistent")).stdout.trim()).toBe("created plant (persistent)")
      expect((yield* commy("define", "plant", "temp", "f64")).stdout.trim()).toBe("defined temp f64 (8 bytes)")
      expect((yield* commy("define", "plant", "label", "string:16")).code).toBe(0)

      const watcher = startChild("serve.ts", ["watch", "plant", "--json"], { env })
      yield* Effect.sleep("1500 millis") // let it connect and catch up

      expect((yield* commy("set", "plant", "temp", "21.5")).stdout.trim()).toBe("temp = 21.5 (version 1)")
      expect((yield* commy("set", "plant", "label", "boiler")).code).toBe(0)
      expect((yield* commy("get", "plant", "temp")).stdout.trim()).toBe("21.5")
      expect(JSON.parse((yield* commy("get", "plant", "label", "--json")).stdout)).toEqual({ name: "label", version: 1, value: "boiler" })
      const listed = JSON.parse((yield* commy("ls", "plant", "--json")).stdout) as Array<{ name: string; value: unknown }>
      expect(listed.map((v) => [v.name, v.value]).sort()).toEqual([["label", "boiler"], ["temp", 21.5]])
      expect((yield* commy("ls")).stdout.trim()).toBe("plant (persistent)")

      const seen = yield* Effect.promise(() => watcher.waitForLine((l) => l.includes("\"label\"")))
      expect(JSON.parse(seen)).toEqual({ name: "label", version: 1, value: "boiler" })
      expect(watcher.lines.some((l) => l.includes("\"temp\""))).toBe(true)
      watcher.kill("SIGINT")
      yield* Effect.promise(() => watcher.exited)

      // bad input: one line with the code, non-zero exit
      const bad = yield* commy("set", "plant", "temp", "warm")
      expect(bad.code).not.toBe(0)
      expect(bad.stderr.trim()).toMatch(/^error \[TYPE_MISMATCH\]: f64 needs a number/)
      const missing = yield* commy("get", "plant", "nope")
      expect(missing.stderr.trim()).toMatch(/^error \[VARIABLE_NOT_FOUND\]/)
      const noKey = yield* Effect.promise(() => runChild("serve.ts", ["ls"], { env: { ...env, COMMY_KEY: "" } }))
      expect(noKey.stderr.trim()).toMatch(/^error \[INVALID_ARGUMENT\]: key: pass --key or set COMMY_KEY/)
      expect(fs.existsSync(path.join(dir, "tls-cert.pem"))).toBe(true)
    }).pipe(Effect.scoped), 90_000)
})
