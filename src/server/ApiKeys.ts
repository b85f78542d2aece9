/**
 * ApiKeys: generation, parsing and verification of API key strings.
 *
 * A key is `commy_<id>_<secret>`: `id` is 12 lowercase hex chars (public: the lookup key, safe to
 * log), `secret` is 32 random bytes in base64url (43 chars, unpadded; it may contain `_`).
 *
 * Only SHA-256 of the full key string is stored. Slow KDFs (bcrypt, scrypt, argon2) exist to make
 * guessing low-entropy human passwords expensive; a 256-bit random secret cannot be guessed
 * whatever the hash speed, so a fast hash loses no security, and it keeps authentication cheap
 * enough to run on every connection without becoming a denial-of-service lever.
 */
import * as crypto from "node:crypto"

export const KEY_PREFIX = "commy_"

const KEY_ID_BYTES = 6
const SECRET_BYTES = 32
/** `commy_` + 12 hex + `_` + 43 base64url chars. */
const KEY_LENGTH = KEY_PREFIX.length + KEY_ID_BYTES * 2 + 1 + Math.ceil((SECRET_BYTES * 4) / 3)
const KEY_PATTERN = /^commy_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/
const KEY_ID_PATTERN = /^[0-9a-f]{12}$/

export interface ParsedKey {
  readonly id: string
  readonly secret: string
}

/** A fresh key: its public id and the full key string (to show once, never store). */
export const generateKey = (): { readonly id: string; readonly key: string } => {
  const id = crypto.randomBytes(KEY_ID_BYTES).toString("hex")
  const secret = crypto.randomBytes(SECRET_BYTES).toString("base64url")
  return { id, key: `${KEY_PREFIX}${id}_${secret}` }
}

/** True for a well-formed key id (12 lowercase hex chars). */
export const isKeyId = (u: unknown): u is string => typeof u === "string" && KEY_ID_PATTERN.test(u)

/** Splits a key string; `undefined` for anything malformed (wrong type, length or alphabet). */
export const parseKey = (u: unknown): ParsedKey | undefined => {
  // Length first, so hostile megabyte-long inputs cost nothing.
  if (typeof u !== "string" || u.length !== KEY_LENGTH) return undefined
  const match = KEY_PATTERN.exec(u)
  return match ? { id: match[1]!, secret: match[2]! } : undefined
}

/** SHA-256 of the full key string. */
export const digestKey = (key: string): Buffer => crypto.createHash("sha256").update(key, "utf8").digest()

/** The stored form of a key's hash: lowercase hex of {@link digestKey}. */
export const hashKey = (key: string): string => digestKey(key).toString("hex")

/**
 * Compares a presented key's digest with a stored hash in constant time. A stored hash of the
 * wrong length (corruption) is compared against a dummy of the right length and then refused,
 * so the timing does not depend on it either.
 */
export const verifyDigest = (presented: Buffer, storedHex: string): boolean => {
  const stored = Buffer.from(storedHex, "hex")
  const wellFormed = stored.length === presented.length
  const equal = crypto.timingSafeEqual(presented, wellFormed ? stored : Buffer.alloc(presented.length))
  return equal && wellFormed
}

/** True when `key` is well-formed and hashes to `storedHex`. */
export const verifyKey = (key: string, storedHex: string): boolean =>
  parseKey(key) !== undefined && verifyDigest(digestKey(key), storedHex)
