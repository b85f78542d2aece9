/**
 * The hand-written hot-frame codecs against the reference: msgpackr + the protocol Schemas.
 * Whatever a fast decoder accepts, the Schema decodes to the same value; whatever a fast encoder
 * writes, msgpackr reads back as the message it stands for.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import fc from "fast-check"
import { Packr, Unpackr } from "msgpackr"
import { decodeRequest, decodeServerMessage, encodeChangedPush, encodeReply, encodeRequest } from "../../src/protocol/Codec.js"
import { decodeHotRequest, decodeHotServerMessage } from "../../src/protocol/HotFrames.js"
import { Request, ServerMessage } from "../../src/protocol/Messages.js"

const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: false })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })
const schemaRequest = Schema.decodeUnknownEither(Request, { errors: "first", onExcessProperty: "ignore" })
const schemaServer = Schema.decodeUnknownEither(ServerMessage, { errors: "first", onExcessProperty: "ignore" })

/** Bytes compared by content (msgpackr may hand back a Buffer where we have a Uint8Array). */
const plain = (value: unknown): unknown =>
  value instanceof Uint8Array
    ? { bytes: Array.from(value) }
    : Array.isArray(value)
    ? value.map(plain)
    : typeof value === "object" && value !== null
    ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
    : value

const id = fc.integer({ min: 0, max: 2 ** 32 - 1 })
const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 300 }))
const bytes = fc.uint8Array({ maxLength: 300 })
const number = fc.oneof(fc.integer(), fc.nat(), fc.double(), fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }))
const write = fc.record({ op: fc.constant("write" as const), tenant: text, service: text, writes: fc.array(fc.record({ name: text, value: bytes }), { maxLength: 20 }) })
const cas = fc.record({ op: fc.constant("cas" as const), tenant: text, service: text, name: text, expected: number, value: bytes })
const read = fc.record({ op: fc.constant("read" as const), tenant: text, service: text, names: fc.array(text, { maxLength: 20 }) }, { requiredKeys: ["op", "tenant", "service"] })
const hotBody = fc.oneof(write, cas, read)

/** Maps shaped like hot frames with anything in their fields, extra keys, any key order. */
const anyField = fc.oneof(fc.anything(), text, number, bytes, fc.array(fc.record({ name: fc.anything(), value: fc.anything(), version: fc.anything() })))
const shaped = fc.dictionary(
  fc.oneof(fc.constantFrom("id", "op", "tenant", "service", "writes", "names", "name", "expected", "value", "push", "sub", "values", "result", "error", "layout"), fc.string()),
  anyField
)

