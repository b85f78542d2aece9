/**
 * VirtualFile: the named variables of one service, over a FileAccessor's bytes (the seed's
 * VirtualVariableFile).
 *
 * Names resolve through the directory inside the file, so every process sees one layout.
 * Typed handles (`Variable`) resolve their slot once; their `unsafeGet`/`unsafeSet` are the hot
 * path: a seqlocked read or a CAS-guarded double-buffered write, with no N-API call, no syscall
 * unless a watcher sleeps, and no allocation for number and boolean types.
 */
import * as Effect from "effect/Effect"
import {
  type CommyError,
  CorruptFile,
  InvalidArgument,
  LockTimeout,
  PermissionDenied,
  ServiceNotFound,
  TypeMismatch,
  UnsupportedVersion,
  ValueTooLarge,
  VariableNotFound,
  VersionConflict
} from "../CommyError.js"
import {
  allocate,
  checkName,
  compatible,
  type Entry,
  type Header,
  markRemoved,
  readEntries,
  readHeader
} from "./Directory.js"
import type { FileAccessorService } from "./FileAccessor.js"
import { H_CHANGE_GEN, H_LAYOUT_GEN, MAX_BATCH } from "./layout.js"
import { type BatchItem, SlotMemory, type SlotRef, slotRef, type Versioned } from "./Slots.js"
import * as VarType from "./VarType.js"

export interface VariableInfo {
  readonly name: string
  readonly typeId: number
  readonly capacity: number
  readonly persistent: boolean
  readonly version: number
}

export interface DefineOptions {
  /** Kept across server restarts (the server keeps persistent services' files). */
  readonly persistent?: boolean
}

/** A typed handle on one variable. */
export interface Variable<A> {
  readonly name: string
  readonly type: VarType.VarType<A>
  /** The committed value. Synchronous; never torn. */
  unsafeGet(): A
  /** Writes and returns the new version. Throws a CommyError (bad value, lock timeout, read-only). */
  unsafeSet(value: A): number
  readonly get: Effect.Effect<A>
  readonly getVersioned: Effect.Effect<Versioned<A>>
  readonly version: Effect.Effect<number>
  readonly set: (value: A) => Effect.Effect<number, WriteError>
  /** Writes only if the variable's version is still `expected`; else fails with VersionConflict. */
  readonly compareAndSet: (expected: number, value: A) => Effect.Effect<number, WriteError | VersionConflict>
}

export type WriteError = TypeMismatch | ValueTooLarge | LockTimeout | PermissionDenied | ServiceNotFound

/** One write of a batch: a handle and its new value. */
export interface BatchWrite<A = any> {
  readonly variable: Variable<A>
  readonly value: A
}

const rawType = (entry: Entry): VarType.VarType<Uint8Array> => VarType.raw(entry.typeId, entry.capacity)

/** A synchronous core's result (a value, or a CommyError as a value) as an Effect. */
const fromResult = <R>(result: R): Effect.Effect<Exclude<R, CommyError>, Extract<R, CommyError>> =>
  typeof result === "object" && result !== null && "_tag" in result && "code" in result
    ? Effect.fail(result as Extract<R, CommyError>)
    : Effect.succeed(result as Exclude<R, CommyError>)

/** Effect.suspend whose branches may fail with different CommyError members. */
const lazy = <A, E = CommyError>(f: () => Effect.Effect<A, NoInfer<E>>): Effect.Effect<A, E> => Effect.suspend(f)

/** The error for a value `type.check` refused, naming the variable. */
export const valueError = (name: string, type: VarType.VarType<any>, problem: string): TypeMismatch | ValueTooLarge =>
  problem.includes("exceed")
    ? new ValueTooLarge({ message: `${name}: ${problem}`, capacity: type.capacity })
    : new TypeMismatch({ message: `${name}: ${problem}` })

export class VirtualFile {
  private entries: Map<string, Entry> = new Map()
  private layoutGeneration = -1
  private header!: Header
  private layoutNow!: { readonly header: Header; readonly entries: ReadonlyMap<string, Entry> }

