/**
 * `commy serve`: runs the server until SIGINT/SIGTERM, then shuts down gracefully (clients are
 * closed with a reason, service files flushed, the store closed).
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { SimdDiff } from "../diff/SimdDiff.js"
import { NativeAddon } from "../native/NativeAddon.js"
import { Authenticator } from "../server/Authenticator.js"
import { defaultLimits } from "../server/Connection.js"
import { databaseFile, defaultDataDir, ensureDir } from "../server/DataDir.js"
import { DEFAULT_PORT, startServer } from "../server/Server.js"
import { layer as storeLayer } from "../server/SqliteMetadataStore.js"
import { reportErrors } from "./admin.js"

const options = {
  dataDir: Options.text("data-dir").pipe(
    Options.withDescription("Data directory (default: $COMMY_DATA_DIR, else $XDG_DATA_HOME/commy, else ~/.local/share/commy)"),
    Options.optional
  ),
  host: Options.text("host").pipe(Options.withDescription("Address to listen on"), Options.withDefault("127.0.0.1")),
  port: Options.integer("port").pipe(
    Options.withDescription(`Port (0 = any free port)`),
    Options.withDefault(Number(process.env["COMMY_PORT"] ?? DEFAULT_PORT))
  ),
  cert: Options.file("cert").pipe(Options.withDescription("TLS certificate (PEM)"), Options.optional),
  key: Options.file("key").pipe(Options.withDescription("TLS private key (PEM)"), Options.optional),
  clientCa: Options.file("client-ca").pipe(
    Options.withDescription("CA (PEM) of client certificates: enables mTLS authentication (method \"mtls\")"),
    Options.optional
  ),
  insecure: Options.boolean("insecure").pipe(
    Options.withDescription("Plain ws:// without TLS (loopback addresses only)")
  ),
  maxPayload: Options.integer("max-payload").pipe(
    Options.withDescription("Largest accepted frame in bytes"),
    Options.withDefault(1024 * 1024)
  ),
  authTimeoutMs: Options.integer("auth-timeout-ms").pipe(
    Options.withDescription("Close connections that have not authenticated within this time"),
    Options.withDefault(10_000)
  ),
  slowConsumerMs: Options.integer("slow-consumer-ms").pipe(
    Options.withDescription("Close a subscriber whose pushes stay backed up this long"),
    Options.withDefault(10_000)
  ),
  maxServicesPerTenant: Options.integer("max-services-per-tenant").pipe(
    Options.withDescription("Most services one tenant may hold (service.create beyond it: LIMIT_EXCEEDED)"),
    Options.withDefault(defaultLimits.maxServicesPerTenant)
  ),
  json: Options.boolean("json").pipe(Options.withDescription("Print the startup line as JSON"))
}

export const serveCommand = Command.make("serve", options, (o) =>
  Effect.gen(function*() {
    const dataDir = yield* ensureDir(Option.getOrElse(o.dataDir, () => defaultDataDir()))
    const store = storeLayer({ filename: databaseFile(dataDir) })
    const layers = Layer.mergeAll(store, Authenticator.layer().pipe(Layer.provide(store)), NativeAddon.layer, SimdDiff.layer)
    // The layers live as long as the server: provided around everything up to Effect.never.
    return yield* Effect.provide(run(dataDir, o), layers)
  }).pipe(Effect.scoped, reportErrors(o.json))
).pipe(Command.withDescription("Run the Commy server"))

interface ServeArgs {
  readonly host: string
  readonly port: number
  readonly cert: Option.Option<string>
  readonly key: Option.Option<string>
  readonly clientCa: Option.Option<string>
  readonly insecure: boolean
  readonly maxPayload: number
  readonly authTimeoutMs: number
  readonly slowConsumerMs: number
  readonly maxServicesPerTenant: number
  readonly json: boolean
}

const run = (dataDir: string, o: ServeArgs) =>
  Effect.gen(function*() {
    const server = yield* startServer({
      dataDir,
      host: o.host,
      port: o.port,
      insecure: o.insecure,
      limits: {
        maxPayload: o.maxPayload,
        authTimeoutMs: o.authTimeoutMs,
        slowConsumerMs: o.slowConsumerMs,
        maxServicesPerTenant: o.maxServicesPerTenant
      },
      ...Option.match(o.cert, { onNone: () => ({}), onSome: (certFile) => ({ certFile }) }),
      ...Option.match(o.key, { onNone: () => ({}), onSome: (keyFile) => ({ keyFile }) }),
      ...Option.match(o.clientCa, { onNone: () => ({}), onSome: (clientCaFile) => ({ clientCaFile }) })
    })
    const startup = { url: server.url, port: server.port, dataDir, certificate: server.tls?.certPath ?? null, selfSigned: server.tls?.selfSigned ?? false }
    yield* Console.log(
      o.json
        ? JSON.stringify({ listening: startup })
        : `commy listening on ${server.url} (data ${dataDir}${server.tls?.selfSigned ? `, self-signed certificate ${server.tls.certPath}` : ""})`
    )
    return yield* Effect.never
  })
