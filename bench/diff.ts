/**
 * Group `diff`: SimdDiff throughput per kernel, against the pure layer and memcmp.
 *
 * Every native kernel is forced one by one through the binding's `diff(a, b, kernel)` (the
 * kernel itself, no Effect around it); "native layer" is `SimdDiff.native` run with
 * `Effect.runSync` (what a caller of the service pays on top); "pure layer" is `SimdDiff.pure`
 * the same way. `Buffer.compare` is memcmp: the physical reference for equal buffers. It stops
 * at the first difference, so on rows with changes it only shows how early that is.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { SimdDiff, type SimdDiffService } from "../src/diff/SimdDiff.js"
import { loadNative } from "../src/native/NativeAddon.js"
import { fmt, type GroupSummary, measureSync, output, progress, ratio, type SyncCase, table } from "./harness.js"

const KiB = 1024
const MiB = 1024 * KiB

const sizes: ReadonlyArray<readonly [string, number]> = [
  ["4 KiB", 4 * KiB],
  ["64 KiB", 64 * KiB],
  ["1 MiB", MiB],
  ["16 MiB", 16 * MiB]
]

/** xorshift32: the same buffers on every run. */
const prng = (seed: number) => {
  let x = seed >>> 0 || 1
  return (): number => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

interface Pattern {
  readonly name: string
  /** Changes `b` (a copy of the current bytes) in place: it becomes the shadow. */
  readonly apply: (b: Uint8Array, random: () => number) => void
}

/** Flips byte `i` to a different value. */
const change = (b: Uint8Array, i: number, random: () => number) => {
  b[i] = b[i]! ^ (1 + (random() % 255))
}

const patterns: ReadonlyArray<Pattern> = [
  { name: "0 changed", apply: () => undefined },
  { name: "1 changed (middle)", apply: (b, random) => change(b, b.length >>> 1, random) },
  {
    name: "64 scattered",
    apply: (b, random) => {
      const stride = b.length / 64
      for (let k = 0; k < 64; k++) change(b, Math.floor(k * stride + (random() % stride)), random)
    }
  },
  {
    name: "50% random",
    apply: (b, random) => {
      for (let i = 0; i < b.length; i++) if (random() & 1) change(b, i, random)
    }
  }
]

export interface DiffResult {
  readonly size: string
  readonly pattern: string
  /** GB/s (1e9 bytes of one buffer per second) per contender, by column name. */
  readonly gbps: ReadonlyMap<string, number>
}

const sameRanges = (x: Float64Array, y: Float64Array): boolean => {
  if (x.length !== y.length) return false
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  return true
}

export const runDiff = async (): Promise<GroupSummary> => {
  const native = loadNative()
  const binding = Either.isRight(native) ? native.right : undefined
  if (!binding) progress(`diff: native addon unavailable (${Either.isLeft(native) ? native.left.message : ""}); pure only`)
  const kernels = binding ? binding.kernels() : []
  const pureLayer: SimdDiffService = Effect.runSync(Effect.provide(SimdDiff, SimdDiff.pure))
  const nativeLayer: SimdDiffService | undefined = binding
    ? Effect.runSync(Effect.provide(SimdDiff, SimdDiff.native))
    : undefined
  progress(`diff: kernels ${kernels.join(", ") || "(none)"}; native layer default ${nativeLayer?.kernel ?? "n/a"}`)

  const columns = [
    ...kernels,
    ...(nativeLayer ? [`native layer (${nativeLayer.kernel})`] : []),
    "pure layer",
    "Buffer.compare"
  ]
  const results: Array<DiffResult> = []
  for (const [sizeName, size] of sizes) {
    const random = prng(0x9e3779b9 ^ size)
    const current = new Uint8Array(size)
    for (let i = 0; i < size; i++) current[i] = random() & 0xff
    for (const pattern of patterns) {
      const shadow = current.slice()
      pattern.apply(shadow, random)
      const a = Buffer.from(current.buffer, current.byteOffset, current.length)
      const b = Buffer.from(shadow.buffer, shadow.byteOffset, shadow.length)

      // Every contender must agree before any is timed.
      const reference = Effect.runSync(pureLayer.diff(current, shadow))
      for (const k of kernels) {
        if (!sameRanges(binding!.diff(current, shadow, k), reference)) {
          throw new Error(`diff: kernel ${k} disagrees with pure on ${sizeName} ${pattern.name}`)
        }
      }
      const rangeCount = reference.length / 2

      const cases: Array<SyncCase> = []
      for (const k of kernels) {
        cases.push({
          name: k,
          run: (n) => {
            let s = 0
            for (let i = 0; i < n; i++) s += binding!.diff(current, shadow, k).length
            return s
          }
        })
      }
      if (nativeLayer) {
        const svc = nativeLayer
        cases.push({
          name: `native layer (${svc.kernel})`,
          run: (n) => {
            let s = 0
            for (let i = 0; i < n; i++) s += Effect.runSync(svc.diff(current, shadow)).length
            return s
          }
        })
      }
      cases.push({
        name: "pure layer",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += Effect.runSync(pureLayer.diff(current, shadow)).length
          return s
        }
      })
      cases.push({
        name: "Buffer.compare",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += Buffer.compare(a, b) + 2
          return s
        }
      })

      progress(`diff: ${sizeName} ${pattern.name} (${rangeCount} ranges), ${cases.length} contenders`)
      const timings = measureSync(cases, { trials: 7, warmupMs: 80, trialMs: 25, maxIterations: 1e6 })
      const gbps = new Map(timings.map((t) => [t.name, size / t.medianNs] as const))
      results.push({ size: sizeName, pattern: `${pattern.name} (${rangeCount} ranges)`, gbps })
    }
  }

  const cell = (r: DiffResult, c: string) => fmt(r.gbps.get(c) ?? NaN)
  output(`\n## diff: throughput, GB/s (10^9 bytes of one buffer per second; median of 7 trials)\n`)
  output(table(["size", "changes", ...columns], results.map((r) => [r.size, r.pattern, ...columns.map((c) => cell(r, c))]), [
    "l",
    "l",
    ...columns.map(() => "r" as const)
  ]))
  const ratioTable = (title: string, against: string, reference: (r: DiffResult) => number) => {
    output(`\n### diff: ratio to ${title} (same run)\n`)
    const shown = columns.filter((c) => c !== against)
    output(table(
      ["size", "changes", ...shown],
      results.map((r) => [r.size, r.pattern, ...shown.map((c) => ratio(r.gbps.get(c)! / reference(r)))]),
      ["l", "l", ...shown.map(() => "r" as const)]
    ))
  }
  // memcmp returns at the first difference, so its figure on a changed row says only where that
  // difference is. Every row is compared with memcmp over equal buffers of its size instead: the
  // bandwidth of reading both buffers once, which a diff must do whatever changed.
  const memcmpEqual = (r: DiffResult) =>
    results.find((x) => x.size === r.size && x.pattern.startsWith("0 changed"))!.gbps.get("Buffer.compare")!
  ratioTable("Buffer.compare on equal buffers of the same size (memcmp bandwidth)", "Buffer.compare", memcmpEqual)
  ratioTable("the pure layer", "pure layer", (r) => r.gbps.get("pure layer")!)

  const lines: Array<string> = []
  const unchanged1MiB = results.find((r) => r.size === "1 MiB" && r.pattern.startsWith("0 changed"))
  if (unchanged1MiB && kernels.length > 0) {
    const best = [...kernels].sort((x, y) => unchanged1MiB.gbps.get(y)! - unchanged1MiB.gbps.get(x)!)[0]!
    const g = unchanged1MiB.gbps.get(best)!
    const vsMemcmp = g / unchanged1MiB.gbps.get("Buffer.compare")!
    const vsPure = g / unchanged1MiB.gbps.get("pure layer")!
    lines.push(
      `diff, unchanged 1 MiB: best kernel ${best} ${fmt(g)} GB/s = ${fmt(vsMemcmp * 100)}% of Buffer.compare ` +
        `(target ≥ 50%: ${vsMemcmp >= 0.5 ? "met" : "NOT met"})`,
      `diff, unchanged 1 MiB: best kernel ${best} = ${ratio(vsPure)} the pure layer (target ≥ 10×: ${vsPure >= 10 ? "met" : "NOT met"})`
    )
  } else {
    lines.push("diff: no native kernel available, targets not measurable")
  }
  output("")
  for (const line of lines) output(`- ${line}`)
  return { lines }
}
