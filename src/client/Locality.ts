/**
 * Locality: which path a service is reached by. The server is asked where the service's file is
 * (`locate`, which also checks the grant); when it is on this machine and this OS user can map
 * it, the service is mapped (nanoseconds, no network), otherwise it is subscribed over WSS.
 * Either way the caller gets a SharedService, so application code does not care.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { CommyError } from "../CommyError.js"
import type { RemoteServiceOptions } from "../remote/RemoteService.js"
import type { RemoteClientService } from "./RemoteClient.js"
import { fromRemoteService, fromVirtualFile, type Locality, type SharedService } from "./SharedService.js"

export interface SharedOpenOptions extends RemoteServiceOptions {
  /**
   * `"local"` (default): map the file when the server runs on this machine and this OS user can
   * open it, else use WSS. `"remote"`: always WSS (a process that must not touch the server's
   * files, or tests).
   */
  readonly prefer?: Locality
  /**
   * `true`: the key must have the `write` right (else PERMISSION_DENIED). `false`: a read-only
   * handle. Default: writable when the key's grant allows writes, read-only otherwise. Every
   * handle needs the `read` right.
   */
  readonly writable?: boolean
}

/** The parts of a RemoteClient that opening needs. */
export type Opener = Pick<RemoteClientService, "locate" | "openLocal" | "openService">

export const openShared = (
  client: Opener,
  tenant: string,
  name: string,
  options: SharedOpenOptions = {}
): Effect.Effect<SharedService, CommyError, Scope.Scope> =>
  Effect.gen(function*() {
    const { prefer = "local", writable: asked, ...mirror } = options
    // `locate` checks rights. Every handle reads (a mapping cannot hide anything), so `read` is
    // needed on both paths; `write` decides writability: with no preference, a key that may
    // only read gets a read-only handle rather than an error.
    const where = yield* client.locate(tenant, name)
    const writeRight = Effect.as(client.locate(tenant, name, { writable: true }), true)
    const writable = asked === undefined
      ? yield* Effect.catchTag(writeRight, "PermissionDenied", () => Effect.succeed(false))
      : asked && (yield* writeRight)
    if (prefer === "local" && where.sameHost) {
      // In a child scope, so a mapping that fails half-way is released now, not when the caller's scope closes.
      const attempt = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
      const mapped = yield* Effect.either(Scope.extend(client.openLocal(tenant, name, { writable }), attempt))
      if (Either.isRight(mapped)) return fromVirtualFile(mapped.right, tenant, name)
      yield* Scope.close(attempt, Exit.void)
      // Same machine but not mappable (another OS user's 0600 file, no addon, another mount
      // namespace): WSS still works, so it is a fallback, not a failure.
      yield* Effect.logDebug(`${tenant}/${name}: cannot map ${where.path} (${mapped.left.code}); using WSS`)
    }
    return fromRemoteService(yield* client.openService(tenant, name, mirror), { writable })
  })
