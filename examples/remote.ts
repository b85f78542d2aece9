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
  // Mapped when the server runs on this machine and this user can open its file, else over WSS.
  const metrics = yield* client.open("acme", "metrics")
  const requests = yield* metrics.define("requests", Var.u32)

  const changed = yield* metrics.watch({ values: true }).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
  yield* Effect.sleep("10 millis")                                // let the watcher start
  const version = yield* requests.set(requests.unsafeGet() + 1)   // same call on either path
  yield* Fiber.join(changed)                                      // the change was seen
  yield* Effect.log(`requests = ${requests.unsafeGet()} (version ${version}, ${metrics.locality})`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(RemoteClient.layer({
    url: process.env.COMMY_URL ?? "wss://127.0.0.1:7788",
    ca: fs.readFileSync(path.join(dataDir, "tls-cert.pem")),   // the server's self-signed certificate
    credentials: [{ tenant: "acme", key: process.env.COMMY_KEY! }]
  })),
  Effect.runPromise
)
