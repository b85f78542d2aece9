/**
 * A runnable `commy` with only the admin subcommands (used by tests as a child process).
 * The real entry point, with `serve`, is `src/cli/main.ts`.
 */
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import { adminCommands } from "./admin.js"

const commy = Command.make("commy").pipe(Command.withSubcommands(adminCommands))

const cli = Command.run(commy, { name: "commy", version: "0.1.0" })

// The commands already printed their failures on one line; only the exit status is left to set.
cli(process.argv).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain({ disableErrorReporting: true }))
