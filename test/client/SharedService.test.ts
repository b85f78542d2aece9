/**
 * RemoteClient.open and the SharedService contract, against a real `commy serve` on loopback:
 * the same program, run once on a mapping of the server's file and once over WSS, must see the
 * same results. Then the two localities together, and a process that cannot map falling back.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { type CommyError, type Locality, RemoteClient, type SharedService, Var } from "../../src/index.js"
import { runChild } from "../support/child.js"
import { makeKey, startTestServer, stopTestServer, type TestServer } from "../support/server.js"
import { tempDir } from "../support/tempDir.js"

const serverIn = (dir: string) =>
  Effect.acquireRelease(Effect.promise(() => startTestServer(dir)), (s) => Effect.promise(() => stopTestServer(s)))

/** A RemoteClient on its own connection, closed with the scope. */
const clientFor = (server: TestServer, key: string) =>
  Effect.map(
    Layer.build(RemoteClient.layer({ url: server.url, ca: server.ca, credentials: [{ tenant: "acme", key }] })),
    (context) => Context.get(context, RemoteClient)
  )

/** A server with tenant acme, an admin connection, and an empty service acme/plant. */
const setup = Effect.gen(function*() {
  const dir = yield* tempDir
  const server = yield* serverIn(dir)
  const adminKey = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
  const admin = yield* clientFor(server, adminKey)
  yield* admin.createService("acme", "plant")
  return { dir, server, admin }
})

const code = <A, R>(effect: Effect.Effect<A, CommyError, R>) => Effect.map(Effect.flip(effect), (e) => e.code)

/** Polls `check` every 10 ms for up to 5 s (pushes and wake-ups arrive asynchronously). */
const waitFor = (check: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500 && !check(); i++) yield* Effect.sleep("10 millis")
    expect(check()).toBe(true)
  })

/** define, set, get, compareAndSet, list, read, remove, an atomic batch, watch and onChange. */
const readWrite = (plant: SharedService) =>
  Effect.gen(function*() {
    expect(plant.writable).toBe(true)
    const temp = yield* plant.define("temp", Var.f64)
    const status = yield* plant.define("status", Var.string(16))
    const count = yield* plant.define("count", Var.u32)

    // A write is visible to this handle as soon as it resolves, with the version it returned.
    const v1 = yield* temp.set(21.5)
    expect(temp.unsafeGet()).toBe(21.5)
    expect(yield* temp.getVersioned).toEqual({ value: 21.5, version: v1 })

    const c1 = yield* count.set(1)
    const c2 = yield* count.compareAndSet(c1, 2)
    expect(c2).toBeGreaterThan(c1)
    const conflict = yield* Effect.flip(count.compareAndSet(c1, 3))
    expect(conflict).toMatchObject({ _tag: "VersionConflict", code: "VERSION_CONFLICT", current: c2 })
    expect(yield* count.get).toBe(2)

    expect((yield* plant.list).map((v) => v.name).sort()).toEqual(["count", "status", "temp"])
    expect((yield* plant.read("count")).version).toBe(c2)
    expect((yield* plant.variable("count", Var.u32)).unsafeGet()).toBe(2)
    expect(yield* code(plant.variable("count", Var.f64))).toBe("TYPE_MISMATCH")

    const events = yield* plant.watch({ values: true }).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
    yield* Effect.sleep("50 millis")
    const versions = yield* plant.writeBatch([{ variable: temp, value: 22 }, { variable: status, value: "hot" }])
    const [event] = Chunk.toArray(yield* Fiber.join(events))
    expect(event!.service).toBe("acme/plant")
    expect(event!.variables).toEqual(["temp", "status"])
    expect(event!.changes.map((c) => c.version)).toEqual(versions)
    expect([temp.unsafeGet(), status.unsafeGet()]).toEqual([22, "hot"])

    const seen: Array<ReadonlyArray<string>> = []
    yield* Effect.scoped(Effect.gen(function*() {
      yield* plant.onChange((e) => seen.push(e.variables))
      yield* Effect.sleep("50 millis")
      yield* count.set(5)
      yield* waitFor(() => seen.length > 0)
    }))
    expect(seen).toEqual([["count"]])

    yield* plant.remove("status")
    expect(yield* code(plant.read("status"))).toBe("VARIABLE_NOT_FOUND")
    expect((yield* plant.list).map((v) => v.name).sort()).toEqual(["count", "temp"])
  })

