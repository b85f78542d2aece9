/**
 * VarType: how a variable's value is laid out in its slot. The type id and capacity are stored
 * in the file's directory, so every process (and every language) agrees on the bytes.
 *
 * `write` and `read` are the hot path: no allocation for number and boolean types. `check`
 * validates a value before it is written and returns an error message, or undefined.
 */
import * as Schema from "effect/Schema"

export interface VarType<A> {
  readonly id: number
  readonly name: string
  /** Bytes reserved for the value. */
  readonly capacity: number
  /** Fixed-width types always store exactly `capacity` bytes. */
  readonly fixed: boolean
  readonly check: (value: unknown) => string | undefined
  /** Writes at `offset`, returns the byte length written. `value` has passed `check`. */
  readonly write: (view: DataView, offset: number, value: A) => number
  readonly read: (view: DataView, offset: number, length: number) => A
}

export type TypeOf<T> = T extends VarType<infer A> ? A : never

const numeric = (
  id: number,
  name: string,
  capacity: number,
  check: (value: unknown) => string | undefined,
  write: (view: DataView, offset: number, value: number) => void,
  read: (view: DataView, offset: number) => number
): VarType<number> => ({
  id,
  name,
  capacity,
  fixed: true,
  check,
  write: (view, offset, value) => {
    write(view, offset, value)
    return capacity
  },
  read: (view, offset) => read(view, offset)
})

const intRange = (name: string, min: number, max: number) => (value: unknown) =>
  typeof value === "number" && Number.isInteger(value) && value >= min && value <= max
    ? undefined
    : `${name} needs an integer in [${min}, ${max}], got ${describe(value)}`

const bigRange = (name: string, min: bigint, max: bigint) => (value: unknown) =>
  typeof value === "bigint" && value >= min && value <= max
    ? undefined
    : `${name} needs a bigint in [${min}, ${max}], got ${describe(value)}`

const isNumber = (name: string) => (value: unknown) =>
  typeof value === "number" ? undefined : `${name} needs a number, got ${describe(value)}`

const describe = (value: unknown): string =>
  typeof value === "bigint" ? `${value}n` : typeof value === "string" ? JSON.stringify(value) : String(value)

export const u8 = numeric(1, "u8", 1, intRange("u8", 0, 0xff), (v, o, x) => v.setUint8(o, x), (v, o) => v.getUint8(o))
export const u16 = numeric(
  2,
  "u16",
  2,
  intRange("u16", 0, 0xffff),
  (v, o, x) => v.setUint16(o, x, true),
  (v, o) => v.getUint16(o, true)
)
export const u32 = numeric(
  3,
  "u32",
  4,
  intRange("u32", 0, 0xffffffff),
  (v, o, x) => v.setUint32(o, x, true),
  (v, o) => v.getUint32(o, true)
)
export const u64: VarType<bigint> = {
  id: 4,
  name: "u64",
  capacity: 8,
  fixed: true,
  check: bigRange("u64", 0n, 2n ** 64n - 1n),
  write: (view, offset, value) => (view.setBigUint64(offset, value, true), 8),
  read: (view, offset) => view.getBigUint64(offset, true)
}
export const i8 = numeric(5, "i8", 1, intRange("i8", -0x80, 0x7f), (v, o, x) => v.setInt8(o, x), (v, o) => v.getInt8(o))
export const i16 = numeric(
  6,
  "i16",
  2,
  intRange("i16", -0x8000, 0x7fff),
  (v, o, x) => v.setInt16(o, x, true),
  (v, o) => v.getInt16(o, true)
)
export const i32 = numeric(
  7,
  "i32",
  4,
  intRange("i32", -0x80000000, 0x7fffffff),
  (v, o, x) => v.setInt32(o, x, true),
  (v, o) => v.getInt32(o, true)
)
export const i64: VarType<bigint> = {
  id: 8,
  name: "i64",
  capacity: 8,
  fixed: true,
  check: bigRange("i64", -(2n ** 63n), 2n ** 63n - 1n),
  write: (view, offset, value) => (view.setBigInt64(offset, value, true), 8),
  read: (view, offset) => view.getBigInt64(offset, true)
}
/** Signed 64-bit integer as a bigint: the same bytes as i64. */
export const bigint = i64
export const f32 = numeric(
  9,
  "f32",
  4,
  isNumber("f32"),
  (v, o, x) => v.setFloat32(o, x, true),
  (v, o) => v.getFloat32(o, true)
)
export const f64 = numeric(
  10,
  "f64",
  8,
  isNumber("f64"),
  (v, o, x) => v.setFloat64(o, x, true),
  (v, o) => v.getFloat64(o, true)
)
export const bool: VarType<boolean> = {
  id: 11,
  name: "bool",
  capacity: 1,
  fixed: true,
  check: (value) => (typeof value === "boolean" ? undefined : `bool needs a boolean, got ${describe(value)}`),
  write: (view, offset, value) => (view.setUint8(offset, value ? 1 : 0), 1),
  read: (view, offset) => view.getUint8(offset) !== 0
}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8")

