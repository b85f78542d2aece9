/**
 * Tenant operations over the protocol (tenant.create/get/list/delete, operator keys) and the
 * per-tenant service limit, against a real `commy serve` process on loopback.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import { RemoteClient } from "../../src/client/RemoteClient.js"
import type { CommyError } from "../../src/CommyError.js"
import {
  Empty,
  LocateResult,
  type Push,
  ServiceResult,
  TenantListResult,
  TenantResult,
  VariableInfo
} from "../../src/protocol/Messages.js"
import { connect } from "../../src/remote/WssTransport.js"
import { databaseFile } from "../../src/server/DataDir.js"
import { MetadataStore } from "../../src/server/MetadataStore.js"
import { layer as storeLayer } from "../../src/server/SqliteMetadataStore.js"
import { makeKey, startTestServer, stopTestServer, type TestServer } from "../support/server.js"
import { tempDir } from "../support/tempDir.js"

const serverFor = (extra: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    return yield* Effect.acquireRelease(
      Effect.promise(() => startTestServer(dir, 0, extra)),
      (server) => Effect.promise(() => stopTestServer(server))
    )
  })

const client = (server: TestServer, ...credentials: ReadonlyArray<{ tenant: string; key: string }>) =>
  connect({ url: server.url, ca: server.ca, credentials, requestTimeout: "10 seconds" })

/** The error code of a failed request ("ok" if it succeeded). */
const code = <A, R>(effect: Effect.Effect<A, CommyError, R>) =>
  Effect.map(Effect.either(effect), (e) => (Either.isLeft(e) ? e.left.code : "ok"))

const names = (r: { tenants: ReadonlyArray<{ name: string }> }) => r.tenants.map((t) => t.name)

