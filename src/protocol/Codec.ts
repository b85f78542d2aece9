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
import { type ErrorBody, Request, ServerMessage } from "./Messages.js"

const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: false })
// msgpackr renames a "__proto__" key on decode, so frames cannot pollute prototypes.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })

export const encodeFrame = (message: unknown): Uint8Array => packr.pack(message)

const unpack = (frame: Uint8Array): Either.Either<unknown, ProtocolError> => {
  try {
    return Either.right(unpackr.unpack(frame))
  } catch (cause) {
    return Either.left(new ProtocolError({ message: `not a MessagePack frame: ${String(cause)}` }))
  }
}

const decodeWith = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "ignore" })
  return (frame: Uint8Array): Either.Either<A, ProtocolError> =>
    Either.flatMap(unpack(frame), (value) =>
      Either.mapLeft(decode(value), (error) =>
        new ProtocolError({ message: `malformed message: ${ParseResult.TreeFormatter.formatErrorSync(error)}` })))
}

/** Server side: a client frame. On failure, `id` is recovered when the frame had one. */
export const decodeRequest = (frame: Uint8Array): Either.Either<Request, { error: ProtocolError; id: number | null }> => {
  const decoded = decodeWith(Request)(frame)
  if (Either.isRight(decoded)) return Either.right(decoded.right)
  const raw = unpack(frame)
  const id = Either.isRight(raw) && typeof raw.right === "object" && raw.right !== null &&
      Number.isSafeInteger((raw.right as { id?: unknown }).id) && ((raw.right as { id: number }).id >= 0)
    ? (raw.right as { id: number }).id
    : null
  return Either.left({ error: decoded.left, id })
}

/** Client side: a server frame. */
export const decodeServerMessage = decodeWith(ServerMessage)

/** A result decoded against the schema of its op. */
export const decodeResult = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema, { onExcessProperty: "ignore" })
  return (result: unknown): Either.Either<A, ProtocolError> =>
    Either.mapLeft(decode(result), (error) =>
      new ProtocolError({ message: `unexpected result: ${ParseResult.TreeFormatter.formatErrorSync(error)}` }))
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
