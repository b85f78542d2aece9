/**
 * Watches a service root for service files appearing and disappearing (chokidar).
 *
 * This is the right job for a file watcher: directory entries change through syscalls inotify
 * sees. Variable writes do not (they are stores into a shared mapping); the Watcher handles those.
 */
import { watch as chokidarWatch } from "chokidar"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as path from "node:path"
import { WatcherError } from "../CommyError.js"
import { prepareRoot } from "./ServiceFiles.js"

export interface ServiceDirectoryEvent {
  readonly type: "added" | "removed"
  /** The service id (from `service_<id>.mem`). */
  readonly id: string
}

const SERVICE_FILE = /^service_([0-9a-f]{32})\.mem$/

/** Service files added and removed under `root`; files present at start are reported as added. */
export const watchServiceDirectory = (root: string): Stream.Stream<ServiceDirectoryEvent, WatcherError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    yield* prepareRoot(root).pipe(
      Effect.mapError((cause) => new WatcherError({ message: `cannot watch ${root}: ${cause.message}`, cause }))
    )
    return Stream.asyncScoped<ServiceDirectoryEvent, WatcherError>((emit) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const watcher = chokidarWatch(root, { depth: 0, ignoreInitial: false })
          const report = (type: ServiceDirectoryEvent["type"]) => (file: string) => {
            const match = SERVICE_FILE.exec(path.basename(file))
            if (match && path.dirname(file) === root) void emit.single({ type, id: match[1]! })
          }
          watcher.on("add", report("added"))
          watcher.on("unlink", report("removed"))
          watcher.on("error", (cause) => void emit.fail(new WatcherError({ message: `watching ${root} failed`, cause })))
          return watcher
        }),
        (watcher) => Effect.promise(() => watcher.close())
      )
    )
  }))
