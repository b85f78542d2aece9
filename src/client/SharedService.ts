/**
 * SharedService: one open service and its typed variables, the same whether the service is
 * mapped from this machine's file (VirtualFile) or reached over WSS (RemoteService). Application
 * code written against it does not care which; `locality` tells what it got.
 *
 * Both implementations are thin adapters over the existing pieces. What they cannot share is
 * left out: `unsafeSet` (a remote write is a round trip, so it has no synchronous form) and the
 * watcher's `ownWrites` (a mirror receives every change as a push, its own writes included).
 * Each side's full API stays reachable through `file` or `remote`.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type CommyError, InvalidArgument, PermissionDenied } from "../CommyError.js"
import { SimdDiff } from "../diff/SimdDiff.js"
import type { Versioned } from "../local/Slots.js"
import type { VarType } from "../local/VarType.js"
import type { BatchWrite, DefineOptions, VariableInfo, VirtualFile } from "../local/VirtualFile.js"
import { type FileChangeEvent, onChange, type OnChangeOptions, watch, type WatchOptions } from "../local/Watcher.js"
import { encodeWrite, type RemoteService, type RemoteVariable } from "../remote/RemoteService.js"

export type Locality = "local" | "remote"

/** A typed handle on one variable of a SharedService. */
export interface SharedVariable<A> {
  readonly name: string
  readonly type: VarType<A>
  /** The value as this process sees it: the mapping's committed value, or the mirror's (as of the last push). */
  unsafeGet(): A
  readonly get: Effect.Effect<A, CommyError>
  readonly getVersioned: Effect.Effect<Versioned<A>, CommyError>
  /** Writes the value; returns its new version. */
  readonly set: (value: A) => Effect.Effect<number, CommyError>
  /** Writes only if the version is still `expected`; else fails with VersionConflict (carrying `current`). */
  readonly compareAndSet: (expected: number, value: A) => Effect.Effect<number, CommyError>
}

/** One write of a batch: a handle of the same service and its new value. */
export interface SharedBatchWrite<A = any> {
  readonly variable: SharedVariable<A>
  readonly value: A
}

export type SharedWatchOptions = Omit<WatchOptions, "ownWrites">
export type SharedOnChangeOptions = Omit<OnChangeOptions, "ownWrites">

export interface SharedServiceApi {
  readonly locality: Locality
  readonly tenant: string
  readonly name: string
  /** False for a read-only handle: every write fails with PERMISSION_DENIED. */
  readonly writable: boolean
  /** Defines a variable, or opens it if it exists with the same type and capacity. */
  readonly define: <A>(name: string, type: VarType<A>, options?: DefineOptions) => Effect.Effect<SharedVariable<A>, CommyError>
  /** Opens an existing variable with its type. */
  readonly variable: <A>(name: string, type: VarType<A>) => Effect.Effect<SharedVariable<A>, CommyError>
  readonly remove: (name: string) => Effect.Effect<void, CommyError>
  /** Every variable with its type, capacity and current version. */
  readonly list: Effect.Effect<ReadonlyArray<VariableInfo>, CommyError>
  /** A variable's value bytes and version, by name. */
  readonly read: (name: string) => Effect.Effect<Versioned<Uint8Array>, CommyError>
  /** Writes value bytes by name; returns the new version. */
  readonly write: (name: string, value: Uint8Array) => Effect.Effect<number, CommyError>
  /** Atomic: readers see all of these writes or none. Returns the new versions in order. */
  readonly writeBatch: (writes: ReadonlyArray<SharedBatchWrite>) => Effect.Effect<ReadonlyArray<number>, CommyError>
  /** Change events naming exactly the variables whose values changed. */
  readonly watch: (options?: SharedWatchOptions) => Stream.Stream<FileChangeEvent, CommyError>
  /** The same events as callbacks, straight from the wake-up, until the scope closes. */
  readonly onChange: (
    handler: (event: FileChangeEvent) => void,
    options?: SharedOnChangeOptions
  ) => Effect.Effect<void, CommyError, Scope.Scope>
}

/** Mapped from this machine's file: nanosecond reads and writes. */
export interface LocalSharedService extends SharedServiceApi {
  readonly locality: "local"
  /** The mapping itself (hot-path `unsafeSet`, `snapshot`, watcher options such as `ownWrites`). */
  readonly file: VirtualFile
}

/** Reached over WSS: reads from the local mirror, writes to the server. */
export interface RemoteSharedService extends SharedServiceApi {
  readonly locality: "remote"
  /** The subscription itself (`caughtUp`, `fetch` from the server, the mirror). */
  readonly remote: RemoteService
}

/** Narrow on `locality` to reach either side's own API. */
export type SharedService = LocalSharedService | RemoteSharedService