const bytesOf = (view: DataView, offset: number, length: number): Uint8Array =>
  new Uint8Array(view.buffer, view.byteOffset + offset, length)

/** UTF-8 text of at most `capacity` bytes. */
export const string = (capacity: number): VarType<string> => ({
  id: 12,
  name: `string(${capacity})`,
  capacity,
  fixed: false,
  check: (value) => {
    if (typeof value !== "string") return `string needs a string, got ${describe(value)}`
    // Worst case 3 bytes per UTF-16 unit; count exactly only when it might not fit.
    if (value.length * 3 <= capacity) return undefined
    const size = encoder.encode(value).length
    return size <= capacity ? undefined : `string of ${size} bytes exceeds capacity ${capacity}`
  },
  write: (view, offset, value) => encoder.encodeInto(value, bytesOf(view, offset, capacity)).written,
  read: (view, offset, length) => decoder.decode(bytesOf(view, offset, length))
})

/** Raw bytes, at most `capacity`. Reads return a copy. */
export const bytes = (capacity: number): VarType<Uint8Array> => ({
  id: 13,
  name: `bytes(${capacity})`,
  capacity,
  fixed: false,
  check: (value) =>
    !(value instanceof Uint8Array)
      ? `bytes needs a Uint8Array, got ${describe(value)}`
      : value.length > capacity
      ? `${value.length} bytes exceed capacity ${capacity}`
      : undefined,
  write: (view, offset, value) => {
    // Small values byte by byte: a view per write would be the write's only allocation.
    if (value.length <= 16) for (let i = 0; i < value.length; i++) view.setUint8(offset + i, value[i]!)
    else bytesOf(view, offset, value.length).set(value)
    return value.length
  },
  read: (view, offset, length) => bytesOf(view, offset, length).slice()
})

/**
 * A structured value, encoded by an effect Schema to JSON text (at most `capacity` bytes).
 * Any language can read it as JSON. A variable never written reads as `initial`.
 */
export const struct = <A, I>(
  schema: Schema.Schema<A, I>,
  options: { readonly capacity: number; readonly initial: A }
): VarType<A> => {
  const { capacity, initial } = options
  const encode = Schema.encodeEither(schema)
  const decode = Schema.decodeUnknownSync(schema)
  const text = string(capacity)
  let pending: { value: unknown; json: string } | undefined
  return {
    id: 14,
    name: `struct(${capacity})`,
    capacity,
    fixed: false,
    check: (value) => {
      const encoded = encode(value as A)
      if (encoded._tag === "Left") return `struct value does not match its schema: ${encoded.left.message}`
      const json = JSON.stringify(encoded.right)
      pending = { value, json }
      return text.check(json)
    },
    write: (view, offset, value) => {
      // `check` just encoded this value; reuse its JSON instead of encoding twice.
      const json = pending !== undefined && pending.value === value
        ? pending.json
        : JSON.stringify(Schema.encodeSync(schema)(value))
      pending = undefined
      return text.write(view, offset, json)
    },
    read: (view, offset, length) => (length === 0 ? initial : decode(JSON.parse(text.read(view, offset, length))))
  }
}

/** Type ids this version understands; any other id in a file is refused. */
export const knownTypeIds: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])

/** Fixed byte width of a type id, or undefined for variable-length types. */
export const fixedWidth = (id: number): number | undefined =>
  ({ 1: 1, 2: 2, 3: 4, 4: 8, 5: 1, 6: 2, 7: 4, 8: 8, 9: 4, 10: 8, 11: 1 } as Record<number, number>)[id]

/**
 * The value bytes of any variable, whatever its type: what name-based reads, writes and change
 * events carry. Fixed-width types take exactly their width.
 */
const raws = new Map<string, VarType<Uint8Array>>()

export const raw = (typeId: number, capacity: number): VarType<Uint8Array> => {
  // Stateless, so one per (type, capacity): by-name reads and writes ask for it on every call.
  const key = `${typeId}:${capacity}`
  let type = raws.get(key)
  if (type === undefined) {
    const any = bytes(capacity)
    const width = fixedWidth(typeId)
    // `id` is the variable's own type id, so defining with a raw type creates that type.
    type = width === undefined
      ? { ...any, id: typeId }
      : {
        ...any,
        id: typeId,
        fixed: true,
        check: (value) => any.check(value) ?? ((value as Uint8Array).length === width ? undefined : `needs exactly ${width} bytes`)
      }
    // Capacities come from files and the network: keep the cache bounded.
    if (raws.size >= 4096) raws.clear()
    raws.set(key, type)
  }
  return type
}
