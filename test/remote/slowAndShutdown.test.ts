/**
 * Backpressure and shutdown against a real server: a subscriber that stops reading is closed
 * (4008) without slowing anyone else; SIGTERM closes clients with 1001 and a reason; pipelined
 * writes coalesce into fewer pushes.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { Packr, Unpackr } from "msgpackr"
import WebSocket from "ws"
import { ServiceResult, VariableInfo, WriteResult } from "../../src/protocol/Messages.js"
import { connect } from "../../src/remote/WssTransport.js"
import { runChild } from "../support/child.js"
import { health, makeKey, startTestServer, stopTestServer, type TestServer } from "../support/server.js"
import { tempDir } from "../support/tempDir.js"

const pack = new Packr({ useRecords: false })
const unpack = new Unpackr({ useRecords: false, mapsAsObjects: true })

/** A raw subscriber: hello, auth, subscribe; then it can stop reading its socket. */
const rawSubscriber = (server: TestServer, key: string, service: string) =>
  new Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }>((resolve, reject) => {
    const ws = new WebSocket(server.url, { ca: server.ca })
    const closed = new Promise<{ code: number; reason: string }>((res) =>
      ws.on("close", (code, reason) => res({ code, reason: reason.toString() })))
    let step = 0
    ws.on("error", () => {})
    ws.on("open", () => ws.send(pack.pack({ id: 1, op: "hello", protocol: 1 })))
    ws.on("message", (data: Buffer) => {
      const message = unpack.unpack(data)
      if (message.error) return reject(new Error(message.error.message))
      if (message.id === 1 && step === 0) {
        step = 1
        ws.send(pack.pack({ id: 2, op: "auth", tenant: "acme", key }))
      } else if (message.id === 2 && step === 1) {
        step = 2
        ws.send(pack.pack({ id: 3, op: "subscribe", tenant: "acme", service }))
      } else if (message.push === "caught_up") resolve({ ws, closed })
    })
  })

describe("backpressure and shutdown", () => {
  it.live("a subscriber that stops reading is closed with 4008; every write is still answered", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => startTestServer(dir, 0, ["--slow-consumer-ms", "300"])),
        (s) => Effect.promise(() => stopTestServer(s))
      )
      const key = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const writer = yield* connect({ url: server.url, ca: server.ca, credentials: [{ tenant: "acme", key }] })
      yield* writer.request({ op: "service.create", tenant: "acme", service: "firehose" }, ServiceResult)
      yield* writer.request({ op: "var.define", tenant: "acme", service: "firehose", name: "big", type: 13, capacity: 200_000 }, VariableInfo)
      const slow = yield* Effect.promise(() => rawSubscriber(server, key, "firehose"))
      ;(slow.ws as unknown as { _socket: { pause(): void } })._socket.pause()

      // 300 writes of 200 kB: far more than the kernel's socket buffers and the 4 MiB high-water mark.
      const value = new Uint8Array(200_000)
      for (let i = 0; i < 300; i++) {
        value[0] = i & 0xff
        value[1] = i >> 8
        yield* writer.request({ op: "write", tenant: "acme", service: "firehose", writes: [{ name: "big", value }] }, WriteResult)
      }
      // keep the subscriber stalled past the slow-consumer limit, then let it read its close frame
      yield* Effect.sleep("800 millis")
      ;(slow.ws as unknown as { _socket: { resume(): void } })._socket.resume()
      const closed = yield* Effect.promise(() => slow.closed)
      expect(closed.code).toBe(4008)
      expect(closed.reason).toMatch(/slow/)
      expect((yield* Effect.promise(() => health(server))).status).toBe("ok")
    }).pipe(Effect.scoped), 60_000)

  it.live("SIGTERM closes every client with 1001 and a reason", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* Effect.promise(() => startTestServer(dir))
      const key = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const writer = yield* connect({ url: server.url, ca: server.ca, credentials: [{ tenant: "acme", key }] })
      yield* writer.request({ op: "service.create", tenant: "acme", service: "s", persistent: true }, ServiceResult)
      const sub = yield* Effect.promise(() => rawSubscriber(server, key, "s"))
      yield* Effect.promise(() => stopTestServer(server, "SIGTERM"))
      const closed = yield* Effect.promise(() => sub.closed)
      expect(closed.code).toBe(1001)
      expect(closed.reason).toMatch(/shutting down/)
      const exit = yield* Effect.promise(() => server.child.exited)
      expect(exit.stderr).not.toMatch(/Error/)
    }).pipe(Effect.scoped), 60_000)
})

describe("startup errors", () => {
  it.live("a second server on a port in use exits non-zero with one clear error line", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const first = yield* Effect.acquireRelease(Effect.promise(() => startTestServer(dir)), (s) => Effect.promise(() => stopTestServer(s)))
      const second = yield* Effect.promise(() => runChild("serve.ts", ["serve", "--data-dir", dir, "--port", String(first.port)]))
      expect(second.code).not.toBe(0)
      expect(second.stderr).toMatch(/error \[INVALID_ARGUMENT\]: cannot listen on 127\.0\.0\.1:\d+/)
      expect(second.stderr).not.toMatch(/Unhandled|at Server\./)
      expect((yield* Effect.promise(() => health(first))).status).toBe("ok")
    }).pipe(Effect.scoped), 60_000)

})

describe("push coalescing", () => {
  it.live("over plain ws://, pipelined writes are coalesced into fewer pushes, ending with the final value", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => startTestServer(dir, 0, ["--insecure"])),
        (s) => Effect.promise(() => stopTestServer(s))
      )
      expect(server.url.startsWith("ws://")).toBe(true)
      const key = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const writer = yield* connect({ url: server.url, credentials: [{ tenant: "acme", key }] })
      yield* writer.request({ op: "service.create", tenant: "acme", service: "burst" }, ServiceResult)
      yield* writer.request({ op: "var.define", tenant: "acme", service: "burst", name: "n", type: 3 }, VariableInfo)
      const sub = yield* Effect.promise(() => rawSubscriber(server, key, "burst"))
      const pushes: Array<number> = []
      sub.ws.on("message", (data: Buffer) => {
        const message = unpack.unpack(data)
        if (message.push !== "changed") return
        for (const v of message.values) pushes.push(Buffer.from(v.value).readUInt32LE(0))
      })
      // 200 writes in flight at once (the client's limit is 256): they reach the server many to a socket read. (A frame per
      // write per subscriber over plain TCP, where bufferedAmount is always 0, once saturated the
      // server at a tenth of its TLS throughput.)
      const value = (i: number) => {
        const b = new Uint8Array(4)
        new DataView(b.buffer).setUint32(0, i, true)
        return b
      }
      yield* Effect.all(
        Array.from({ length: 200 }, (_, i) =>
          writer.request({ op: "write", tenant: "acme", service: "burst", writes: [{ name: "n", value: value(i + 1) }] }, WriteResult)),
        { concurrency: "unbounded" }
      )
      yield* Effect.promise(async () => {
        for (let i = 0; i < 500 && pushes[pushes.length - 1] !== 200; i++) await new Promise((r) => setTimeout(r, 10))
      })
      expect(pushes[pushes.length - 1]).toBe(200)
      expect(pushes.length).toBeLessThan(200)
      sub.ws.close()
    }).pipe(Effect.scoped), 30_000)
})
