/**
 * Directory: the header and the variable directory of a `.mem` file.
 *
 * Everything read from a file is validated before use: a truncated, corrupted or hostile file
 * (offsets outside the file, overlapping slots, huge counts, unknown types) is refused with
 * CorruptFile or UnsupportedVersion, never used to index memory.
 */
import {
  CapacityExceeded,
  CorruptFile,
  InvalidArgument,
  InvalidName,
  TypeMismatch,
  UnsupportedVersion
} from "../CommyError.js"
import {
  align,
  DEFAULT_CAPACITY,
  DEFAULT_MAX_VARIABLES,
  E_CAPACITY,
  E_FLAGS,
  E_NAME,
  E_NAME_LENGTH,
  E_SLOT,
  E_STATE,
  E_TYPE,
  ENTRY_SIZE,
  entryOffset,
  FLAG_PERSISTENT,
  FORMAT_VERSION,
  getU64,
  H_CAPACITY,
  H_DATA_OFFSET,
  H_DATA_USED,
  H_DIR_CAPACITY,
  H_DIR_COUNT,
  H_HEADER_SIZE,
  H_LAYOUT_GEN,
  H_MAGIC,
  H_VERSION,
  HEADER_SIZE,
  MAGIC,
  MAX_CAPACITY,
  MAX_NAME_BYTES,
  MAX_VALUE_CAPACITY,
  MAX_VARIABLES,
  dataOffsetFor,
  setU64,
  slotSize,
  STATE_FREE,
  STATE_LIVE,
  STATE_REMOVED
} from "./layout.js"
import { fixedWidth, knownTypeIds } from "./VarType.js"

export interface Header {
  readonly capacity: number
  readonly dataOffset: number
  readonly dataUsed: number
  readonly dirCapacity: number
  readonly dirCount: number
  readonly layoutGeneration: number
}

export interface Entry {
  readonly index: number
  readonly name: string
  readonly typeId: number
  readonly slot: number
  readonly capacity: number
  readonly persistent: boolean
}

export interface CreateOptions {
  /** Bytes reserved for the file (sparse on disk until used). Default 16 MiB. */
  readonly capacity?: number
  /** Directory entries. Default 4096. */
  readonly maxVariables?: number
}

const utf8 = new TextEncoder()
const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * A variable name: 1-96 bytes of UTF-8, no control characters, no path separators, not "." or
 * "..". Names travel in file directories, protocol frames and log lines, so they stay printable.
 */
export const checkName = (name: unknown): InvalidName | undefined => {
  if (typeof name !== "string") return new InvalidName({ message: "a name must be a string", name: String(name) })
  const size = utf8.encode(name).length
  if (size === 0 || size > MAX_NAME_BYTES) {
    return new InvalidName({ message: `a name has 1 to ${MAX_NAME_BYTES} UTF-8 bytes, got ${size}`, name })
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f/\\]/.test(name) || name === "." || name === "..") {
    return new InvalidName({ message: "a name has no control characters or path separators", name })
  }
  // Lone surrogates would not survive a UTF-8 round trip (String#isWellFormed, Node >= 20).
  if (!(name as string & { isWellFormed(): boolean }).isWellFormed()) {
    return new InvalidName({ message: "a name must be well-formed Unicode", name })
  }
  return undefined
}

/** Sizes for a new file, validated. */
export const planFile = (options: CreateOptions): { capacity: number; dirCapacity: number } | InvalidArgument => {
  const dirCapacity = options.maxVariables ?? DEFAULT_MAX_VARIABLES
  const capacity = options.capacity ?? DEFAULT_CAPACITY
  if (!Number.isInteger(dirCapacity) || dirCapacity < 1 || dirCapacity > MAX_VARIABLES) {
    return new InvalidArgument({ message: `maxVariables must be an integer in [1, ${MAX_VARIABLES}]` })
  }
  const minimum = dataOffsetFor(dirCapacity) + 4096
  if (!Number.isInteger(capacity) || capacity < minimum || capacity > MAX_CAPACITY) {
    return new InvalidArgument({ message: `capacity must be an integer in [${minimum}, ${MAX_CAPACITY}] bytes` })
  }
  return { capacity: align(capacity, 4096), dirCapacity }
}

