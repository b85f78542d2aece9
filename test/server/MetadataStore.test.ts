import { describe, expect, it } from "@effect/vitest"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import { generateKey, hashKey } from "../../src/server/ApiKeys.js"
import { MetadataStore, type MetadataStoreService } from "../../src/server/MetadataStore.js"
import { layer, migrations } from "../../src/server/SqliteMetadataStore.js"
import { tempDir } from "../support/tempDir.js"

/** Opens the store at `filename` in the current scope (closed with it). */
const open = (filename: string) =>
  Effect.map(Layer.build(layer({ filename })), (context) => Context.get(context, MetadataStore))

/** A store in a fresh temp dir; the db sits in a `data` subdirectory the layer must create. */
const withStore = <A, E>(
  f: (store: MetadataStoreService, filename: string) => Effect.Effect<A, E, Scope.Scope>
) =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const filename = path.join(dir, "data", "metadata.db")
    return yield* f(yield* open(filename), filename)
  }).pipe(Effect.scoped)

/** The error code of a failed effect (fails the test if it succeeded). */
const codeOf = <A, E extends { readonly code: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.either(effect), (result) => (Either.isLeft(result) ? result.left.code : "succeeded"))

/** Raw row counts through a second connection, to check what cascades really removed. */
const count = (filename: string, table: "tenants" | "services" | "api_keys" | "grants") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ n: number }>`SELECT count(*) AS n FROM ${sql(table)}`
    return rows[0]!.n
  }).pipe(Effect.provide(SqliteClient.layer({ filename })))

const badNames = ["a/b", "a\\b", "..", ".", "", "x".repeat(97), "tab\there", "nul\u0000"]