/** A read-only handle: reads work, every write fails with PERMISSION_DENIED. */
const readOnly = (plant: SharedService) =>
  Effect.gen(function*() {
    expect(plant.writable).toBe(false)
    const count = yield* plant.variable("count", Var.u32)
    const before = yield* count.getVersioned
    expect(before.value).toBe(5)
    for (
      const write of [
        count.set(1),
        count.compareAndSet(before.version, 1),
        plant.writeBatch([{ variable: count, value: 1 }]),
        plant.write("count", new Uint8Array(4)),
        plant.define("y", Var.u8),
        plant.remove("count")
      ]
    ) expect(yield* code(write)).toBe("PERMISSION_DENIED")
    expect(yield* count.getVersioned).toEqual(before)
    // As on a read-only mapping: an existing variable can still be "defined" (opened), a missing one is reported.
    expect(yield* (yield* plant.define("count", Var.u32)).get).toBe(5)
    expect(yield* code(plant.remove("missing"))).toBe("VARIABLE_NOT_FOUND")
  })

// One server per test (they take a while to start on a busy machine): each test covers a path.
describe.each<Locality>(["local", "remote"])("SharedService contract (%s)", (prefer) => {
  it.live("reads, writes, conflicts, batches and change events; a read-only grant gives a handle whose writes fail with PERMISSION_DENIED", () =>
    Effect.gen(function*() {
      const { admin, dir, server } = yield* setup
      const plant = yield* admin.open("acme", "plant", { prefer })
      expect(plant.locality).toBe(prefer)
      yield* readWrite(plant)

      const reader = yield* clientFor(server, yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["read"] }] }))
      const readable = yield* reader.open("acme", "plant", { prefer })
      expect(readable.locality).toBe(prefer)
      yield* readOnly(readable)
      // Asking for a writable handle with that key fails at open.
      expect(yield* code(reader.open("acme", "plant", { prefer, writable: true }))).toBe("PERMISSION_DENIED")
      // A key that may write but not read gets nothing: a mapping would show it every value.
      const writer = yield* clientFor(server, yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["write"] }] }))
      expect(yield* code(writer.open("acme", "plant", { prefer }))).toBe("PERMISSION_DENIED")
    }).pipe(Effect.scoped))
})

describe("RemoteClient.open across localities", () => {
  it.live("maps on the server's host; a mapping's writes reach a remote handle on another connection and back; a process that cannot map gets WSS", () =>
    Effect.gen(function*() {
      const { admin, dir, server } = yield* setup
      const local = yield* admin.open("acme", "plant")
      expect(local.locality).toBe("local")
      const gauge = yield* local.define("gauge", Var.f64)

      const writeKey = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "plant", rights: ["read", "write"] }] })
      const remote = yield* (yield* clientFor(server, writeKey)).open("acme", "plant", { prefer: "remote" })
      expect(remote.locality).toBe("remote")
      const remoteGauge = yield* remote.variable("gauge", Var.f64)

      const toRemote = yield* remote.watch().pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      yield* Effect.sleep("50 millis")
      yield* gauge.set(3.25) // a store into the mapping: no network on this side
      expect(Chunk.toArray(yield* Fiber.join(toRemote)).map((e) => e.variables)).toEqual([["gauge"]])
      expect(remoteGauge.unsafeGet()).toBe(3.25)

      const toLocal = yield* local.watch().pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      yield* Effect.sleep("50 millis")
      yield* remoteGauge.set(4.5) // through the server, into the mapped file
      expect(Chunk.toArray(yield* Fiber.join(toLocal)).map((e) => e.variables)).toEqual([["gauge"]])
      expect(gauge.unsafeGet()).toBe(4.5)

      // Another process on this host that cannot map: the same call falls back to WSS.
      const x = yield* local.define("x", Var.u32)
      const openAs = (value: number, why: string, options: Parameters<typeof runChild>[2]) =>
        Effect.gen(function*() {
          const child = yield* Effect.promise(() => runChild("sharedChild.ts", [server.url, "acme", writeKey, "plant", String(value)], options))
          expect(child.stderr).toBe("")
          const result = JSON.parse(child.stdout) as { locality: string; value: number; log: Array<string> }
          expect(result).toMatchObject({ locality: "remote", value })
          expect(result.log.join("\n")).toMatch(new RegExp(`acme/plant: cannot map .* \\(${why}\\); using WSS`))
          yield* waitFor(() => x.unsafeGet() === value)
        })
      yield* openAs(42, "NATIVE_UNAVAILABLE", { env: { COMMY_NATIVE: "off", COMMY_TEST_CA: server.ca } })
      // Another OS user: the server's files are 0600 in a 0700 directory (only root can try this).
      if (process.getuid?.() === 0) {
        yield* openAs(43, "FILE_ERROR", { env: { COMMY_TEST_CA: server.ca }, user: { uid: 65534, gid: 65534 } })
      }
    }).pipe(Effect.scoped))
})
