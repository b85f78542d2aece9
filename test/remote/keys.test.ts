/**
 * Keys and grants over the protocol (key.create/list/revoke, grant.set/list), through
 * RemoteClient against a real `commy serve` on loopback: an operator provisions a tenant end to
 * end without the server's CLI; nobody else may.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { RemoteClient } from "../../src/client/RemoteClient.js"
import type { CommyError } from "../../src/CommyError.js"
import { makeKey, startTestServer, stopTestServer, type TestServer } from "../support/server.js"
import { tempDir } from "../support/tempDir.js"

const code = <A, R>(effect: Effect.Effect<A, CommyError, R>) =>
  Effect.map(Effect.either(effect), (e) => (Either.isLeft(e) ? e.left.code : "ok"))

/** A RemoteClient for one set of credentials, closed with the surrounding scope. */
const clientOf = (server: TestServer, tenant: string, key: string) =>
  Effect.map(Layer.build(RemoteClient.layer({ url: server.url, ca: server.ca, credentials: [{ tenant, key }] })), Context.get(RemoteClient))

describe("keys and grants over the protocol", () => {
  it.live("an operator creates a tenant, a key and its grants; the key works, lists without its secret, and stops at revocation", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* Effect.acquireRelease(Effect.promise(() => startTestServer(dir)), (s) => Effect.promise(() => stopTestServer(s)))
      const opKey = yield* makeKey(server.dataDir, { tenant: "ops", grants: [], operator: true })
      const op = yield* clientOf(server, "ops", opKey)

      yield* op.createTenant("beta")
      const { key, secret } = yield* op.createKey("beta", { label: "ingest worker" })
      expect(key).toMatchObject({ tenant: "beta", label: "ingest worker", revoked: false, operator: false })
      expect(secret.startsWith(`commy_${key.id}_`)).toBe(true)
      yield* op.grant("beta", key.id, "*", ["read"])
      yield* op.grant("beta", key.id, "metrics", ["admin"])
      expect(yield* op.listGrants("beta", key.id)).toEqual([
        { service: "*", rights: ["read"] },
        { service: "metrics", rights: ["admin"] }
      ])
      const listed = yield* op.listKeys("beta")
      expect(listed).toEqual([key])
      expect(JSON.stringify(listed)).not.toContain(secret.split("_")[2]!)

      // The new key works with exactly its grants.
      const worker = yield* clientOf(server, "beta", secret)
      yield* worker.createService("beta", "metrics", { persistent: true })
      expect(yield* code(worker.createService("beta", "other"))).toBe("PERMISSION_DENIED")
      // No rights removes a grant.
      yield* op.grant("beta", key.id, "metrics", [])
      expect(yield* op.listGrants("beta", key.id)).toEqual([{ service: "*", rights: ["read"] }])

      // Revoked: new connections fail, and the open one loses its rights.
      yield* op.revokeKey("beta", key.id)
      expect((yield* op.listKeys("beta"))[0]!.revoked).toBe(true)
      expect(yield* code(clientOf(server, "beta", secret))).toBe("AUTHENTICATION_FAILED")
      yield* Effect.sleep("1100 millis") // past the connection's one-second rights cache
      expect(yield* code(worker.getService("beta", "metrics"))).toBe("SERVICE_NOT_FOUND")

      // Typed errors for bad input.
      expect(yield* code(op.createKey("nope"))).toBe("TENANT_NOT_FOUND")
      expect(yield* code(op.revokeKey("beta", "0000000000000000"))).toBe("INVALID_ARGUMENT")
      expect(yield* code(op.createKey("beta", { label: "bad\nlabel" }))).toBe("INVALID_ARGUMENT")
      expect(yield* code(op.grant("beta", "0000000000000000", "*", ["read"]))).toBe("INVALID_ARGUMENT")
    }).pipe(Effect.scoped), 60_000)

  it.live("a key that is not an operator's cannot create, list, revoke or grant keys, even in its own tenant", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* Effect.acquireRelease(Effect.promise(() => startTestServer(dir)), (s) => Effect.promise(() => stopTestServer(s)))
      const adminKey = yield* makeKey(server.dataDir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const admin = yield* clientOf(server, "acme", adminKey)
      const id = adminKey.split("_")[1]!
      expect(yield* code(admin.createKey("acme"))).toBe("PERMISSION_DENIED")
      expect(yield* code(admin.createKey("acme", { operator: true }))).toBe("PERMISSION_DENIED")
      expect(yield* code(admin.listKeys("acme"))).toBe("PERMISSION_DENIED")
      expect(yield* code(admin.revokeKey("acme", id))).toBe("PERMISSION_DENIED")
      expect(yield* code(admin.grant("acme", id, "*", ["admin"]))).toBe("PERMISSION_DENIED")
      expect(yield* code(admin.listGrants("acme", id))).toBe("PERMISSION_DENIED")
    }).pipe(Effect.scoped), 60_000)
})