/** Writes a fresh header into zeroed bytes (the file is still private to its creator). */
export const initHeader = (view: DataView, capacity: number, dirCapacity: number): void => {
  for (let i = 0; i < MAGIC.length; i++) view.setUint8(H_MAGIC + i, MAGIC.charCodeAt(i))
  view.setUint32(H_VERSION, FORMAT_VERSION, true)
  view.setUint32(H_HEADER_SIZE, HEADER_SIZE, true)
  setU64(view, H_CAPACITY, capacity)
  const dataOffset = dataOffsetFor(dirCapacity)
  setU64(view, H_DATA_OFFSET, dataOffset)
  setU64(view, H_DATA_USED, dataOffset)
  view.setUint32(H_DIR_CAPACITY, dirCapacity, true)
}

/** Whether the bytes start with a service file's magic (the view must hold at least the magic). */
export const hasMagic = (view: DataView): boolean => {
  for (let i = 0; i < MAGIC.length; i++) {
    if (view.getUint8(H_MAGIC + i) !== MAGIC.charCodeAt(i)) return false
  }
  return true
}

/** Reads and validates the header against the bytes actually present. */
export const readHeader = (view: DataView, path?: string): Header | CorruptFile | UnsupportedVersion => {
  const corrupt = (why: string) =>
    new CorruptFile({ message: `not a valid Commy file${path ? ` (${path})` : ""}: ${why}`, ...(path ? { path } : {}) })
  if (view.byteLength < HEADER_SIZE) return corrupt(`${view.byteLength} bytes is shorter than the header`)
  if (!hasMagic(view)) return corrupt("bad magic")
  const version = view.getUint32(H_VERSION, true)
  if (version !== FORMAT_VERSION) {
    return new UnsupportedVersion({
      message: `file format version ${version} is not supported (this Commy reads version ${FORMAT_VERSION})`,
      version
    })
  }
  if (view.getUint32(H_HEADER_SIZE, true) !== HEADER_SIZE) return corrupt("bad header size")
  const capacity = getU64(view, H_CAPACITY)
  const dataOffset = getU64(view, H_DATA_OFFSET)
  const dataUsed = getU64(view, H_DATA_USED)
  const dirCapacity = view.getUint32(H_DIR_CAPACITY, true)
  const dirCount = view.getUint32(H_DIR_COUNT, true)
  if (capacity > view.byteLength || capacity > MAX_CAPACITY) return corrupt(`capacity ${capacity} exceeds the file`)
  if (dirCapacity < 1 || dirCapacity > MAX_VARIABLES) return corrupt(`directory capacity ${dirCapacity}`)
  if (dirCount > dirCapacity) return corrupt(`directory count ${dirCount} exceeds capacity ${dirCapacity}`)
  if (dataOffset !== dataOffsetFor(dirCapacity)) return corrupt(`data offset ${dataOffset}`)
  if (dataUsed < dataOffset || dataUsed > capacity || dataUsed % 8 !== 0) return corrupt(`data used ${dataUsed}`)
  return {
    capacity,
    dataOffset,
    dataUsed,
    dirCapacity,
    dirCount,
    layoutGeneration: view.getUint32(H_LAYOUT_GEN, true)
  }
}

/**
 * Reads every live entry, validated: names well-formed and unique, known types with sane
 * capacities, slots aligned, inside the allocated data region and not overlapping.
 */
