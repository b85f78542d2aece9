/**
 * RemoteClient: services on a Commy server, through one WSS connection (WssTransport) that
 * reconnects and resumes by itself. Opened services mirror the server's variables locally, so
 * reads cost what local reads cost; writes go to the server.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { type CommyError, PermissionDenied } from "../CommyError.js"
import {
  Empty,
  type GrantInfo,
  GrantListResult,
  KeyCreateResult,
  type KeyInfo,
  KeyListResult,
  LocateResult,
  type ServiceInfo,
  ServiceListResult,
  ServiceResult,
  type TenantInfo,
  TenantListResult,
  TenantResult
} from "../protocol/Messages.js"
import { openRemoteService, type RemoteService, type RemoteServiceOptions } from "../remote/RemoteService.js"
import { type TransportOptions, WssTransport } from "../remote/WssTransport.js"
import { hostIdentity } from "../server/HostIdentity.js"
import { openServiceFile, serviceIdOf } from "../local/ServiceFiles.js"
import type { VirtualFile } from "../local/VirtualFile.js"
import { NativeAddon } from "../native/NativeAddon.js"
import { openShared, type SharedOpenOptions } from "./Locality.js"
import type { SharedService } from "./SharedService.js"
import * as path from "node:path"

export interface RemoteClientService {
  /** Tenants: create and delete need an operator key; get and list show what this connection may see. */
  readonly createTenant: (tenant: string) => Effect.Effect<TenantInfo, CommyError>
  readonly getTenant: (tenant: string) => Effect.Effect<TenantInfo, CommyError>
  readonly listTenants: Effect.Effect<ReadonlyArray<TenantInfo>, CommyError>
  /** Deletes the tenant with its services (subscribers are told), keys and grants. */
  readonly deleteTenant: (tenant: string) => Effect.Effect<void, CommyError>
  /**
   * Keys and grants (operators only). `createKey` returns the key string once: the server keeps
   * only its hash. Revoking takes effect on connections already authenticated with the key.
   */
  readonly createKey: (
    tenant: string,
    options?: { readonly label?: string; readonly operator?: boolean }
  ) => Effect.Effect<{ readonly key: KeyInfo; readonly secret: string }, CommyError>
  readonly listKeys: (tenant: string) => Effect.Effect<ReadonlyArray<KeyInfo>, CommyError>
  readonly revokeKey: (tenant: string, keyId: string) => Effect.Effect<void, CommyError>
  /** Replaces the key's rights on `service` ("*" = every service); no rights removes the grant. */
  readonly grant: (
    tenant: string,
    keyId: string,
    service: string,
    rights: ReadonlyArray<"read" | "write" | "admin">
  ) => Effect.Effect<void, CommyError>
  readonly listGrants: (tenant: string, keyId: string) => Effect.Effect<ReadonlyArray<GrantInfo>, CommyError>
  readonly createService: (
    tenant: string,
    name: string,
    options?: { readonly persistent?: boolean; readonly capacity?: number; readonly maxVariables?: number }
  ) => Effect.Effect<ServiceInfo, CommyError>
  readonly getService: (tenant: string, name: string) => Effect.Effect<ServiceInfo, CommyError>
  readonly listServices: (tenant: string) => Effect.Effect<ReadonlyArray<ServiceInfo>, CommyError>
  readonly deleteService: (tenant: string, name: string) => Effect.Effect<void, CommyError>
  /** Subscribes and mirrors the service until the scope closes. */
  readonly openService: (
    tenant: string,
    name: string,
    options?: RemoteServiceOptions
  ) => Effect.Effect<RemoteService, CommyError, Scope.Scope>
  /**
   * The hybrid fast path: when the server runs on this machine (same host id) and this OS user
   * can open its file, maps the service directly: nanosecond reads and writes, no network.
   * The server sees those writes through its watcher and pushes them to remote subscribers.
   * Needs the `write` right for a writable mapping, `read` otherwise; fails with
   * PERMISSION_DENIED when the server is on another host.
   */
  readonly openLocal: (
    tenant: string,
    name: string,
    options?: { readonly writable?: boolean }
  ) => Effect.Effect<VirtualFile, CommyError, Scope.Scope>
  /**
   * Where the service's file is, and whether it is on this machine (mappable directly). Needs
   * the `read` right, or `write` with `{ writable: true }`.
   */
  readonly locate: (tenant: string, name: string, options?: { readonly writable?: boolean }) => Effect.Effect<
    { readonly host: string; readonly path: string; readonly size: number; readonly sameHost: boolean },
    CommyError
  >
  /**
   * The one entry point for a service wherever it lives: mapped when the server runs on this
   * machine and this OS user can open its file, else subscribed over WSS. Same handle API either
   * way (`locality` says which); grants apply to both. Open until the scope closes.
   */
  readonly open: (tenant: string, name: string, options?: SharedOpenOptions) => Effect.Effect<SharedService, CommyError, Scope.Scope>
}