const label = (tenant: string, name: string) => `${tenant}/${name}`

/** A SharedService over a mapped VirtualFile. Its variables are the file's own handles. */
export const fromVirtualFile = (file: VirtualFile, tenant: string, name: string): LocalSharedService => ({
  locality: "local",
  tenant,
  name,
  writable: file.accessor.writable,
  file,
  define: (variableName, type, options) => file.define(variableName, type, options),
  variable: (variableName, type) => file.variable(variableName, type),
  remove: (variableName) => file.remove(variableName),
  list: file.list,
  read: (variableName) => file.read(variableName),
  write: (variableName, value) => file.write(variableName, value),
  // The file recognises its own handles (a WeakMap); anything else fails with InvalidArgument.
  writeBatch: (writes) => file.writeBatch(writes as ReadonlyArray<BatchWrite>),
  watch: (options) => watch(file, { service: label(tenant, name), ...options }).pipe(Stream.provideLayer(SimdDiff.layer)),
  onChange: (handler, options) =>
    onChange(file, handler, { service: label(tenant, name), ...options }).pipe(Effect.provide(SimdDiff.layer))
})

/**
 * A SharedService over a RemoteService (which already reads its own writes: a confirmed write is
 * in the mirror at once, a removed variable gone). What makes it behave like a mapping besides:
 * a read-only handle refuses writes itself, so writability is fixed at open in both localities.
 */
export const fromRemoteService = (remote: RemoteService, options: { readonly writable: boolean }): RemoteSharedService => {
  const { name, tenant } = remote
  const { writable } = options
  const refusal = (what: string) => new PermissionDenied({ message: `cannot ${what}: ${label(tenant, name)} is open read-only` })
  // As a read-only mapping answers: a missing variable is reported as such, any write is refused.
  const denied = (names: ReadonlyArray<string>, what: string) =>
    Effect.zipRight(Effect.forEach(names, (n) => remote.read(n), { discard: true }), Effect.fail(refusal(what)))
  type Named = { readonly name: string; readonly value: Uint8Array }
  const writeNamed = (writes: ReadonlyArray<Named>): Effect.Effect<ReadonlyArray<number>, CommyError> =>
    writes.length === 0
      ? Effect.succeed([])
      : !writable
      ? denied(writes.map((w) => w.name), `write ${writes.map((w) => w.name).join(", ")}`)
      : remote.writeBatch(writes)
  // This service's handles: a batch must name only them (as a mapping requires).
  const handles = new WeakSet<SharedVariable<any>>()
  const shared = <A>(variable: RemoteVariable<A>): SharedVariable<A> => {
    const handle: SharedVariable<A> = {
      name: variable.name,
      type: variable.type,
      unsafeGet: variable.unsafeGet,
      get: variable.get,
      getVersioned: variable.getVersioned,
      set: (value) => Effect.flatMap(encodeWrite(variable.name, variable.type, value), (write) => Effect.map(writeNamed([write]), (v) => v[0]!)),
      compareAndSet: (expected, value) =>
        !writable
          ? denied([], `write ${variable.name}`)
          : Effect.flatMap(encodeWrite(variable.name, variable.type, value), (write) => remote.compareAndSet(write.name, expected, write.value))
    }
    handles.add(handle)
    return handle
  }
  return {
    locality: "remote",
    tenant,
    name,
    writable,
    remote,
    // Read-only, an existing variable is opened (as a read-only mapping does); a new one is refused.
    define: (variableName, type, defineOptions) =>
      writable
        ? Effect.map(remote.define(variableName, type, defineOptions), shared)
        : Effect.map(remote.variable(variableName, type), shared).pipe(
          Effect.catchTag("VariableNotFound", () => Effect.fail(refusal(`define ${variableName}`)))
        ),
    variable: (variableName, type) => Effect.map(remote.variable(variableName, type), shared),
    remove: (variableName) => (writable ? remote.remove(variableName) : denied([variableName], `remove ${variableName}`)),
    list: remote.list,
    read: (variableName) => remote.read(variableName),
    write: (variableName, value) => Effect.map(writeNamed([{ name: variableName, value }]), (v) => v[0]!),
    writeBatch: (writes) =>
      Effect.suspend(() => {
        const named: Array<Effect.Effect<Named, CommyError>> = []
        for (const { value, variable } of writes) {
          if (!handles.has(variable)) {
            return Effect.fail(new InvalidArgument({ message: `${variable.name} is not a handle of ${label(tenant, name)}` }))
          }
          named.push(encodeWrite(variable.name, variable.type, value))
        }
        return Effect.flatMap(Effect.all(named), writeNamed)
      }),
    watch: (watchOptions) => remote.watch(watchOptions),
    onChange: (handler, changeOptions) => remote.onChange(handler, changeOptions)
  }
}
