/**
 * SqliteMetadataStore: the MetadataStore in one SQLite file (WAL), through @effect/sql.
 *
 * The database holds key hashes, so it is created 0600 in a 0700 directory before SQLite opens
 * it. Foreign keys cascade: deleting a tenant removes its services, keys and (through the keys)
 * grants. Every query is a parameterised `sql` template; every SQL failure is a StoreError,
 * except the constraint violations that mean AlreadyExists / TenantNotFound.
 *
 * Several processes may share the file (the server and the admin CLI), so nothing is cached:
 * a key revoked by the CLI stops working on the server's next `authenticate` / `rightsFor`.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as path from "node:path"
import {
  AlreadyExists,
  AuthenticationFailed,
  InvalidArgument,
  InvalidName,
  LimitExceeded,
  ServiceNotFound,
  StoreError,
  TenantNotFound
} from "../CommyError.js"
import { checkName } from "../local/Directory.js"
import { newServiceId } from "../local/ServiceFiles.js"
import { digestKey, generateKey, hashKey, isKeyId, parseKey, verifyDigest } from "./ApiKeys.js"
import { ensureDir, ensurePrivateFile } from "./DataDir.js"
import {
  type ApiKeyRecord,
  type Grant,
  type KeyStatus,
  MetadataStore,
  type MetadataStoreService,
  type Right,
  type ServiceRecord,
  type Tenant
} from "./MetadataStore.js"

export interface SqliteMetadataStoreOptions {
  /** Path of the database file; it and its directory are created if missing. */
  readonly filename: string
}

/** The service name that, in a grant, means every service of the tenant. */
export const ALL_SERVICES = "*"

/** Rights in canonical order (how they are stored and listed). */
export const allRights: ReadonlyArray<Right> = ["read", "write", "admin"]

export const isRight = (u: unknown): u is Right => allRights.includes(u as Right)

