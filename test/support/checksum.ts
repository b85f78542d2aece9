/** 64-byte values whose last 8 bytes are a checksum of the first 56: a torn read fails `verify`. */
const mix = (words: Uint32Array): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < 14; i++) h = Math.imul(h ^ words[i]!, 16777619) >>> 0
  return h
}

export const checksummed = (n: number): Uint8Array => {
  const words = new Uint32Array(16)
  for (let i = 0; i < 14; i++) words[i] = Math.imul(n + i, 2654435761) >>> 0
  words[14] = mix(words)
  words[15] = ~words[14]! >>> 0
  return new Uint8Array(words.buffer)
}

/** True for a value written by `checksummed` (or the all-zero value of a fresh variable). */
export const verify = (bytes: Uint8Array): boolean => {
  if (bytes.length === 0) return true
  if (bytes.length !== 64) return false
  const words = new Uint32Array(bytes.slice().buffer)
  return words[14] === mix(words) && words[15] === (~words[14]! >>> 0)
}
