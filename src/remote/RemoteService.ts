/**
 * RemoteService: a service on a Commy server, used through the same shapes as a local
 * VirtualFile. Reads are local: a mirror VirtualFile over an in-memory buffer (the
 * RemoteBufferAccessor of the seed) is kept current by the server's pushes, with the server's
 * versions. Writes travel to the server, which pushes them back to every subscriber, this one
 * included. `watch` is the Watcher over the mirror: events for every pushed change.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type CommyError, ServiceNotFound } from "../CommyError.js"
import { SimdDiff } from "../diff/SimdDiff.js"
import { bufferServiceFile } from "../local/ServiceFiles.js"
import type { Versioned } from "../local/Slots.js"
import * as VarType from "../local/VarType.js"
import { type DefineOptions, valueError, type VariableInfo, type VirtualFile } from "../local/VirtualFile.js"
import { type FileChangeEvent, onChange, type OnChangeOptions, watch, type WatchOptions } from "../local/Watcher.js"
import { CasResult, Empty, type Push, ReadResult, type VariableInfo as WireInfo, WriteResult } from "../protocol/Messages.js"
import * as Messages from "../protocol/Messages.js"
import type { WssTransportService } from "./WssTransport.js"

/** A typed handle on a remote variable: reads from the mirror, writes to the server. */
export interface RemoteVariable<A> {
  readonly name: string
  readonly type: VarType.VarType<A>
  /** The mirrored value (as of the last push). */
  unsafeGet(): A
  readonly get: Effect.Effect<A, CommyError>
  readonly getVersioned: Effect.Effect<Versioned<A>, CommyError>
  /** Sends the write; resolves with the server's new version. */
  readonly set: (value: A) => Effect.Effect<number, CommyError>
  readonly compareAndSet: (expected: number, value: A) => Effect.Effect<number, CommyError>
}

/** A write of `value` to variable `name`: its bytes, or the error its type reports (as a mapping's). */
export const encodeWrite = <A>(
  name: string,
  type: VarType.VarType<A>,
  value: A
): Effect.Effect<{ readonly name: string; readonly value: Uint8Array }, CommyError> =>
  Effect.suspend(() => {
    const problem = type.check(value)
    if (problem !== undefined) return Effect.fail(valueError(name, type, problem))
    const view = new DataView(new ArrayBuffer(type.capacity))
    const length = type.write(view, 0, value)
    return Effect.succeed({ name, value: new Uint8Array(view.buffer, 0, length) })
  })

export interface RemoteServiceOptions {
  /** Bytes for the in-memory mirror (lazily committed by the OS). Default 64 MiB. */
  readonly mirrorCapacity?: number
  readonly mirrorMaxVariables?: number
}

