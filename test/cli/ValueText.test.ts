import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { formatValue, parseType, parseValue } from "../../src/cli/ValueText.js"

const roundTrip = (type: number, capacity: number, text: string) => {
  const bytes = parseValue(type, capacity, text)
  if (!(bytes instanceof Uint8Array)) throw new Error(`${text}: ${bytes.message}`)
  return formatValue(type, bytes)
}

describe("ValueText", () => {
  it("integers, floats, bigints and booleans round-trip through text", () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => { expect(roundTrip(3, 4, String(n))).toBe(String(n)) }))
    fc.assert(fc.property(fc.integer({ min: -0x80000000, max: 0x7fffffff }), (n) => { expect(roundTrip(7, 4, String(n))).toBe(String(n)) }))
    fc.assert(fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (n) => { expect(roundTrip(8, 8, String(n))).toBe(String(n)) }))
    // === rather than toBe: the text "0" cannot carry the sign of -0
    fc.assert(fc.property(fc.double({ noNaN: true }), (x) => { expect(Number(roundTrip(10, 8, String(x))) === x).toBe(true) }))
    expect(roundTrip(11, 1, "true")).toBe("true")
    expect(roundTrip(12, 16, "héllo")).toBe("\"héllo\"")
    expect(roundTrip(13, 4, "deadbeef")).toBe("deadbeef")
    expect(roundTrip(14, 32, "{\"a\":1}")).toBe("{\"a\":1}")
  })

  it("refuses text that is not a value of the type, with a typed error", () => {
    for (const [type, capacity, text, code] of [
      [10, 8, "warm", "TYPE_MISMATCH"],
      [3, 4, "-1", "TYPE_MISMATCH"],
      [1, 1, "256", "TYPE_MISMATCH"],
      [11, 1, "yes", "TYPE_MISMATCH"],
      [8, 8, "1.5", "TYPE_MISMATCH"],
      [12, 3, "four", "VALUE_TOO_LARGE"],
      [13, 4, "xyz", "INVALID_ARGUMENT"],
      [14, 16, "{nope", "INVALID_ARGUMENT"]
    ] as const) {
      const result = parseValue(type, capacity, text)
      expect(result instanceof Uint8Array ? "ok" : result.code).toBe(code)
    }
    expect(parseType("string:64")).toEqual({ type: 12, capacity: 64 })
    expect(parseType("f64")).toEqual({ type: 10 })
    expect("code" in (parseType("float") as object) ? (parseType("float") as { code: string }).code : "ok").toBe("INVALID_ARGUMENT")
  })
})