export const makeRemote: Effect.Effect<RemoteClientService, never, WssTransport> = Effect.gen(function*() {
  const transport = yield* WssTransport
  const locate = (tenant: string, name: string, writable = false) =>
    Effect.map(
      transport.request({ op: "locate", tenant, service: name, writable }, LocateResult),
      (r) => ({ ...r, sameHost: r.host === hostIdentity() })
    )
  const service: Omit<RemoteClientService, "open"> = {
    createTenant: (tenant) => Effect.map(transport.request({ op: "tenant.create", tenant }, TenantResult), (r) => r.tenant),
    getTenant: (tenant) => Effect.map(transport.request({ op: "tenant.get", tenant }, TenantResult), (r) => r.tenant),
    listTenants: Effect.suspend(() => Effect.map(transport.request({ op: "tenant.list" }, TenantListResult), (r) => r.tenants)),
    deleteTenant: (tenant) => Effect.asVoid(transport.request({ op: "tenant.delete", tenant }, Empty)),
    createKey: (tenant, options = {}) => transport.request({ op: "key.create", tenant, ...options }, KeyCreateResult),
    listKeys: (tenant) => Effect.map(transport.request({ op: "key.list", tenant }, KeyListResult), (r) => r.keys),
    revokeKey: (tenant, keyId) => Effect.asVoid(transport.request({ op: "key.revoke", tenant, keyId }, Empty)),
    grant: (tenant, keyId, service, rights) =>
      Effect.asVoid(transport.request({ op: "grant.set", tenant, keyId, service, rights: [...rights] }, Empty)),
    listGrants: (tenant, keyId) => Effect.map(transport.request({ op: "grant.list", tenant, keyId }, GrantListResult), (r) => r.grants),
    createService: (tenant, name, options = {}) =>
      Effect.map(transport.request({ op: "service.create", tenant, service: name, ...options }, ServiceResult), (r) => r.service),
    getService: (tenant, name) =>
      Effect.map(transport.request({ op: "service.get", tenant, service: name }, ServiceResult), (r) => r.service),
    listServices: (tenant) =>
      Effect.map(transport.request({ op: "service.list", tenant }, ServiceListResult), (r) => r.services),
    deleteService: (tenant, name) => Effect.asVoid(transport.request({ op: "service.delete", tenant, service: name }, Empty)),
    openService: (tenant, name, options) => openRemoteService(transport, tenant, name, options),
    openLocal: (tenant, name, options = {}) =>
      Effect.gen(function*() {
        const writable = options.writable ?? true
        // The server checks the grant: `write` for a writable mapping, `read` otherwise.
        const where = yield* locate(tenant, name, writable)
        if (!where.sameHost) {
          return yield* new PermissionDenied({ message: `${tenant}/${name} lives on another host: use openService` })
        }
        const id = serviceIdOf(where.path) ?? ""
        return yield* openServiceFile(path.dirname(where.path), id, { writable }).pipe(Effect.provide(NativeAddon.layer))
      }),
    locate: (tenant, name, options = {}) => locate(tenant, name, options.writable ?? false)
  }
  return { ...service, open: (tenant, name, options) => openShared(service, tenant, name, options) }
})

export class RemoteClient extends Context.Tag("commy/RemoteClient")<RemoteClient, RemoteClientService>() {
  /** Connects (and authenticates) when built; fails if the first connection fails. */
  static readonly layer = (options: TransportOptions): Layer.Layer<RemoteClient, CommyError> =>
    Layer.effect(RemoteClient, makeRemote).pipe(Layer.provide(WssTransport.layer(options)))
}
