import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { generateKey, hashKey, isKeyId, parseKey, verifyKey } from "../../src/server/ApiKeys.js"

describe("ApiKeys", () => {
  it("generates distinct well-formed keys that parse back to their id", () => {
    const seen = new Set<string>()
    for (let i = 0; i < 100; i++) {
      const { id, key } = generateKey()
      expect(isKeyId(id)).toBe(true)
      expect(key).toMatch(/^commy_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/)
      expect(parseKey(key)?.id).toBe(id)
      expect(Buffer.from(parseKey(key)!.secret, "base64url")).toHaveLength(32)
      seen.add(key)
    }
    expect(seen.size).toBe(100)
  })

  it("stores SHA-256 of the full key, and verifies only that key", () => {
    const { key } = generateKey()
    const hash = hashKey(key)
    expect(hash).toMatch(/^[0-9a-f]{64}$/)
    expect(hash).not.toContain(parseKey(key)!.secret)
    expect(verifyKey(key, hash)).toBe(true)
    expect(verifyKey(generateKey().key, hash)).toBe(false)
    // A corrupted stored hash is refused, without throwing on the length mismatch.
    expect(verifyKey(key, hash.slice(2))).toBe(false)
    expect(verifyKey(key, "")).toBe(false)
  })

  it("rejects malformed keys without throwing", () => {
    for (const u of [undefined, null, 1, {}, "", "commy_", "commy_abc_def", "x".repeat(62)]) {
      expect(parseKey(u)).toBeUndefined()
    }
    fc.assert(fc.property(fc.string({ maxLength: 100 }), (s) => {
      expect(parseKey(s) === undefined || /^commy_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/.test(s)).toBe(true)
    }))
  })

  it("any one-character change to a key fails verification", () => {
    const { key } = generateKey()
    const hash = hashKey(key)
    fc.assert(fc.property(fc.nat({ max: key.length - 1 }), fc.string({ minLength: 1, maxLength: 1 }), (at, c) => {
      fc.pre(key[at] !== c)
      expect(verifyKey(key.slice(0, at) + c + key.slice(at + 1), hash)).toBe(false)
    }))
  })
})
