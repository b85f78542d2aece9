/**
 * A small MessagePack reader and writer for the hot frames (see HotFrames.ts): only the types
 * those frames carry (maps, arrays, strings, numbers, binary), with no intermediate objects.
 * Everything else goes through msgpackr.
 *
 * Why: on this project's machines a frame arrives after the process slept, with cold caches,
 * and msgpackr plus a Schema decode cost 30–50 µs there (2 µs in a hot loop). A reader this
 * small stays cheap cold.
 *
 * The reader never throws and never reads out of bounds: anything it does not expect (a type
 * it does not handle, a truncated frame, nesting deeper than `MAX_DEPTH`) sets `failed`, and the
 * caller falls back to the general decoder, which gives the error.
 */

const MAX_DEPTH = 32
const scratch = new DataView(new ArrayBuffer(8))
const decoder = new TextDecoder()
/** Short ASCII strings are cached, direct-mapped: bounded (STRING_CACHE × SHORT chars), whatever a peer sends. */
const SHORT = 32
const STRING_CACHE = 512
const strings = new Array<string | undefined>(STRING_CACHE).fill(undefined)
const encoder = new TextEncoder()

export class Reader {
  private src: Uint8Array = new Uint8Array(0)
  pos = 0
  failed = false

  /** Starts reading `src` from its first byte. */
  reset(src: Uint8Array): this {
    this.src = src
    this.pos = 0
    this.failed = false
    return this
  }

  get done(): boolean {
    return this.pos === this.src.length
  }

  private fail(): -1 {
    this.failed = true
    return -1
  }

  /** Reads `n` bytes (1, 2 or 4) as an unsigned big-endian integer; -1 when truncated. */
  private uint(n: 1 | 2 | 4): number {
    const { src, pos } = this
    if (pos + n > src.length) return this.fail()
    this.pos = pos + n
    if (n === 1) return src[pos]!
    if (n === 2) return (src[pos]! << 8) | src[pos + 1]!
    return ((src[pos]! << 24) | (src[pos + 1]! << 16) | (src[pos + 2]! << 8) | src[pos + 3]!) >>> 0
  }

  private byte(): number {
    return this.pos < this.src.length ? this.src[this.pos++]! : this.fail()
  }

  /** A map's entry count, or -1 (not a map). */
  mapLength(): number {
    const b = this.byte()
    if (b >= 0x80 && b <= 0x8f) return b & 0x0f
    if (b === 0xde) return this.uint(2)
    if (b === 0xdf) return this.uint(4)
    return this.fail()
  }

  /** An array's length, or -1 (not an array). */
  arrayLength(): number {
    const b = this.byte()
    if (b >= 0x90 && b <= 0x9f) return b & 0x0f
    if (b === 0xdc) return this.uint(2)
    if (b === 0xdd) return this.uint(4)
    return this.fail()
  }

  /** A string, or undefined (not a string). */
  string(): string | undefined {
    const b = this.byte()
    const length = b >= 0xa0 && b <= 0xbf ? b & 0x1f : b === 0xd9 ? this.uint(1) : b === 0xda ? this.uint(2) : b === 0xdb ? this.uint(4) : this.fail()
    if (length < 0) return undefined
    const { src, pos } = this
    const end = pos + length
    if (end > src.length) return void this.fail()
    this.pos = end
    // Short ASCII (keys, ops, tenant, service and variable names) repeats from frame to frame:
    // a hit in the cache returns the string built last time, allocating nothing.
    if (length <= SHORT) {
      let hash = length
      for (let i = pos; i < end; i++) {
        const c = src[i]!
        if (c >= 0x80) return decoder.decode(src.subarray(pos, end))
        hash = (Math.imul(hash, 31) + c) | 0
      }
      const slot = (hash ^ (hash >>> 15)) & (STRING_CACHE - 1)
      const cached = strings[slot]
      if (cached !== undefined && cached.length === length) {
        let same = true
        for (let i = 0; same && i < length; i++) same = cached.charCodeAt(i) === src[pos + i]
        if (same) return cached
      }
      const text = decoder.decode(src.subarray(pos, end))
      strings[slot] = text
      return text
    }
    return decoder.decode(src.subarray(pos, end))
  }

  /** Binary data (copied, so the frame's buffer is not kept alive), or undefined. */
  binary(): Uint8Array | undefined {
    const b = this.byte()
    const length = b === 0xc4 ? this.uint(1) : b === 0xc5 ? this.uint(2) : b === 0xc6 ? this.uint(4) : this.fail()
    if (length < 0) return undefined
    const end = this.pos + length
    if (end > this.src.length) return void this.fail()
    const bytes = this.src.slice(this.pos, end)
    this.pos = end
    return bytes
  }

  /** Any number except 64-bit integers (msgpackr's own rules then apply), or undefined. */
  number(): number | undefined {
    const b = this.byte()
    if (b < 0) return undefined
    if (b <= 0x7f) return b
    if (b >= 0xe0) return b - 0x100
    const { src } = this
    switch (b) {
      case 0xcc:
      case 0xcd:
      case 0xce: {
        const n = this.uint(b === 0xcc ? 1 : b === 0xcd ? 2 : 4)
        return n >= 0 ? n : undefined
      }
      case 0xd0:
      case 0xd1:
      case 0xd2: {
        const size = b === 0xd0 ? 1 : b === 0xd1 ? 2 : 4
        const n = this.uint(size as 1 | 2 | 4)
        if (n < 0) return undefined
        const shift = 32 - 8 * size
        return (n << shift) >> shift
      }
      case 0xca:
      case 0xcb: {
        const size = b === 0xca ? 4 : 8
        if (this.pos + size > src.length) return void this.fail()
        for (let i = 0; i < size; i++) scratch.setUint8(i, src[this.pos + i]!)
        this.pos += size
        return size === 4 ? scratch.getFloat32(0) : scratch.getFloat64(0)
      }
      default:
        return void this.fail()
    }
  }

