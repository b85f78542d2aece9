import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { adminCommands } from "../../src/cli/admin.js"
import { servicePath } from "../../src/local/ServiceFiles.js"
import { databaseFile, servicesDir } from "../../src/server/DataDir.js"
import { MetadataStore } from "../../src/server/MetadataStore.js"
import { layer } from "../../src/server/SqliteMetadataStore.js"
import { tempDir } from "../support/tempDir.js"

const commy = Command.make("commy").pipe(Command.withSubcommands(adminCommands))
const cli = Command.run(commy, { name: "commy", version: "test" })

interface Run {
  readonly ok: boolean
  readonly stdout: ReadonlyArray<string>
  readonly stderr: ReadonlyArray<string>
}

/** Runs `commy <args> --data-dir <dir>` in-process, capturing what it prints. */
const run = (dir: string, ...args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const stdout: Array<string> = []
    const stderr: Array<string> = []
    const base = yield* Console.consoleWith(Effect.succeed)
    const capture: Console.Console = {
      ...base,
      log: (...a) => Effect.sync(() => void stdout.push(a.join(" "))),
      error: (...a) => Effect.sync(() => void stderr.push(a.join(" ")))
    }
    const exit = yield* cli(["node", "commy", ...args, "--data-dir", dir]).pipe(
      Effect.provide(NodeContext.layer),
      Effect.withConsole(capture),
      Effect.exit
    )
    return { ok: Exit.isSuccess(exit), stdout, stderr } satisfies Run
  })

/** Runs with `--json` and parses stdout as one JSON document. */
const runJson = (dir: string, ...args: ReadonlyArray<string>) =>
  Effect.map(run(dir, ...args, "--json"), (r) => {
    expect(r.stderr, r.stderr.join("\n")).toEqual([])
    expect(r.ok).toBe(true)
    expect(r.stdout).toHaveLength(1)
    return JSON.parse(r.stdout[0]!) as unknown
  })

/** The store the CLI wrote, opened directly (closed with the scope). */
const storeAt = (dir: string) =>
  Effect.map(Layer.build(layer({ filename: databaseFile(dir) })), (ctx) => Context.get(ctx, MetadataStore))

