/**
 * A real `commy serve` process on loopback (port 0, TLS with its self-signed certificate, fresh
 * data dir), plus direct access to its metadata store for setting up tenants, keys and grants.
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as https from "node:https"
import { databaseFile } from "../../src/server/DataDir.js"
import { MetadataStore, type Right } from "../../src/server/MetadataStore.js"
import { layer as storeLayer } from "../../src/server/SqliteMetadataStore.js"
import { type LiveChild, startChild } from "./child.js"

export interface TestServer {
  readonly url: string
  readonly port: number
  readonly dataDir: string
  readonly ca: string
  readonly child: LiveChild
}

/** Starts `commy serve` and waits for its startup line. */
export const startTestServer = (dataDir: string, port = 0, extra: ReadonlyArray<string> = []): Promise<TestServer> =>
  (async () => {
    const child = startChild("serve.ts", ["serve", "--data-dir", dataDir, "--port", String(port), "--json", ...extra])
    const line = await child.waitForLine((l) => l.startsWith("{\"listening\""), 30_000)
    const { listening } = JSON.parse(line) as { listening: { url: string; port: number; certificate: string } }
    return { url: listening.url, port: listening.port, dataDir, ca: listening.certificate ? fs.readFileSync(listening.certificate, "utf8") : "", child }
  })()

/** Stops a server with SIGTERM (graceful) or SIGKILL, and waits for it to exit. */
export const stopTestServer = async (server: TestServer, signal: NodeJS.Signals = "SIGTERM") => {
  server.child.kill(signal)
  await server.child.exited
}

export interface Setup {
  readonly tenant: string
  readonly grants: ReadonlyArray<{ readonly service: string; readonly rights: ReadonlyArray<Right> }>
  /** An operator key (may create and delete tenants). */
  readonly operator?: boolean
}

/** Creates a tenant and one key with the given grants; returns the key string. */
export const makeKey = (dataDir: string, setup: Setup): Effect.Effect<string, unknown> =>
  Effect.gen(function*() {
    const store = yield* MetadataStore
    yield* Effect.ignore(store.createTenant(setup.tenant))
    const { record, secret } = yield* store.createKey({ tenant: setup.tenant, label: "test", operator: setup.operator ?? false })
    for (const grant of setup.grants) {
      yield* store.grant({ tenant: setup.tenant, keyId: record.id, service: grant.service, rights: grant.rights })
    }
    return secret
  }).pipe(Effect.provide(storeLayer({ filename: databaseFile(dataDir) })))

/** GET /health over TLS, trusting the server's certificate. */
export const health = (server: TestServer): Promise<{ status: string; connections: number; subscriptions: number }> =>
  new Promise((resolve, reject) => {
    const req = https.get(`https://127.0.0.1:${server.port}/health`, { ca: server.ca }, (res) => {
      let body = ""
      res.on("data", (d: Buffer) => (body += d.toString()))
      res.on("end", () => resolve(JSON.parse(body)))
    })
    req.on("error", reject)
  })
