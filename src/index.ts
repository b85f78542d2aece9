/**
 * Commy: processes share named variables, memory-mapped on one machine and over WSS across
 * machines, and learn which variables changed.
 */
export * from "./CommyError.js"
export type { KernelName, WaitResult } from "./native/Binding.js"
export { NativeAddon } from "./native/NativeAddon.js"
export { availableKernels, type ChangedRanges, type DiffError, SimdDiff, type SimdDiffService, toPairs } from "./diff/SimdDiff.js"
