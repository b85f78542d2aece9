/**
 * MetadataStore: the server's durable records: tenants, services, API keys and grants.
 *
 * Variable layouts and values are not here: they live in each service's `.mem` file.
 * The implementation (`SqliteMetadataStore.layer`) is SQLite through @effect/sql-sqlite-node.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type {
  AlreadyExists,
  AuthenticationFailed,
  InvalidArgument,
  InvalidName,
  LimitExceeded,
  ServiceNotFound,
  StoreError,
  TenantNotFound
} from "../CommyError.js"

export type Right = "read" | "write" | "admin"

export interface Tenant {
  readonly name: string
  readonly createdAt: number
}

export interface ServiceRecord {
  /** 32 lowercase hex chars: the service file is `service_<id>.mem`. Unguessable. */
  readonly id: string
  readonly tenant: string
  readonly name: string
  readonly persistent: boolean
  readonly createdAt: number
}

export interface ApiKeyRecord {
  /** Public identifier, part of the key string; safe to log. */
  readonly id: string
  readonly tenant: string
  readonly label: string
  readonly createdAt: number
  readonly revoked: boolean
  /** An operator key may also create and delete tenants over the protocol. */
  readonly operator: boolean
}

export interface Grant {
  readonly keyId: string
  /** A service name, or "*" for every service of the tenant. */
  readonly service: string
  readonly rights: ReadonlyArray<Right>
}

/** An authenticated API key. */
export interface Principal {
  readonly tenant: string
  readonly keyId: string
}

/** What a principal's key is now: `active` is false once it is revoked or its tenant deleted. */
export interface KeyStatus {
  readonly active: boolean
  readonly operator: boolean
}

export interface MetadataStoreService {
  readonly createTenant: (name: string) => Effect.Effect<Tenant, InvalidName | AlreadyExists | StoreError>
  readonly getTenant: (name: string) => Effect.Effect<Tenant, TenantNotFound | StoreError>
  readonly listTenants: Effect.Effect<ReadonlyArray<Tenant>, StoreError>
  /** Deletes the tenant with its keys, grants and service records; returns the removed services. */
  readonly deleteTenant: (name: string) => Effect.Effect<ReadonlyArray<ServiceRecord>, TenantNotFound | StoreError>

  /**
   * Creates a service record. With `maxServices`, fails with LimitExceeded when the tenant already
   * holds that many services (checked in the same statement as the insert, so concurrent creates
   * cannot overshoot).
   */
  readonly createService: (input: {
    readonly tenant: string
    readonly name: string
    readonly persistent: boolean
    readonly maxServices?: number | undefined
  }) => Effect.Effect<ServiceRecord, InvalidName | AlreadyExists | TenantNotFound | LimitExceeded | StoreError>
  readonly getService: (tenant: string, name: string) => Effect.Effect<ServiceRecord, ServiceNotFound | StoreError>
  readonly listServices: (tenant: string) => Effect.Effect<ReadonlyArray<ServiceRecord>, TenantNotFound | StoreError>
  readonly deleteService: (tenant: string, name: string) => Effect.Effect<ServiceRecord, ServiceNotFound | StoreError>
  /** How many services the tenant holds (0 for a tenant that does not exist). */
  readonly countServices: (tenant: string) => Effect.Effect<number, StoreError>

  /**
   * Creates a key. `secret` is the full key string, shown once: only its hash is stored.
   * Format: `commy_<id>_<secret>` with 256 bits of secret. `operator` (default false) marks a key
   * that may also create and delete tenants.
   */
  readonly createKey: (input: {
    readonly tenant: string
    readonly label: string
    readonly operator?: boolean | undefined
  }) => Effect.Effect<
    { readonly record: ApiKeyRecord; readonly secret: string },
    TenantNotFound | StoreError
  >
  readonly listKeys: (tenant: string) => Effect.Effect<ReadonlyArray<ApiKeyRecord>, TenantNotFound | StoreError>
  readonly revokeKey: (tenant: string, keyId: string) => Effect.Effect<void, InvalidArgument | StoreError>
  /** Replaces the rights of `keyId` on `service` ("*" = all); empty rights remove the grant. */
  readonly grant: (input: {
    readonly tenant: string
    readonly keyId: string
    readonly service: string
    readonly rights: ReadonlyArray<Right>
  }) => Effect.Effect<void, InvalidArgument | InvalidName | StoreError>
  readonly listGrants: (tenant: string, keyId: string) => Effect.Effect<ReadonlyArray<Grant>, StoreError>
  /**
   * Verifies a key string for a tenant: hash compared in constant time, revoked keys refused.
   * Every failure is the same AuthenticationFailed, so callers learn nothing about which part failed.
   */
  readonly authenticate: (tenant: string, key: string) => Effect.Effect<Principal, AuthenticationFailed | StoreError>
  /**
   * Binds a client certificate (SHA-256 fingerprint, "AB:CD:…" or hex) to a key: mTLS connections
   * presenting that certificate authenticate as the key's principal (and get its grants).
   */
  readonly bindCertificate: (input: {
    readonly tenant: string
    readonly keyId: string
    readonly fingerprint: string
  }) => Effect.Effect<void, InvalidArgument | StoreError>
  /** The principal a verified client certificate stands for in a tenant. */
  readonly authenticateCertificate: (tenant: string, fingerprint: string) => Effect.Effect<Principal, AuthenticationFailed | StoreError>
  /**
   * The principal's key as it is now (not cached, so a revocation or a deleted tenant shows at
   * once). Unknown keys are inactive.
   */
  readonly keyStatus: (principal: Principal) => Effect.Effect<KeyStatus, StoreError>
  /** The rights a principal holds on a service name (its exact grant plus "*" grants). */
  readonly rightsFor: (principal: Principal, service: string) => Effect.Effect<ReadonlySet<Right>, StoreError>
}

export class MetadataStore extends Context.Tag("commy/MetadataStore")<MetadataStore, MetadataStoreService>() {}