  private constructor(
    readonly accessor: FileAccessorService,
    readonly memory: SlotMemory,
    readonly path: string | undefined
  ) {}

  /** Opens the bytes of an initialised service file, validating header and directory. */
  static open(
    accessor: FileAccessorService,
    path?: string
  ): Effect.Effect<VirtualFile, CorruptFile | UnsupportedVersion | ServiceNotFound> {
    return lazy<VirtualFile, CorruptFile | UnsupportedVersion | ServiceNotFound>(() => {
      const memory = new SlotMemory(accessor.buffer, () => accessor.wake(H_CHANGE_GEN), accessor.writable)
      const file = new VirtualFile(accessor, memory, path)
      const failed = file.refresh()
      return failed === undefined ? Effect.succeed(file) : Effect.fail(failed)
    })
  }

  /** Re-reads the directory if another process changed the layout; fails once the service was deleted. */
  refresh(): CorruptFile | UnsupportedVersion | ServiceNotFound | undefined {
    if (this.memory.deleted()) return this.deletedError()
    const generation = Atomics.load(this.memory.words, H_LAYOUT_GEN >>> 2)
    if (generation === this.layoutGeneration) return undefined
    const header = readHeader(this.memory.view, this.path)
    if (!("capacity" in header)) return header
    const entries = readEntries(this.memory.view, header, this.path)
    if (entries instanceof CorruptFile) return entries
    this.header = header
    this.entries = entries
    this.layoutNow = { header, entries }
    this.rawHandles = new Map()
    if (this.memory.ownVersions.length !== header.dirCapacity) this.memory.ownVersions = new Float64Array(header.dirCapacity)
    this.layoutGeneration = header.layoutGeneration
    return undefined
  }

  private deletedError(): ServiceNotFound {
    const service = this.path ?? "memory"
    return new ServiceNotFound({ message: `${service} was deleted`, service })
  }

  /** Why this process may not write here now, if it may not. */
  private writeRefused(what: string): PermissionDenied | ServiceNotFound | undefined {
    if (!this.memory.writable) return new PermissionDenied({ message: `cannot write ${what}: the file is open read-only` })
    return this.memory.deleted() ? this.deletedError() : undefined
  }

  /** Header fields as of the last refresh (data region bounds for the watcher); built once per refresh. */
  get layout(): { readonly header: Header; readonly entries: ReadonlyMap<string, Entry> } {
    return this.layoutNow
  }

  /** The change generation: bumped after every committed write. */
  changeGeneration(): number {
    return Atomics.load(this.memory.words, H_CHANGE_GEN >>> 2)
  }

  /** Defines a variable, or opens it if it exists with the same type and capacity. */
  define<A>(
    name: string,
    type: VarType.VarType<A>,
    options: DefineOptions = {}
  ): Effect.Effect<Variable<A>, CommyError> {
    return lazy(() => {
      const bad = checkName(name) ?? this.refresh()
      if (bad) return Effect.fail(bad)
      const existing = this.entries.get(name)
      if (existing) return this.handleFor(existing, type)
      if (!this.accessor.writable) {
        return Effect.fail(new PermissionDenied({ message: `cannot define ${name}: the file is open read-only` }))
      }
      return this.accessor.withLock(lazy(() => this.defineLocked(name, type, options)))
    })
  }

  private defineLocked<A>(
    name: string,
    type: VarType.VarType<A>,
    options: DefineOptions
  ): Effect.Effect<Variable<A>, CommyError> {
    // Under the file lock: another process may have defined it since our last look.
    const stale = this.refresh()
    if (stale) return Effect.fail(stale)
    const existing = this.entries.get(name)
    if (existing) return this.handleFor(existing, type)
    const { view } = this.memory
    const entry = allocate(
      view,
      this.header,
      name,
      type.id,
      type.capacity,
      options.persistent ?? false,
      (slot, size) => new Uint8Array(view.buffer, slot, size).fill(0)
    )
    if (!("slot" in entry)) return Effect.fail(entry)
    Atomics.add(this.memory.words, H_LAYOUT_GEN >>> 2, 1)
    this.memory.changed()
    const failed = this.refresh()
    return failed ? Effect.fail(failed) : this.handleFor(entry, type)
  }

