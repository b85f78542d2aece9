/**
 * HotFrames: hand-written codecs for the frames on the latency path: `read`/`write`/`cas`
 * requests, their replies, and `changed` pushes.
 *
 * The Schemas in Messages.ts stay the definition of every frame. These functions only take
 * the common shape: a frame they do not recognise (an error reply, a push with a layout, an
 * unusual number encoding) returns `undefined` and goes through the general path (msgpackr +
 * Schema), which also produces every error. Property tests (test/protocol/HotFrames.test.ts)
 * check that whatever a fast decoder accepts, the Schema decodes to the same value, and that
 * the fast encoders' bytes decode to what msgpackr's would.
 *
 * Why: a frame arrives after the process slept; cold, msgpackr + a Schema decode of one small
 * frame took 25–45 µs on the push path, a hand-written pass over the bytes a few µs.
 */
import type { VariableValue } from "./Messages.js"
import { Reader, Writer } from "./MsgPack.js"

const MAX_ID = 2 ** 32 - 1
const isId = (n: number | undefined): n is number => n !== undefined && Number.isInteger(n) && n >= 0 && n <= MAX_ID

export type HotRequest =
  | { readonly id: number; readonly op: "read"; readonly tenant: string; readonly service: string; readonly names?: ReadonlyArray<string> }
  | {
    readonly id: number
    readonly op: "write"
    readonly tenant: string
    readonly service: string
    readonly writes: ReadonlyArray<{ readonly name: string; readonly value: Uint8Array }>
  }
  | {
    readonly id: number
    readonly op: "cas"
    readonly tenant: string
    readonly service: string
    readonly name: string
    readonly expected: number
    readonly value: Uint8Array
  }

const reader = new Reader()
const writer = new Writer()

/** An array whose items `item` reads (undefined: not one), or undefined. */
const readArray = <A>(r: Reader, item: (r: Reader) => A | undefined): Array<A> | undefined => {
  const n = r.arrayLength()
  if (n < 0) return undefined
  const items: Array<A> = []
  for (let i = 0; i < n; i++) {
    const value = item(r)
    if (value === undefined) return undefined
    items.push(value)
  }
  return items
}

const readString = (r: Reader) => r.string()
const readNumber = (r: Reader) => r.number()

/** One `{name, value[, version]}` map (a write, or a value as pushes and read replies carry it). */
const readNamed = <V extends boolean>(r: Reader, versioned: V) => {
  const fields = r.mapLength()
  let name: string | undefined
  let version: number | undefined
  let value: Uint8Array | undefined
  for (let f = 0; f < fields && !r.failed; f++) {
    const key = r.string()
    if (key === "name") name = r.string()
    else if (key === "value") value = r.binary()
    else if (versioned && key === "version") version = r.number()
    else r.skip()
  }
  if (r.failed || name === undefined || value === undefined) return undefined
  if (!versioned) return { name, value }
  return version === undefined ? undefined : { name, version, value }
}

const readWrite = (r: Reader): { name: string; value: Uint8Array } | undefined => readNamed(r, false)
const readValue = (r: Reader): VariableValue | undefined => readNamed(r, true) as VariableValue | undefined

/** A `read`, `write` or `cas` request in its common shape, or undefined. */
export const decodeHotRequest = (frame: Uint8Array): HotRequest | undefined => {
  const r = reader.reset(frame)
  const fields = r.mapLength()
  let id: number | undefined
  let op: string | undefined
  let tenant: string | undefined
  let service: string | undefined
  let writes: Array<{ name: string; value: Uint8Array }> | undefined
  let names: Array<string> | undefined
  let name: string | undefined
  let expected: number | undefined
  let value: Uint8Array | undefined
  for (let f = 0; f < fields && !r.failed; f++) {
    // A key of another type, or a field of an unexpected type: the general path decides.
    switch (r.string()) {
      case "id":
        id = r.number()
        break
      case "op":
        op = r.string()
        break
      case "tenant":
        tenant = r.string()
        break
      case "service":
        service = r.string()
        break
      case "writes":
        writes = readArray(r, readWrite)
        if (writes === undefined) return undefined
        break
      case "names":
        names = readArray(r, readString)
        if (names === undefined) return undefined
        break
      case "name":
        name = r.string()
        break
      case "expected":
        expected = r.number()
        break
      case "value":
        value = r.binary()
        break
      case undefined:
        return undefined
      default:
        r.skip()
    }
  }
  if (r.failed || !r.done || !isId(id) || tenant === undefined || service === undefined) return undefined
  switch (op) {
    case "read":
      return names === undefined ? { id, op, tenant, service } : { id, op, tenant, service, names }
    case "write":
      return writes === undefined ? undefined : { id, op, tenant, service, writes }
    case "cas":
      return name === undefined || expected === undefined || value === undefined
        ? undefined
        : { id, op, tenant, service, name, expected, value }
    default:
      return undefined
  }
}

/** Encodes a `read`/`write`/`cas` request; undefined for other ops. */
export const encodeHotRequest = (body: { readonly op: string }, id: number): Buffer | undefined => {
  const w = writer.reset()
  switch (body.op) {
    case "write": {
      const b = body as Extract<HotRequest, { op: "write" }>
      w.map(5).string("op").string("write").string("tenant").string(b.tenant).string("service").string(b.service)
      w.string("writes").array(b.writes.length)
      for (const { name, value } of b.writes) w.map(2).string("name").string(name).string("value").binary(value)
      return w.string("id").number(id).finish()
    }
    case "cas": {
      const b = body as Extract<HotRequest, { op: "cas" }>
      w.map(7).string("op").string("cas").string("tenant").string(b.tenant).string("service").string(b.service)
      w.string("name").string(b.name).string("expected").number(b.expected).string("value").binary(b.value)
      return w.string("id").number(id).finish()
    }
    case "read": {
      const b = body as Extract<HotRequest, { op: "read" }>
      w.map(b.names ? 5 : 4).string("op").string("read").string("tenant").string(b.tenant).string("service").string(b.service)
      if (b.names) {
        w.string("names").array(b.names.length)
        for (const name of b.names) w.string(name)
      }
      return w.string("id").number(id).finish()
    }
    default:
      return undefined
  }
}

