import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import fc from "fast-check"
import { SimdDiff, type SimdDiffService, toPairs } from "../../src/index.js"
import type { KernelName } from "../../src/native/Binding.js"
import { loadNative } from "../../src/native/NativeAddon.js"
import { diffCaseArb, makeCase, oracleDiff } from "../support/diffCases.js"

const native = loadNative()
const nativeKernels: ReadonlyArray<KernelName> = Either.isRight(native) ? native.right.kernels() : []

/** The same contract, run against every implementation this machine has. */
const contract = (name: string, layer: () => Effect.Effect<SimdDiffService, unknown>) =>
  describe(`SimdDiff contract: ${name}`, () => {
    const service = () => Effect.runSync(layer())
    const diff = (a: Uint8Array, b: Uint8Array) => Effect.runSync(service().diff(a, b))

    it("matches the byte-by-byte oracle on random lengths, misalignments and patterns", async () => {
      const svc = service()
      await fc.assert(
        fc.asyncProperty(diffCaseArb, async (c) => {
          // Let the worker's event loop run between cases: 250 cases of up to 1 MiB take tens of
          // seconds on a loaded machine, and vitest's worker RPC times out after 60 s without it.
          await new Promise((resolve) => setImmediate(resolve))
          const { current, shadow } = makeCase(c)
          const got = Array.from(Effect.runSync(svc.diff(current, shadow)))
          expect(got).toEqual(oracleDiff(current, shadow))
        }),
        { numRuns: 250 }
      )
    })

    it("reports exact merged ranges", () => {
      const a = new Uint8Array(100)
      const b = new Uint8Array(100)
      b[0] = 1
      b[10] = 1
      b[11] = 1
      b[99] = 1
      expect(toPairs(diff(a, b))).toEqual([[0, 1], [10, 12], [99, 100]])
      expect(diff(new Uint8Array(0), new Uint8Array(0)).length).toBe(0)
    })

    it("rejects mismatched lengths with InvalidArgument", () => {
      const exit = Effect.runSync(Effect.either(service().diff(new Uint8Array(8), new Uint8Array(9))))
      expect(Either.isLeft(exit) && exit.left.code).toBe("INVALID_ARGUMENT")
    })

    it("rejects a detached buffer with DetachedBuffer", () => {
      const buffer = new ArrayBuffer(64)
      const view = new Uint8Array(buffer)
      structuredClone(buffer, { transfer: [buffer] })
      const exit = Effect.runSync(Effect.either(service().diff(view, new Uint8Array(0))))
      expect(Either.isLeft(exit) && exit.left.code).toBe("DETACHED_BUFFER")
    })

    it("rejects values that are not Uint8Arrays", () => {
      const exit = Effect.runSync(
        Effect.either(service().diff([1, 2] as unknown as Uint8Array, new Uint8Array(2)))
      )
      expect(Either.isLeft(exit) && exit.left.code).toBe("INVALID_ARGUMENT")
    })
  })

contract("pure", () => SimdDiff.pipe(Effect.provide(SimdDiff.pure)))
for (const kernel of nativeKernels) {
  contract(`native ${kernel}`, () => SimdDiff.pipe(Effect.provide(SimdDiff.kernel(kernel))))
}

describe("SimdDiff layers", () => {
  it.effect("the default layer picks the best native kernel where the addon loads", () =>
    Effect.gen(function*() {
      const svc = yield* SimdDiff
      expect(svc.kernel).toBe(nativeKernels[0] ?? "pure")
    }).pipe(Effect.provide(SimdDiff.layer)))

  it("the addon is built on this machine (CI builds it in npm ci)", () => {
    // Linux CI always has a compiler: a missing addon there is a build failure, not a fallback.
    if (process.platform === "linux" && process.env["COMMY_NATIVE"] !== "off") {
      expect(Either.isRight(native) ? "loaded" : native.left.message).toBe("loaded")
      expect(nativeKernels.at(-1)).toBe("scalar")
    }
  })

  it.effect("an unavailable kernel fails with SimdError", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(SimdDiff.pipe(Effect.provide(SimdDiff.kernel("neon" as KernelName))))
      if (process.arch !== "arm64") {
        expect(Either.isLeft(result) && result.left.code).toMatch(/SIMD_ERROR|NATIVE_UNAVAILABLE/)
      }
    }))
})
