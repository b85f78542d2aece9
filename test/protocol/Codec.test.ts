import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import fc from "fast-check"
import { classForCode, commyErrorCodes, VersionConflict } from "../../src/CommyError.js"
import { decodeServerMessage, encodeChangedPush, encodeFrame, errorBody, errorFromBody } from "../../src/protocol/Codec.js"

describe("Codec", () => {
  it("a changed push assembled from cached values decodes like the plain encoding", () => {
    const value = fc.record({
      name: fc.string({ minLength: 1, maxLength: 20 }),
      version: fc.integer({ min: 0, max: 2 ** 40 }),
      value: fc.uint8Array({ maxLength: 64 })
    })
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.array(value, { maxLength: 40 }), fc.boolean(), (sub, values, withLayout) => {
        const layout = withLayout ? [{ name: "a", type: 3, capacity: 4, persistent: false, version: 1 }] : undefined
        const assembled = decodeServerMessage(encodeChangedPush(sub, values, layout))
        const plain = decodeServerMessage(
          encodeFrame(layout ? { push: "changed", sub, values, layout } : { push: "changed", sub, values })
        )
        expect(Either.isRight(assembled)).toBe(true)
        expect(assembled).toEqual(plain)
      })
    )
    // also past the 16-element fixarray boundary
    const many = Array.from({ length: 20 }, (_, i) => ({ name: `v${i}`, version: i, value: new Uint8Array([i]) }))
    expect(decodeServerMessage(encodeChangedPush(1, many))).toEqual(decodeServerMessage(encodeFrame({ push: "changed", sub: 1, values: many })))
  })

  it("every error code survives the wire as the same class with its fields", () => {
    for (const code of commyErrorCodes) {
      const cls = classForCode(code)!
      const original = new (cls as any)({ message: `m ${code}`, name: "n", service: "s", tenant: "t", capacity: 4, version: 2, expected: 1, current: 3 })
      const back = errorFromBody(errorBody(original) as any)
      expect(back.code).toBe(code)
      expect(back._tag).toBe(original._tag)
      expect(back.message).toBe(original.message)
    }
    const conflict = errorFromBody(errorBody(new VersionConflict({ message: "x", name: "v", expected: 1, current: 9 })) as any)
    expect(conflict._tag === "VersionConflict" && conflict.current).toBe(9)
    expect(errorFromBody({ code: "SOMETHING_NEW", message: "from a newer server" }).code).toBe("PROTOCOL_ERROR")
  })
})