/** Schema history; append new entries, never edit applied ones. */
export const migrations: Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> = {
  "1_initial": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE tenants (
      name TEXT PRIMARY KEY NOT NULL,
      created_at INTEGER NOT NULL
    ) STRICT`
    yield* sql`CREATE TABLE services (
      id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 32 AND id NOT GLOB '*[^0-9a-f]*'),
      tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
      name TEXT NOT NULL,
      persistent INTEGER NOT NULL CHECK (persistent IN (0, 1)),
      created_at INTEGER NOT NULL,
      UNIQUE (tenant, name)
    ) STRICT`
    yield* sql`CREATE TABLE api_keys (
      id TEXT PRIMARY KEY NOT NULL,
      tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
      label TEXT NOT NULL,
      hash TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      revoked_at INTEGER
    ) STRICT`
    // Cascading deletes look keys up by tenant.
    yield* sql`CREATE INDEX api_keys_tenant ON api_keys (tenant)`
    yield* sql`CREATE TABLE grants (
      key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
      service TEXT NOT NULL,
      rights TEXT NOT NULL,
      PRIMARY KEY (key_id, service)
    ) STRICT`
  }),
  "2_certificates": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // mTLS: a client certificate (by SHA-256 fingerprint) authenticates as an API key's principal.
    yield* sql`CREATE TABLE certificates (
      fingerprint TEXT PRIMARY KEY NOT NULL,
      key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE
    ) STRICT`
  }),
  "3_operator": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // Operator keys may also create and delete tenants over the protocol; existing keys are not.
    yield* sql`ALTER TABLE api_keys ADD COLUMN operator INTEGER NOT NULL DEFAULT 0 CHECK (operator IN (0, 1))`
  })
}

// -- rows ------------------------------------------------------------------------------------

interface TenantRow {
  readonly name: string
  readonly created_at: number
}
interface ServiceRow {
  readonly id: string
  readonly tenant: string
  readonly name: string
  readonly persistent: number
  readonly created_at: number
}
interface KeyRow {
  readonly id: string
  readonly tenant: string
  readonly label: string
  readonly created_at: number
  readonly revoked_at: number | null
  readonly operator: number
}
interface GrantRow {
  readonly key_id: string
  readonly service: string
  readonly rights: string
}

const toTenant = (row: TenantRow): Tenant => ({ name: row.name, createdAt: row.created_at })
const toService = (row: ServiceRow): ServiceRecord => ({
  id: row.id,
  tenant: row.tenant,
  name: row.name,
  persistent: row.persistent === 1,
  createdAt: row.created_at
})
const toKey = (row: KeyRow): ApiKeyRecord => ({
  id: row.id,
  tenant: row.tenant,
  label: row.label,
  createdAt: row.created_at,
  revoked: row.revoked_at !== null,
  operator: row.operator === 1
})
const parseRights = (stored: string): ReadonlyArray<Right> => stored.split(",").filter(isRight)
const toGrant = (row: GrantRow): Grant => ({ keyId: row.key_id, service: row.service, rights: parseRights(row.rights) })

// -- errors ----------------------------------------------------------------------------------

/** better-sqlite3 error code (e.g. SQLITE_CONSTRAINT_FOREIGNKEY) carried by a SqlError. */
const sqliteCode = (error: SqlError): string | undefined => {
  const cause = error.cause as { code?: unknown } | undefined
  return typeof cause?.code === "string" ? cause.code : undefined
}

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : String(cause)

const storeError = (operation: string) => (error: SqlError): StoreError =>
  new StoreError({ message: `${operation}: ${describe(error.cause ?? error.message)}`, cause: error })

/** "AB:CD:…" or "abcd…" → 64 lowercase hex chars, or undefined. */
const normaliseFingerprint = (fingerprint: string): string | undefined => {
  const hex = fingerprint.replace(/:/g, "").toLowerCase()
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined
}

// -- service ---------------------------------------------------------------------------------

/** A service name: a valid name, and not the wildcard reserved for grants. */
const checkServiceName = (name: string): InvalidName | undefined =>
  name === ALL_SERVICES
    ? new InvalidName({ message: `"${ALL_SERVICES}" is reserved for grants on every service`, name })
    : checkName(name)

/** Builds the store on a migrated SQL client (foreign keys must be on for the connection). */
const make: Effect.Effect<MetadataStoreService, never, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const now = () => Date.now()

  const createTenant: MetadataStoreService["createTenant"] = (name) =>
    Effect.gen(function*() {
      const invalid = checkName(name)
      if (invalid) return yield* invalid
      const rows = yield* sql<TenantRow>`INSERT INTO tenants (name, created_at) VALUES (${name}, ${now()})
        ON CONFLICT (name) DO NOTHING RETURNING name, created_at`.pipe(Effect.mapError(storeError("createTenant")))
      if (rows.length === 0) return yield* new AlreadyExists({ message: `tenant ${JSON.stringify(name)} already exists` })
      return toTenant(rows[0]!)
    })

  const getTenant: MetadataStoreService["getTenant"] = (name) =>
    Effect.gen(function*() {
      const rows = yield* sql<TenantRow>`SELECT name, created_at FROM tenants WHERE name = ${name}`.pipe(
        Effect.mapError(storeError("getTenant"))
      )
      if (rows.length === 0) return yield* tenantNotFound(name)
      return toTenant(rows[0]!)
    })

  const tenantNotFound = (tenant: string) =>
    new TenantNotFound({ message: `no tenant ${JSON.stringify(tenant)}`, tenant })

  /** Fails with TenantNotFound unless the tenant exists (lists would otherwise be silently empty). */
  const requireTenant = (tenant: string) => Effect.asVoid(getTenant(tenant))

  const listTenants: MetadataStoreService["listTenants"] = sql<TenantRow>`SELECT name, created_at FROM tenants
    ORDER BY name`.pipe(Effect.map((rows) => rows.map(toTenant)), Effect.mapError(storeError("listTenants")))

  const deleteTenant: MetadataStoreService["deleteTenant"] = (name) =>
    Effect.gen(function*() {
      // Writes first, so the transaction takes SQLite's write lock at once (no upgrade race).
      const services = yield* sql<ServiceRow>`DELETE FROM services WHERE tenant = ${name}
        RETURNING id, tenant, name, persistent, created_at`
      const deleted = yield* sql<TenantRow>`DELETE FROM tenants WHERE name = ${name} RETURNING name, created_at`
      if (deleted.length === 0) return yield* tenantNotFound(name)
      return services.map(toService).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    }).pipe(sql.withTransaction, Effect.mapError((e) => (e._tag === "SqlError" ? storeError("deleteTenant")(e) : e)))

  const createService: MetadataStoreService["createService"] = (input) =>
    Effect.gen(function*() {
      const invalid = checkServiceName(input.name)
      if (invalid) return yield* invalid
      const limit = input.maxServices ?? Number.MAX_SAFE_INTEGER
      // One statement: the count and the insert cannot interleave with another create, even from
      // another process. (SQLite needs the WHERE before an upsert clause on INSERT … SELECT.)
      const rows = yield* sql<ServiceRow>`INSERT INTO services (id, tenant, name, persistent, created_at)
        SELECT ${newServiceId()}, ${input.tenant}, ${input.name}, ${input.persistent ? 1 : 0}, ${now()}
        WHERE (SELECT count(*) FROM services WHERE tenant = ${input.tenant}) < ${limit}
        ON CONFLICT (tenant, name) DO NOTHING
        RETURNING id, tenant, name, persistent, created_at`.pipe(
        Effect.catchTag("SqlError", (e) =>
          Effect.fail(
            sqliteCode(e) === "SQLITE_CONSTRAINT_FOREIGNKEY" ? tenantNotFound(input.tenant) : storeError("createService")(e)
          ))
      )
      if (rows.length > 0) return toService(rows[0]!)
      // Nothing inserted: the name is taken, or the tenant is full (a taken name wins: it is the
      // more precise answer). A missing tenant fails the foreign key only when a row is inserted.
      const taken = yield* sql<{ id: string }>`SELECT id FROM services WHERE tenant = ${input.tenant} AND name = ${input.name}`
        .pipe(Effect.mapError(storeError("createService")))
      if (taken.length > 0) {
        return yield* new AlreadyExists({
          message: `service ${JSON.stringify(input.name)} already exists in tenant ${JSON.stringify(input.tenant)}`
        })
      }
      yield* requireTenant(input.tenant)
      return yield* new LimitExceeded({
        message: `tenant ${JSON.stringify(input.tenant)} already holds ${limit} services, the most allowed per tenant` +
          " (delete one first)"
      })
    })

  const serviceNotFound = (tenant: string, name: string) =>
    new ServiceNotFound({ message: `no service ${JSON.stringify(name)} in tenant ${JSON.stringify(tenant)}`, service: name })

  const getService: MetadataStoreService["getService"] = (tenant, name) =>
    Effect.gen(function*() {
      const rows = yield* sql<ServiceRow>`SELECT id, tenant, name, persistent, created_at FROM services
        WHERE tenant = ${tenant} AND name = ${name}`.pipe(Effect.mapError(storeError("getService")))
      if (rows.length === 0) return yield* serviceNotFound(tenant, name)
      return toService(rows[0]!)
    })

  const listServices: MetadataStoreService["listServices"] = (tenant) =>
    Effect.zipRight(
      requireTenant(tenant),
      sql<ServiceRow>`SELECT id, tenant, name, persistent, created_at FROM services WHERE tenant = ${tenant}
        ORDER BY name`.pipe(Effect.map((rows) => rows.map(toService)), Effect.mapError(storeError("listServices")))
    )

  const deleteService: MetadataStoreService["deleteService"] = (tenant, name) =>
    Effect.gen(function*() {
      const rows = yield* sql<ServiceRow>`DELETE FROM services WHERE tenant = ${tenant} AND name = ${name}
        RETURNING id, tenant, name, persistent, created_at`.pipe(Effect.mapError(storeError("deleteService")))
      if (rows.length === 0) return yield* serviceNotFound(tenant, name)
      return toService(rows[0]!)
    })

  const countServices: MetadataStoreService["countServices"] = (tenant) =>
    sql<{ n: number }>`SELECT count(*) AS n FROM services WHERE tenant = ${tenant}`.pipe(
      Effect.map((rows) => rows[0]?.n ?? 0),
      Effect.mapError(storeError("countServices"))
    )

  /** Inserts a fresh key; a 48-bit id collision (primary key) is retried with a new key. */
  const insertKey = (tenant: string, label: string, operator: boolean) =>
    Effect.suspend(() => {
      const { id, key } = generateKey()
      return sql<KeyRow>`INSERT INTO api_keys (id, tenant, label, hash, created_at, revoked_at, operator)
        VALUES (${id}, ${tenant}, ${label}, ${hashKey(key)}, ${now()}, NULL, ${operator ? 1 : 0})
        RETURNING id, tenant, label, created_at, revoked_at, operator`.pipe(
        Effect.map((rows) => ({ record: toKey(rows[0]!), secret: key }))
      )
    }).pipe(
      Effect.retry({
        schedule: Schedule.recurs(3),
        while: (e) => sqliteCode(e) === "SQLITE_CONSTRAINT_PRIMARYKEY"
      })
    )

  const createKey: MetadataStoreService["createKey"] = (input) =>
    insertKey(input.tenant, input.label, input.operator ?? false).pipe(
      Effect.catchTag("SqlError", (e) =>
        Effect.fail(
          sqliteCode(e) === "SQLITE_CONSTRAINT_FOREIGNKEY" ? tenantNotFound(input.tenant) : storeError("createKey")(e)
        ))
    )

  const listKeys: MetadataStoreService["listKeys"] = (tenant) =>
    Effect.zipRight(
      requireTenant(tenant),
      sql<KeyRow>`SELECT id, tenant, label, created_at, revoked_at, operator FROM api_keys WHERE tenant = ${tenant}
        ORDER BY created_at, id`.pipe(Effect.map((rows) => rows.map(toKey)), Effect.mapError(storeError("listKeys")))
    )

  const keyNotFound = (tenant: string, keyId: string) =>
    new InvalidArgument({ message: `no key ${JSON.stringify(keyId)} in tenant ${JSON.stringify(tenant)}` })

  const revokeKey: MetadataStoreService["revokeKey"] = (tenant, keyId) =>
    Effect.gen(function*() {
      // Idempotent: revoking twice keeps the first revocation time.
      const rows = yield* sql<{ id: string }>`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ${now()})
        WHERE id = ${keyId} AND tenant = ${tenant} RETURNING id`.pipe(Effect.mapError(storeError("revokeKey")))
      if (rows.length === 0) return yield* keyNotFound(tenant, keyId)
    })

  const grant: MetadataStoreService["grant"] = (input) =>
    Effect.gen(function*() {
      const { keyId, service, tenant } = input
      if (service !== ALL_SERVICES) {
        const invalid = checkName(service)
        if (invalid) return yield* invalid
      }
      const unknown = input.rights.filter((r) => !isRight(r))
      if (unknown.length > 0) {
        return yield* new InvalidArgument({
          message: `unknown rights ${JSON.stringify(unknown)}; rights are ${allRights.join(", ")}`
        })
      }
      if (!isKeyId(keyId)) return yield* keyNotFound(tenant, keyId)
      const rights = allRights.filter((r) => input.rights.includes(r)).join(",")
      if (rights === "") {
        const keys = yield* sql<{ id: string }>`SELECT id FROM api_keys WHERE id = ${keyId} AND tenant = ${tenant}`
          .pipe(Effect.mapError(storeError("grant")))
        if (keys.length === 0) return yield* keyNotFound(tenant, keyId)
        yield* sql`DELETE FROM grants WHERE key_id = ${keyId} AND service = ${service}`.pipe(
          Effect.mapError(storeError("grant"))
        )
        return
      }
      // One statement: the key must belong to the tenant, and the grant replaces any previous one.
      const rows = yield* sql<{ key_id: string }>`INSERT INTO grants (key_id, service, rights)
        SELECT id, ${service}, ${rights} FROM api_keys WHERE id = ${keyId} AND tenant = ${tenant}
        ON CONFLICT (key_id, service) DO UPDATE SET rights = excluded.rights
        RETURNING key_id`.pipe(Effect.mapError(storeError("grant")))
      if (rows.length === 0) return yield* keyNotFound(tenant, keyId)
    })

  const listGrants: MetadataStoreService["listGrants"] = (tenant, keyId) =>
    sql<GrantRow>`SELECT g.key_id, g.service, g.rights FROM grants g JOIN api_keys k ON k.id = g.key_id
      WHERE g.key_id = ${keyId} AND k.tenant = ${tenant} ORDER BY g.service`.pipe(
      Effect.map((rows) => rows.map(toGrant)),
      Effect.mapError(storeError("listGrants"))
    )

  const authenticationFailed = new AuthenticationFailed({ message: "invalid API key for this tenant" })

  const authenticate: MetadataStoreService["authenticate"] = (tenant, key) =>
    Effect.gen(function*() {
      const parsed = parseKey(key)
      if (parsed === undefined) return yield* authenticationFailed
      const rows = yield* sql<{ hash: string; revoked_at: number | null }>`SELECT hash, revoked_at FROM api_keys
        WHERE id = ${parsed.id} AND tenant = ${tenant}`.pipe(Effect.mapError(storeError("authenticate")))
      const row = rows[0]
      // Compare even when there is no row, so an unknown id costs the same as a wrong secret.
      const matches = verifyDigest(digestKey(key), row?.hash ?? "")
      if (row === undefined || row.revoked_at !== null || !matches) return yield* authenticationFailed
      return { tenant, keyId: parsed.id }
    })

  const bindCertificate: MetadataStoreService["bindCertificate"] = ({ fingerprint, keyId, tenant }) =>
    Effect.gen(function*() {
      const normalised = normaliseFingerprint(fingerprint)
      if (normalised === undefined) {
        return yield* new InvalidArgument({ message: "a certificate fingerprint is 32 hex bytes (SHA-256)" })
      }
      if (!isKeyId(keyId)) return yield* keyNotFound(tenant, keyId)
      const rows = yield* sql<{ key_id: string }>`INSERT INTO certificates (fingerprint, key_id)
        SELECT ${normalised}, id FROM api_keys WHERE id = ${keyId} AND tenant = ${tenant}
        ON CONFLICT (fingerprint) DO UPDATE SET key_id = excluded.key_id
        RETURNING key_id`.pipe(Effect.mapError(storeError("bindCertificate")))
      if (rows.length === 0) return yield* keyNotFound(tenant, keyId)
    })

  const authenticateCertificate: MetadataStoreService["authenticateCertificate"] = (tenant, fingerprint) =>
    Effect.gen(function*() {
      const normalised = normaliseFingerprint(fingerprint)
      if (normalised === undefined) return yield* certificateFailed
      const rows = yield* sql<{ id: string }>`SELECT k.id FROM certificates c JOIN api_keys k ON k.id = c.key_id
        WHERE c.fingerprint = ${normalised} AND k.tenant = ${tenant} AND k.revoked_at IS NULL`.pipe(
        Effect.mapError(storeError("authenticateCertificate"))
      )
      const row = rows[0]
      return row === undefined ? yield* certificateFailed : { tenant, keyId: row.id }
    })

  const certificateFailed = new AuthenticationFailed({ message: "no key of this tenant is bound to the client certificate" })

  const keyStatus: MetadataStoreService["keyStatus"] = (principal) =>
    sql<{ revoked_at: number | null; operator: number }>`SELECT revoked_at, operator FROM api_keys
      WHERE id = ${principal.keyId} AND tenant = ${principal.tenant}`.pipe(
      Effect.map((rows): KeyStatus => {
        const row = rows[0]
        const active = row !== undefined && row.revoked_at === null
        return { active, operator: active && row.operator === 1 }
      }),
      Effect.mapError(storeError("keyStatus"))
    )

  const rightsFor: MetadataStoreService["rightsFor"] = (principal, service) =>
    // Joined with the key on every call, so revoking a key (or deleting its tenant) takes effect
    // on connections authenticated before.
    sql<{ rights: string }>`SELECT g.rights FROM grants g JOIN api_keys k ON k.id = g.key_id
      WHERE g.key_id = ${principal.keyId} AND k.tenant = ${principal.tenant} AND k.revoked_at IS NULL
        AND g.service IN (${service}, ${ALL_SERVICES})`.pipe(
      Effect.map((rows) => new Set(rows.flatMap((row) => parseRights(row.rights))) as ReadonlySet<Right>),
      Effect.mapError(storeError("rightsFor"))
    )

  return {
    bindCertificate,
    authenticateCertificate,
    createTenant,
    getTenant,
    listTenants,
    deleteTenant,
    createService,
    getService,
    listServices,
    deleteService,
    countServices,
    createKey,
    listKeys,
    revokeKey,
    grant,
    listGrants,
    authenticate,
    keyStatus,
    rightsFor
  }
})

// -- layer -----------------------------------------------------------------------------------

/** Runs once per connection, before migrations: SQLite ignores this pragma inside transactions. */
const setup = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`PRAGMA foreign_keys = ON`
  yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: "commy_migrations" })
})

/** Any failure while opening (including better-sqlite3 throwing from its constructor) as a StoreError. */
const toStoreError = (filename: string) => (cause: Cause.Cause<unknown>): StoreError => {
  const failure = Cause.squash(cause)
  if (failure instanceof StoreError) return failure
  const inner = (failure as { cause?: unknown }).cause
  return new StoreError({
    message: `cannot open the metadata database ${filename}: ${describe(inner ?? failure)}`,
    cause: failure
  })
}

/**
 * The SQLite MetadataStore at `options.filename`, open for the layer's lifetime (the client's
 * scope finaliser closes the database).
 */
export const layer = (options: SqliteMetadataStoreOptions): Layer.Layer<MetadataStore, StoreError> => {
  const filename = path.resolve(options.filename)
  const client = Layer.unwrapEffect(
    Effect.gen(function*() {
      // Only creates a missing directory: an existing one is the caller's (DataDir tightens data dirs).
      yield* ensureDir(path.dirname(filename), { tighten: false })
      yield* ensurePrivateFile(filename)
      return SqliteClient.layer({ filename })
    })
  )
  return Layer.effect(MetadataStore, Effect.zipRight(setup, make)).pipe(
    Layer.provide(client),
    Layer.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause) ? Layer.failCause(cause as Cause.Cause<never>) : Layer.fail(toStoreError(filename)(cause))
    )
  )
}
