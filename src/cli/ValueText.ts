/**
 * Variable values as text, for the CLI: typed by the variable's type id (docs/file-format.md).
 */
import { InvalidArgument, TypeMismatch, ValueTooLarge } from "../CommyError.js"
import * as Var from "../local/VarType.js"

const byId: Record<number, Var.VarType<any>> = {
  1: Var.u8, 2: Var.u16, 3: Var.u32, 4: Var.u64, 5: Var.i8, 6: Var.i16, 7: Var.i32, 8: Var.i64,
  9: Var.f32, 10: Var.f64, 11: Var.bool
}

const names: Record<number, string> = {
  1: "u8", 2: "u16", 3: "u32", 4: "u64", 5: "i8", 6: "i16", 7: "i32", 8: "i64", 9: "f32", 10: "f64", 11: "bool",
  12: "string", 13: "bytes", 14: "struct"
}

export const typeName = (typeId: number): string => names[typeId] ?? `type ${typeId}`

/** Type names the CLI accepts when defining (`string:64` gives a capacity). */
export const parseType = (text: string): { readonly type: number; readonly capacity?: number } | InvalidArgument => {
  const [name, size] = text.split(":")
  const id = Number(Object.entries(names).find(([, n]) => n === name)?.[0])
  if (!Number.isInteger(id)) return new InvalidArgument({ message: `unknown type ${JSON.stringify(text)}: one of ${Object.values(names).join(", ")}` })
  if (size === undefined) return { type: id }
  const capacity = Number(size)
  return Number.isInteger(capacity) && capacity > 0
    ? { type: id, capacity }
    : new InvalidArgument({ message: `bad capacity in ${JSON.stringify(text)}` })
}

const decoder = new TextDecoder()

/** A decimal or hex number literal, or Infinity/NaN spelled out: `Number("warm")` is NaN, a valid f64. */
const NUMBER = /^([+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?|0x[0-9a-f]+|[+-]?Infinity|NaN)$/i

/** The value as a JSON-compatible value: numbers, booleans, strings (u64/i64 as decimal strings, bytes as hex). */
export const valueOf = (typeId: number, bytes: Uint8Array): unknown => {
  const fixed = byId[typeId]
  if (fixed) {
    if (bytes.length < fixed.capacity) return null
    const value = fixed.read(new DataView(bytes.buffer, bytes.byteOffset, bytes.length), 0, fixed.capacity)
    return typeof value === "bigint" ? value.toString() : value
  }
  if (typeId === 13) return Buffer.from(bytes).toString("hex")
  const text = decoder.decode(bytes)
  if (typeId === 14) {
    try {
      return text === "" ? null : JSON.parse(text)
    } catch {
      return text
    }
  }
  return text
}

/** Human form of a value. */
export const formatValue = (typeId: number, bytes: Uint8Array): string => {
  const value = valueOf(typeId, bytes)
  return typeId === 12 || typeId === 14 ? JSON.stringify(value) : String(value)
}

/** Parses text into the bytes of a value of this type (bytes: hex; struct: JSON text). */
export const parseValue = (
  typeId: number,
  capacity: number,
  text: string
): Uint8Array | InvalidArgument | TypeMismatch | ValueTooLarge => {
  const fixed = byId[typeId]
  if (fixed) {
    const value = typeId === 4 || typeId === 8
      ? (/^-?\d+$/.test(text) ? BigInt(text) : text)
      : typeId === 11
      ? (text === "true" ? true : text === "false" ? false : text)
      : NUMBER.test(text.trim()) ? Number(text) : text // not a number literal: `check` rejects it
    const problem = fixed.check(value)
    if (problem) return new TypeMismatch({ message: problem })
    const out = new Uint8Array(fixed.capacity)
    fixed.write(new DataView(out.buffer), 0, value)
    return out
  }
  let bytes: Uint8Array
  if (typeId === 13) {
    if (!/^([0-9a-fA-F]{2})*$/.test(text)) return new InvalidArgument({ message: "bytes are given as hex" })
    bytes = Buffer.from(text, "hex")
  } else {
    if (typeId === 14) {
      try {
        JSON.parse(text)
      } catch {
        return new InvalidArgument({ message: "a struct value is JSON text" })
      }
    }
    bytes = new TextEncoder().encode(text)
  }
  return bytes.length > capacity
    ? new ValueTooLarge({ message: `${bytes.length} bytes exceed capacity ${capacity}`, capacity })
    : bytes
}
