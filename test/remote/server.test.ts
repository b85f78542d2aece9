/**
 * End to end: a real `commy serve` process (TLS, loopback, port 0) driven by real clients.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { SimdDiff } from "../../src/diff/SimdDiff.js"
import * as Var from "../../src/local/VarType.js"
import { Empty, ServiceResult } from "../../src/protocol/Messages.js"
import { openRemoteService } from "../../src/remote/RemoteService.js"
import { connect } from "../../src/remote/WssTransport.js"
import { makeKey, startTestServer, stopTestServer, type TestServer } from "../support/server.js"
import { tempDir } from "../support/tempDir.js"

const serverFor = Effect.gen(function*() {
  const dir = yield* tempDir
  return yield* Effect.acquireRelease(
    Effect.promise(() => startTestServer(dir)),
    (server) => Effect.promise(() => stopTestServer(server))
  )
})

const client = (server: TestServer, tenant: string, key: string) =>
  connect({ url: server.url, ca: server.ca, credentials: [{ tenant, key }], requestTimeout: "10 seconds" })

/** A server, two connections to tenant "acme", and its service "metrics" opened by the first. */
const twoClients = Effect.gen(function*() {
  const server = yield* serverFor
  const key = yield* makeKey(server.dataDir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
  const a = yield* client(server, "acme", key)
  const b = yield* client(server, "acme", key)
  yield* a.request({ op: "service.create", tenant: "acme", service: "metrics", persistent: true }, ServiceResult)
  return { b, ra: yield* openRemoteService(a, "acme", "metrics") }
})

describe("commy serve", () => {
  it.live("a remote write reaches another remote client's mirror and watcher", () =>
    Effect.gen(function*() {
      const { b, ra } = yield* twoClients
      const counter = yield* ra.define("counter", Var.u32)
      const rb = yield* openRemoteService(b, "acme", "metrics")
      const events = yield* Effect.fork(Stream.runCollect(Stream.take(rb.watch({ values: true }), 1)))
      yield* Effect.sleep("50 millis")
      const version = yield* counter.set(41)
      expect(version).toBe(1)
      expect(yield* counter.getVersioned).toEqual({ value: 41, version: 1 }) // read your writes, before any push
      const [event] = Chunk.toArray(yield* Fiber.join(events))
      expect(event!.variables).toEqual(["counter"])
      const mirrored = yield* rb.variable("counter", Var.u32)
      expect(yield* mirrored.getVersioned).toEqual({ value: 41, version: 1 })
    }).pipe(Effect.scoped, Effect.provide(SimdDiff.layer)), 60_000)

  it.live("RemoteService.onChange: another client's writes arrive as callbacks naming exactly what changed (also with ownWrites: false), until the scope closes", () =>
    Effect.gen(function*() {
      const { b, ra } = yield* twoClients
      const x = yield* ra.define("x", Var.u32)
      const y = yield* ra.define("y", Var.string(16))
      const rb = yield* openRemoteService(b, "acme", "metrics")
      const seen: Array<{ names: ReadonlyArray<string>; values: ReadonlyArray<unknown> }> = []
      const watching = yield* Scope.make()
      yield* rb.onChange((event) => seen.push({ names: event.variables, values: event.changes.map((c) => c.value) }), {
        values: true,
        ownWrites: false // pushes are other clients' writes, whatever the mirror does with them
      })
        .pipe(Scope.extend(watching))
      yield* x.set(7)
      yield* Effect.eventually(Effect.suspend(() => (seen.length >= 1 ? Effect.void : Effect.fail("waiting"))))
      yield* y.set("ready")
      yield* Effect.eventually(Effect.suspend(() => (seen.length >= 2 ? Effect.void : Effect.fail("waiting"))))
      expect(seen.map((e) => e.names)).toEqual([["x"], ["y"]])
      expect(Array.from(seen[0]!.values[0] as Uint8Array)).toEqual([7, 0, 0, 0])
      yield* Scope.close(watching, Exit.void)
      yield* x.set(8)
      yield* Effect.eventually(Effect.flatMap((yield* rb.variable("x", Var.u32)).get, (v) => (v === 8 ? Effect.void : Effect.fail("waiting"))))
      yield* Effect.sleep("20 millis")
      expect(seen.length).toBe(2)
    }).pipe(Effect.scoped), 60_000)

  it.live("requests before hello/auth and unknown tenants are refused with typed errors", () =>
    Effect.gen(function*() {
      const server = yield* serverFor
      const key = yield* makeKey(server.dataDir, { tenant: "acme", grants: [{ service: "*", rights: ["read"] }] })
      const bad = yield* Effect.either(client(server, "acme", key.slice(0, -2) + "xx"))
      expect(Either.isLeft(bad) && bad.left.code).toBe("AUTHENTICATION_FAILED")
      const other = yield* Effect.either(client(server, "nope", key))
      expect(Either.isLeft(other) && other.left.code).toBe("AUTHENTICATION_FAILED")
      const ok = yield* client(server, "acme", key)
      const denied = yield* Effect.either(ok.request({ op: "service.create", tenant: "acme", service: "x" }, ServiceResult))
      expect(Either.isLeft(denied) && denied.left.code).toBe("PERMISSION_DENIED")
      const notAdmin = yield* Effect.either(ok.request({ op: "service.delete", tenant: "acme", service: "x" }, Empty))
      expect(Either.isLeft(notAdmin) && notAdmin.left.code).toBe("PERMISSION_DENIED")
      const missing = yield* Effect.either(ok.request({ op: "service.get", tenant: "acme", service: "x" }, ServiceResult))
      expect(Either.isLeft(missing) && missing.left.code).toBe("SERVICE_NOT_FOUND")
    }).pipe(Effect.scoped), 60_000)
})
