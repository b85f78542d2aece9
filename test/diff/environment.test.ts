/**
 * The documented environment switches, each in a real child process: COMMY_NATIVE=off (the
 * library still loads: pure diff, typed NATIVE_UNAVAILABLE for mappings) and COMMY_SIMD_KERNEL.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { runChild } from "../support/child.js"
import { tempDir, zeroFile } from "../support/tempDir.js"

const report = (env: NodeJS.ProcessEnv) =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const file = zeroFile(dir, "x.mem", 4096)
    const out = yield* Effect.promise(() => runChild("envChild.ts", [file, dir], { env }))
    const parsed = JSON.parse(out.stdout) as { kernel: string; ranges: Array<number>; kernels: Array<string>; map: string; client: string }
    return { ...parsed, stderr: out.stderr }
  })

describe("environment switches", () => {
  it.live("COMMY_NATIVE=off: pure diff, mappings fail with NATIVE_UNAVAILABLE, nothing crashes", () =>
    Effect.gen(function*() {
      const r = yield* report({ COMMY_NATIVE: "off" })
      expect(r).toEqual({ kernel: "pure", ranges: [1, 2], kernels: ["pure"], map: "NATIVE_UNAVAILABLE", client: "NATIVE_UNAVAILABLE", stderr: "" })
    }).pipe(Effect.scoped))

  it.live("COMMY_SIMD_KERNEL picks the default kernel; an unknown name keeps the best one", () =>
    Effect.gen(function*() {
      const sse2 = yield* report({ COMMY_SIMD_KERNEL: "sse2" })
      if (process.arch === "x64") expect(sse2.kernel).toBe("sse2")
      expect(sse2.ranges).toEqual([1, 2])
      expect(sse2.map).toBe("ok")
      expect(sse2.stderr).toBe("")
      const bogus = yield* report({ COMMY_SIMD_KERNEL: "warp-drive" })
      expect(bogus.kernel).toBe(bogus.kernels[0])
      expect(bogus.stderr).toMatch(/COMMY_SIMD_KERNEL=warp-drive is not available on this machine; using /)
    }).pipe(Effect.scoped))
})
