import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { Client, Var } from "../../src/index.js"
import { runChild } from "../support/child.js"
import { tempDir } from "../support/tempDir.js"

const withClient = <A, E>(f: (client: Client["Type"], root: string) => Effect.Effect<A, E, import("effect/Scope").Scope>) =>
  Effect.gen(function*() {
    const root = yield* tempDir
    const client = yield* Client.pipe(Effect.provide(Client.local({ root })))
    return yield* f(client, root)
  }).pipe(Effect.scoped)

describe("Client.local", () => {
  it.live("open: the SharedService handle, fed by another process's writes", () =>
    withClient((client, root) =>
      Effect.gen(function*() {
        const id = yield* client.createService()
        const shared = yield* client.open(id)
        expect([shared.locality, shared.tenant, shared.name, shared.writable]).toEqual(["local", "local", id, true])
        const answer = yield* shared.define("answer", Var.u32)
        const events = yield* Effect.fork(Stream.runCollect(Stream.take(shared.watch({ values: true }), 1)))
        yield* Effect.sleep("30 millis")
        const child = yield* Effect.promise(() => runChild("vfChild.ts", ["write", root, id, "answer", "42"]))
        expect(child.stdout.trim()).toBe("written")
        const [event] = Chunk.toArray(yield* Fiber.join(events))
        expect([event!.service, event!.variables]).toEqual([`local/${id}`, ["answer"]])
        expect(answer.unsafeGet()).toBe(42)
        expect((yield* shared.read("answer")).version).toBe(1)
        const readOnly = yield* client.open(id, { writable: false })
        expect(Either.isLeft(yield* Effect.either(readOnly.write("answer", new Uint8Array(4))))).toBe(true)
      })
    ), 60_000)

  it.live("creates, opens, writes, watches and removes a service", () =>
    withClient((client) =>
      Effect.gen(function*() {
        const id = yield* client.createService()
        expect(id).toMatch(/^[0-9a-f]{32}$/)
        const vf = yield* client.openService(id)
        const counter = yield* vf.define("counter", Var.u32)
        const events = yield* Effect.fork(Stream.runCollect(Stream.take(client.watch(vf), 1)))
        yield* Effect.sleep("30 millis")
        yield* counter.set(5)
        const [event] = Chunk.toArray(yield* Fiber.join(events))
        expect(event!.variables).toEqual(["counter"])
        yield* client.removeService(id)
        const reopened = yield* Effect.either(client.openService(id))
        expect(Either.isLeft(reopened) && reopened.left.code).toBe("FILE_ERROR")
      })
    ))

  it.live("a read-only open refuses writes with PERMISSION_DENIED and still reads", () =>
    withClient((client) =>
      Effect.gen(function*() {
        const id = yield* client.createService()
        const rw = yield* client.openService(id)
        yield* (yield* rw.define("x", Var.u32)).set(9)
        const ro = yield* client.openService(id, { writable: false })
        const x = yield* ro.variable("x", Var.u32)
        expect(yield* x.get).toBe(9)
        const write = yield* Effect.either(x.set(1))
        expect(Either.isLeft(write) && write.left.code).toBe("PERMISSION_DENIED")
        const define = yield* Effect.either(ro.define("y", Var.u8))
        expect(Either.isLeft(define) && define.left.code).toBe("PERMISSION_DENIED")
      })
    ))

  it.live("a read-only watcher (polling) sees another process's writes", () =>
    withClient((client, root) =>
      Effect.gen(function*() {
        const id = yield* client.createService()
        const rw = yield* client.openService(id)
        yield* rw.define("answer", Var.u32)
        const ro = yield* client.openService(id, { writable: false })
        const events = yield* Effect.fork(Stream.runCollect(Stream.take(client.watch(ro), 1)))
        yield* Effect.sleep("30 millis")
        yield* Effect.promise(() => runChild("vfChild.ts", ["write", root, id, "answer", "7"]))
        const [event] = Chunk.toArray(yield* Fiber.join(events))
        expect(event!.variables).toEqual(["answer"])
      })
    ))

  it.live("with ownWrites: false, only other processes' writes are reported", () =>
    withClient((client, root) =>
      Effect.gen(function*() {
        const id = yield* client.createService()
        const vf = yield* client.openService(id)
        const mine = yield* vf.define("mine", Var.u32)
        yield* vf.define("theirs", Var.u32)
        const events = yield* Effect.fork(Stream.runCollect(Stream.take(client.watch(vf, { ownWrites: false }), 1)))
        yield* Effect.sleep("30 millis")
        yield* mine.set(1)
        yield* Effect.promise(() => runChild("vfChild.ts", ["write", root, id, "theirs", "2"]))
        const [event] = Chunk.toArray(yield* Fiber.join(events))
        expect(event!.variables).toEqual(["theirs"])
      })
    ))

  it.live("service files appearing and disappearing are reported", () =>
    withClient((client) =>
      Effect.gen(function*() {
        const events = yield* Effect.fork(Stream.runCollect(Stream.take(client.serviceEvents, 2)))
        yield* Effect.sleep("200 millis")
        const id = yield* client.createService()
        yield* Effect.sleep("200 millis")
        yield* client.removeService(id)
        const seen = Chunk.toArray(yield* Fiber.join(events))
        expect(seen).toEqual([{ type: "added", id }, { type: "removed", id }])
      })
    ))
})