export interface RemoteService {
  readonly tenant: string
  readonly name: string
  /** The server's id of this service (changes if it is deleted and created again). */
  readonly serviceId: () => string
  /** The local mirror (read-only by convention: write through this service). */
  readonly mirror: VirtualFile
  readonly define: <A>(name: string, type: VarType.VarType<A>, options?: DefineOptions) => Effect.Effect<RemoteVariable<A>, CommyError>
  readonly variable: <A>(name: string, type: VarType.VarType<A>) => Effect.Effect<RemoteVariable<A>, CommyError>
  readonly remove: (name: string) => Effect.Effect<void, CommyError>
  readonly list: Effect.Effect<ReadonlyArray<VariableInfo>, CommyError>
  readonly read: (name: string) => Effect.Effect<Versioned<Uint8Array>, CommyError>
  /** Reads from the server itself (not the mirror). */
  readonly fetch: (names?: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Messages.VariableValue>, CommyError>
  readonly write: (name: string, value: Uint8Array) => Effect.Effect<number, CommyError>
  /** Atomic on the server: other clients see all of these or none. */
  readonly writeBatch: (writes: ReadonlyArray<{ readonly name: string; readonly value: Uint8Array }>) => Effect.Effect<ReadonlyArray<number>, CommyError>
  readonly compareAndSet: (name: string, expected: number, value: Uint8Array) => Effect.Effect<number, CommyError>
  /** Change events as pushes arrive. */
  readonly watch: (options?: WatchOptions) => Stream.Stream<FileChangeEvent, CommyError>
  /** The same events as callbacks, straight from the push (lowest latency); until the scope closes. */
  readonly onChange: (
    handler: (event: FileChangeEvent) => void,
    options?: OnChangeOptions
  ) => Effect.Effect<void, CommyError, Scope.Scope>
  /** Resolves when the mirror has caught up with the server again (after a reconnect too). */
  readonly caughtUp: Effect.Effect<void>
}

/** Subscribes to a service and mirrors it until the scope closes. */
export const openRemoteService = (
  transport: WssTransportService,
  tenant: string,
  name: string,
  options: RemoteServiceOptions = {}
): Effect.Effect<RemoteService, CommyError, Scope.Scope> =>
  Effect.gen(function*() {
    const mirror = yield* bufferServiceFile({
      capacity: options.mirrorCapacity ?? 64 * 1024 * 1024,
      maxVariables: options.mirrorMaxVariables ?? 16_384
    })
    let serviceId = ""
    let ended: CommyError | undefined
    let caughtUp = yield* Deferred.make<void>()
    let isCaughtUp = false
    const target = { tenant, service: name }
    /** How events (their `service`) and messages name this service. */
    const label = `${tenant}/${name}`

    const syncLayout = (layout: ReadonlyArray<WireInfo>) =>
      Effect.gen(function*() {
        const present = new Set(layout.map((v) => v.name))
        for (const v of yield* mirror.list) if (!present.has(v.name)) yield* mirror.remove(v.name)
        for (const v of layout) {
          const type = VarType.raw(v.type, v.capacity)
          // A variable re-created with another type: drop ours first.
          const defined = yield* Effect.either(mirror.define(v.name, type, { persistent: v.persistent }))
          if (defined._tag === "Left" && defined.left._tag === "TypeMismatch") {
            yield* mirror.remove(v.name)
            yield* mirror.define(v.name, type, { persistent: v.persistent })
          }
        }
      })

    const apply = (push: Push) =>
      Effect.gen(function*() {
        switch (push.push) {
          case "snapshot":
            if (push.resynced) {
              for (const v of yield* mirror.list) yield* mirror.remove(v.name)
            }
            yield* syncLayout(push.layout)
            for (const removed of push.removed) yield* Effect.ignore(mirror.remove(removed))
            yield* mirror.applyVersions(push.values)
            return
          case "caught_up":
            isCaughtUp = true
            yield* Deferred.succeed(caughtUp, undefined)
            return
          case "changed":
            if (push.layout) yield* syncLayout(push.layout)
            yield* mirror.applyVersions(push.values)
            return
          case "ended":
            ended = new ServiceNotFound({ message: `${label}: ${push.message} (${push.code})`, service: name })
            yield* Deferred.succeed(caughtUp, undefined)
            return
        }
      })

    // Pushes are applied in arrival order: a plain change at once, in the transport's callback
    // (the common case, and the one whose latency users see); anything else, and everything
    // while earlier pushes still wait, by one fiber.
    const pushes = yield* Queue.unbounded<Push>()
    let queued = 0
    const warn = (error: CommyError) => Effect.logWarning(`mirror of ${label}: ${error.message}`)
    yield* Queue.take(pushes).pipe(
      Effect.flatMap((push) => Effect.catchAll(apply(push), warn)),
      Effect.ensuring(Effect.sync(() => queued--)),
      Effect.forever,
      Effect.forkScoped
    )
    const runtime = yield* Effect.runtime<never>()
    const onPush = (push: Push) => {
      if (queued === 0 && push.push === "changed" && !push.layout && !push.removed) {
        const failed = mirror.applyVersionsNow(push.values)
        if (failed) Runtime.runFork(runtime)(warn(failed))
        return
      }
      queued++
      Queue.unsafeOffer(pushes, push)
    }
    const subscription = yield* transport.subscribe(tenant, name, {
      onSubscribed: (id) => (serviceId = id),
      onPush,
      resumeFrom: () => {
        // After a reconnect the mirror must catch up again before `caughtUp` resolves.
        if (isCaughtUp) {
          isCaughtUp = false
          caughtUp = Effect.runSync(Deferred.make<void>())
        }
        const since: Record<string, number> = {}
        const held = mirror.snapshotNow()
        if (held instanceof Map) for (const [n, v] of held) since[n] = v.version
        return serviceId ? { since, serviceId } : { since }
      }
    })
    yield* Effect.addFinalizer(() => subscription.unsubscribe)
    yield* Deferred.await(caughtUp)
    if (ended) return yield* ended

    const live = Effect.suspend(() => (ended ? Effect.fail(ended) : Effect.void))
    // Read your writes: a confirmed write goes into the mirror with the server's version at once
    // (its push, usually already here, is then skipped as not newer). Failing to copy it only
    // means waiting for the push.
    const confirmed = (writes: ReadonlyArray<{ readonly name: string; readonly value: Uint8Array }>, versions: ReadonlyArray<number>) => {
      mirror.applyVersionsNow(writes.map((w, i) => ({ name: w.name, value: w.value, version: versions[i]! })))
      return versions
    }
    const request = <A, I>(body: Parameters<WssTransportService["request"]>[0], schema: import("effect/Schema").Schema<A, I>) =>
      Effect.zipRight(live, transport.request(body, schema))

    type Named = { readonly name: string; readonly value: Uint8Array }
    const writeBatch = (writes: ReadonlyArray<Named>) =>
      Effect.map(
        request({ op: "write", ...target, writes: writes.map((w) => ({ name: w.name, value: w.value })) }, WriteResult),
        (r) => confirmed(writes, r.versions)
      )
    const compareAndSet = (variableName: string, expected: number, value: Uint8Array) =>
      Effect.map(
        request({ op: "cas", ...target, name: variableName, expected, value }, CasResult),
        (r) => confirmed([{ name: variableName, value }], [r.version])[0]!
      )

    const remoteVariable = <A>(type: VarType.VarType<A>, handle: { readonly name: string }) =>
      Effect.map(mirror.variable(handle.name, type), (local): RemoteVariable<A> => ({
        name: handle.name,
        type,
        unsafeGet: () => local.unsafeGet(),
        get: local.get,
        getVersioned: local.getVersioned,
        set: (value) => Effect.flatMap(encodeWrite(handle.name, type, value), (write) => Effect.map(writeBatch([write]), (v) => v[0]!)),
        compareAndSet: (expected, value) =>
          Effect.flatMap(encodeWrite(handle.name, type, value), (write) => compareAndSet(write.name, expected, write.value))
      }))

    const service: RemoteService = {
      tenant,
      name,
      serviceId: () => serviceId,
      mirror,
      define: (variableName, type, defineOptions = {}) =>
        Effect.gen(function*() {
          const info = yield* request({
            op: "var.define",
            ...target,
            name: variableName,
            type: type.id,
            capacity: type.capacity,
            persistent: defineOptions.persistent ?? false
          }, Messages.VariableInfo)
          // Define in the mirror now; the layout push that follows is then a no-op.
          yield* mirror.define(variableName, VarType.raw(info.type, info.capacity), defineOptions)
          return yield* remoteVariable(type, { name: variableName })
        }),
      variable: (variableName, type) => Effect.zipRight(live, remoteVariable(type, { name: variableName })),
      // Gone from the mirror at once too, rather than when the layout push arrives.
      remove: (variableName) =>
        Effect.zipLeft(request({ op: "var.remove", ...target, name: variableName }, Empty), Effect.ignore(mirror.remove(variableName))),
      list: Effect.zipRight(live, mirror.list),
      read: (variableName) => Effect.zipRight(live, mirror.read(variableName)),
      fetch: (names) =>
        Effect.map(request(names ? { op: "read", ...target, names: [...names] } : { op: "read", ...target }, ReadResult), (r) => r.values),
      write: (variableName, value) => Effect.map(writeBatch([{ name: variableName, value }]), (v) => v[0]!),
      writeBatch,
      compareAndSet,
      watch: (watchOptions) => watch(mirror, { service: label, ...watchOptions }).pipe(Stream.provideLayer(SimdDiff.layer)),
      onChange: (handler, changeOptions) => onChange(mirror, handler, { service: label, ...changeOptions }).pipe(Effect.provide(SimdDiff.layer)),
      caughtUp: Effect.suspend(() => Deferred.await(caughtUp))
    }
    return service
  })
