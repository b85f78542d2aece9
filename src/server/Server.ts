/**
 * The Commy server: WSS (or, explicitly and only on loopback, plain WS) on one port, with
 * `GET /health` and `GET /ready` on the same port. Scoped: closing the scope closes every client
 * with a reason (1001), flushes open service files and closes the store.
 */
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as http from "node:http"
import * as https from "node:https"
import { WebSocketServer } from "ws"
import * as fs from "node:fs"
import type { TLSSocket } from "node:tls"
import { type CommyError, FileError, InvalidArgument } from "../CommyError.js"
import type { SimdDiff } from "../diff/SimdDiff.js"
import { listServiceFiles, prepareRoot, removeServiceFile } from "../local/ServiceFiles.js"
import type { NativeAddon } from "../native/NativeAddon.js"
import { Authenticator, type Peer } from "./Authenticator.js"
import { defaultLimits, handleConnection, type Limits } from "./Connection.js"
import { servicesDir } from "./DataDir.js"
import { hostIdentity } from "./HostIdentity.js"
import { MetadataStore } from "./MetadataStore.js"
import { makeServiceRegistry } from "./ServiceRegistry.js"
import { loadTls, type TlsMaterial } from "./Tls.js"

export const DEFAULT_PORT = 7788
export const VERSION = "0.1.0"

export interface ServerOptions {
  readonly dataDir: string
  readonly host?: string
  /** 0 picks a free port. Default 7788. */
  readonly port?: number
  readonly certFile?: string
  readonly keyFile?: string
  /**
   * PEM file of the CA that signs client certificates: the server then asks for one (optional
   * for the client) and method "mtls" authenticates with it.
   */
  readonly clientCaFile?: string
  /** Plain ws:// instead of wss://; refused unless `host` is a loopback address. */
  readonly insecure?: boolean
  readonly limits?: Partial<Limits>
}

export interface RunningServer {
  readonly port: number
  readonly host: string
  /** `wss://host:port` (or ws://). */
  readonly url: string
  readonly tls: TlsMaterial | undefined
}

const isLoopback = (host: string) => host === "localhost" || host === "::1" || /^127\./.test(host)

export const startServer = (
  options: ServerOptions
): Effect.Effect<RunningServer, CommyError, MetadataStore | Authenticator | NativeAddon | SimdDiff | import("effect/Scope").Scope> =>
  Effect.gen(function*() {
    const host = options.host ?? "127.0.0.1"
    if (options.insecure && !isLoopback(host)) {
      return yield* new InvalidArgument({ message: "plain ws:// is only allowed on a loopback address" })
    }
    const limits: Limits = { ...defaultLimits, ...options.limits }
    if (!Number.isSafeInteger(limits.maxServicesPerTenant) || limits.maxServicesPerTenant < 0) {
      return yield* new InvalidArgument({ message: "the most services per tenant is a whole number, 0 or more" })
    }
    const store = yield* MetadataStore
    const root = servicesDir(options.dataDir)
    yield* prepareRoot(root)

    // Non-persistent services do not outlive their clients, and no client survives a restart.
    const kept = new Set<string>()
    for (const tenant of yield* store.listTenants) {
      for (const service of yield* store.listServices(tenant.name)) {
        if (service.persistent) {
          kept.add(service.id)
          continue
        }
        yield* Effect.ignore(removeServiceFile(root, service.id))
        yield* Effect.ignore(store.deleteService(tenant.name, service.name))
      }
    }
    // A file without a record (a crash between the two, or a create that lost a race with its
    // tenant's deletion) is nobody's: remove it rather than leave it for manual cleanup.
    for (const id of yield* listServiceFiles(root)) {
      if (!kept.has(id)) yield* Effect.ignore(removeServiceFile(root, id))
    }

    const registry = yield* makeServiceRegistry({ root, store })
    yield* Effect.addFinalizer(() => registry.closeAll)
    const tls = options.insecure ? undefined : yield* loadTls({
      dataDir: options.dataDir,
      certFile: options.certFile,
      keyFile: options.keyFile
    })

    let ready = false
    const stats = { connections: 0, subscriptions: 0 }
    const onHttp = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const body = (status: number, value: unknown) => {
        res.writeHead(status, { "content-type": "application/json" })
        res.end(JSON.stringify(value))
      }
      if (req.url === "/health") return body(200, { status: "ok", version: VERSION, ...stats })
      if (req.url === "/ready") return body(ready ? 200 : 503, { ready })
      body(404, { error: "not found" })
    }
    const clientCa = options.clientCaFile === undefined ? undefined : yield* Effect.try({
      try: () => fs.readFileSync(options.clientCaFile!, "utf8"),
      catch: (cause) => new FileError({ message: `cannot read the client CA ${options.clientCaFile}: ${String(cause)}`, cause })
    })
    const httpServer = tls
      ? https.createServer({
        cert: tls.cert,
        key: tls.key,
        // Asked, not required: API-key clients connect without a certificate.
        ...(clientCa === undefined ? {} : { ca: clientCa, requestCert: true, rejectUnauthorized: false })
      }, onHttp)
      : http.createServer(onHttp)
    const connections = yield* FiberSet.make()
    const runConnection = yield* FiberSet.runtime(connections)<never>()
    const wss = new WebSocketServer({ server: httpServer, maxPayload: limits.maxPayload, perMessageDeflate: false })
    // ws re-emits the HTTP server's errors (EADDRINUSE while listening, too): with no listener
    // they would be uncaught exceptions. Listening errors are reported by `listen` below.
    let listening = false
    wss.on("error", (cause) => {
      if (listening) void runConnection(Effect.logError(`server socket error: ${cause.message}`))
    })

    const authenticator = yield* Authenticator
    const ctx = { store, registry, root, host: hostIdentity(), version: VERSION, limits, stats, authenticator }
    wss.on("connection", (ws, request) => {
      const socket = request.socket as TLSSocket
      const certificate = typeof socket.getPeerCertificate === "function" ? socket.getPeerCertificate() : undefined
      const peer: Peer = {
        remoteAddress: socket.remoteAddress,
        certificate: certificate && certificate.fingerprint256
          ? { fingerprint256: certificate.fingerprint256, authorized: socket.authorized === true }
          : undefined
      }
      runConnection(Effect.scoped(handleConnection(ws, peer, ctx)))
    })

    const port = yield* Effect.async<number, CommyError>((resume) => {
      httpServer.once("error", (cause) =>
        resume(Effect.fail(new InvalidArgument({ message: `cannot listen on ${host}:${options.port ?? DEFAULT_PORT}: ${cause.message}` }))))
      httpServer.listen(options.port ?? DEFAULT_PORT, host, () => {
        const address = httpServer.address()
        resume(Effect.succeed(typeof address === "object" && address ? address.port : 0))
      })
    })
    listening = true
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        ready = false
        // Interrupting the connection fibers closes each client with 1001 and a reason.
        yield* FiberSet.clear(connections)
        yield* Effect.async<void>((resume) => {
          wss.close(() => resume(Effect.void))
          for (const client of wss.clients) client.terminate()
        })
        yield* Effect.async<void>((resume) => {
          httpServer.close(() => resume(Effect.void))
          httpServer.closeAllConnections()
        })
      })
    )
    ready = true
    const shown = host.includes(":") ? `[${host}]` : host
    return { port, host, url: `${tls ? "wss" : "ws"}://${shown}:${port}`, tls } satisfies RunningServer
  })
