/**
 * Admin subcommands of `commy`: tenants, API keys and grants, edited directly in the server's
 * metadata database (safe while `commy serve` runs: SQLite arbitrates, and the server reads
 * through on every authentication).
 *
 * Mount next to `serve`: `Command.make("commy").pipe(Command.withSubcommands([serve, ...adminCommands]))`.
 * Each command prints its own failures as one line carrying the error code, then fails with the
 * error so the process exits non-zero: run the root with `disableErrorReporting: true` to avoid
 * a second, multi-line report.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import { type CommyError, InvalidArgument, isCommyError } from "../CommyError.js"
import { removeServiceFile, servicePath } from "../local/ServiceFiles.js"
import { databaseFile, defaultDataDir, ensureDir, servicesDir } from "../server/DataDir.js"
import { MetadataStore, type Right } from "../server/MetadataStore.js"
import { allRights, isRight, layer } from "../server/SqliteMetadataStore.js"

// -- shared options and plumbing -------------------------------------------------------------

const dataDir = Options.text("data-dir").pipe(
  Options.withDescription(
    "Server data directory (default: $COMMY_DATA_DIR, else $XDG_DATA_HOME/commy, else ~/.local/share/commy)"
  ),
  Options.optional
)
const json = Options.boolean("json").pipe(Options.withDescription("Print machine-readable JSON"))
const tenant = Options.text("tenant").pipe(Options.withDescription("Tenant name"))

interface Common {
  readonly dataDir: Option.Option<string>
  readonly json: boolean
}

/** What a command prints on success: the JSON value for `--json`, else human-readable lines. */
interface Output {
  readonly json: unknown
  readonly human: string
}

/** One line: `error [CODE]: message`, or `{"error":{"code","message"}}` with `--json`. */
export const formatError = (error: CommyError, asJson: boolean): string =>
  asJson
    ? JSON.stringify({ error: { code: error.code, message: error.message } })
    : `error [${error.code}]: ${error.message}`

/** Prints a failure as one line on stderr and fails with it, so the exit status is non-zero. */
export const reportErrors = (asJson: boolean) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tapError(effect, (error) =>
    isCommyError(error) ? Console.error(formatError(error, asJson)) : Console.error(`error: ${String(error)}`))

/** Opens the store in the data dir for the duration of `effect`, prints its output, reports errors. */
const runAdmin = <A>(
  common: Common,
  effect: (dir: string) => Effect.Effect<A, CommyError, MetadataStore>,
  render: (a: A) => Output
): Effect.Effect<void, CommyError> =>
  Effect.gen(function*() {
    const dir = yield* ensureDir(Option.getOrElse(common.dataDir, () => defaultDataDir()))
    const result = yield* Effect.provide(effect(dir), layer({ filename: databaseFile(dir) }))
    const output = render(result)
    yield* Console.log(common.json ? JSON.stringify(output.json) : output.human)
  }).pipe(reportErrors(common.json))

const iso = (ms: number) => new Date(ms).toISOString()

/** Aligned columns for human-readable lists. */
const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => row[i]!.length))) ?? []
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n")
}

// -- tenant ----------------------------------------------------------------------------------

const tenantCreate = Command.make(
  "create",
  { name: Args.text({ name: "name" }), dataDir, json },
  (args) =>
    runAdmin(args, () => Effect.flatMap(MetadataStore, (store) => store.createTenant(args.name)), (tenant) => ({
      json: tenant,
      human: `Created tenant ${tenant.name}`
    }))
).pipe(Command.withDescription("Create a tenant"))

const tenantList = Command.make(
  "list",
  { dataDir, json },
  (args) =>
    runAdmin(args, () => Effect.flatMap(MetadataStore, (store) => store.listTenants), (tenants) => ({
      json: tenants,
      human: tenants.length === 0
        ? "No tenants"
        : table([["NAME", "CREATED"], ...tenants.map((t) => [t.name, iso(t.createdAt)])])
    }))
).pipe(Command.withDescription("List tenants"))

