/**
 * ServiceFiles: where service files live and how they come to exist.
 *
 * A service file is `<root>/service_<id>.mem`, `id` 32 hex chars of randomness, in a 0700
 * directory as a 0600 file. Creation is atomic: the header is written into a private temporary
 * file which is then hard-linked into place, so no process ever maps a half-initialised file,
 * and a creator killed midway leaves only a temp file that the next `prepareRoot` removes.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type CommyError, InvalidArgument } from "../CommyError.js"
import { loadNative, type NativeAddon } from "../native/NativeAddon.js"
import { fromNativeError } from "../native/NativeError.js"
import { type CreateOptions, hasMagic, initHeader, planFile } from "./Directory.js"
import { type FileAccessorService, makeBuffer, makeLocal } from "./FileAccessor.js"
import { H_CHANGE_GEN, H_FLAGS, H_WAITERS, PAGE } from "./layout.js"
import { processAlive, SlotMemory } from "./Slots.js"
import { VirtualFile } from "./VirtualFile.js"

/** Default root: `$XDG_CACHE_HOME/commy` or `~/.cache/commy`, overridable with `COMMY_HOME`. */
export const defaultRoot = (): string =>
  process.env["COMMY_HOME"] ??
    path.join(process.env["XDG_CACHE_HOME"] ?? path.join(os.homedir(), ".cache"), "commy")

const ID = /^[0-9a-f]{32}$/

export const newServiceId = (): string => crypto.randomBytes(16).toString("hex")

export const checkServiceId = (id: string): InvalidArgument | undefined =>
  ID.test(id) ? undefined : new InvalidArgument({ message: `a service id is 32 lowercase hex characters, got ${JSON.stringify(id)}` })

export const servicePath = (root: string, id: string): string => path.join(root, `service_${id}.mem`)

const FILE_NAME = /^service_([0-9a-f]{32})\.mem$/
/** The id a service file's name (or path) carries, or undefined: the inverse of `servicePath`. */
export const serviceIdOf = (file: string): string | undefined => FILE_NAME.exec(path.basename(file))?.[1]

const fsTry = <A>(context: string, f: () => A): Effect.Effect<A, CommyError> =>
  Effect.try({ try: f, catch: (cause) => fromNativeError(cause, context) })

/**
 * Creates the root (0700) if needed, tightens its mode if we own it, and removes temp files left
 * by creators that died.
 */
export const prepareRoot = (root: string): Effect.Effect<void, CommyError> =>
  fsTry(`prepareRoot(${root})`, () => {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 })
    const stat = fs.statSync(root)
    if (stat.uid === process.getuid?.() && (stat.mode & 0o077) !== 0) fs.chmodSync(root, 0o700)
    for (const name of fs.readdirSync(root)) {
      const match = /^\.tmp-(\d+)-[0-9a-f]+\.mem$/.exec(name)
      if (match && !processAlive(Number(match[1]))) fs.rmSync(path.join(root, name), { force: true })
    }
  })

/**
 * Creates a new service file. Returns its id. Fails with FileError (EEXIST) if `id` is taken.
 */
export const createServiceFile = (
  root: string,
  options: CreateOptions & { readonly id?: string } = {}
): Effect.Effect<string, CommyError> =>
  Effect.gen(function*() {
    const id = options.id ?? newServiceId()
    const badId = checkServiceId(id)
    if (badId) return yield* badId
    const plan = planFile(options)
    if (!("capacity" in plan)) return yield* plan
    yield* prepareRoot(root)
    const temp = path.join(root, `.tmp-${process.pid}-${crypto.randomBytes(6).toString("hex")}.mem`)
    yield* fsTry(`createServiceFile(${id})`, () => {
      const fd = fs.openSync(temp, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_RDWR, 0o600)
      try {
        const header = new ArrayBuffer(8192)
        initHeader(new DataView(header), plan.capacity, plan.dirCapacity)
        fs.writeSync(fd, new Uint8Array(header), 0, header.byteLength, 0)
        // Sparse: the reserved capacity costs no disk until variables are written.
        fs.ftruncateSync(fd, plan.capacity)
        fs.fsyncSync(fd)
      } finally {
        fs.closeSync(fd)
      }
      try {
        fs.linkSync(temp, servicePath(root, id))
      } finally {
        fs.rmSync(temp, { force: true })
      }
    })
    return id
  })

