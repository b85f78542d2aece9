/**
 * Hostile and malformed input against a real server: every case gets a typed error reply or a
 * close with a reason, the server keeps serving, and other clients are unaffected.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { Packr, Unpackr } from "msgpackr"
import * as fs from "node:fs"
import * as path from "node:path"
import WebSocket from "ws"
import { ReadResult, ServiceResult, VariableInfo, WriteResult } from "../../src/protocol/Messages.js"
import { connect } from "../../src/remote/WssTransport.js"
import { health, makeKey, startTestServer, stopTestServer, type TestServer } from "../support/server.js"
import { tempDir } from "../support/tempDir.js"

const pack = new Packr({ useRecords: false })
const unpack = new Unpackr({ useRecords: false, mapsAsObjects: true })

/** A raw client: sends frames as given, collects decoded replies and the close. */
const raw = (server: TestServer) =>
  Effect.acquireRelease(
    Effect.async<{
      send: (data: unknown, binary?: boolean) => void
      next: () => Promise<any>
      closed: Promise<{ code: number; reason: string }>
    }>((resume) => {
      const ws = new WebSocket(server.url, { ca: server.ca })
      const inbox: Array<unknown> = []
      const waiting: Array<(v: unknown) => void> = []
      const closed = new Promise<{ code: number; reason: string }>((res) =>
        ws.on("close", (code, reason) => res({ code, reason: reason.toString() })))
      ws.on("message", (data: Buffer) => {
        const value = unpack.unpack(data)
        const w = waiting.shift()
        if (w) w(value)
        else inbox.push(value)
      })
      ws.on("open", () =>
        resume(Effect.succeed({
          send: (data, binary = true) => ws.send(binary ? pack.pack(data) : String(data), { binary }),
          next: () => (inbox.length > 0 ? Promise.resolve(inbox.shift()) : new Promise((r) => waiting.push(r))),
          closed
        })))
      // Errors surface as the close event; the test asserts on that.
      ws.on("error", () => {})
    }),
    () => Effect.void
  )

const serverFor = Effect.gen(function*() {
  const dir = yield* tempDir
  return yield* Effect.acquireRelease(Effect.promise(() => startTestServer(dir)), (s) => Effect.promise(() => stopTestServer(s)))
})

describe("bad input", () => {
  it.live("malformed frames, unknown ops, text frames, bad names and excess requests get typed errors", () =>
    Effect.gen(function*() {
      const server = yield* serverFor
      const key = yield* makeKey(server.dataDir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const c = yield* raw(server)

      c.send({ id: 1, op: "read", tenant: "acme", service: "x" }) // before hello
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 1, error: { code: "PROTOCOL_ERROR" } })
      c.send({ id: 2, op: "hello", protocol: 99 })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 2, error: { code: "PROTOCOL_ERROR" } })
      c.send({ id: 3, op: "hello", protocol: 1 })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 3, result: { protocol: 1 } })

      c.send({ id: 4, op: "no.such.op" })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 4, error: { code: "PROTOCOL_ERROR" } })
      c.send({ id: 5, op: "write", tenant: "acme", service: "x", writes: [{ name: "v", value: [1, 2, 3] }] })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 5, error: { code: "PROTOCOL_ERROR" } })
      c.send(Buffer.from([0xc1, 0xff, 0x00]), true) // 0xc1 is never valid MessagePack
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: null, error: { code: "PROTOCOL_ERROR" } })
      c.send("{\"id\":6,\"op\":\"ping\"}", false)
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: null, error: { code: "PROTOCOL_ERROR" } })
      c.send({ id: -1, op: "ping" })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: null, error: { code: "PROTOCOL_ERROR" } })
      c.send([1, 2, 3])
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: null, error: { code: "PROTOCOL_ERROR" } })

      c.send({ id: 7, op: "auth", tenant: "acme", key })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 7, result: { tenant: "acme" } })
      for (const [id, service] of [[8, "../etc"], [9, "a/b"], [10, ""], [11, "x".repeat(200)]] as const) {
        c.send({ id, op: "service.create", tenant: "acme", service })
        expect(yield* Effect.promise(c.next)).toMatchObject({ id, error: { code: "INVALID_NAME" } })
      }
      c.send({ id: 120, op: "service.create", tenant: "acme", service: "huge", capacity: 2 ** 40 })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 120, error: { code: "LIMIT_EXCEEDED" } })
      c.send({ id: 121, op: "service.create", tenant: "acme", service: "tiny", capacity: 10 })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 121, error: { code: "INVALID_ARGUMENT" } })
      c.send({ id: 12, op: "service.create", tenant: "acme", service: "ok" })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 12, result: { service: { name: "ok" } } })
      c.send({ id: 13, op: "var.define", tenant: "acme", service: "ok", name: "a/b", type: 3 })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 13, error: { code: "INVALID_NAME" } })
      c.send({ id: 14, op: "var.define", tenant: "acme", service: "ok", name: "n", type: 999 })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 14, error: { code: "INVALID_ARGUMENT" } })
      c.send({ id: 15, op: "var.define", tenant: "acme", service: "ok", name: "s", type: 12, capacity: 4 })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 15, result: { name: "s" } })
      c.send({ id: 16, op: "write", tenant: "acme", service: "ok", writes: [{ name: "s", value: new Uint8Array(5) }] })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 16, error: { code: "VALUE_TOO_LARGE" } })
      c.send({ id: 17, op: "write", tenant: "acme", service: "ok", writes: [{ name: "missing", value: new Uint8Array(1) }] })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 17, error: { code: "VARIABLE_NOT_FOUND" } })
      c.send({ id: 18, op: "cas", tenant: "acme", service: "ok", name: "s", expected: 5, value: new Uint8Array(1) })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 18, error: { code: "VERSION_CONFLICT", current: 0 } })
      c.send({ id: 19, op: "unsubscribe", sub: 12345 })
      expect(yield* Effect.promise(c.next)).toMatchObject({ id: 19, result: {} })

      // more than maxInFlight (256) at once: the excess is refused, the rest answered
      for (let i = 0; i < 400; i++) c.send({ id: 1000 + i, op: "read", tenant: "acme", service: "ok" })
      const replies = []
      for (let i = 0; i < 400; i++) replies.push(yield* Effect.promise(c.next))
      const limited = replies.filter((r) => r.error?.code === "LIMIT_EXCEEDED").length
      const answered = replies.filter((r) => r.result !== undefined).length
      expect(limited + answered).toBe(400)
      expect(new Set(replies.map((r) => r.id)).size).toBe(400)

      expect((yield* Effect.promise(() => health(server))).status).toBe("ok")
    }).pipe(Effect.scoped), 60_000)

  it.live("an oversized frame closes that connection with 1009; others carry on", () =>
    Effect.gen(function*() {
      const server = yield* serverFor
      const key = yield* makeKey(server.dataDir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const good = yield* connect({ url: server.url, ca: server.ca, credentials: [{ tenant: "acme", key }] })
      const c = yield* raw(server)
      c.send({ id: 1, op: "hello", protocol: 1, client: "x".repeat(2 * 1024 * 1024) })
      const closed = yield* Effect.promise(() => c.closed)
      expect(closed.code).toBe(1009)
      const ok = yield* good.request({ op: "service.create", tenant: "acme", service: "still" }, ServiceResult)
      expect(ok.service.name).toBe("still")
    }).pipe(Effect.scoped), 60_000)

  it.live("an unauthenticated connection is closed after the auth timeout, with a reason", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // A short auth timeout for the test, through the same CLI a user would use.
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => startTestServer(dir, 0, ["--auth-timeout-ms", "300"])),
        (s) => Effect.promise(() => stopTestServer(s))
      )
      const c = yield* raw(server)
      c.send({ id: 1, op: "hello", protocol: 1 })
      yield* Effect.promise(c.next)
      const closed = yield* Effect.promise(() => c.closed)
      expect(closed.code).toBe(4001)
      expect(closed.reason).toMatch(/authenticated/)
    }).pipe(Effect.scoped), 60_000)
})

