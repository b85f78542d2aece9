/**
 * SimdDiff: which bytes changed between the current bytes and a shadow copy.
 *
 * Layers: `SimdDiff.native` (the addon's AVX-512BW/AVX2/SSE2/NEON/scalar kernels, chosen at load),
 * `SimdDiff.pure` (portable TypeScript), and `SimdDiff.layer` (native where it loads, else pure).
 * All return the same ranges, byte for byte.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { DetachedBuffer, InvalidArgument, type NativeUnavailable, SimdError } from "../CommyError.js"
import type { KernelName } from "../native/Binding.js"
import { NativeAddon } from "../native/NativeAddon.js"
import { fromNativeError } from "../native/NativeError.js"
import { pureDiff } from "./pureDiff.js"

/**
 * Changed byte ranges as a flat `[start0, end0, start1, end1, ...]` (end exclusive), sorted and
 * merged: adjacent changed bytes form one range. A flat typed array because a 50%-changed
 * buffer has millions of ranges.
 */
export type ChangedRanges = Float64Array

export type DiffError = InvalidArgument | DetachedBuffer | SimdError

export interface SimdDiffService {
  /** "avx512bw" | "avx2" | "sse2" | "neon" | "scalar" for the addon, "pure" for TypeScript. */
  readonly kernel: KernelName | "pure"
  readonly diff: (current: Uint8Array, shadow: Uint8Array) => Effect.Effect<ChangedRanges, DiffError>
  /** The same, synchronously, with the error as a value: for loops that diff on every wake. */
  readonly diffNow: (current: Uint8Array, shadow: Uint8Array) => ChangedRanges | DiffError
}

/** `[start, end)` pairs of a ChangedRanges, for display and tests. */
export const toPairs = (ranges: ChangedRanges): Array<readonly [number, number]> => {
  const pairs: Array<readonly [number, number]> = []
  for (let i = 0; i + 1 < ranges.length; i += 2) pairs.push([ranges[i]!, ranges[i + 1]!])
  return pairs
}

/** Node 20 has no `ArrayBuffer.prototype.detached`; constructing a view over a detached buffer throws. */
const isDetached = (view: Uint8Array): boolean => {
  if (view.buffer.byteLength !== 0) return false
  try {
    new Uint8Array(view.buffer)
    return false
  } catch {
    return true
  }
}

const checkInputs = (current: unknown, shadow: unknown): DiffError | undefined => {
  if (!(current instanceof Uint8Array) || !(shadow instanceof Uint8Array)) {
    return new InvalidArgument({ message: "diff: current and shadow must be Uint8Arrays" })
  }
  if (isDetached(current) || isDetached(shadow)) {
    return new DetachedBuffer({ message: "diff: an input's ArrayBuffer is detached" })
  }
  if (current.length !== shadow.length) {
    return new InvalidArgument({
      message: `diff: lengths differ (current ${current.length}, shadow ${shadow.length})`
    })
  }
  return undefined
}

/** The Effect form of a `diffNow`. */
const asEffect = (diffNow: SimdDiffService["diffNow"]): SimdDiffService["diff"] => (current, shadow) =>
  Effect.suspend(() => {
    const result = diffNow(current, shadow)
    return result instanceof Float64Array ? Effect.succeed(result) : Effect.fail(result)
  })

const makePure = (): SimdDiffService => {
  const diffNow = (current: Uint8Array, shadow: Uint8Array) => checkInputs(current, shadow) ?? pureDiff(current, shadow)
  return { kernel: "pure", diff: asEffect(diffNow), diffNow }
}

const makeNative = (kernel?: KernelName) =>
  Effect.gen(function*() {
    const addon = yield* NativeAddon
    const chosen = kernel ?? addon.activeKernel()
    if (!addon.kernels().includes(chosen)) {
      return yield* new SimdError({
        message: `SimdDiff: kernel ${chosen} is not available here (have ${addon.kernels().join(", ")})`
      })
    }
    const diffNow = (current: Uint8Array, shadow: Uint8Array): ChangedRanges | DiffError => {
      try {
        return addon.diff(current, shadow, chosen)
      } catch (cause) {
        return fromNativeError(cause, "SimdDiff.diff") as DiffError
      }
    }
    const service: SimdDiffService = { kernel: chosen, diff: asEffect(diffNow), diffNow }
    return service
  })

export class SimdDiff extends Context.Tag("commy/SimdDiff")<SimdDiff, SimdDiffService>() {
  /** Pure TypeScript, word at a time. Works everywhere. */
  static readonly pure: Layer.Layer<SimdDiff> = Layer.sync(SimdDiff, makePure)

  /** The addon's best kernel for this CPU (or `COMMY_SIMD_KERNEL`). */
  static readonly native: Layer.Layer<SimdDiff, NativeUnavailable | SimdError> = Layer.effect(
    SimdDiff,
    makeNative()
  ).pipe(Layer.provide(NativeAddon.layer))

  /** One named addon kernel; fails with SimdError where this CPU lacks it. */
  static readonly kernel = (name: KernelName): Layer.Layer<SimdDiff, NativeUnavailable | SimdError> =>
    Layer.effect(SimdDiff, makeNative(name)).pipe(Layer.provide(NativeAddon.layer))

  /** Native where the addon loads, pure otherwise. */
  static readonly layer: Layer.Layer<SimdDiff> = SimdDiff.native.pipe(Layer.catchAll(() => SimdDiff.pure))
}

/** Kernels this process can use: the addon's (best first) and "pure". Never fails. */
export const availableKernels: Effect.Effect<ReadonlyArray<KernelName | "pure">> = Effect.map(
  Effect.either(NativeAddon.pipe(Effect.provide(NativeAddon.layer))),
  (addon) => (addon._tag === "Right" ? [...addon.right.kernels(), "pure"] : ["pure"])
)
