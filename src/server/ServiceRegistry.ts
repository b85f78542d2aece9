/**
 * ServiceRegistry: the services the server has open. The server is a local client of each
 * service file: remote writes land in the file (local processes see them at once), and a
 * Watcher per open service turns local processes' writes into pushes to remote subscribers.
 *
 * A service is opened on first use and closed when its last client connection goes away; a
 * service that is not persistent is then deleted, file and record.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { CommyError } from "../CommyError.js"
import type { SimdDiff } from "../diff/SimdDiff.js"
import { openServiceFile, removeServiceFile } from "../local/ServiceFiles.js"
import * as VarType from "../local/VarType.js"
import type { VirtualFile } from "../local/VirtualFile.js"
import { watch } from "../local/Watcher.js"
import type { NativeAddon } from "../native/NativeAddon.js"
import type { VariableInfo, VariableValue } from "../protocol/Messages.js"
import type { MetadataStoreService, ServiceRecord } from "./MetadataStore.js"

/** Receives a service's changes; implemented by a connection's subscription. */
export interface Subscriber {
  deliver(values: ReadonlyArray<VariableValue>, layout?: ReadonlyArray<VariableInfo>): void
  end(code: string, message: string): void
}

export interface OpenService {
  readonly record: ServiceRecord
  readonly file: VirtualFile
  readonly subscribers: Set<Subscriber>
  /** Connections using this service. */
  readonly clients: Set<object>
  readonly scope: Scope.CloseableScope
  /** Set once the service is closed or deleted: cached references must not be used. */
  closed: boolean
}

/** Every live variable with its version, as the protocol lists them. */
export const layoutOf = (file: VirtualFile): Effect.Effect<ReadonlyArray<VariableInfo>, CommyError> =>
  Effect.map(file.list, (list) =>
    list.map((v) => ({ name: v.name, type: v.typeId, capacity: v.capacity, persistent: v.persistent, version: v.version })))

/** Pushes a change to every subscriber of a service. */
export const broadcast = (
  service: OpenService,
  values: ReadonlyArray<VariableValue>,
  layout?: ReadonlyArray<VariableInfo>
): void => {
  for (const subscriber of service.subscribers) subscriber.deliver(values, layout)
}

export const makeServiceRegistry = (options: {
  readonly root: string
  readonly store: MetadataStoreService
}) =>
  Effect.gen(function*() {
    const context = yield* Effect.context<NativeAddon | SimdDiff>()
    const open = new Map<string, OpenService>()
    const lock = yield* Effect.makeSemaphore(1)

    const openService = (record: ServiceRecord) =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const file = yield* openServiceFile(options.root, record.id).pipe(
          Scope.extend(scope),
          Effect.provide(context),
          Effect.tapError(() => Scope.close(scope, Exit.void))
        )
        const service: OpenService = { record, file, subscribers: new Set(), clients: new Set(), scope, closed: false }
        // Local processes' writes (not the server's own) become pushes.
        yield* watch(file, { service: record.id, values: true, ownWrites: false, layoutChanges: true }).pipe(
          Stream.runForEach((event) =>
            Effect.gen(function*() {
              const values = event.changes.map((c) => ({ name: c.name, version: c.version, value: c.value! }))
              const layout = event.layoutChanged ? yield* layoutOf(file) : undefined
              broadcast(service, values, layout)
            })
          ),
          Effect.catchAll((error) => Effect.logWarning(`watcher of service ${record.id} stopped: ${error.message}`)),
          Effect.provide(context),
          Effect.forkIn(scope)
        )
        open.set(record.id, service)
        return service
      })

    const close = (service: OpenService, code: string, message: string) =>
      Effect.gen(function*() {
        open.delete(service.record.id)
        service.closed = true
        for (const subscriber of service.subscribers) subscriber.end(code, message)
        service.subscribers.clear()
        yield* Scope.close(service.scope, Exit.void)
      })

    /**
     * Deletes a service's file and record (explicit delete, its tenant's deletion, or the last
     * client of a non-persistent one); subscribers get an `ended` push with `message`.
     */
    const destroy = (record: ServiceRecord, message = `service ${record.name} was deleted`) =>
      Effect.gen(function*() {
        const service = open.get(record.id)
        if (service) yield* close(service, "SERVICE_NOT_FOUND", message)
        yield* Effect.ignore(removeServiceFile(options.root, record.id))
        yield* Effect.ignore(options.store.deleteService(record.tenant, record.name))
      })

    return {
      /** Opens (if needed) and registers `client` as a user of the service. */
      acquire: (record: ServiceRecord, client: object): Effect.Effect<OpenService, CommyError> =>
        lock.withPermits(1)(Effect.gen(function*() {
          const service = open.get(record.id) ?? (yield* openService(record))
          service.clients.add(client)
          return service
        })),
      /** Unregisters a client from every service it used; closes or deletes what nobody uses. */
      releaseAll: (client: object): Effect.Effect<void> =>
        lock.withPermits(1)(Effect.gen(function*() {
          for (const service of [...open.values()]) {
            if (!service.clients.delete(client) || service.clients.size > 0) continue
            if (service.record.persistent) yield* close(service, "SERVICE_CLOSED", "service closed")
            else yield* destroy(service.record)
          }
        })),
      destroy: (record: ServiceRecord, message?: string): Effect.Effect<void> =>
        lock.withPermits(1)(destroy(record, message)),
      /** Closes every open service (server shutdown); persistent ones stay on disk. */
      closeAll: lock.withPermits(1)(Effect.gen(function*() {
        for (const service of [...open.values()]) {
          yield* Effect.ignore(service.file.accessor.flush)
          yield* close(service, "SERVER_SHUTDOWN", "the server is shutting down")
        }
      }))
    }
  })

export type ServiceRegistry = Effect.Effect.Success<ReturnType<typeof makeServiceRegistry>>

/** A VarType for a type id and capacity sent over the wire; values travel as raw bytes. */
export const wireType = (typeId: number, capacity: number | undefined): VarType.VarType<Uint8Array> | string => {
  if (!VarType.knownTypeIds.has(typeId)) return `unknown type id ${typeId}`
  const width = VarType.fixedWidth(typeId)
  const size = width ?? capacity
  if (size === undefined || !Number.isInteger(size) || size < 1 || size > 64 * 1024 * 1024) {
    return `type ${typeId} needs a capacity in [1, 67108864]`
  }
  if (width !== undefined && capacity !== undefined && capacity !== width) {
    return `type ${typeId} has a fixed width of ${width}`
  }
  return VarType.raw(typeId, size)
}