  /** Opens an existing variable with its type. */
  variable<A>(name: string, type: VarType.VarType<A>): Effect.Effect<Variable<A>, CommyError> {
    return lazy(() => {
      const entry = this.lookup(name)
      return "slot" in entry ? this.handleFor(entry, type) : Effect.fail(entry)
    })
  }

  /** Removes a variable. Its slot is retired, never reused. */
  remove(name: string): Effect.Effect<void, CommyError> {
    return lazy(() => {
      const found = this.lookup(name)
      if (!("slot" in found)) return Effect.fail(found)
      if (!this.accessor.writable) return Effect.fail(new PermissionDenied({ message: "the file is open read-only" }))
      return this.accessor.withLock(lazy(() => {
        const stale = this.refresh()
        if (stale) return Effect.fail(stale)
        const entry = this.entries.get(name)
        if (!entry) return Effect.fail(this.notFound(name))
        markRemoved(this.memory.view, entry)
        Atomics.add(this.memory.words, H_LAYOUT_GEN >>> 2, 1)
        this.memory.changed()
        const failed = this.refresh()
        return failed ? Effect.fail(failed) : Effect.void
      }))
    })
  }

  /** Every live variable with its current version. */
  get list(): Effect.Effect<ReadonlyArray<VariableInfo>, CorruptFile | UnsupportedVersion | ServiceNotFound> {
    return lazy<ReadonlyArray<VariableInfo>, CorruptFile | UnsupportedVersion | ServiceNotFound>(() => {
      const stale = this.refresh()
      if (stale) return Effect.fail(stale)
      return Effect.succeed(
        [...this.entries.values()].map((e) => ({
          name: e.name,
          typeId: e.typeId,
          capacity: e.capacity,
          persistent: e.persistent,
          version: this.memory.version(slotRef(e))
        }))
      )
    })
  }

  /** The value bytes and version of a variable, by name. */
  read(name: string): Effect.Effect<Versioned<Uint8Array>, CommyError> {
    return lazy(() => {
      const entry = this.lookup(name)
      if (!("slot" in entry)) return Effect.fail(entry)
      return Effect.succeed(this.memory.readVersioned(slotRef(entry), rawType(entry)))
    })
  }

  /** Writes value bytes by name (fixed-width types need exactly their width). Returns the version. */
  write(name: string, value: Uint8Array): Effect.Effect<number, CommyError> {
    return Effect.flatMap(this.rawHandle(name), (handle) => handle.set(value))
  }

  /** Writes value bytes of several variables by name, atomically. Returns versions in order. */
  writeNamed(writes: ReadonlyArray<{ readonly name: string; readonly value: Uint8Array }>): Effect.Effect<ReadonlyArray<number>, CommyError> {
    return lazy(() => fromResult(this.writeNamedNow(writes)))
  }

  /** `writeNamed`, synchronously, with the error as a value (the server's per-request path). */
  writeNamedNow(writes: ReadonlyArray<{ readonly name: string; readonly value: Uint8Array }>): ReadonlyArray<number> | CommyError {
    const batch: Array<BatchWrite> = []
    for (const { name, value } of writes) {
      const variable = this.rawHandleNow(name)
      if (!("unsafeGet" in variable)) return variable
      batch.push({ variable, value })
    }
    return this.writeBatchNow(batch)
  }

  /**
   * Copies values with their versions from another copy of this service (a remote mirror
   * applying server pushes). Values not newer than what this file has are skipped.
   */
  applyVersions(values: ReadonlyArray<{ readonly name: string; readonly version: number; readonly value: Uint8Array }>): Effect.Effect<void, CommyError> {
    return lazy(() => {
      const failed = this.applyVersionsNow(values)
      return failed ? Effect.fail(failed) : Effect.void
    })
  }

