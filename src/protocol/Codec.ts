/**
 * Frames and errors on the wire: MessagePack maps (plain maps, no msgpackr records extension, so
 * any MessagePack library reads them), decoded with the protocol Schemas; CommyError values
 * travel as `{ code, message, details }` and are rebuilt from `code` on the other side, so both
 * ends share one list of codes.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { Packr, Unpackr } from "msgpackr"
import { classForCode, type CommyError, ProtocolError } from "../CommyError.js"
import {
  decodeHotRequest,
  decodeHotServerMessage,
  encodeChangedFrame,
  encodeHotReply,
  encodeHotRequest,
  encodeVariableValue,
  isNumbers,
  isValues
} from "./HotFrames.js"
import { CasResult, type ErrorBody, Push, ReadResult, Reply, Request, type ServerMessage, type VariableValue, WriteResult } from "./Messages.js"

const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: false })
// msgpackr renames a "__proto__" key on decode, so frames cannot pollute prototypes.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })

export const encodeFrame = (message: unknown): Uint8Array => packr.pack(message)

/** A client request with its id; read/write/cas (the hot ones) are encoded by hand. */
export const encodeRequest = (body: { readonly op: string }, id: number): Uint8Array =>
  encodeHotRequest(body, id) ?? packr.pack({ ...body, id })

/** A successful reply; write and cas replies (the hot ones) are encoded by hand. */
export const encodeReply = (id: number, result: unknown): Uint8Array => encodeHotReply(id, result) ?? packr.pack({ id, result })

/** Each pushed value is encoded once, however many subscribers it goes to (fan-out). */
const encodedValues = new WeakMap<VariableValue, Uint8Array>()
const encodeValue = (value: VariableValue): Uint8Array => {
  let bytes = encodedValues.get(value)
  if (bytes === undefined) {
    bytes = encodeVariableValue(value)
    encodedValues.set(value, bytes)
  }
  return bytes
}

const arrayHeader = (n: number): Uint8Array =>
  n < 16
    ? Uint8Array.of(0x90 | n)
    : n < 0x10000
    ? Uint8Array.of(0xdc, n >> 8, n & 0xff)
    : Uint8Array.of(0xdd, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)

/**
 * `{ push: "changed", sub, values[, layout] }`, decoding to the same map as `encodeFrame` would,
 * assembled from per-value encodings cached across subscribers.
 */
export const encodeChangedPush = (sub: number, values: ReadonlyArray<VariableValue>, layout?: ReadonlyArray<object>): Uint8Array => {
  if (!layout) return encodeChangedFrame(sub, values.map(encodeValue))
  const parts: Array<Uint8Array> = [
    Uint8Array.of(0x84),
    packr.pack("push"),
    packr.pack("changed"),
    packr.pack("sub"),
    packr.pack(sub),
    packr.pack("values"),
    arrayHeader(values.length)
  ]
  for (const value of values) parts.push(encodeValue(value))
  parts.push(packr.pack("layout"), packr.pack(layout))
  return Buffer.concat(parts)
}

const unpack = (frame: Uint8Array): Either.Either<unknown, ProtocolError> => {
  try {
    return Either.right(unpackr.unpack(frame))
  } catch (cause) {
    return Either.left(new ProtocolError({ message: `not a MessagePack frame: ${String(cause)}` }))
  }
}

const decodeValueWith = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "ignore" })
  return (value: unknown): Either.Either<A, ProtocolError> =>
    Either.mapLeft(decode(value), (error) =>
      new ProtocolError({ message: `malformed message: ${ParseResult.TreeFormatter.formatErrorSync(error)}` }))
}

const decodeWith = <A, I>(schema: Schema.Schema<A, I>) => {
  const decodeValue = decodeValueWith(schema)
  return (frame: Uint8Array): Either.Either<A, ProtocolError> => Either.flatMap(unpack(frame), decodeValue)
}

