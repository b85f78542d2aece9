/**
 * The portable diff: changed byte ranges of two equal-length views, word at a time.
 *
 * Same contract and results, byte for byte, as the addon's kernels (see `native/diff.cc`):
 * merged `[start, end)` pairs, flat, relative to the views' starts.
 */

/** Bytes per block when the two views are misaligned relative to each other. */
const SCRATCH_BYTES = 64 * 1024

/** Appends the ranges of a byte-by-byte scan of [from, to) to `out`, continuing `open`. */
const scanBytes = (a: Uint8Array, b: Uint8Array, from: number, to: number, state: RunState): void => {
  for (let i = from; i < to; i++) {
    if (a[i] !== b[i]) {
      if (state.start < 0) state.start = i
    } else if (state.start >= 0) {
      state.out.push(state.start, i)
      state.start = -1
    }
  }
}

interface RunState {
  /** Start of the open run of changed bytes, or -1. */
  start: number
  readonly out: Array<number>
}

/**
 * Compares 32-bit words `wa[i]`/`wb[i]` for i in [0, words), where word i covers bytes
 * `base + 4i .. base + 4i + 4` of the views.
 */
const scanWords = (wa: Uint32Array, wb: Uint32Array, words: number, base: number, state: RunState): void => {
  let i = 0
  while (i < words) {
    // Skip equal words fast, 4 at a time while no run is open.
    if (state.start < 0) {
      while (
        i + 4 <= words && wa[i] === wb[i] && wa[i + 1] === wb[i + 1] && wa[i + 2] === wb[i + 2] &&
        wa[i + 3] === wb[i + 3]
      ) i += 4
      while (i < words && wa[i] === wb[i]) i++
      if (i >= words) return
    }
    const x = (wa[i]! ^ wb[i]!) >>> 0
    const at = base + i * 4
    if (x === 0) {
      // A run was open and this whole word is equal: it ends at the word's first byte.
      state.out.push(state.start, at)
      state.start = -1
    } else if (x === 0xffffffff || (x & 0xff && x & 0xff00 && x & 0xff0000 && x & 0xff000000)) {
      if (state.start < 0) state.start = at
    } else {
      // Mixed word: little-endian, byte k is bits 8k..8k+7.
      for (let k = 0; k < 4; k++) {
        if ((x >>> (k * 8)) & 0xff) {
          if (state.start < 0) state.start = at + k
        } else if (state.start >= 0) {
          state.out.push(state.start, at + k)
          state.start = -1
        }
      }
    }
    i++
  }
}

/**
 * Changed ranges of `current` against `shadow` (equal lengths, checked by the caller),
 * as a flat Float64Array `[start0, end0, start1, end1, ...]`.
 */
export const pureDiff = (current: Uint8Array, shadow: Uint8Array): Float64Array => {
  const length = current.length
  const state: RunState = { start: -1, out: [] }
  // Bytes before `current` reaches 4-byte alignment in its ArrayBuffer.
  const head = Math.min(length, (4 - (current.byteOffset & 3)) & 3)
  scanBytes(current, shadow, 0, head, state)
  const words = (length - head) >>> 2
  if (words > 0) {
    const wa = new Uint32Array(current.buffer, current.byteOffset + head, words)
    if (((shadow.byteOffset + head) & 3) === 0) {
      scanWords(wa, new Uint32Array(shadow.buffer, shadow.byteOffset + head, words), words, head, state)
    } else {
      // Relative misalignment: copy the shadow through an aligned scratch block (memcpy-speed
      // `set`) so both sides can still be read as words.
      const blockWords = SCRATCH_BYTES >>> 2
      const scratch = new Uint8Array(SCRATCH_BYTES)
      const scratchWords = new Uint32Array(scratch.buffer)
      for (let w = 0; w < words; w += blockWords) {
        const n = Math.min(blockWords, words - w)
        const from = head + w * 4
        scratch.set(shadow.subarray(from, from + n * 4))
        scanWords(wa.subarray(w, w + n), scratchWords, n, from, state)
      }
    }
  }
  scanBytes(current, shadow, head + words * 4, length, state)
  if (state.start >= 0) state.out.push(state.start, length)
  return Float64Array.from(state.out)
}