describe("SqliteMetadataStore", () => {
  it.effect("creates, gets, lists and deletes tenants", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const before = Date.now()
        const acme = yield* store.createTenant("acme")
        expect(acme.name).toBe("acme")
        expect(acme.createdAt).toBeGreaterThanOrEqual(before)
        yield* store.createTenant("beta")
        expect(yield* store.getTenant("acme")).toEqual(acme)
        expect((yield* store.listTenants).map((t) => t.name)).toEqual(["acme", "beta"])
        expect(yield* codeOf(store.createTenant("acme"))).toBe("ALREADY_EXISTS")
        expect(yield* codeOf(store.getTenant("nope"))).toBe("TENANT_NOT_FOUND")
        expect(yield* store.deleteTenant("beta")).toEqual([])
        expect(yield* codeOf(store.deleteTenant("beta"))).toBe("TENANT_NOT_FOUND")
        expect((yield* store.listTenants).map((t) => t.name)).toEqual(["acme"])
      })
    ))

  it.effect("refuses invalid tenant and service names with INVALID_NAME", () =>
    withStore((store) =>
      Effect.gen(function*() {
        yield* store.createTenant("acme")
        for (const name of badNames) {
          expect(yield* codeOf(store.createTenant(name)), JSON.stringify(name)).toBe("INVALID_NAME")
          expect(yield* codeOf(store.createService({ tenant: "acme", name, persistent: false }))).toBe("INVALID_NAME")
        }
        // "*" means every service in grants, so no service may be called that.
        expect(yield* codeOf(store.createService({ tenant: "acme", name: "*", persistent: false }))).toBe(
          "INVALID_NAME"
        )
        expect((yield* store.listTenants).map((t) => t.name)).toEqual(["acme"])
        expect(yield* store.listServices("acme")).toEqual([])
      })
    ))

  it.effect("creates, gets, lists and deletes services", () =>
    withStore((store) =>
      Effect.gen(function*() {
        yield* store.createTenant("acme")
        yield* store.createTenant("beta")
        const sensors = yield* store.createService({ tenant: "acme", name: "sensors", persistent: true })
        expect(sensors.id).toMatch(/^[0-9a-f]{32}$/)
        expect(sensors).toMatchObject({ tenant: "acme", name: "sensors", persistent: true })
        const alpha = yield* store.createService({ tenant: "acme", name: "alpha", persistent: false })
        expect(alpha.persistent).toBe(false)
        expect(alpha.id).not.toBe(sensors.id)
        // Same name in another tenant is a different service.
        const other = yield* store.createService({ tenant: "beta", name: "sensors", persistent: false })
        expect(other.id).not.toBe(sensors.id)

        expect(yield* store.getService("acme", "sensors")).toEqual(sensors)
        expect((yield* store.listServices("acme")).map((s) => s.name)).toEqual(["alpha", "sensors"])
        expect(yield* codeOf(store.createService({ tenant: "acme", name: "sensors", persistent: false }))).toBe(
          "ALREADY_EXISTS"
        )
        expect(yield* codeOf(store.createService({ tenant: "nope", name: "x", persistent: false }))).toBe(
          "TENANT_NOT_FOUND"
        )
        expect(yield* codeOf(store.getService("acme", "missing"))).toBe("SERVICE_NOT_FOUND")
        expect(yield* codeOf(store.getService("nope", "sensors"))).toBe("SERVICE_NOT_FOUND")
        expect(yield* codeOf(store.listServices("nope"))).toBe("TENANT_NOT_FOUND")

        expect(yield* store.deleteService("acme", "sensors")).toEqual(sensors)
        expect(yield* codeOf(store.deleteService("acme", "sensors"))).toBe("SERVICE_NOT_FOUND")
        expect((yield* store.listServices("acme")).map((s) => s.name)).toEqual(["alpha"])
        expect((yield* store.listServices("beta")).map((s) => s.name)).toEqual(["sensors"])
      })
    ))

  it.effect("creates keys that authenticate only for their tenant, until revoked", () =>
    withStore((store) =>
      Effect.gen(function*() {
        yield* store.createTenant("acme")
        yield* store.createTenant("beta")
        const { record, secret } = yield* store.createKey({ tenant: "acme", label: "ci" })
        expect(record).toMatchObject({ tenant: "acme", label: "ci", revoked: false })
        expect(record.id).toMatch(/^[0-9a-f]{12}$/)
        expect(secret).toMatch(new RegExp(`^commy_${record.id}_[A-Za-z0-9_-]{43}$`))
        expect(yield* codeOf(store.createKey({ tenant: "nope", label: "" }))).toBe("TENANT_NOT_FOUND")

        expect(yield* store.authenticate("acme", secret)).toEqual({ tenant: "acme", keyId: record.id })
        expect(yield* codeOf(store.authenticate("beta", secret))).toBe("AUTHENTICATION_FAILED")
        expect(yield* codeOf(store.authenticate("nope", secret))).toBe("AUTHENTICATION_FAILED")

        const second = yield* store.createKey({ tenant: "acme", label: "" })
        expect((yield* store.listKeys("acme")).map((k) => k.id).sort()).toEqual([record.id, second.record.id].sort())
        expect(yield* store.listKeys("beta")).toEqual([])
        expect(yield* codeOf(store.listKeys("nope"))).toBe("TENANT_NOT_FOUND")

        expect(yield* codeOf(store.revokeKey("beta", record.id))).toBe("INVALID_ARGUMENT")
        expect(yield* codeOf(store.revokeKey("acme", "000000000000"))).toBe("INVALID_ARGUMENT")
        yield* store.revokeKey("acme", record.id)
        yield* store.revokeKey("acme", record.id) // idempotent
        expect(yield* codeOf(store.authenticate("acme", secret))).toBe("AUTHENTICATION_FAILED")
        const keys = yield* store.listKeys("acme")
        expect(keys.find((k) => k.id === record.id)?.revoked).toBe(true)
        expect(keys.find((k) => k.id === second.record.id)?.revoked).toBe(false)
        // Revoking one key leaves the others working.
        expect((yield* store.authenticate("acme", second.secret)).keyId).toBe(second.record.id)
      })
    ))

  it.effect("refuses malformed and forged keys with AUTHENTICATION_FAILED", () =>
    withStore((store) =>
      Effect.gen(function*() {
        yield* store.createTenant("acme")
        const { record, secret } = yield* store.createKey({ tenant: "acme", label: "" })
        const flipped = secret.slice(0, -1) + (secret.endsWith("A") ? "B" : "A")
        const otherId = secret.replace(record.id, record.id === "000000000000" ? "111111111111" : "000000000000")
        const malformed = [
          "",
          "commy_",
          "commy__",
          secret.slice(0, -1),
          secret + "A",
          secret.toUpperCase(),
          secret.replace("commy_", "commx_"),
          ` ${secret}`,
          `commy_${record.id}_${"!".repeat(43)}`,
          "x".repeat(1_000_000),
          flipped,
          otherId
        ]
        for (const key of malformed) {
          expect(yield* codeOf(store.authenticate("acme", key)), key.slice(0, 80)).toBe("AUTHENTICATION_FAILED")
        }
        for (const key of [undefined, null, 42, {}] as ReadonlyArray<unknown>) {
          expect(yield* codeOf(store.authenticate("acme", key as string))).toBe("AUTHENTICATION_FAILED")
        }
      })
    ))

  it.effect("grants rights on exact names and on *, replaces them, and removes them when empty", () =>
    withStore((store) =>
      Effect.gen(function*() {
        yield* store.createTenant("acme")
        yield* store.createTenant("beta")
        const { record, secret } = yield* store.createKey({ tenant: "acme", label: "" })
        const principal = yield* store.authenticate("acme", secret)
        const rights = (service: string) => Effect.map(store.rightsFor(principal, service), (s) => [...s].sort())

        expect(yield* rights("sensors")).toEqual([])
        yield* store.grant({ tenant: "acme", keyId: record.id, service: "sensors", rights: ["write", "read"] })
        expect(yield* rights("sensors")).toEqual(["read", "write"])
        expect(yield* rights("other")).toEqual([])

        yield* store.grant({ tenant: "acme", keyId: record.id, service: "*", rights: ["read"] })
        expect(yield* rights("other")).toEqual(["read"])
        expect(yield* rights("sensors")).toEqual(["read", "write"])
        // Grants need no existing service: a name can be granted before it is created.
        yield* store.grant({ tenant: "acme", keyId: record.id, service: "future", rights: ["admin"] })
        expect(yield* rights("future")).toEqual(["admin", "read"])

        expect(yield* store.listGrants("acme", record.id)).toEqual([
          { keyId: record.id, service: "*", rights: ["read"] },
          { keyId: record.id, service: "future", rights: ["admin"] },
          { keyId: record.id, service: "sensors", rights: ["read", "write"] }
        ])
        expect(yield* store.listGrants("beta", record.id)).toEqual([])

        // Replace, not merge.
        yield* store.grant({ tenant: "acme", keyId: record.id, service: "sensors", rights: ["admin"] })
        expect(yield* rights("sensors")).toEqual(["admin", "read"])
        // Empty rights remove the grant; removing a missing grant is fine.
        yield* store.grant({ tenant: "acme", keyId: record.id, service: "*", rights: [] })
        yield* store.grant({ tenant: "acme", keyId: record.id, service: "*", rights: [] })
        expect(yield* rights("other")).toEqual([])
        expect((yield* store.listGrants("acme", record.id)).map((g) => g.service)).toEqual(["future", "sensors"])

        // A key of another tenant, an unknown key, a bad right, a bad name.
        const grant = (input: Partial<Parameters<MetadataStoreService["grant"]>[0]>) =>
          codeOf(store.grant({ tenant: "acme", keyId: record.id, service: "s", rights: ["read"], ...input }))
        expect(yield* grant({ tenant: "beta" })).toBe("INVALID_ARGUMENT")
        expect(yield* grant({ tenant: "beta", rights: [] })).toBe("INVALID_ARGUMENT")
        expect(yield* grant({ keyId: "000000000000" })).toBe("INVALID_ARGUMENT")
        expect(yield* grant({ keyId: "not a key id" })).toBe("INVALID_ARGUMENT")
        expect(yield* grant({ rights: ["read", "root" as "read"] })).toBe("INVALID_ARGUMENT")
        expect(yield* grant({ service: "../etc" })).toBe("INVALID_NAME")
        expect(yield* grant({ service: "" })).toBe("INVALID_NAME")

        // Revocation reaches principals authenticated before it.
        yield* store.revokeKey("acme", record.id)
        expect(yield* rights("sensors")).toEqual([])
      })
    ))

  it.effect("a principal only gets rights inside its own tenant", () =>
    withStore((store) =>
      Effect.gen(function*() {
        yield* store.createTenant("acme")
        const { record, secret } = yield* store.createKey({ tenant: "acme", label: "" })
        yield* store.grant({ tenant: "acme", keyId: record.id, service: "*", rights: ["read", "write", "admin"] })
        const principal = yield* store.authenticate("acme", secret)
        expect((yield* store.rightsFor(principal, "x")).size).toBe(3)
        // A forged principal naming another tenant gets nothing.
        expect((yield* store.rightsFor({ tenant: "beta", keyId: record.id }, "x")).size).toBe(0)
      })
    ))

  it.effect("deleting a tenant removes its services, keys and grants, and nothing else", () =>
    withStore((store, filename) =>
      Effect.gen(function*() {
        yield* store.createTenant("acme")
        yield* store.createTenant("beta")
        const a1 = yield* store.createService({ tenant: "acme", name: "one", persistent: true })
        const a2 = yield* store.createService({ tenant: "acme", name: "two", persistent: false })
        yield* store.createService({ tenant: "beta", name: "one", persistent: false })
        const keyA = yield* store.createKey({ tenant: "acme", label: "" })
        const keyB = yield* store.createKey({ tenant: "beta", label: "" })
        yield* store.grant({ tenant: "acme", keyId: keyA.record.id, service: "*", rights: ["read"] })
        yield* store.grant({ tenant: "beta", keyId: keyB.record.id, service: "one", rights: ["read"] })

        const removed = yield* store.deleteTenant("acme")
        expect(removed).toEqual([a1, a2])
        expect(yield* count(filename, "services")).toBe(1)
        expect(yield* count(filename, "api_keys")).toBe(1)
        expect(yield* count(filename, "grants")).toBe(1)
        expect(yield* codeOf(store.authenticate("acme", keyA.secret))).toBe("AUTHENTICATION_FAILED")
        expect((yield* store.rightsFor({ tenant: "acme", keyId: keyA.record.id }, "one")).size).toBe(0)

        // A tenant recreated under the same name starts empty.
        yield* store.createTenant("acme")
        expect(yield* store.listKeys("acme")).toEqual([])
        expect(yield* store.listServices("acme")).toEqual([])
        expect(yield* codeOf(store.authenticate("acme", keyA.secret))).toBe("AUTHENTICATION_FAILED")
        expect((yield* store.authenticate("beta", keyB.secret)).tenant).toBe("beta")
      })
    ))

  it.effect("operator keys: flagged on creation and in listings; keyStatus follows revocation and tenant deletion", () =>
    withStore((store) =>
      Effect.gen(function*() {
        yield* store.createTenant("ops")
        yield* store.createTenant("acme")
        const operator = yield* store.createKey({ tenant: "ops", label: "root", operator: true })
        const plain = yield* store.createKey({ tenant: "ops", label: "" })
        expect(operator.record.operator).toBe(true)
        expect(plain.record.operator).toBe(false)
        expect((yield* store.listKeys("ops")).map((k) => [k.label, k.operator]).sort()).toEqual([["", false], ["root", true]])

        // Authentication is unchanged: the operator flag is looked up per operation.
        const principal = yield* store.authenticate("ops", operator.secret)
        expect(principal).toEqual({ tenant: "ops", keyId: operator.record.id })
        expect(yield* store.keyStatus(principal)).toEqual({ active: true, operator: true })
        expect(yield* store.keyStatus({ tenant: "ops", keyId: plain.record.id })).toEqual({ active: true, operator: false })
        // The same key id in another tenant, or an unknown id, is no key at all.
        expect(yield* store.keyStatus({ tenant: "acme", keyId: operator.record.id })).toEqual({ active: false, operator: false })
        expect(yield* store.keyStatus({ tenant: "ops", keyId: "000000000000" })).toEqual({ active: false, operator: false })

        yield* store.revokeKey("ops", operator.record.id)
        expect(yield* store.keyStatus(principal)).toEqual({ active: false, operator: false })
        yield* store.deleteTenant("ops")
        expect(yield* store.keyStatus({ tenant: "ops", keyId: plain.record.id })).toEqual({ active: false, operator: false })
      })
    ))

  it.effect("migration 3_operator: keys of an existing database stay valid and are not operators", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const filename = path.join(dir, "metadata.db")
      // A database as the previous release left it: migrations 1 and 2 only, with a key inserted
      // the way that release did (no operator column yet).
      const old = Object.fromEntries(Object.entries(migrations).filter(([name]) => name !== "3_operator"))
      expect(Object.keys(old)).toEqual(["1_initial", "2_certificates"])
      const legacy = generateKey()
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Migrator.make({})({ loader: Migrator.fromRecord(old), table: "commy_migrations" })
        yield* sql`INSERT INTO tenants (name, created_at) VALUES ('acme', 1)`
        yield* sql`INSERT INTO api_keys (id, tenant, label, hash, created_at, revoked_at)
          VALUES (${legacy.id}, 'acme', 'legacy', ${hashKey(legacy.key)}, 1, NULL)`
      }).pipe(Effect.provide(SqliteClient.layer({ filename })))
      const legacySecret = legacy.key

      const store = yield* open(filename)
      const principal = yield* store.authenticate("acme", legacySecret)
      expect(yield* store.keyStatus(principal)).toEqual({ active: true, operator: false })
      expect((yield* store.listKeys("acme")).map((k) => [k.label, k.operator])).toEqual([["legacy", false]])
      const fresh = yield* store.createKey({ tenant: "acme", label: "new", operator: true })
      expect(fresh.record.operator).toBe(true)
      // The column refuses anything but 0 and 1.
      const bad = yield* Effect.either(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE api_keys SET operator = 2`
      }).pipe(Effect.provide(SqliteClient.layer({ filename }))))
      expect(Either.isLeft(bad)).toBe(true)
    }).pipe(Effect.scoped))

  it.effect("maxServices: creates up to the limit, then LIMIT_EXCEEDED; a taken name still says ALREADY_EXISTS", () =>
    withStore((store) =>
      Effect.gen(function*() {
        yield* store.createTenant("acme")
        yield* store.createTenant("beta")
        for (const name of ["a", "b"]) yield* store.createService({ tenant: "acme", name, persistent: false, maxServices: 2 })
        expect(yield* store.countServices("acme")).toBe(2)
        const full = yield* Effect.flip(store.createService({ tenant: "acme", name: "c", persistent: false, maxServices: 2 }))
        expect(full.code).toBe("LIMIT_EXCEEDED")
        expect(full.message).toMatch(/acme.*2 services/)
        expect(yield* codeOf(store.createService({ tenant: "acme", name: "a", persistent: false, maxServices: 2 }))).toBe(
          "ALREADY_EXISTS"
        )
        // The limit is per tenant, and a missing tenant is still TENANT_NOT_FOUND (even at limit 0).
        yield* store.createService({ tenant: "beta", name: "a", persistent: false, maxServices: 2 })
        expect(yield* codeOf(store.createService({ tenant: "nope", name: "a", persistent: false, maxServices: 0 }))).toBe(
          "TENANT_NOT_FOUND"
        )
        // Concurrent creates cannot overshoot: the count is part of the insert.
        const results = yield* Effect.forEach(
          ["c", "d", "e", "f"],
          (name) => Effect.either(store.createService({ tenant: "beta", name, persistent: false, maxServices: 3 })),
          { concurrency: "unbounded" }
        )
        expect(results.filter(Either.isRight)).toHaveLength(2)
        expect(yield* store.countServices("beta")).toBe(3)
        // Room again after a delete; no limit without maxServices.
        yield* store.deleteService("acme", "a")
        yield* store.createService({ tenant: "acme", name: "c", persistent: false, maxServices: 2 })
        yield* store.createService({ tenant: "acme", name: "d", persistent: false })
        expect(yield* store.countServices("acme")).toBe(3)
        expect(yield* store.countServices("nope")).toBe(0)
      })
    ))

  it.effect("persists across reopening the database file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const filename = path.join(dir, "metadata.db")
      const created = yield* Effect.scoped(
        Effect.gen(function*() {
          const store = yield* open(filename)
          yield* store.createTenant("acme")
          const service = yield* store.createService({ tenant: "acme", name: "sensors", persistent: true })
          const key = yield* store.createKey({ tenant: "acme", label: "ci" })
          const revoked = yield* store.createKey({ tenant: "acme", label: "old" })
          yield* store.revokeKey("acme", revoked.record.id)
          yield* store.grant({ tenant: "acme", keyId: key.record.id, service: "sensors", rights: ["read"] })
          return { service, key, revoked }
        })
      )
      // Reopened twice: migrations must be idempotent.
      for (let i = 0; i < 2; i++) {
        yield* Effect.scoped(
          Effect.gen(function*() {
            const store = yield* open(filename)
            expect((yield* store.listTenants).map((t) => t.name)).toEqual(["acme"])
            expect(yield* store.getService("acme", "sensors")).toEqual(created.service)
            const principal = yield* store.authenticate("acme", created.key.secret)
            expect([...(yield* store.rightsFor(principal, "sensors"))]).toEqual(["read"])
            expect(yield* codeOf(store.authenticate("acme", created.revoked.secret))).toBe("AUTHENTICATION_FAILED")
            const keys = (yield* store.listKeys("acme")).map((k) => [k.label, k.revoked] as const)
            expect([...keys].sort()).toEqual([["ci", false], ["old", true]])
          })
        )
      }
    }).pipe(Effect.scoped))

  it.effect("creates the database 0600 in a 0700 directory, in WAL mode, never storing secrets", () =>
    withStore((store, filename) =>
      Effect.gen(function*() {
        yield* store.createTenant("acme")
        const { secret } = yield* store.createKey({ tenant: "acme", label: "" })
        expect(fs.statSync(filename).mode & 0o777).toBe(0o600)
        expect(fs.statSync(path.dirname(filename)).mode & 0o777).toBe(0o700)
        for (const extra of [`${filename}-wal`, `${filename}-shm`]) {
          if (fs.existsSync(extra)) expect(fs.statSync(extra).mode & 0o777).toBe(0o600)
        }
        const mode = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
        }).pipe(Effect.provide(SqliteClient.layer({ filename, disableWAL: true })))
        expect(mode[0]!.journal_mode).toBe("wal")
        // Neither the secret nor the full key appears anywhere on disk.
        for (const file of fs.readdirSync(path.dirname(filename))) {
          const bytes = fs.readFileSync(path.join(path.dirname(filename), file))
          expect(bytes.includes(secret)).toBe(false)
          expect(bytes.includes(secret.slice("commy_".length + 13))).toBe(false)
        }
      })
    ))

  it.effect("tightens an existing database file that is too open", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const filename = path.join(dir, "metadata.db")
      fs.writeFileSync(filename, "", { mode: 0o644 })
      fs.chmodSync(filename, 0o644)
      const store = yield* open(filename)
      yield* store.createTenant("acme")
      expect(fs.statSync(filename).mode & 0o777).toBe(0o600)
    }).pipe(Effect.scoped))

  it.effect("a file that is not a database fails with STORE_ERROR, not a defect", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const filename = path.join(dir, "metadata.db")
      fs.writeFileSync(filename, Buffer.alloc(8192, 0x5a), { mode: 0o600 })
      const result = yield* Effect.either(open(filename))
      expect(Either.isLeft(result) && result.left.code).toBe("STORE_ERROR")
    }).pipe(Effect.scoped))
})