/**
 * Removes the files of deleted services from the default services directory (flagged first, so
 * processes still mapping one stop); missing files are fine (non-persistent services may never
 * have been written, or live elsewhere).
 */
const removeServiceFiles = (dir: string, ids: ReadonlyArray<string>) => {
  const root = servicesDir(dir)
  return Effect.forEach(ids, (id) => (fs.existsSync(servicePath(root, id)) ? removeServiceFile(root, id) : Effect.void), { discard: true })
}

const tenantDelete = Command.make(
  "delete",
  { name: Args.text({ name: "name" }), dataDir, json },
  (args) =>
    runAdmin(
      args,
      (dir) =>
        Effect.gen(function*() {
          const store = yield* MetadataStore
          const services = yield* store.deleteTenant(args.name)
          yield* removeServiceFiles(dir, services.map((s) => s.id))
          return services
        }),
      (services) => ({
        json: { tenant: args.name, removedServices: services },
        human: `Deleted tenant ${args.name} with its keys, grants and ${services.length} service(s)`
      })
    )
).pipe(Command.withDescription("Delete a tenant with its keys, grants and services"))

export const tenantCommand = Command.make("tenant").pipe(
  Command.withDescription("Manage tenants"),
  Command.withSubcommands([tenantCreate, tenantList, tenantDelete])
)

// -- key -------------------------------------------------------------------------------------

/** Labels end up in terminals and logs: printable and short. */
const checkLabel = (label: string): InvalidArgument | undefined =>
  label.length > 200 || /[\u0000-\u001f\u007f-\u009f]/.test(label) // eslint-disable-line no-control-regex
    ? new InvalidArgument({ message: "a label has at most 200 characters and no control characters" })
    : undefined

const keyCreate = Command.make(
  "create",
  {
    tenant,
    label: Options.text("label").pipe(Options.withDescription("What the key is for"), Options.withDefault("")),
    operator: Options.boolean("operator").pipe(
      Options.withDescription("An operator key: may also create and delete tenants over the protocol")
    ),
    dataDir,
    json
  },
  (args) =>
    runAdmin(
      args,
      () =>
        Effect.gen(function*() {
          const invalid = checkLabel(args.label)
          if (invalid) return yield* invalid
          const store = yield* MetadataStore
          return yield* store.createKey({ tenant: args.tenant, label: args.label, operator: args.operator })
        }),
      ({ record, secret }) => {
        const warning = "Store this key now: it cannot be shown again."
        return {
          json: { ...record, key: secret, warning },
          human: [
            `Created ${record.operator ? "operator key" : "key"} ${record.id} for tenant ${record.tenant}${
              record.label ? ` (${record.label})` : ""
            }:`,
            "",
            `  ${secret}`,
            "",
            warning,
            `Grant it rights with: commy grant --tenant ${record.tenant} --key ${record.id} --service <name|*> --rights read,write (or admin)`
          ].join("\n")
        }
      }
    )
).pipe(Command.withDescription("Create an API key (printed once)"))

const keyList = Command.make(
  "list",
  { tenant, dataDir, json },
  (args) =>
    runAdmin(
      args,
      () =>
        Effect.gen(function*() {
          const store = yield* MetadataStore
          const keys = yield* store.listKeys(args.tenant)
          return yield* Effect.forEach(keys, (key) =>
            Effect.map(store.listGrants(args.tenant, key.id), (grants) => ({ ...key, grants })))
        }),
      (keys) => ({
        json: keys,
        human: keys.length === 0 ? `No keys in tenant ${args.tenant}` : table([
          ["ID", "LABEL", "CREATED", "STATUS", "GRANTS"],
          ...keys.map((k) => [
            k.id,
            k.label,
            iso(k.createdAt),
            (k.revoked ? "revoked" : "active") + (k.operator ? ",operator" : ""),
            k.grants.map((g) => `${g.service}=${g.rights.join(",")}`).join(" ")
          ])
        ])
      })
    )
).pipe(Command.withDescription("List the API keys of a tenant with their grants"))

