/**
 * docs/protocol.md is enough for a client in another language: a Python client (msgpack +
 * websockets, Debian's python3-msgpack and python3-websockets) written from the doc alone talks
 * to a real server. Skipped, with a notice, where those Python packages are missing.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { makeKey, startTestServer, stopTestServer } from "../support/server.js"
import { tempDir } from "../support/tempDir.js"

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "python_client.py")
const python = ["/usr/bin/python3", "python3"].find((p) =>
  spawnSync(p, ["-c", "import msgpack, websockets"], { stdio: "ignore" }).status === 0
)
if (python === undefined) {
  console.warn("notice: python3 with msgpack and websockets not found (apt-get install python3-msgpack python3-websockets): the Python protocol client test is skipped")
}

describe("a Python client", () => {
  it.live.skipIf(python === undefined)("speaks the protocol from docs/protocol.md", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* Effect.acquireRelease(Effect.promise(() => startTestServer(dir)), (s) => Effect.promise(() => stopTestServer(s)))
      const key = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const run = spawnSync(python!, [script, server.url, path.join(dir, "tls-cert.pem"), "acme", key], { encoding: "utf8", timeout: 30_000 })
      expect(run.stderr).toBe("")
      expect(JSON.parse(run.stdout)).toEqual({
        version: 1,
        pushed: 21.5,
        read: 21.5,
        snapshot: ["snapshot", "caught_up"],
        missing: "VARIABLE_NOT_FOUND",
        conflict: ["VERSION_CONFLICT", 1]
      })
    }).pipe(Effect.scoped), 60_000)
})