/** Server side: a client frame. On failure, `id` is recovered when the frame had one. */
export const decodeRequest = (frame: Uint8Array): Either.Either<Request, { error: ProtocolError; id: number | null }> => {
  const hot = decodeHotRequest(frame)
  if (hot) return Either.right(hot as Request)
  const decoded = decodeWith(Request)(frame)
  if (Either.isRight(decoded)) return Either.right(decoded.right)
  const raw = unpack(frame)
  const id = Either.isRight(raw) && typeof raw.right === "object" && raw.right !== null &&
      Number.isSafeInteger((raw.right as { id?: unknown }).id) && ((raw.right as { id: number }).id >= 0)
    ? (raw.right as { id: number }).id
    : null
  return Either.left({ error: decoded.left, id })
}

const decodePush = decodeValueWith(Push)
const decodeReply = decodeValueWith(Reply)

/** Client side: a server frame. Pushes and replies are told apart first, then decoded. */
export const decodeServerMessage = (frame: Uint8Array): Either.Either<ServerMessage, ProtocolError> => {
  const hot = decodeHotServerMessage(frame)
  return hot ? Either.right(hot as ServerMessage) : decodeGeneral(frame)
}

const decodeGeneral = (frame: Uint8Array): Either.Either<ServerMessage, ProtocolError> =>
  Either.flatMap(unpack(frame), (value): Either.Either<ServerMessage, ProtocolError> =>
    typeof value === "object" && value !== null && "push" in value ? decodePush(value) : decodeReply(value))

const resultDecoders = new WeakMap<object, (result: unknown) => Either.Either<any, ProtocolError>>()

/**
 * The hot results checked by hand (what the Schema would check, and the same output); anything
 * these do not accept is decoded by the Schema, which reports the error.
 */
const hotResults = new Map<object, (result: any) => object | undefined>([
  [WriteResult, (r) => (isNumbers(r?.versions) ? { versions: r.versions } : undefined)],
  [CasResult, (r) => (typeof r?.version === "number" ? { version: r.version } : undefined)],
  [ReadResult, (r) => (isValues(r?.values) ? { values: r.values.map((v: VariableValue) => ({ name: v.name, version: v.version, value: v.value })) } : undefined)]
])

/** A result decoded against the schema of its op (the decoder is built once per schema). */
export const decodeResult = <A, I>(schema: Schema.Schema<A, I>): (result: unknown) => Either.Either<A, ProtocolError> => {
  const known = resultDecoders.get(schema)
  if (known) return known
  const decode = Schema.decodeUnknownEither(schema, { onExcessProperty: "ignore" })
  const hot = hotResults.get(schema)
  const decoder = (result: unknown): Either.Either<A, ProtocolError> => {
    const checked = hot?.(result)
    if (checked) return Either.right(checked as A)
    return Either.mapLeft(decode(result), (error) =>
      new ProtocolError({ message: `unexpected result: ${ParseResult.TreeFormatter.formatErrorSync(error)}` }))
  }
  resultDecoders.set(schema, decoder)
  return decoder
}

const detailKeys = new Set(["_tag", "code", "message", "cause", "stack", "name"])

/** A CommyError as the wire's error body: its code, message and primitive fields. */
export const errorBody = (error: CommyError): ErrorBody & { details?: Record<string, unknown> } => {
  const details: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(error)) {
    if (detailKeys.has(key)) continue
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") details[key] = value
  }
  const current = typeof details["current"] === "number" ? { current: details["current"] as number } : {}
  return { code: error.code, message: error.message, ...current, details }
}

/** Rebuilds the CommyError a server sent. Unknown codes (a newer server) become ProtocolError. */
export const errorFromBody = (body: ErrorBody & { details?: unknown }): CommyError => {
  const cls = classForCode(body.code)
  const details = typeof body.details === "object" && body.details !== null ? body.details : {}
  if (cls === undefined) return new ProtocolError({ message: `${body.code}: ${body.message}` })
  try {
    // Fields the class needs but an older server did not send get neutral values.
    return new (cls as unknown as new(fields: object) => CommyError)({
      name: "",
      service: "",
      tenant: "",
      capacity: 0,
      version: 0,
      expected: 0,
      current: body.current ?? 0,
      ...details,
      message: body.message
    })
  } catch {
    return new ProtocolError({ message: `${body.code}: ${body.message}` })
  }
}