const keyRevoke = Command.make(
  "revoke",
  { keyId: Args.text({ name: "keyId" }), tenant, dataDir, json },
  (args) =>
    runAdmin(args, () => Effect.flatMap(MetadataStore, (store) => store.revokeKey(args.tenant, args.keyId)), () => ({
      json: { tenant: args.tenant, id: args.keyId, revoked: true },
      human: `Revoked key ${args.keyId} of tenant ${args.tenant}`
    }))
).pipe(Command.withDescription("Revoke an API key"))

const keyBindCert = Command.make(
  "bind-cert",
  {
    tenant,
    keyId: Options.text("key").pipe(Options.withDescription("Key id whose grants the certificate gets")),
    cert: Options.file("cert").pipe(Options.withDescription("Client certificate (PEM)")),
    dataDir,
    json
  },
  (args) =>
    runAdmin(
      args,
      () =>
        Effect.gen(function*() {
          const fingerprint = yield* Effect.try({
            try: () => new crypto.X509Certificate(fs.readFileSync(args.cert)).fingerprint256,
            catch: (cause) => new InvalidArgument({ message: `cannot read certificate ${args.cert}: ${String(cause)}` })
          })
          const store = yield* MetadataStore
          yield* store.bindCertificate({ tenant: args.tenant, keyId: args.keyId, fingerprint })
          return fingerprint
        }),
      (fingerprint) => ({
        json: { tenant: args.tenant, key: args.keyId, fingerprint256: fingerprint },
        human: `Bound certificate ${fingerprint} to key ${args.keyId} of tenant ${args.tenant} (method "mtls")`
      })
    )
).pipe(Command.withDescription("Let a client certificate (mTLS) authenticate as a key"))

export const keyCommand = Command.make("key").pipe(
  Command.withDescription("Manage API keys"),
  Command.withSubcommands([keyCreate, keyList, keyRevoke, keyBindCert])
)

// -- grant -----------------------------------------------------------------------------------

/** `read,write` → rights; "" or "none" → no rights (removes the grant). */
export const parseRights = (text: string): ReadonlyArray<Right> | InvalidArgument => {
  const words = text.split(",").map((w) => w.trim()).filter((w) => w !== "")
  if (words.length === 1 && words[0] === "none") return []
  const unknown = words.filter((w) => !isRight(w))
  if (unknown.length > 0) {
    return new InvalidArgument({
      message: `unknown right(s) ${unknown.join(", ")}: use a comma-separated subset of ${allRights.join(",")}, or ""`
    })
  }
  return allRights.filter((r) => words.includes(r))
}

export const grantCommand = Command.make(
  "grant",
  {
    tenant,
    key: Options.text("key").pipe(Options.withDescription("Key id")),
    service: Options.text("service").pipe(Options.withDescription("Service name, or * for every service")),
    rights: Options.text("rights").pipe(
      Options.withDescription("Comma-separated rights: read, write, admin; empty (or none) removes the grant")
    ),
    dataDir,
    json
  },
  (args) =>
    runAdmin(
      args,
      () =>
        Effect.gen(function*() {
          const rights = parseRights(args.rights)
          if (rights instanceof InvalidArgument) return yield* rights
          const store = yield* MetadataStore
          yield* store.grant({ tenant: args.tenant, keyId: args.key, service: args.service, rights })
          return rights
        }),
      (rights) => ({
        json: { tenant: args.tenant, keyId: args.key, service: args.service, rights },
        human: rights.length === 0
          ? `Removed the grant of key ${args.key} on ${args.service}`
          : `Granted ${rights.join(",")} on ${args.service} to key ${args.key}`
      })
    )
).pipe(Command.withDescription("Set (replace) the rights of a key on a service; empty rights remove the grant"))

/** The admin subcommands, to mount under the `commy` root command. */
export const adminCommands = [tenantCommand, keyCommand, grantCommand] as const