describe("bad client options", () => {
  it.live("a duration option connect cannot read fails with InvalidArgument before any connection", () =>
    Effect.gen(function*() {
      const error = yield* connect({ url: "wss://127.0.0.1:1", credentials: [], requestTimeout: "later" as never }).pipe(Effect.scoped, Effect.flip)
      expect(error).toMatchObject({ _tag: "InvalidArgument", code: "INVALID_ARGUMENT" })
      expect(error.message).toContain("requestTimeout")
    }))
})

describe("service lifecycle", () => {
  it.live("a non-persistent service is deleted when its last client disconnects; a persistent one survives a restart", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      let server = yield* Effect.promise(() => startTestServer(dir))
      const key = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const observer = yield* connect({ url: server.url, ca: server.ca, credentials: [{ tenant: "acme", key }] })
      yield* Effect.scoped(Effect.gen(function*() {
        const creator = yield* connect({ url: server.url, ca: server.ca, credentials: [{ tenant: "acme", key }] })
        yield* creator.request({ op: "service.create", tenant: "acme", service: "temp" }, ServiceResult)
        yield* creator.request({ op: "service.create", tenant: "acme", service: "kept", persistent: true }, ServiceResult)
        yield* creator.request({ op: "var.define", tenant: "acme", service: "kept", name: "n", type: 3 }, VariableInfo)
        yield* creator.request({ op: "write", tenant: "acme", service: "kept", writes: [{ name: "n", value: new Uint8Array([7, 0, 0, 0]) }] }, WriteResult)
      }))
      // the creator is gone: "temp" goes with it
      yield* Effect.eventually(Effect.flatMap(
        Effect.either(observer.request({ op: "service.get", tenant: "acme", service: "temp" }, ServiceResult)),
        (r) => (r._tag === "Left" && r.left.code === "SERVICE_NOT_FOUND" ? Effect.void : Effect.fail("still there"))
      ).pipe(Effect.zipLeft(Effect.sleep("20 millis"))))

      yield* Effect.promise(() => stopTestServer(server))
      // A service file without a record (a crash between the two, or a create that lost a race
      // with its tenant's deletion) is removed at the next start; recorded ones stay.
      const services = path.join(dir, "services")
      const recorded = fs.readdirSync(services)
      const orphan = path.join(services, `service_${"ab".repeat(16)}.mem`)
      fs.copyFileSync(path.join(services, recorded[0]!), orphan)
      server = yield* Effect.promise(() => startTestServer(dir))
      yield* Effect.addFinalizer(() => Effect.promise(() => stopTestServer(server)))
      expect(fs.existsSync(orphan)).toBe(false)
      expect(fs.readdirSync(services)).toEqual(recorded)
      const again = yield* connect({ url: server.url, ca: server.ca, credentials: [{ tenant: "acme", key }] })
      const kept = yield* again.request({ op: "read", tenant: "acme", service: "kept" }, ReadResult)
      expect(kept.values.map((v) => [v.name, v.value[0], v.version])).toEqual([["n", 7, 1]])
    }).pipe(Effect.scoped), 60_000)
})