  /** `applyVersions`, synchronously, with the error as a value (a mirror applies pushes as they arrive). */
  applyVersionsNow(values: ReadonlyArray<{ readonly name: string; readonly version: number; readonly value: Uint8Array }>): CommyError | undefined {
    const items: Array<BatchItem> = []
    for (const { name, value, version } of values) {
      const entry = this.lookup(name)
      if (!("slot" in entry)) continue
      const ref = slotRef(entry)
      if (this.memory.version(ref) >= version) continue
      const type = rawType(entry)
      const problem = type.check(value)
      if (problem !== undefined) return valueError(name, type, problem)
      items.push({ ref, type, value, version })
    }
    // Batches are atomic up to MAX_BATCH variables (the journal's size); larger sets go in chunks.
    for (let i = 0; i < items.length; i += MAX_BATCH) {
      const done = this.memory.writeBatch(i === 0 && items.length <= MAX_BATCH ? items : items.slice(i, i + MAX_BATCH))
      if (done instanceof LockTimeout) return done
    }
    // Copied from elsewhere, not written here: watchers ignoring their own writes must see them.
    for (const item of items) this.memory.ownVersions[item.ref.index] = 0
    return undefined
  }

  /** Compare-and-set by name. */
  compareAndSet(name: string, expected: number, value: Uint8Array): Effect.Effect<number, CommyError> {
    return lazy(() => fromResult(this.compareAndSetNow(name, expected, value)))
  }

  /** `compareAndSet` by name, synchronously, with the error as a value. */
  compareAndSetNow(name: string, expected: number, value: Uint8Array): number | CommyError {
    const entry = this.lookup(name)
    return "slot" in entry ? this.casNow(name, slotRef(entry), rawType(entry), expected, value) : entry
  }

  private casNow<A>(name: string, ref: SlotRef, type: VarType.VarType<A>, expected: number, value: A): number | WriteError | VersionConflict {
    const refused = this.writeRefused(name)
    if (refused) return refused
    const problem = type.check(value)
    if (problem !== undefined) return valueError(name, type, problem)
    const result = this.memory.compareAndSet(ref, type, expected, value)
    if (result instanceof LockTimeout) return result
    return result.ok
      ? result.version
      : new VersionConflict({
        message: `${name} is at version ${result.version}, not ${expected}`,
        name,
        expected,
        current: result.version
      })
  }

  /** Writes several variables atomically: snapshot readers see all of them or none. */
  writeBatch(writes: ReadonlyArray<BatchWrite>): Effect.Effect<ReadonlyArray<number>, CommyError> {
    return lazy(() => fromResult(this.writeBatchNow(writes)))
  }

  /** `writeBatch`, synchronously, with the error as a value. */
  writeBatchNow(writes: ReadonlyArray<BatchWrite>): ReadonlyArray<number> | CommyError {
    if (writes.length === 0) return []
    if (writes.length > MAX_BATCH) return new InvalidArgument({ message: `a batch holds at most ${MAX_BATCH} writes` })
    const refused = this.writeRefused("a batch")
    if (refused) return refused
    const items: Array<BatchItem> = []
    // (A single write cannot repeat a variable: no set for it.)
    const seen = writes.length > 1 ? new Set<number>() : undefined
    for (const { value, variable } of writes) {
      const handle = this.handles.get(variable)
      if (handle === undefined) return new InvalidArgument({ message: `${variable.name} is not a handle of this file` })
      if (seen?.has(handle.ref.slot)) return new InvalidArgument({ message: `${variable.name} appears twice in one batch` })
      seen?.add(handle.ref.slot)
      const problem = variable.type.check(value)
      if (problem !== undefined) return valueError(variable.name, variable.type, problem)
      items.push({ ref: handle.ref, type: variable.type, value })
    }
    return this.memory.writeBatch(items)
  }


