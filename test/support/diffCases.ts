/**
 * Random diff inputs for property tests: two equal-length views at arbitrary misalignments
 * with a chosen change pattern, plus the byte-by-byte oracle every kernel must match.
 */
import fc from "fast-check"

export type Pattern = "none" | "single" | "scattered" | "runs" | "half" | "all"

export interface DiffCase {
  readonly length: number
  readonly currentOffset: number
  readonly shadowOffset: number
  readonly pattern: Pattern
  readonly seed: number
  readonly count: number
}

/** Lengths from 0 to a little over 1 MiB, biased to the small sizes and block edges. */
const lengthArb = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 300 }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 70_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1_048_576, max: 1_100_000 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 7, 8, 15, 16, 31, 32, 63, 64, 65, 127, 128, 129, 255, 256, 257) }
)

export const diffCaseArb: fc.Arbitrary<DiffCase> = fc.record({
  length: lengthArb,
  currentOffset: fc.integer({ min: 0, max: 70 }),
  shadowOffset: fc.integer({ min: 0, max: 70 }),
  pattern: fc.constantFrom<Pattern>("none", "single", "scattered", "runs", "half", "all"),
  seed: fc.integer(),
  count: fc.integer({ min: 1, max: 200 })
})

/** A small deterministic PRNG (mulberry32) so big buffers need not come from fast-check. */
const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Builds the views. Each lives in its own ArrayBuffer of exactly offset+length bytes, so a
 * kernel that reads past the end of a view would read past the end of the allocation.
 */
export const makeCase = (c: DiffCase): { current: Uint8Array; shadow: Uint8Array } => {
  const rnd = prng(c.seed)
  const current = new Uint8Array(new ArrayBuffer(c.currentOffset + c.length), c.currentOffset, c.length)
  const shadow = new Uint8Array(new ArrayBuffer(c.shadowOffset + c.length), c.shadowOffset, c.length)
  for (let i = 0; i < c.length; i++) current[i] = (rnd() * 256) | 0
  shadow.set(current)
  const flip = (i: number) => {
    shadow[i] = shadow[i]! ^ (1 + ((rnd() * 255) | 0))
  }
  if (c.length === 0) return { current, shadow }
  switch (c.pattern) {
    case "none":
      break
    case "single":
      flip((rnd() * c.length) | 0)
      break
    case "scattered":
      for (let k = 0; k < c.count; k++) flip((rnd() * c.length) | 0)
      break
    case "runs":
      for (let k = 0; k < Math.min(c.count, 20); k++) {
        const start = (rnd() * c.length) | 0
        const end = Math.min(c.length, start + 1 + ((rnd() * 300) | 0))
        for (let i = start; i < end; i++) flip(i)
      }
      break
    case "half":
      for (let i = 0; i < c.length; i++) if (rnd() < 0.5) flip(i)
      break
    case "all":
      for (let i = 0; i < c.length; i++) flip(i)
      break
  }
  return { current, shadow }
}

/** The byte-by-byte oracle. */
export const oracleDiff = (a: Uint8Array, b: Uint8Array): Array<number> => {
  const out: Array<number> = []
  let start = -1
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      if (start < 0) start = i
    } else if (start >= 0) {
      out.push(start, i)
      start = -1
    }
  }
  if (start >= 0) out.push(start, a.length)
  return out
}