export const readEntries = (view: DataView, header: Header, path?: string): Map<string, Entry> | CorruptFile => {
  const corrupt = (index: number, why: string) =>
    new CorruptFile({
      message: `corrupt directory entry ${index}${path ? ` in ${path}` : ""}: ${why}`,
      ...(path ? { path } : {})
    })
  const entries = new Map<string, Entry>()
  const extents: Array<[number, number, number]> = []
  for (let index = 0; index < header.dirCount; index++) {
    const at = entryOffset(index)
    const state = view.getUint32(at + E_STATE, true)
    if (state === STATE_FREE) continue
    if (state !== STATE_LIVE && state !== STATE_REMOVED) return corrupt(index, `state ${state}`)
    const typeId = view.getUint32(at + E_TYPE, true)
    const slot = getU64(view, at + E_SLOT)
    const capacity = view.getUint32(at + E_CAPACITY, true)
    const nameLength = view.getUint32(at + E_NAME_LENGTH, true)
    if (!knownTypeIds.has(typeId)) return corrupt(index, `unknown type ${typeId}`)
    const width = fixedWidth(typeId)
    if (width !== undefined ? capacity !== width : capacity < 1 || capacity > MAX_VALUE_CAPACITY) {
      return corrupt(index, `capacity ${capacity} for type ${typeId}`)
    }
    const end = slot + slotSize(capacity)
    if (slot % 8 !== 0 || slot < header.dataOffset || end > header.dataUsed) {
      return corrupt(index, `slot [${slot}, ${end}) outside the data region`)
    }
    extents.push([slot, end, index])
    if (state === STATE_REMOVED) continue
    if (nameLength < 1 || nameLength > MAX_NAME_BYTES) return corrupt(index, `name length ${nameLength}`)
    let name: string
    try {
      name = strictUtf8.decode(new Uint8Array(view.buffer, view.byteOffset + at + E_NAME, nameLength))
    } catch {
      return corrupt(index, "name is not UTF-8")
    }
    if (checkName(name) !== undefined) return corrupt(index, `invalid name ${JSON.stringify(name)}`)
    if (entries.has(name)) return corrupt(index, `duplicate name ${JSON.stringify(name)}`)
    const flags = view.getUint32(at + E_FLAGS, true)
    entries.set(name, { index, name, typeId, slot, capacity, persistent: (flags & FLAG_PERSISTENT) !== 0 })
  }
  extents.sort((a, b) => a[0] - b[0])
  for (let i = 1; i < extents.length; i++) {
    if (extents[i]![0] < extents[i - 1]![1]) return corrupt(extents[i]![2], "slot overlaps another slot")
  }
  return entries
}

/** Whether an existing entry can serve a definition of (typeId, capacity). */
export const compatible = (entry: Entry, typeId: number, capacity: number): TypeMismatch | undefined =>
  entry.typeId === typeId && entry.capacity === capacity
    ? undefined
    : new TypeMismatch({
      message:
        `variable ${entry.name} exists with type ${entry.typeId} and capacity ${entry.capacity}, not type ${typeId} and capacity ${capacity}`
    })

/**
 * Allocates a directory entry and a slot. The caller holds the file lock and has checked the
 * name is free. Order matters for crash safety: the slot is zeroed and the entry filled before
 * `dataUsed` grows and the entry goes live; a crash before that point leaves only unused bytes.
 */
export const allocate = (
  view: DataView,
  header: Header,
  name: string,
  typeId: number,
  capacity: number,
  persistent: boolean,
  clearSlot: (slot: number, size: number) => void
): Entry | CapacityExceeded => {
  let index = -1
  for (let i = 0; i < header.dirCount; i++) {
    if (view.getUint32(entryOffset(i) + E_STATE, true) === STATE_FREE) {
      index = i
      break
    }
  }
  if (index < 0) {
    if (header.dirCount >= header.dirCapacity) {
      return new CapacityExceeded({ message: `the directory is full (${header.dirCapacity} variables)` })
    }
    index = header.dirCount
  }
  const slot = align(header.dataUsed, 8)
  const size = slotSize(capacity)
  if (slot + size > header.capacity) {
    return new CapacityExceeded({
      message: `no room for ${size} more bytes (capacity ${header.capacity}, used ${header.dataUsed})`
    })
  }
  clearSlot(slot, size)
  const at = entryOffset(index)
  new Uint8Array(view.buffer, view.byteOffset + at, ENTRY_SIZE).fill(0)
  const nameBytes = utf8.encode(name)
  new Uint8Array(view.buffer, view.byteOffset + at + E_NAME, nameBytes.length).set(nameBytes)
  view.setUint32(at + E_NAME_LENGTH, nameBytes.length, true)
  view.setUint32(at + E_TYPE, typeId, true)
  setU64(view, at + E_SLOT, slot)
  view.setUint32(at + E_CAPACITY, capacity, true)
  view.setUint32(at + E_FLAGS, persistent ? FLAG_PERSISTENT : 0, true)
  setU64(view, H_DATA_USED, slot + size)
  if (index >= header.dirCount) view.setUint32(H_DIR_COUNT, index + 1, true)
  view.setUint32(at + E_STATE, STATE_LIVE, true)
  return { index, name, typeId, slot, capacity, persistent }
}

/** Marks an entry removed. Its slot is never reused, so stale handles cannot hit a new variable. */
export const markRemoved = (view: DataView, entry: Entry): void => {
  view.setUint32(entryOffset(entry.index) + E_STATE, STATE_REMOVED, true)
}