  /**
   * Values and versions of several variables (default: all), consistent with batches: a batch
   * is seen whole or not at all.
   */
  snapshot(names?: ReadonlyArray<string>): Effect.Effect<ReadonlyMap<string, Versioned<Uint8Array>>, CommyError> {
    return lazy(() => fromResult(this.snapshotNow(names)))
  }

  /** `snapshot`, synchronously, with the error as a value. */
  snapshotNow(names?: ReadonlyArray<string>): ReadonlyMap<string, Versioned<Uint8Array>> | CommyError {
    const stale = this.refresh()
    if (stale) return stale
    const entries: Array<Entry> = []
    for (const name of names ?? [...this.entries.keys()]) {
      const entry = this.entries.get(name)
      if (!entry) return this.notFound(name)
      entries.push(entry)
    }
    return this.memory.consistent(() => {
      const values = new Map<string, Versioned<Uint8Array>>()
      for (const e of entries) values.set(e.name, this.memory.readVersioned(slotRef(e), rawType(e)))
      return values
    })
  }


  // ---------- handles ----------

  private readonly handles = new WeakMap<Variable<any>, { readonly ref: SlotRef }>()

  private lookup(name: string): Entry | VariableNotFound | CorruptFile | UnsupportedVersion | ServiceNotFound {
    const stale = this.refresh()
    if (stale) return stale
    return this.entries.get(name) ?? this.notFound(name)
  }

  private notFound(name: string) {
    return new VariableNotFound({ message: `no variable named ${JSON.stringify(name)}`, name })
  }

  private rawHandle(name: string): Effect.Effect<Variable<Uint8Array>, CommyError> {
    return lazy(() => fromResult(this.rawHandleNow(name)))
  }

  /** Untyped handles by name, reused while the layout stands (by-name writes are a hot path too). */
  private rawHandles = new Map<string, Variable<Uint8Array>>()

  private rawHandleNow(name: string): Variable<Uint8Array> | CommyError {
    const entry = this.lookup(name)
    if (!("slot" in entry)) return entry
    let handle = this.rawHandles.get(name)
    if (handle === undefined) {
      handle = this.makeHandle(entry, rawType(entry))
      this.rawHandles.set(name, handle)
    }
    return handle
  }

  private handleFor<A>(entry: Entry, type: VarType.VarType<A>): Effect.Effect<Variable<A>, TypeMismatch> {
    const mismatch = compatible(entry, type.id, type.capacity)
    return mismatch ? Effect.fail(mismatch) : Effect.succeed(this.makeHandle(entry, type))
  }

  private makeHandle<A>(entry: Entry, type: VarType.VarType<A>): Variable<A> {
    const memory = this.memory
    const ref = slotRef(entry)
    const name = entry.name
    const hot = memory.handle(ref, type)
    const writeChecked = (value: A): number | WriteError => {
      // Inline checks on the hot path; the error is built only when one fails.
      if (!memory.writable || memory.deleted()) return this.writeRefused(name)!
      const problem = type.check(value)
      if (problem !== undefined) return valueError(name, type, problem)
      return hot.set(value)
    }
    const handle: Variable<A> = {
      name,
      type,
      unsafeGet: hot.get,
      unsafeSet: (value) => {
        const result = writeChecked(value)
        // The one deliberate throw: the synchronous fast path has no error channel.
        if (typeof result !== "number") throw result
        return result
      },
      get: Effect.sync(hot.get),
      getVersioned: Effect.sync(() => memory.readVersioned(ref, type)),
      version: Effect.sync(() => memory.version(ref)),
      set: (value) =>
        lazy<number, WriteError>(() => {
          const result = writeChecked(value)
          return typeof result === "number" ? Effect.succeed(result) : Effect.fail(result)
        }),
      compareAndSet: (expected, value) =>
        lazy<number, WriteError | VersionConflict>(() => fromResult(this.casNow(name, ref, type, expected, value)))
    }
    this.handles.set(handle, { ref })
    return handle
  }
}
