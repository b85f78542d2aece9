/**
 * The server's promises, each against a real `commy serve` process on loopback with TLS:
 * pushes in every direction between remote clients and local processes, concurrency on one
 * connection, restart and resume, and tenant isolation.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schedule from "effect/Schedule"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { SimdDiff } from "../../src/diff/SimdDiff.js"
import { servicesDir } from "../../src/server/DataDir.js"
import * as Var from "../../src/local/VarType.js"
import { Empty, ReadResult, ServiceListResult, ServiceResult, SubscribeResult, VarListResult, WriteResult } from "../../src/protocol/Messages.js"
import { openRemoteService } from "../../src/remote/RemoteService.js"
import { connect } from "../../src/remote/WssTransport.js"
import { runChild, startChild } from "../support/child.js"
import { health, makeKey, startTestServer, stopTestServer, type TestServer } from "../support/server.js"
import { tempDir } from "../support/tempDir.js"

const serverIn = (dir: string) =>
  Effect.acquireRelease(Effect.promise(() => startTestServer(dir)), (s) => Effect.promise(() => stopTestServer(s)))

const client = (server: { url: string; ca: string }, tenant: string, key: string) =>
  connect({ url: server.url, ca: server.ca, credentials: [{ tenant, key }], reconnectMax: "500 millis" })

const admin = (server: TestServer, tenant = "acme") =>
  Effect.gen(function*() {
    const key = yield* makeKey(server.dataDir, { tenant, grants: [{ service: "*", rights: ["admin"] }] })
    return { key, transport: yield* client(server, tenant, key) }
  })

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer)
const fromU32 = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true)

describe("commy serve end to end", () => {
  it.live("a local process's write reaches a remote subscriber; a remote write reaches a local process's watcher", () =>
    Effect.gen(function*() {
      const server = yield* serverIn(yield* tempDir)
      const { transport } = yield* admin(server)
      const created = yield* transport.request({ op: "service.create", tenant: "acme", service: "plant", persistent: true }, ServiceResult)
      const remote = yield* openRemoteService(transport, "acme", "plant")
      yield* remote.define("local_written", Var.u32)
      const remoteWritten = yield* remote.define("remote_written", Var.u32)
      const root = servicesDir(server.dataDir)
      const id = created.service.id

      // local process -> remote push
      const events = yield* Effect.fork(Stream.runCollect(Stream.take(remote.watch({ values: true }), 1)))
      yield* Effect.sleep("50 millis")
      const wrote = yield* Effect.promise(() => runChild("vfChild.ts", ["write", root, id, "local_written", "1234"]))
      expect(wrote.stderr).toBe("")
      const [event] = Chunk.toArray(yield* Fiber.join(events))
      expect(event!.variables).toEqual(["local_written"])
      expect(fromU32(event!.changes[0]!.value!)).toBe(1234)

      // remote write -> local process's Watcher
      const watcher = startChild("vfChild.ts", ["watch", root, id, "1"])
      yield* Effect.promise(() => watcher.waitForLine((l) => l === "ready"))
      yield* remoteWritten.set(777)
      const line = yield* Effect.promise(() => watcher.waitForLine((l) => l.startsWith("{")))
      const local = JSON.parse(line) as { variables: Array<string>; changes: Array<{ value: Array<number> }> }
      expect(local.variables).toEqual(["remote_written"])
      expect(fromU32(Uint8Array.from(local.changes[0]!.value))).toBe(777)
      yield* Effect.promise(() => watcher.exited)
    }).pipe(Effect.scoped, Effect.provide(SimdDiff.layer)), 60_000)

  it.live("100 concurrent requests on one connection are all answered correctly", () =>
    Effect.gen(function*() {
      const server = yield* serverIn(yield* tempDir)
      const { transport } = yield* admin(server)
      yield* transport.request({ op: "service.create", tenant: "acme", service: "many" }, ServiceResult)
      for (let i = 0; i < 10; i++) {
        yield* transport.request({ op: "var.define", tenant: "acme", service: "many", name: `v${i}`, type: 3 }, Empty)
      }
      const results = yield* Effect.all(
        Array.from({ length: 100 }, (_, i) =>
          i % 2 === 0
            ? Effect.map(
              transport.request({ op: "write", tenant: "acme", service: "many", writes: [{ name: `v${i % 10}`, value: u32(i) }] }, WriteResult),
              (r) => ({ i, ok: r.versions.length === 1 && r.versions[0]! >= 1 })
            )
            : Effect.map(
              transport.request({ op: "read", tenant: "acme", service: "many", names: [`v${i % 10}`] }, ReadResult),
              (r) => ({ i, ok: r.values.length === 1 && r.values[0]!.name === `v${i % 10}` })
            )
        ),
        { concurrency: "unbounded" }
      )
      expect(results.filter((r) => !r.ok)).toEqual([])
      // and the final values are the last writes: v{k} was last written with the largest even i ≡ k (mod 10)
      const read = yield* transport.request({ op: "read", tenant: "acme", service: "many" }, ReadResult)
      for (const v of read.values) {
        const k = Number(v.name.slice(1))
        if (k % 2 === 0) expect(fromU32(v.value) % 10).toBe(k)
      }
    }).pipe(Effect.scoped), 60_000)

  it.live("a server killed and restarted: 50 clients reconnect, resume, end with every final value, no subscription left behind", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      let server = yield* Effect.promise(() => startTestServer(dir))
      const { key, transport: writer } = yield* admin(server)
      yield* writer.request({ op: "service.create", tenant: "acme", service: "state", persistent: true }, ServiceResult)
      for (let i = 0; i < 5; i++) {
        yield* writer.request({ op: "var.define", tenant: "acme", service: "state", name: `s${i}`, type: 3 }, Empty)
      }
      const readers = yield* Effect.all(
        Array.from({ length: 50 }, () =>
          Effect.flatMap(client(server, "acme", key), (t) => openRemoteService(t, "acme", "state", { mirrorCapacity: 1 << 20, mirrorMaxVariables: 64 }))),
        { concurrency: 10 }
      )
      yield* writer.request({ op: "write", tenant: "acme", service: "state", writes: [{ name: "s0", value: u32(1) }] }, WriteResult)
      expect((yield* Effect.promise(() => health(server))).subscriptions).toBe(50)

      // kill -9 and restart on the same port with the same data
      yield* Effect.promise(() => stopTestServer(server, "SIGKILL"))
      server = yield* Effect.promise(() => startTestServer(dir, server.port))
      yield* Effect.addFinalizer(() => Effect.promise(() => stopTestServer(server)))

      // the writer reconnects too; write final values once it is back
      yield* Effect.retry(
        writer.request({ op: "write", tenant: "acme", service: "state", writes: [0, 1, 2, 3, 4].map((i) => ({ name: `s${i}`, value: u32(100 + i) })) }, WriteResult),
        { times: 200, schedule: Schedule.spaced("50 millis") }
      )
      yield* Effect.eventually(Effect.flatMap(
        writer.request({ op: "read", tenant: "acme", service: "state" }, ReadResult),
        (r) => r.values.every((v) => fromU32(v.value) === 100 + Number(v.name.slice(1))) ? Effect.void : Effect.fail("not yet")
      ).pipe(Effect.zipLeft(Effect.sleep("20 millis"))))

      // every reader's mirror ends with every final value
      yield* Effect.forEach(readers, (r) =>
        Effect.eventually(Effect.gen(function*() {
          for (let i = 0; i < 5; i++) {
            const { value } = yield* r.read(`s${i}`)
            if (fromU32(value) !== 100 + i) yield* Effect.sleep("20 millis").pipe(Effect.zipRight(Effect.fail("stale")))
          }
        })).pipe(Effect.timeout("20 seconds")))
      // one subscription per reader: nothing duplicated, nothing left behind
      expect((yield* Effect.promise(() => health(server))).subscriptions).toBe(50)
    }).pipe(Effect.scoped), 120_000)

  it.live("a read-only key cannot write, define or create; another tenant's key sees nothing of tenant A", () =>
    Effect.gen(function*() {
      const server = yield* serverIn(yield* tempDir)
      const { transport: owner } = yield* admin(server, "a")
      yield* owner.request({ op: "service.create", tenant: "a", service: "secret" }, ServiceResult)
      yield* owner.request({ op: "var.define", tenant: "a", service: "secret", name: "x", type: 3 }, Empty)

      const readOnlyKey = yield* makeKey(server.dataDir, { tenant: "a", grants: [{ service: "secret", rights: ["read"] }] })
      const reader = yield* client(server, "a", readOnlyKey)
      const code = <A, E extends { code: string }>(e: Either.Either<A, E>) => (Either.isLeft(e) ? e.left.code : "ok")
      expect(code(yield* Effect.either(reader.request({ op: "read", tenant: "a", service: "secret" }, ReadResult)))).toBe("ok")
      expect(code(yield* Effect.either(reader.request({ op: "write", tenant: "a", service: "secret", writes: [{ name: "x", value: u32(1) }] }, WriteResult))))
        .toBe("PERMISSION_DENIED")
      expect(code(yield* Effect.either(reader.request({ op: "cas", tenant: "a", service: "secret", name: "x", expected: 0, value: u32(1) }, Empty))))
        .toBe("PERMISSION_DENIED")
      expect(code(yield* Effect.either(reader.request({ op: "var.define", tenant: "a", service: "secret", name: "y", type: 3 }, Empty))))
        .toBe("PERMISSION_DENIED")
      expect(code(yield* Effect.either(reader.request({ op: "service.create", tenant: "a", service: "other" }, ServiceResult))))
        .toBe("PERMISSION_DENIED")

      const { key: otherKey, transport: other } = yield* admin(server, "b")
      const target = { tenant: "a", service: "secret" }
      expect(code(yield* Effect.either(other.request({ op: "read", ...target }, ReadResult)))).toBe("PERMISSION_DENIED")
      expect(code(yield* Effect.either(other.request({ op: "write", ...target, writes: [{ name: "x", value: u32(9) }] }, WriteResult))))
        .toBe("PERMISSION_DENIED")
      expect(code(yield* Effect.either(other.request({ op: "subscribe", ...target }, SubscribeResult)))).toBe("PERMISSION_DENIED")
      expect(code(yield* Effect.either(other.request({ op: "service.list", tenant: "a" }, ServiceListResult)))).toBe("PERMISSION_DENIED")
      expect(code(yield* Effect.either(other.request({ op: "var.list", ...target }, VarListResult)))).toBe("PERMISSION_DENIED")
      // tenant b's admin key does not authenticate to tenant a at all
      expect(code(yield* Effect.either(client(server, "a", otherKey)))).toBe("AUTHENTICATION_FAILED")
      // and b's own listing does not show a's services
      expect((yield* other.request({ op: "service.list", tenant: "b" }, ServiceListResult)).services).toEqual([])
      const value = yield* owner.request({ op: "read", ...target }, ReadResult)
      expect(fromU32(value.values[0]!.value)).toBe(0)
    }).pipe(Effect.scoped), 60_000)
})
