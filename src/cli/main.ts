/**
 * The `commy` command: `serve`; the admin commands `tenant`, `key`, `grant` (on the data dir);
 * and client commands `ls`, `get`, `set`, `define`, `create`, `delete`, `watch` (over WSS).
 */
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import { VERSION } from "../server/Server.js"
import { adminCommands } from "./admin.js"
import { clientCommands } from "./client.js"
import { serveCommand } from "./serve.js"

const commy = Command.make("commy").pipe(
  Command.withDescription("Share live variables between processes"),
  Command.withSubcommands([serveCommand, ...adminCommands, ...clientCommands])
)

const cli = Command.run(commy, { name: "commy", version: VERSION })

cli(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  // Commands print their own one-line errors; runMain only sets the exit code.
  NodeRuntime.runMain({ disableErrorReporting: true })
)