/** Maps a service file and opens its variables. Closed with the scope. */
export const openServiceFile = (
  root: string,
  id: string,
  options: { readonly writable?: boolean } = {}
): Effect.Effect<VirtualFile, CommyError, NativeAddon | Scope.Scope> =>
  Effect.gen(function*() {
    const badId = checkServiceId(id)
    if (badId) return yield* badId
    const file = servicePath(root, id)
    const accessor: FileAccessorService = yield* makeLocal(file, options)
    const opened = yield* VirtualFile.open(accessor, file)
    // Runs before the mapping closes (finalizers run in reverse): watchers still asleep on the
    // file are uncounted while its header can be written.
    yield* Effect.addFinalizer(() => Effect.sync(() => opened.memory.releaseSleepers()))
    return opened
  })

/** Ids of the service files in `root`. */
export const listServiceFiles = (root: string): Effect.Effect<ReadonlyArray<string>, CommyError> =>
  fsTry(`listServiceFiles(${root})`, () =>
    fs.readdirSync(root).flatMap((name) => {
      const id = serviceIdOf(name)
      return id === undefined ? [] : [id]
    }))

/**
 * Removes a service file, flagged deleted first (`flagDeleted`): processes that still map it get
 * SERVICE_NOT_FOUND from their next write and their watchers end.
 */
export const removeServiceFile = (root: string, id: string): Effect.Effect<void, CommyError> =>
  Effect.gen(function*() {
    const badId = checkServiceId(id)
    if (badId) return yield* badId
    const file = servicePath(root, id)
    // Best effort: a file that cannot be flagged is still removed.
    yield* Effect.ignore(fsTry(`removeServiceFile(${id})`, () => flagDeleted(file)))
    yield* fsTry(`removeServiceFile(${id})`, () => fs.rmSync(file))
  })

/**
 * Flags a service file deleted (header FILE_DELETED) just before it is unlinked, and wakes its
 * watchers: processes that still map it then get ServiceNotFound from writes and from their
 * watchers instead of writing on into a file nobody will open again. Leaves alone a file that
 * is not a service file.
 */
const flagDeleted = (file: string): void => {
  const native = loadNative()
  if (Either.isRight(native)) {
    // The header page is enough: the flag, the change generation and the waiter count live there.
    const mapping = native.right.map(file, true, PAGE)
    try {
      if (!hasMagic(new DataView(mapping.buffer))) return
      new SlotMemory(mapping.buffer, () => void mapping.wake(H_CHANGE_GEN, 0x7fffffff)).markDeleted()
    } finally {
      mapping.close()
    }
    return
  }
  // No addon, so no futex: the header is read, marked in memory by the same markDeleted, and its
  // two changed words written back; sleeping watchers see them at their next timeout scan.
  // O_NONBLOCK and the regular-file check: a FIFO or device under that name must not hang us.
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
  try {
    if (!fs.fstatSync(fd).isFile()) return
    // Through the waiter count, which markDeleted's bump reads.
    const header = new Uint8Array(H_WAITERS + 4)
    if (fs.readSync(fd, header, 0, header.length, 0) < header.length) return
    if (!hasMagic(new DataView(header.buffer))) return
    new SlotMemory(header.buffer, () => {}).markDeleted()
    for (const at of [H_FLAGS, H_CHANGE_GEN]) fs.writeSync(fd, header, at, 4, at)
  } finally {
    fs.closeSync(fd)
  }
}

/** A service file in process memory, with the same format (tests, remote mirrors). */
export const bufferServiceFile = (options: CreateOptions = {}): Effect.Effect<VirtualFile, CommyError> =>
  Effect.gen(function*() {
    const plan = planFile({ capacity: 1024 * 1024, maxVariables: 256, ...options })
    if (!("capacity" in plan)) return yield* plan
    const accessor = makeBuffer({ size: plan.capacity })
    initHeader(new DataView(accessor.buffer), plan.capacity, plan.dirCapacity)
    return yield* VirtualFile.open(accessor)
  })
