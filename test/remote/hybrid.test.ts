/**
 * The seed's hybrid access: a client on the server's machine locates a service and maps its
 * file directly; its writes reach remote subscribers through the server's watcher.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { RemoteClient } from "../../src/client/RemoteClient.js"
import * as Var from "../../src/local/VarType.js"
import { makeKey, startTestServer, stopTestServer } from "../support/server.js"
import { tempDir } from "../support/tempDir.js"

describe("hybrid access", () => {
  it.live("openLocal maps the server's file on the same host; writes reach remote subscribers", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* Effect.acquireRelease(Effect.promise(() => startTestServer(dir)), (s) => Effect.promise(() => stopTestServer(s)))
      const adminKey = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const readKey = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["read"] }] })
      const writeOnlyKey = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["write"] }] })
      const clientLayer = (key: string) =>
        Layer.build(RemoteClient.layer({ url: server.url, ca: server.ca, credentials: [{ tenant: "acme", key }] }))

      const admin = yield* Effect.map(clientLayer(adminKey), (ctx) => ctx.unsafeMap.get(RemoteClient.key) as RemoteClient["Type"])
      const reader = yield* Effect.map(clientLayer(readKey), (ctx) => ctx.unsafeMap.get(RemoteClient.key) as RemoteClient["Type"])
      yield* admin.createService("acme", "hybrid", { persistent: true })
      const remote = yield* reader.openService("acme", "hybrid")

      const where = yield* admin.locate("acme", "hybrid")
      expect(where.sameHost).toBe(true)
      const local = yield* admin.openLocal("acme", "hybrid")
      const gauge = yield* local.define("gauge", Var.f64)
      const events = yield* Effect.fork(Stream.runCollect(Stream.take(remote.watch(), 1)))
      yield* Effect.sleep("50 millis")
      gauge.unsafeSet(3.25) // a store into the mapping: no network
      const [event] = Chunk.toArray(yield* Fiber.join(events))
      expect(event!.variables).toEqual(["gauge"])
      expect((yield* remote.variable("gauge", Var.f64)).unsafeGet()).toBe(3.25)

      // a read-only key may map read-only, not writable
      const denied = yield* Effect.either(reader.openLocal("acme", "hybrid", { writable: true }))
      expect(Either.isLeft(denied) && denied.left.code).toBe("PERMISSION_DENIED")
      const readOnly = yield* reader.openLocal("acme", "hybrid", { writable: false })
      expect((yield* readOnly.variable("gauge", Var.f64)).unsafeGet()).toBe(3.25)
      // a write-only key may write over the network, but not map (a mapping shows every value)
      const writer = yield* Effect.map(clientLayer(writeOnlyKey), (ctx) => ctx.unsafeMap.get(RemoteClient.key) as RemoteClient["Type"])
      const mapped = yield* Effect.either(writer.openLocal("acme", "hybrid", { writable: true }))
      expect(Either.isLeft(mapped) && mapped.left.code).toBe("PERMISSION_DENIED")

      // deleted on the server: the mapping stops taking writes (they would reach nobody)
      yield* admin.deleteService("acme", "hybrid")
      const late = yield* Effect.either(gauge.set(4.5))
      expect(Either.isLeft(late) && late.left.code).toBe("SERVICE_NOT_FOUND")
    }).pipe(Effect.scoped), 60_000)
})
