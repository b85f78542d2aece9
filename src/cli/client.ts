/**
 * Client commands of `commy`, like redis-cli for a Commy server: `ls`, `get`, `set`, `define`,
 * `create`, `watch`. Connection from flags or the environment: COMMY_URL (default
 * wss://127.0.0.1:7788), COMMY_TENANT, COMMY_KEY (prefer the variable to a flag: shell history),
 * COMMY_CA (default: the local server's self-signed certificate in its data dir).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as path from "node:path"
import { type CommyError, InvalidArgument, VariableNotFound } from "../CommyError.js"
import {
  Empty,
  ReadResult,
  ServiceListResult,
  ServiceResult,
  VariableInfo,
  VarListResult,
  WriteResult
} from "../protocol/Messages.js"
import { openRemoteService } from "../remote/RemoteService.js"
import { connect, type WssTransportService } from "../remote/WssTransport.js"
import { defaultDataDir } from "../server/DataDir.js"
import { DEFAULT_PORT } from "../server/Server.js"
import { reportErrors } from "./admin.js"
import { formatValue, parseType, parseValue, typeName, valueOf } from "./ValueText.js"

const env = (name: string) => Option.fromNullable(process.env[name]).pipe(Option.filter((v) => v !== ""))

const connection = {
  url: Options.text("url").pipe(Options.withDescription("Server URL (default $COMMY_URL or the local server)"), Options.optional),
  tenant: Options.text("tenant").pipe(Options.withDescription("Tenant (default $COMMY_TENANT)"), Options.optional),
  key: Options.text("key").pipe(Options.withDescription("API key (default $COMMY_KEY)"), Options.optional),
  ca: Options.file("ca").pipe(Options.withDescription("CA or server certificate to trust (default $COMMY_CA or the local server's)"), Options.optional),
  json: Options.boolean("json").pipe(Options.withDescription("Print machine-readable JSON"))
}

interface ConnectionArgs {
  readonly url: Option.Option<string>
  readonly tenant: Option.Option<string>
  readonly key: Option.Option<string>
  readonly ca: Option.Option<string>
  readonly json: boolean
}

const required = (flag: Option.Option<string>, variable: string, what: string) =>
  Option.match(Option.orElse(flag, () => env(variable)), {
    onNone: () => Effect.fail(new InvalidArgument({ message: `${what}: pass --${what} or set ${variable}` })),
    onSome: Effect.succeed
  })

/** Connects for the duration of `f`, printing failures as one line. */
const withServer = <A>(
  args: ConnectionArgs,
  f: (transport: WssTransportService, tenant: string) => Effect.Effect<A, CommyError, Scope.Scope>
): Effect.Effect<A, CommyError> =>
  Effect.gen(function*() {
    const tenant = yield* required(args.tenant, "COMMY_TENANT", "tenant")
    const key = yield* required(args.key, "COMMY_KEY", "key")
    const url = Option.getOrElse(Option.orElse(args.url, () => env("COMMY_URL")), () => `wss://127.0.0.1:${DEFAULT_PORT}`)
    const caFile = Option.getOrElse(
      Option.orElse(args.ca, () => env("COMMY_CA")),
      () => path.join(defaultDataDir(), "tls-cert.pem")
    )
    const ca = fs.existsSync(caFile) ? fs.readFileSync(caFile) : undefined
    const transport = yield* connect({ url, credentials: [{ tenant, key }], ...(ca ? { ca } : {}) })
    return yield* f(transport, tenant)
  }).pipe(Effect.scoped, reportErrors(args.json))

const print = (json: boolean, value: unknown, human: string) => Console.log(json ? JSON.stringify(value) : human)

const variableOf = (transport: WssTransportService, tenant: string, service: string, name: string) =>
  Effect.flatMap(transport.request({ op: "var.list", tenant, service }, VarListResult), (list) => {
    const found = list.variables.find((v) => v.name === name)
    return found ? Effect.succeed(found) : Effect.fail(new VariableNotFound({ message: `no variable ${name} in ${service}`, name }))
  })

const service = Args.text({ name: "service" })
const name = Args.text({ name: "name" })

const ls = Command.make("ls", { ...connection, service: service.pipe(Args.optional) }, (args) =>
  withServer(args, (transport, tenant) =>
    Option.match(args.service, {
      onNone: () =>
        Effect.flatMap(transport.request({ op: "service.list", tenant }, ServiceListResult), (r) =>
          print(args.json, r.services, r.services.map((s) => `${s.name}${s.persistent ? " (persistent)" : ""}`).join("\n"))),
      onSome: (serviceName) =>
        Effect.gen(function*() {
          const { variables } = yield* transport.request({ op: "var.list", tenant, service: serviceName }, VarListResult)
          const { values } = yield* transport.request({ op: "read", tenant, service: serviceName }, ReadResult)
          const byName = new Map(values.map((v) => [v.name, v]))
          const rows = variables.map((v) => ({
            name: v.name,
            type: typeName(v.type),
            version: byName.get(v.name)?.version ?? v.version,
            value: valueOf(v.type, byName.get(v.name)?.value ?? new Uint8Array(0))
          }))
          yield* print(
            args.json,
            rows,
            variables.map((v) => `${v.name} ${typeName(v.type)} v${rows.find((r) => r.name === v.name)!.version} = ${formatValue(v.type, byName.get(v.name)?.value ?? new Uint8Array(0))}`).join("\n")
          )
        })
    }))
).pipe(Command.withDescription("List services, or a service's variables with their values"))