describe("admin CLI", () => {
  it.effect("tenant create / list / delete, human-readable and --json", () =>
    Effect.gen(function*() {
      const dir = path.join(yield* tempDir, "data")
      const created = yield* run(dir, "tenant", "create", "acme")
      expect(created).toMatchObject({ ok: true, stdout: ["Created tenant acme"], stderr: [] })
      expect(fs.statSync(dir).mode & 0o777).toBe(0o700)
      expect(fs.statSync(databaseFile(dir)).mode & 0o777).toBe(0o600)

      expect(yield* runJson(dir, "tenant", "create", "beta")).toMatchObject({ name: "beta", createdAt: expect.any(Number) })
      const list = (yield* runJson(dir, "tenant", "list")) as Array<{ name: string }>
      expect(list.map((t) => t.name)).toEqual(["acme", "beta"])
      const human = yield* run(dir, "tenant", "list")
      expect(human.stdout[0]).toMatch(/^NAME\s+CREATED\nacme\s+\d{4}-.*\nbeta\s+\d{4}-/)

      expect(yield* runJson(dir, "tenant", "delete", "beta")).toEqual({ tenant: "beta", removedServices: [] })
      expect(((yield* runJson(dir, "tenant", "list")) as Array<{ name: string }>).map((t) => t.name)).toEqual(["acme"])
    }).pipe(Effect.scoped))

  it.effect("failures print one line with the error code and fail", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* run(dir, "tenant", "create", "acme")
      const duplicate = yield* run(dir, "tenant", "create", "acme")
      expect(duplicate.ok).toBe(false)
      expect(duplicate.stdout).toEqual([])
      expect(duplicate.stderr).toEqual([`error [ALREADY_EXISTS]: tenant "acme" already exists`])

      const invalid = yield* run(dir, "tenant", "create", "../etc")
      expect(invalid.ok).toBe(false)
      expect(invalid.stderr).toHaveLength(1)
      expect(invalid.stderr[0]).toMatch(/^error \[INVALID_NAME\]: /)

      const missing = yield* run(dir, "key", "list", "--tenant", "nope", "--json")
      expect(missing.ok).toBe(false)
      expect(missing.stdout).toEqual([])
      expect(JSON.parse(missing.stderr[0]!)).toEqual({ error: { code: "TENANT_NOT_FOUND", message: `no tenant "nope"` } })

      for (const args of [
        ["tenant", "delete", "nope"],
        ["key", "create", "--tenant", "nope"],
        ["key", "revoke", "--tenant", "acme", "000000000000"],
        ["grant", "--tenant", "acme", "--key", "000000000000", "--service", "*", "--rights", "read"],
        ["grant", "--tenant", "acme", "--key", "000000000000", "--service", "*", "--rights", "read,root"],
        ["key", "create", "--tenant", "acme", "--label", "bell\u0007"]
      ]) {
        const r = yield* run(dir, ...args)
        expect(r.ok, args.join(" ")).toBe(false)
        expect(r.stderr, args.join(" ")).toHaveLength(1)
        expect(r.stderr[0]).toMatch(/^error \[[A-Z_]+\]: ./)
      }
    }).pipe(Effect.scoped))

  it.effect("key create prints the key once with a warning; key list never shows it", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* run(dir, "tenant", "create", "acme")
      const human = yield* run(dir, "key", "create", "--tenant", "acme", "--label", "ci")
      expect(human.ok).toBe(true)
      const text = human.stdout.join("\n")
      const key = /commy_[0-9a-f]{12}_[A-Za-z0-9_-]{43}/.exec(text)?.[0]
      expect(key).toBeDefined()
      expect(text).toMatch(/cannot be shown again/)

      const created = (yield* runJson(dir, "key", "create", "--tenant", "acme")) as Record<string, unknown>
      expect(created).toMatchObject({ tenant: "acme", label: "", revoked: false, warning: expect.stringMatching(/cannot be shown again/) })
      expect(created["key"]).toMatch(new RegExp(`^commy_${created["id"] as string}_`))

      const listed = yield* run(dir, "key", "list", "--tenant", "acme", "--json")
      expect(listed.stdout.join("")).not.toContain(key!)
      expect(listed.stdout.join("")).not.toContain(created["key"] as string)
      const keys = JSON.parse(listed.stdout[0]!) as Array<{ id: string; label: string; revoked: boolean }>
      expect(keys.map((k) => k.label).sort()).toEqual(["", "ci"])

      // The printed keys really authenticate.
      const store = yield* storeAt(dir)
      expect((yield* store.authenticate("acme", key!)).tenant).toBe("acme")
      expect((yield* store.authenticate("acme", created["key"] as string)).keyId).toBe(created["id"])
    }).pipe(Effect.scoped))

  it.effect("key create --operator makes an operator key; key list shows which keys are", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* run(dir, "tenant", "create", "ops")
      const operator = (yield* runJson(dir, "key", "create", "--tenant", "ops", "--label", "root", "--operator")) as {
        id: string
        key: string
        operator: boolean
      }
      expect(operator).toMatchObject({ tenant: "ops", label: "root", operator: true, revoked: false })
      const plain = (yield* runJson(dir, "key", "create", "--tenant", "ops")) as { id: string; operator: boolean }
      expect(plain.operator).toBe(false)
      const human = yield* run(dir, "key", "create", "--tenant", "ops", "--operator")
      expect(human.stdout[0]).toMatch(/^Created operator key [0-9a-f]{12} for tenant ops:/)

      const listed = (yield* runJson(dir, "key", "list", "--tenant", "ops")) as Array<{ id: string; operator: boolean }>
      expect(listed.find((k) => k.id === operator.id)?.operator).toBe(true)
      expect(listed.find((k) => k.id === plain.id)?.operator).toBe(false)
      const table = (yield* run(dir, "key", "list", "--tenant", "ops")).stdout.join("\n")
      expect(table).toMatch(new RegExp(`${operator.id}\\s+root\\s+\\S+\\s+active,operator`))

      // What the server will see: the key authenticates as usual and is an operator.
      const store = yield* storeAt(dir)
      const principal = yield* store.authenticate("ops", operator.key)
      expect(yield* store.keyStatus(principal)).toEqual({ active: true, operator: true })
    }).pipe(Effect.scoped))

  it.effect("key revoke and grant change what the server sees", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* run(dir, "tenant", "create", "acme")
      const { id, key } = (yield* runJson(dir, "key", "create", "--tenant", "acme")) as { id: string; key: string }

      expect(yield* runJson(dir, "grant", "--tenant", "acme", "--key", id, "--service", "*", "--rights", "read")).toEqual(
        { tenant: "acme", keyId: id, service: "*", rights: ["read"] }
      )
      const granted = yield* run(dir, "grant", "--tenant", "acme", "--key", id, "--service", "sensors", "--rights", "write, read")
      expect(granted.stdout).toEqual([`Granted read,write on sensors to key ${id}`])

      const store = yield* storeAt(dir)
      const principal = yield* store.authenticate("acme", key)
      expect([...(yield* store.rightsFor(principal, "sensors"))].sort()).toEqual(["read", "write"])
      expect([...(yield* store.rightsFor(principal, "other"))]).toEqual(["read"])

      const keys = (yield* runJson(dir, "key", "list", "--tenant", "acme")) as Array<{ grants: Array<unknown> }>
      expect(keys[0]!.grants).toEqual([
        { keyId: id, service: "*", rights: ["read"] },
        { keyId: id, service: "sensors", rights: ["read", "write"] }
      ])

      // Empty rights remove the grant.
      const removed = yield* run(dir, "grant", "--tenant", "acme", "--key", id, "--service", "*", "--rights", "")
      expect(removed.stdout).toEqual([`Removed the grant of key ${id} on *`])
      expect([...(yield* store.rightsFor(principal, "other"))]).toEqual([])

      expect(yield* runJson(dir, "key", "revoke", "--tenant", "acme", id)).toEqual({ tenant: "acme", id, revoked: true })
      expect((yield* Effect.flip(store.authenticate("acme", key))).code).toBe("AUTHENTICATION_FAILED")
      const listed = (yield* runJson(dir, "key", "list", "--tenant", "acme")) as Array<{ revoked: boolean }>
      expect(listed[0]!.revoked).toBe(true)
    }).pipe(Effect.scoped))

  it.effect("tenant delete reports the removed services and removes their files", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* run(dir, "tenant", "create", "acme")
      const service = yield* Effect.scoped(
        Effect.flatMap(storeAt(dir), (store) => store.createService({ tenant: "acme", name: "sensors", persistent: true }))
      )
      const file = servicePath(servicesDir(dir), service.id)
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, "x")
      const result = (yield* runJson(dir, "tenant", "delete", "acme")) as { removedServices: Array<{ id: string }> }
      expect(result.removedServices.map((s) => s.id)).toEqual([service.id])
      expect(fs.existsSync(file)).toBe(false)
    }).pipe(Effect.scoped))

  it("runs as a program: exit status 0 / 1, JSON on stdout, one error line on stderr", () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "commy-cli-"))
    try {
      const commyCli = (...args: ReadonlyArray<string>) =>
        spawnSync(process.execPath, ["--import", "tsx", "src/cli/adminMain.ts", ...args, "--data-dir", dir], {
          cwd: root,
          encoding: "utf8",
          env: { ...process.env, NO_COLOR: "1" }
        })
      const ok = commyCli("tenant", "create", "acme", "--json")
      expect(ok.status, ok.stderr).toBe(0)
      expect(JSON.parse(ok.stdout)).toMatchObject({ name: "acme" })
      const failed = commyCli("tenant", "create", "acme")
      expect(failed.status).toBe(1)
      expect(failed.stdout).toBe("")
      expect(failed.stderr.trim().split("\n")).toEqual([`error [ALREADY_EXISTS]: tenant "acme" already exists`])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