// ---------- server → client ----------

/** One `{name, version, value}` map, as pushes and read replies carry it. */
const writeValue = (w: Writer, v: VariableValue): Writer =>
  w.map(3).string("name").string(v.name).string("version").number(v.version).string("value").binary(v.value)

export const encodeVariableValue = (v: VariableValue): Buffer => writeValue(writer.reset(), v).finish()

const changedPrefix = writer.reset().map(3).string("push").string("changed").string("sub").finish()
const valuesKey = writer.reset().string("values").finish()

/**
 * `{ push: "changed", sub, values }` around values already encoded by `encodeVariableValue`:
 * one allocation and one copy per frame (a fan-out builds one per subscriber).
 */
export const encodeChangedFrame = (sub: number, encodedValues: ReadonlyArray<Uint8Array>): Buffer => {
  const head = writer.reset().number(sub).bytes(valuesKey).array(encodedValues.length).finish()
  let size = changedPrefix.length + head.length
  for (const bytes of encodedValues) size += bytes.length
  const frame = Buffer.allocUnsafe(size)
  frame.set(changedPrefix, 0)
  frame.set(head, changedPrefix.length)
  let at = changedPrefix.length + head.length
  for (const bytes of encodedValues) {
    frame.set(bytes, at)
    at += bytes.length
  }
  return frame
}

/** What the VariableValue Schema accepts (other fields are ignored, as the Schema ignores them). */
export const isVariableValue = (v: unknown): v is VariableValue =>
  typeof v === "object" && v !== null && typeof (v as VariableValue).name === "string" &&
  typeof (v as VariableValue).version === "number" && (v as VariableValue).value instanceof Uint8Array

/** The shapes of the hot results: `versions` (write) and `values` (read). */
export const isNumbers = (u: unknown): u is Array<number> => Array.isArray(u) && u.every((n) => typeof n === "number")
export const isValues = (u: unknown): u is Array<VariableValue> => Array.isArray(u) && u.every(isVariableValue)

/**
 * The reply to a `write` (`{ versions }`), a `cas` (`{ version }`) or a `read` (`{ values }`);
 * undefined for other results.
 */
export const encodeHotReply = (id: number, result: unknown): Buffer | undefined => {
  if (typeof result !== "object" || result === null) return undefined
  let keys = 0
  for (const _ in result) keys++
  if (keys !== 1) return undefined
  const { values, version, versions } = result as { values?: unknown; version?: unknown; versions?: unknown }
  if (typeof version === "number") return writer.reset().map(2).string("id").number(id).string("result").map(1).string("version").number(version).finish()
  if (isNumbers(versions)) {
    const w = writer.reset().map(2).string("id").number(id).string("result").map(1).string("versions").array(versions.length)
    for (const v of versions) w.number(v)
    return w.finish()
  }
  if (isValues(values)) {
    const w = writer.reset().map(2).string("id").number(id).string("result").map(1).string("values").array(values.length)
    for (const v of values) writeValue(w, v)
    return w.finish()
  }
  return undefined
}

/** A result map holding only `versions`, `version` or `values` (the replies to write, cas, read). */
const readResult = (r: Reader): Record<string, unknown> | undefined => {
  const fields = r.mapLength()
  if (fields !== 1) return undefined
  switch (r.string()) {
    case "version": {
      const version = r.number()
      return version === undefined ? undefined : { version }
    }
    case "versions": {
      const versions = readArray(r, readNumber)
      return versions && { versions }
    }
    case "values": {
      const values = readArray(r, readValue)
      return values && { values }
    }
    default:
      return undefined
  }
}

export type HotServerMessage =
  | { readonly push: "changed"; readonly sub: number; readonly values: ReadonlyArray<VariableValue> }
  | { readonly id: number; readonly result: Record<string, unknown> }

/** A `changed` push without layout, or a write/cas/read reply; otherwise undefined. */
export const decodeHotServerMessage = (frame: Uint8Array): HotServerMessage | undefined => {
  const r = reader.reset(frame)
  const fields = r.mapLength()
  if (fields !== 2 && fields !== 3) return undefined
  let push: string | undefined
  let sub: number | undefined
  let values: Array<VariableValue> | undefined
  let id: number | undefined
  let result: Record<string, unknown> | undefined
  for (let f = 0; f < fields && !r.failed; f++) {
    switch (r.string()) {
      case "push":
        push = r.string()
        break
      case "sub":
        sub = r.number()
        break
      case "values":
        values = readArray(r, readValue)
        if (values === undefined) return undefined
        break
      case "id":
        id = r.number()
        break
      case "result":
        result = readResult(r)
        if (result === undefined) return undefined
        break
      default: // an error, a layout, anything else: the general path
        return undefined
    }
  }
  if (r.failed || !r.done) return undefined
  if (fields === 3) return push === "changed" && isId(sub) && values !== undefined && id === undefined ? { push, sub, values } : undefined
  return isId(id) && result !== undefined && push === undefined ? { id, result } : undefined
}