const get = Command.make("get", { ...connection, service, name }, (args) =>
  withServer(args, (transport, tenant) =>
    Effect.gen(function*() {
      const info = yield* variableOf(transport, tenant, args.service, args.name)
      const { values } = yield* transport.request({ op: "read", tenant, service: args.service, names: [args.name] }, ReadResult)
      const v = values[0]!
      yield* print(args.json, { name: v.name, version: v.version, value: valueOf(info.type, v.value) }, formatValue(info.type, v.value))
    }))
).pipe(Command.withDescription("Print a variable's value"))

const set = Command.make("set", { ...connection, service, name, value: Args.text({ name: "value" }) }, (args) =>
  withServer(args, (transport, tenant) =>
    Effect.gen(function*() {
      const info = yield* variableOf(transport, tenant, args.service, args.name)
      const bytes = parseValue(info.type, info.capacity, args.value)
      if (!(bytes instanceof Uint8Array)) return yield* bytes
      const { versions } = yield* transport.request(
        { op: "write", tenant, service: args.service, writes: [{ name: args.name, value: bytes }] },
        WriteResult
      )
      yield* print(args.json, { name: args.name, version: versions[0] }, `${args.name} = ${formatValue(info.type, bytes)} (version ${versions[0]})`)
    }))
).pipe(Command.withDescription("Write a variable (numbers, true/false, text; bytes as hex; struct as JSON)"))

const define = Command.make("define", { ...connection, service, name, type: Args.text({ name: "type" }) }, (args) =>
  withServer(args, (transport, tenant) =>
    Effect.gen(function*() {
      const parsed = parseType(args.type)
      if (!("type" in parsed)) return yield* parsed
      const info = yield* transport.request({ op: "var.define", tenant, service: args.service, name: args.name, ...parsed }, VariableInfo)
      yield* print(args.json, info, `defined ${info.name} ${typeName(info.type)} (${info.capacity} bytes)`)
    }))
).pipe(Command.withDescription("Define a variable: type u8…u64, i8…i64, f32, f64, bool, string:N, bytes:N, struct:N"))

const create = Command.make(
  "create",
  { ...connection, service, persistent: Options.boolean("persistent").pipe(Options.withDescription("Keep it after the last connection using it closes, and across restarts (without it the service is deleted when its last client disconnects)")) },
  (args) =>
    withServer(args, (transport, tenant) =>
      Effect.flatMap(
        transport.request({ op: "service.create", tenant, service: args.service, persistent: args.persistent }, ServiceResult),
        (r) => print(args.json, r.service, `created ${r.service.name}${r.service.persistent ? " (persistent)" : ""}`)
      ))
).pipe(Command.withDescription("Create a service"))

const remove = Command.make("delete", { ...connection, service }, (args) =>
  withServer(args, (transport, tenant) =>
    Effect.zipRight(
      transport.request({ op: "service.delete", tenant, service: args.service }, Empty),
      print(args.json, { deleted: args.service }, `deleted ${args.service}`)
    ))
).pipe(Command.withDescription("Delete a service"))

const watchCommand = Command.make("watch", { ...connection, service }, (args) =>
  withServer(args, (transport, tenant) =>
    Effect.gen(function*() {
      const remote = yield* openRemoteService(transport, tenant, args.service)
      const types = new Map<string, number>()
      const typeOf = (variable: string) =>
        Effect.map(remote.list, (list) => {
          for (const v of list) types.set(v.name, v.typeId)
          return types.get(variable) ?? 13
        })
      if (!args.json) yield* Console.error(`watching ${tenant}/${args.service} (Ctrl-C to stop)`)
      yield* remote.watch({ values: true, layoutChanges: true }).pipe(
        Stream.runForEach((event) =>
          Effect.forEach(event.changes, (change) =>
            Effect.flatMap(typeOf(change.name), (type) =>
              print(
                args.json,
                { name: change.name, version: change.version, value: valueOf(type, change.value!) },
                `${change.name} = ${formatValue(type, change.value!)} (v${change.version})`
              ))))
      )
    }))
).pipe(Command.withDescription("Print every change of a service's variables until interrupted"))

export const clientCommands = [ls, get, set, define, create, remove, watchCommand] as const