describe("tenant operations", () => {
  it.live("an operator creates, gets, lists and deletes tenants, with typed errors", () =>
    Effect.gen(function*() {
      const server = yield* serverFor()
      const opKey = yield* makeKey(server.dataDir, { tenant: "ops", grants: [], operator: true })
      const acmeKey = yield* makeKey(server.dataDir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const op = yield* client(server, { tenant: "ops", key: opKey })
      const acme = yield* client(server, { tenant: "acme", key: acmeKey })
      yield* acme.request({ op: "service.create", tenant: "acme", service: "metrics" }, ServiceResult)

      const before = Date.now()
      const created = yield* op.request({ op: "tenant.create", tenant: "beta" }, TenantResult)
      expect(created.tenant).toEqual({ name: "beta", createdAt: expect.any(Number), services: 0 })
      expect(created.tenant.createdAt).toBeGreaterThanOrEqual(before - 1000)
      expect(yield* code(op.request({ op: "tenant.create", tenant: "beta" }, TenantResult))).toBe("ALREADY_EXISTS")
      for (const bad of ["../etc", "", "a/b", ".", "x".repeat(97)]) {
        expect(yield* code(op.request({ op: "tenant.create", tenant: bad }, TenantResult)), JSON.stringify(bad)).toBe("INVALID_NAME")
      }

      // An operator sees every tenant, with its service count (whoever's services they are).
      expect(names(yield* op.request({ op: "tenant.list" }, TenantListResult))).toEqual(["acme", "beta", "ops"])
      expect((yield* op.request({ op: "tenant.get", tenant: "acme" }, TenantResult)).tenant).toMatchObject({ name: "acme", services: 1 })
      expect((yield* op.request({ op: "tenant.get", tenant: "beta" }, TenantResult)).tenant).toEqual(created.tenant)
      expect(yield* code(op.request({ op: "tenant.get", tenant: "nope" }, TenantResult))).toBe("TENANT_NOT_FOUND")
      expect(yield* code(op.request({ op: "tenant.get", tenant: "a/b" }, TenantResult))).toBe("INVALID_NAME")
      expect(yield* code(op.request({ op: "tenant.delete", tenant: "nope" }, Empty))).toBe("TENANT_NOT_FOUND")

      expect(yield* op.request({ op: "tenant.delete", tenant: "beta" }, Empty)).toEqual({})
      expect(names(yield* op.request({ op: "tenant.list" }, TenantListResult))).toEqual(["acme", "ops"])
      expect(yield* code(op.request({ op: "tenant.get", tenant: "beta" }, TenantResult))).toBe("TENANT_NOT_FOUND")
      expect(yield* code(op.request({ op: "tenant.delete", tenant: "beta" }, Empty))).toBe("TENANT_NOT_FOUND")
      // Operator status gives no rights inside other tenants: those still come from grants.
      expect(yield* code(op.request({ op: "service.list", tenant: "acme" }, Empty))).toBe("PERMISSION_DENIED")
    }).pipe(Effect.scoped), 60_000)

  it.live("non-operators: create and delete refused; get and list only the tenants they authenticated to", () =>
    Effect.gen(function*() {
      const server = yield* serverFor()
      const acmeKey = yield* makeKey(server.dataDir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const gammaKey = yield* makeKey(server.dataDir, { tenant: "gamma", grants: [] })
      yield* makeKey(server.dataDir, { tenant: "zeta", grants: [] })
      const opKey = yield* makeKey(server.dataDir, { tenant: "ops", grants: [], operator: true })
      const c = yield* client(server, { tenant: "gamma", key: gammaKey }, { tenant: "acme", key: acmeKey })

      expect(names(yield* c.request({ op: "tenant.list" }, TenantListResult))).toEqual(["acme", "gamma"])
      expect((yield* c.request({ op: "tenant.get", tenant: "acme" }, TenantResult)).tenant).toMatchObject({ name: "acme", services: 0 })
      expect(yield* code(c.request({ op: "tenant.get", tenant: "zeta" }, TenantResult))).toBe("PERMISSION_DENIED")
      // Refused before anything about the name is looked at: a non-operator learns nothing.
      expect(yield* code(c.request({ op: "tenant.get", tenant: "nope" }, TenantResult))).toBe("PERMISSION_DENIED")
      for (const tenant of ["new", "zeta", "acme", "a/b"]) {
        expect(yield* code(c.request({ op: "tenant.create", tenant }, TenantResult)), tenant).toBe("PERMISSION_DENIED")
        expect(yield* code(c.request({ op: "tenant.delete", tenant }, Empty)), tenant).toBe("PERMISSION_DENIED")
      }
      // Admin rights on every service of a tenant do not make a key an operator.
      const op = yield* client(server, { tenant: "ops", key: opKey })
      expect(names(yield* op.request({ op: "tenant.list" }, TenantListResult))).toEqual(["acme", "gamma", "ops", "zeta"])

      // A key revoked after authenticating: its tenant disappears from the connection's view.
      yield* Effect.gen(function*() {
        const store = yield* MetadataStore
        const gammaId = gammaKey.split("_")[1]!
        yield* store.revokeKey("gamma", gammaId)
        // ... and an operator key revoked mid-connection stops being an operator at once.
        yield* store.revokeKey("ops", opKey.split("_")[1]!)
      }).pipe(Effect.provide(storeLayer({ filename: databaseFile(server.dataDir) })))
      expect(names(yield* c.request({ op: "tenant.list" }, TenantListResult))).toEqual(["acme"])
      expect(yield* code(c.request({ op: "tenant.get", tenant: "gamma" }, TenantResult))).toBe("PERMISSION_DENIED")
      expect(yield* code(op.request({ op: "tenant.create", tenant: "late" }, TenantResult))).toBe("PERMISSION_DENIED")
      expect(yield* code(op.request({ op: "tenant.delete", tenant: "acme" }, Empty))).toBe("PERMISSION_DENIED")
      expect(yield* code(op.request({ op: "tenant.get", tenant: "acme" }, TenantResult))).toBe("PERMISSION_DENIED")
    }).pipe(Effect.scoped), 60_000)

  it.live("tenant.delete ends subscriptions, removes service files, and the tenant's keys stop authenticating", () =>
    Effect.gen(function*() {
      const server = yield* serverFor()
      const opKey = yield* makeKey(server.dataDir, { tenant: "ops", grants: [], operator: true })
      const acmeKey = yield* makeKey(server.dataDir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const otherKey = yield* makeKey(server.dataDir, { tenant: "other", grants: [{ service: "*", rights: ["admin"] }] })

      // "cold": persistent, closed (its creator left), so only its file and record remain.
      const coldPath = yield* Effect.scoped(Effect.gen(function*() {
        const creator = yield* client(server, { tenant: "acme", key: acmeKey })
        yield* creator.request({ op: "service.create", tenant: "acme", service: "cold", persistent: true }, ServiceResult)
        return (yield* creator.request({ op: "locate", tenant: "acme", service: "cold" }, LocateResult)).path
      }))
      // "live": open, with a subscriber. Another tenant's service must survive.
      const a = yield* client(server, { tenant: "acme", key: acmeKey })
      yield* a.request({ op: "service.create", tenant: "acme", service: "live", persistent: true }, ServiceResult)
      yield* a.request({ op: "var.define", tenant: "acme", service: "live", name: "x", type: 3 }, VariableInfo)
      const livePath = (yield* a.request({ op: "locate", tenant: "acme", service: "live" }, LocateResult)).path
      const pushes: Array<Push> = []
      let ended: (push: Push) => void = () => {}
      const endedPush = new Promise<Push>((resolve) => (ended = resolve))
      yield* a.subscribe("acme", "live", {
        onPush: (push) => {
          pushes.push(push)
          if (push.push === "ended") ended(push)
        },
        resumeFrom: () => ({ since: {} })
      })
      const o = yield* client(server, { tenant: "other", key: otherKey })
      yield* o.request({ op: "service.create", tenant: "other", service: "live", persistent: true }, ServiceResult)
      const otherPath = (yield* o.request({ op: "locate", tenant: "other", service: "live" }, LocateResult)).path
      for (const file of [coldPath, livePath, otherPath]) expect(fs.existsSync(file), file).toBe(true)

      const op = yield* client(server, { tenant: "ops", key: opKey })
      expect((yield* op.request({ op: "tenant.get", tenant: "acme" }, TenantResult)).tenant.services).toBe(2)
      yield* op.request({ op: "tenant.delete", tenant: "acme" }, Empty)

      const push = yield* Effect.promise(() => endedPush).pipe(Effect.timeout("5 seconds"))
      expect(push).toMatchObject({ push: "ended", code: "SERVICE_NOT_FOUND", message: expect.stringMatching(/tenant acme/) })
      expect(pushes.map((p) => p.push)).toEqual(["snapshot", "caught_up", "ended"])
      expect(fs.existsSync(coldPath)).toBe(false)
      expect(fs.existsSync(livePath)).toBe(false)
      expect(fs.existsSync(otherPath)).toBe(true)

      // The deleted tenant's key fails from now on; connections made before lose their access.
      expect(yield* code(client(server, { tenant: "acme", key: acmeKey }))).toBe("AUTHENTICATION_FAILED")
      expect(yield* code(a.request({ op: "tenant.get", tenant: "acme" }, TenantResult))).toBe("PERMISSION_DENIED")
      expect(yield* code(a.request({ op: "service.create", tenant: "acme", service: "again" }, ServiceResult))).toBe("PERMISSION_DENIED")
      expect(yield* code(a.request({ op: "read", tenant: "acme", service: "live" }, Empty))).toBe("SERVICE_NOT_FOUND")
      expect(names(yield* a.request({ op: "tenant.list" }, TenantListResult))).toEqual([])

      // Recreated under the same name, the tenant starts empty and the old key stays dead.
      expect((yield* op.request({ op: "tenant.create", tenant: "acme" }, TenantResult)).tenant.services).toBe(0)
      expect(yield* code(client(server, { tenant: "acme", key: acmeKey }))).toBe("AUTHENTICATION_FAILED")
      expect(names(yield* op.request({ op: "tenant.list" }, TenantListResult))).toEqual(["acme", "ops", "other"])
    }).pipe(Effect.scoped), 60_000)

  it.live("RemoteClient: createTenant, getTenant, listTenants, deleteTenant", () =>
    Effect.gen(function*() {
      const server = yield* serverFor()
      const opKey = yield* makeKey(server.dataDir, { tenant: "ops", grants: [], operator: true })
      const remote = yield* Effect.map(
        Layer.build(RemoteClient.layer({ url: server.url, ca: server.ca, credentials: [{ tenant: "ops", key: opKey }] })),
        (ctx) => Context.get(ctx, RemoteClient)
      )
      expect(yield* remote.createTenant("acme")).toMatchObject({ name: "acme", services: 0 })
      expect((yield* remote.getTenant("acme")).name).toBe("acme")
      expect((yield* remote.listTenants).map((t) => t.name)).toEqual(["acme", "ops"])
      yield* remote.deleteTenant("acme")
      expect((yield* remote.listTenants).map((t) => t.name)).toEqual(["ops"])
      expect((yield* Effect.flip(remote.getTenant("acme")))._tag).toBe("TenantNotFound")
    }).pipe(Effect.scoped), 60_000)

  it.live("service.create beyond --max-services-per-tenant fails with LIMIT_EXCEEDED, per tenant", () =>
    Effect.gen(function*() {
      const server = yield* serverFor(["--max-services-per-tenant", "3"])
      const acmeKey = yield* makeKey(server.dataDir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const betaKey = yield* makeKey(server.dataDir, { tenant: "beta", grants: [{ service: "*", rights: ["admin"] }] })
      const acme = yield* client(server, { tenant: "acme", key: acmeKey })
      const beta = yield* client(server, { tenant: "beta", key: betaKey })
      const create = (c: typeof acme, tenant: string, service: string) =>
        c.request({ op: "service.create", tenant, service }, ServiceResult)

      for (const name of ["s1", "s2", "s3"]) yield* create(acme, "acme", name)
      const refused = yield* Effect.flip(create(acme, "acme", "s4"))
      expect(refused.code).toBe("LIMIT_EXCEEDED")
      expect(refused.message).toMatch(/tenant "acme" already holds 3 services/)
      // A taken name is still reported as such, and nothing was created.
      expect(yield* code(create(acme, "acme", "s1"))).toBe("ALREADY_EXISTS")
      expect((yield* acme.request({ op: "tenant.get", tenant: "acme" }, TenantResult)).tenant.services).toBe(3)
      // Other tenants have their own budget.
      yield* create(beta, "beta", "s1")

      yield* acme.request({ op: "service.delete", tenant: "acme", service: "s2" }, Empty)
      expect((yield* create(acme, "acme", "s4")).service.name).toBe("s4")
      expect(yield* code(create(acme, "acme", "s5"))).toBe("LIMIT_EXCEEDED")
    }).pipe(Effect.scoped), 60_000)
})
