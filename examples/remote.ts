import { Effect, Fiber, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { RemoteClient, Var } from "commy"

const dataDir = process.env.COMMY_DATA_DIR ?? path.join(os.homedir(), ".local/share/commy")

const program = Effect.gen(function*() {
  const client = yield* RemoteClient
  yield* client.createService("acme", "metrics", { persistent: true }).pipe(
    Effect.catchTag("AlreadyExists", () => Effect.void)
  )
  const metrics = yield* client.openService("acme", "metrics")  // mirrored locally from pushes
  const requests = yield* metrics.define("requests", Var.u32)

  const changed = yield* metrics.watch({ values: true }).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
  const version = yield* requests.set(requests.unsafeGet() + 1)   // a write to the server
  yield* Fiber.join(changed)                                      // its push came back
  yield* Effect.log(`requests = ${requests.unsafeGet()} (version ${version})`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(RemoteClient.layer({
    url: "wss://127.0.0.1:7788",
    ca: fs.readFileSync(path.join(dataDir, "tls-cert.pem")),   // the server's self-signed certificate
    credentials: [{ tenant: "acme", key: process.env.COMMY_KEY! }]
  })),
  Effect.runPromise
)