describe("HotFrames", () => {
  it("encodeRequest's bytes read back with msgpackr as the request, and both decoders agree on them", () => {
    fc.assert(
      fc.property(hotBody, id, (body, requestId) => {
        const frame = encodeRequest(body, requestId)
        expect(plain(unpackr.unpack(frame))).toEqual(plain({ ...body, id: requestId }))
        const fast = decodeHotRequest(frame)
        expect(fast).toBeDefined()
        const reference = schemaRequest(unpackr.unpack(frame))
        expect(Either.isRight(reference)).toBe(true)
        expect(plain(fast)).toEqual(plain(Either.getOrThrow(reference)))
      }),
      { numRuns: 500 }
    )
  })

  it("whatever decodeHotRequest accepts, the Schema decodes to the same request", () => {
    let accepted = 0
    fc.assert(
      fc.property(fc.oneof(shaped, hotBody.map((b) => ({ ...b, id: 7 }))), (message) => {
        const frame = packr.pack(message)
        const fast = decodeHotRequest(frame)
        if (fast === undefined) return
        accepted++
        const reference = schemaRequest(unpackr.unpack(frame))
        expect(Either.isRight(reference)).toBe(true)
        expect(plain(fast)).toEqual(plain(Either.getOrThrow(reference)))
        expect(plain(Either.getOrThrow(decodeRequest(frame)))).toEqual(plain(fast))
      }),
      { numRuns: 3000 }
    )
    expect(accepted).toBeGreaterThan(100)
  })

  it("changed pushes and write/cas replies read back with msgpackr as the message", () => {
    const value = fc.record({ name: text, version: number, value: bytes })
    fc.assert(
      fc.property(id, fc.array(value, { maxLength: 40 }), (sub, values) => {
        const frame = encodeChangedPush(sub, values)
        expect(plain(unpackr.unpack(frame))).toEqual(plain({ push: "changed", sub, values }))
        expect(plain(Either.getOrThrow(decodeServerMessage(frame)))).toEqual(plain({ push: "changed", sub, values }))
      }),
      { numRuns: 300 }
    )
    fc.assert(
      fc.property(
        id,
        fc.oneof(
          fc.record({ versions: fc.array(number, { maxLength: 40 }) }),
          fc.record({ version: number }),
          fc.record({ values: fc.array(fc.record({ name: text, version: number, value: bytes }), { maxLength: 20 }) })
        ),
        (replyId, result) => {
          const frame = encodeReply(replyId, result)
          expect(plain(unpackr.unpack(frame))).toEqual(plain({ id: replyId, result }))
          expect(plain(Either.getOrThrow(decodeServerMessage(frame)))).toEqual(plain({ id: replyId, result }))
        }
      ),
      { numRuns: 300 }
    )
    // Other results are encoded by msgpackr, unchanged.
    expect(unpackr.unpack(encodeReply(3, { values: [], extra: 1 }))).toEqual({ id: 3, result: { values: [], extra: 1 } })
    expect(unpackr.unpack(encodeReply(4, { values: [{ name: "a", version: 1, value: "not bytes" }] })))
      .toEqual({ id: 4, result: { values: [{ name: "a", version: 1, value: "not bytes" }] } })
  })

  it("whatever decodeHotServerMessage accepts, the Schema decodes to the same message", () => {
    let accepted = 0
    const values = fc.array(fc.record({ name: text, version: number, value: bytes }), { maxLength: 5 })
    const likely = fc.oneof(
      fc.record({ push: fc.constantFrom("changed", "caught_up", "x"), sub: fc.oneof(id, number), values }, { requiredKeys: [] }),
      fc.record({ id: fc.oneof(id, number), result: fc.oneof(fc.record({ versions: fc.array(number) }), fc.record({ version: number }), fc.record({ values }), fc.anything()) }, { requiredKeys: [] })
    )
    fc.assert(
      fc.property(fc.oneof(shaped, likely), (message) => {
        const frame = packr.pack(message)
        const fast = decodeHotServerMessage(frame)
        if (fast === undefined) return
        accepted++
        const reference = schemaServer(unpackr.unpack(frame))
        expect(Either.isRight(reference)).toBe(true)
        expect(plain(fast)).toEqual(plain(Either.getOrThrow(reference)))
      }),
      { numRuns: 3000 }
    )
    expect(accepted).toBeGreaterThan(100)
  })

  it("truncated, padded and random frames are left to the general decoder, never thrown on", () => {
    const body = { op: "write", tenant: "t", service: "s", writes: [{ name: "x", value: new Uint8Array(9) }] }
    const good = encodeRequest(body, 1)
    for (let cut = 0; cut < good.length; cut++) expect(decodeHotRequest(good.subarray(0, cut))).toBeUndefined()
    expect(decodeHotRequest(Buffer.concat([good, Buffer.of(0)]))).toBeUndefined()
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (frame) => {
        decodeHotRequest(frame)
        decodeHotServerMessage(frame)
      }),
      { numRuns: 3000 }
    )
    // A count that promises more items than bytes left is refused before any loop runs.
    expect(decodeHotRequest(Uint8Array.of(0xdf, 0xff, 0xff, 0xff, 0xff))).toBeUndefined()
  })
})
