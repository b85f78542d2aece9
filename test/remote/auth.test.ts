/**
 * Authentication methods: mTLS (a client certificate bound to a key) against a real
 * `commy serve --client-ca`, and a custom method through a substituted Authenticator layer.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { execFileSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { AuthenticationFailed } from "../../src/CommyError.js"
import { SimdDiff } from "../../src/diff/SimdDiff.js"
import { NativeAddon } from "../../src/native/NativeAddon.js"
import { AuthResult, Empty, ReadResult, ServiceResult, WriteResult } from "../../src/protocol/Messages.js"
import { connect } from "../../src/remote/WssTransport.js"
import { Authenticator } from "../../src/server/Authenticator.js"
import { databaseFile } from "../../src/server/DataDir.js"
import { MetadataStore } from "../../src/server/MetadataStore.js"
import { startServer } from "../../src/server/Server.js"
import { layer as storeLayer } from "../../src/server/SqliteMetadataStore.js"
import { makeKey, startTestServer, stopTestServer } from "../support/server.js"
import { tempDir } from "../support/tempDir.js"

/** A CA and a client certificate signed by it (and one self-signed impostor), made by openssl. */
const makeCertificates = (dir: string) => {
  const run = (...args: Array<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  run("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test client CA")
  run("req", ...ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=sensor-1")
  run("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.pem", "-days", "2")
  run("req", "-x509", ...ec, "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "2", "-subj", "/CN=sensor-1")
  const read = (name: string) => fs.readFileSync(path.join(dir, name), "utf8")
  return { ca: path.join(dir, "ca.pem"), cert: read("client.pem"), key: read("client.key"), rogueCert: read("rogue.pem"), rogueKey: read("rogue.key") }
}

const code = <A, E extends { code: string }>(e: Either.Either<A, E>) => (Either.isLeft(e) ? e.left.code : "ok")

describe("authentication methods", () => {
  it.live("mTLS: a client certificate bound to a key authenticates with that key's grants", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const certs = makeCertificates(fs.mkdtempSync(path.join(dir, "pki-")))
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => startTestServer(path.join(dir, "data"), 0, ["--client-ca", certs.ca])),
        (s) => Effect.promise(() => stopTestServer(s))
      )
      const key = yield* makeKey(server.dataDir, { tenant: "plant", grants: [{ service: "*", rights: ["admin"] }] })
      const keyId = key.split("_")[1]!
      yield* Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.createTenant("other")
        yield* store.bindCertificate({ tenant: "plant", keyId, fingerprint: new crypto.X509Certificate(certs.cert).fingerprint256 })
      }).pipe(Effect.provide(storeLayer({ filename: databaseFile(server.dataDir) })))

      const viaCert = yield* connect({
        url: server.url,
        ca: server.ca,
        cert: certs.cert,
        key: certs.key,
        credentials: [{ tenant: "plant", method: "mtls" }]
      })
      const created = yield* viaCert.request({ op: "service.create", tenant: "plant", service: "line" }, ServiceResult)
      expect(created.service.name).toBe("line")

      // the same certificate is bound in "plant" only
      const otherTenant = yield* Effect.either(connect({
        url: server.url, ca: server.ca, cert: certs.cert, key: certs.key, credentials: [{ tenant: "other", method: "mtls" }]
      }))
      expect(code(otherTenant)).toBe("AUTHENTICATION_FAILED")
      // a self-signed certificate with the same subject is not verified by the client CA
      const rogue = yield* Effect.either(connect({
        url: server.url, ca: server.ca, cert: certs.rogueCert, key: certs.rogueKey, credentials: [{ tenant: "plant", method: "mtls" }]
      }))
      expect(code(rogue)).toBe("AUTHENTICATION_FAILED")
      // no certificate at all
      const none = yield* Effect.either(connect({ url: server.url, ca: server.ca, credentials: [{ tenant: "plant", method: "mtls" }] }))
      expect(code(none)).toBe("AUTHENTICATION_FAILED")
      // API keys keep working on a server that asks for certificates
      const viaKey = yield* connect({ url: server.url, ca: server.ca, credentials: [{ tenant: "plant", key }] })
      expect((yield* viaKey.request({ op: "read", tenant: "plant", service: "line" }, ReadResult)).values).toEqual([])
    }).pipe(Effect.scoped), 60_000)

  it.live("a custom method: a substituted Authenticator layer maps a token to a key's principal", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const key = yield* makeKey(dir, { tenant: "acme", grants: [{ service: "*", rights: ["admin"] }] })
      const keyId = key.split("_")[1]!
      const store = storeLayer({ filename: databaseFile(dir) })
      const authenticator = Authenticator.layer({
        custom: {
          // e.g. a token checked with an identity provider; here a fixed one
          token: (request) =>
            request.token === "let-me-in"
              ? Effect.succeed({ tenant: request.tenant, keyId })
              : Effect.fail(new AuthenticationFailed({ message: "bad token" }))
        }
      })
      // The layers live as long as the server: provided around the whole program, not startServer alone.
      const layers = Layer.mergeAll(authenticator, NativeAddon.layer, SimdDiff.layer).pipe(Layer.provideMerge(store))
      yield* Effect.gen(function*() {
        const server = yield* startServer({ dataDir: dir, port: 0 })
        const ca = fs.readFileSync(server.tls!.certPath, "utf8")
        const client = yield* connect({ url: server.url, ca, credentials: [{ tenant: "acme", method: "token", token: "let-me-in" }] })
        expect((yield* client.request({ op: "service.create", tenant: "acme", service: "s" }, ServiceResult)).service.name).toBe("s")
        const refused = yield* Effect.either(connect({ url: server.url, ca, credentials: [{ tenant: "acme", method: "token", token: "nope" }] }))
        expect(code(refused)).toBe("AUTHENTICATION_FAILED")
        const unknown = yield* Effect.either(connect({ url: server.url, ca, credentials: [{ tenant: "acme", method: "kerberos", token: "x" }] }))
        expect(code(unknown)).toBe("AUTHENTICATION_FAILED")
      }).pipe(Effect.provide(layers))
    }).pipe(Effect.scoped), 60_000)

  it.live("re-authenticating with another key takes its rights at once: no rights cached from the previous key", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => startTestServer(path.join(dir, "data"))),
        (s) => Effect.promise(() => stopTestServer(s))
      )
      const admin = yield* makeKey(server.dataDir, { tenant: "plant", grants: [{ service: "*", rights: ["admin"] }] })
      const reader = yield* makeKey(server.dataDir, { tenant: "plant", grants: [{ service: "*", rights: ["read"] }] })
      const transport = yield* connect({ url: server.url, ca: server.ca, credentials: [{ tenant: "plant", key: admin }] })
      const target = { tenant: "plant", service: "line" }
      yield* transport.request({ op: "service.create", ...target, persistent: true }, ServiceResult)
      yield* transport.request({ op: "var.define", ...target, name: "x", type: 1 }, Empty)
      const write = Effect.either(transport.request({ op: "write", ...target, writes: [{ name: "x", value: Uint8Array.of(7) }] }, WriteResult))
      expect(code(yield* write)).toBe("ok") // the service and its rights are now cached for this connection

      yield* transport.request({ op: "auth", tenant: "plant", key: reader }, AuthResult)
      expect(code(yield* write)).toBe("PERMISSION_DENIED")
      const read = yield* transport.request({ op: "read", ...target, names: ["x"] }, ReadResult)
      expect(Array.from(read.values[0]!.value)).toEqual([7])

      yield* transport.request({ op: "auth", tenant: "plant", key: admin }, AuthResult)
      expect(code(yield* write)).toBe("ok")
    }).pipe(Effect.scoped), 60_000)
})