  /** Skips one value of any type (an unknown key's value); false when it cannot. */
  skip(depth = 0): boolean {
    if (depth > MAX_DEPTH) return !this.fail()
    const b = this.byte()
    if (b < 0) return false
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) return true
    const { src } = this
    let bytes = -1
    let items = -1
    if (b >= 0x80 && b <= 0x8f) items = 2 * (b & 0x0f)
    else if (b >= 0x90 && b <= 0x9f) items = b & 0x0f
    else if (b >= 0xa0 && b <= 0xbf) bytes = b & 0x1f
    else {
      switch (b) {
        case 0xc4:
        case 0xd9:
          bytes = this.uint(1)
          break
        case 0xc5:
        case 0xda:
          bytes = this.uint(2)
          break
        case 0xc6:
        case 0xdb:
          bytes = this.uint(4)
          break
        case 0xcc:
        case 0xd0:
          bytes = 1
          break
        case 0xcd:
        case 0xd1:
          bytes = 2
          break
        case 0xca:
        case 0xce:
        case 0xd2:
          bytes = 4
          break
        case 0xcb:
        case 0xcf:
        case 0xd3:
          bytes = 8
          break
        case 0xdc:
          items = this.uint(2)
          break
        case 0xdd:
          items = this.uint(4)
          break
        case 0xde:
          items = 2 * this.uint(2)
          break
        case 0xdf:
          items = 2 * this.uint(4)
          break
        default: // ext types: never in a Commy frame
          return !this.fail()
      }
    }
    if (this.failed) return false
    if (bytes >= 0) {
      if (this.pos + bytes > src.length) return !this.fail()
      this.pos += bytes
      return true
    }
    // Each item takes at least one byte: a count larger than what is left is a lie.
    if (items > src.length - this.pos) return !this.fail()
    for (let i = 0; i < items; i++) if (!this.skip(depth + 1)) return false
    return true
  }
}

/** Appends MessagePack to a growable buffer; `finish` returns the bytes written. */
export class Writer {
  private buf = new Uint8Array(256)
  private view = new DataView(this.buf.buffer)
  private pos = 0

  reset(): this {
    this.pos = 0
    return this
  }

  private room(n: number) {
    if (this.pos + n <= this.buf.length) return
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n))
    bigger.set(this.buf.subarray(0, this.pos))
    this.buf = bigger
    this.view = new DataView(bigger.buffer)
  }

  /** The frame so far, as a Buffer of its own (ws sends it as is). */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos))
  }

  bytes(bytes: Uint8Array): this {
    this.room(bytes.length)
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
    return this
  }

  /**
   * A length header: `small | n` below `smallLimit` (fix forms), else the 8-bit form `c8` if the
   * type has one (-1: none), else 16- or 32-bit.
   */
  private header(small: number, smallLimit: number, n: number, c8: number, c16: number, c32: number) {
    this.room(5)
    const { buf } = this
    if (n < smallLimit) buf[this.pos++] = small | n
    else if (c8 >= 0 && n < 0x100) {
      buf[this.pos++] = c8
      buf[this.pos++] = n
    } else if (n < 0x10000) {
      buf[this.pos++] = c16
      this.view.setUint16(this.pos, n)
      this.pos += 2
    } else {
      buf[this.pos++] = c32
      this.view.setUint32(this.pos, n)
      this.pos += 4
    }
  }

  map(n: number): this {
    this.header(0x80, 16, n, -1, 0xde, 0xdf)
    return this
  }

  array(n: number): this {
    this.header(0x90, 16, n, -1, 0xdc, 0xdd)
    return this
  }

  string(text: string): this {
    // ASCII fast path: one byte per char, known length.
    let ascii = text.length <= 64
    for (let i = 0; ascii && i < text.length; i++) ascii = text.charCodeAt(i) < 0x80
    if (ascii) {
      this.header(0xa0, 32, text.length, 0xd9, 0xda, 0xdb)
      this.room(text.length)
      for (let i = 0; i < text.length; i++) this.buf[this.pos++] = text.charCodeAt(i)
      return this
    }
    const bytes = encoder.encode(text)
    this.header(0xa0, 32, bytes.length, 0xd9, 0xda, 0xdb)
    return this.bytes(bytes)
  }

  binary(bytes: Uint8Array): this {
    this.header(0, 0, bytes.length, 0xc4, 0xc5, 0xc6)
    return this.bytes(bytes)
  }

  /** Integers in the smallest form (like msgpackr); anything else as a float64. */
  number(n: number): this {
    this.room(9)
    const { buf, view } = this
    // Unsigned integers take the same forms as a length: fixint, then 8, 16 or 32 bits.
    if (Number.isInteger(n) && n >= 0 && n <= 0xffffffff && !Object.is(n, -0)) this.header(0, 0x80, n, 0xcc, 0xcd, 0xce)
    else if (Number.isInteger(n) && n < 0 && n >= -0x80000000) {
      if (n >= -32) buf[this.pos++] = n & 0xff
      else {
        buf[this.pos++] = 0xd2
        view.setInt32(this.pos, n)
        this.pos += 4
      }
    } else {
      buf[this.pos++] = 0xcb
      view.setFloat64(this.pos, n)
      this.pos += 8
    }
    return this
  }
}
