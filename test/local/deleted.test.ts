/**
 * A deleted service's file is flagged before it is unlinked, so processes still mapping it stop
 * (watchers end, writes fail with SERVICE_NOT_FOUND) instead of writing on into a file that
 * nobody will open again.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { createServiceFile, openServiceFile, removeServiceFile, servicePath } from "../../src/local/ServiceFiles.js"
import * as Var from "../../src/local/VarType.js"
import { NativeAddon } from "../../src/native/NativeAddon.js"
import { runChild, startChild } from "../support/child.js"
import { tempDir } from "../support/tempDir.js"

/** A new service file mapped here, with a u32 variable "v". */
const mappedWithV = Effect.gen(function*() {
  const root = yield* tempDir
  const id = yield* createServiceFile(root)
  const vf = yield* openServiceFile(root, id)
  return { root, id, vf, v: yield* vf.define("v", Var.u32) }
})

const codeOf = <A>(result: Either.Either<A, { readonly code: string }>) => (Either.isLeft(result) ? result.left.code : "succeeded")

describe("a deleted service", () => {
  it.live("another process's watchers end and its writes fail with SERVICE_NOT_FOUND", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const id = yield* createServiceFile(root)
      const child = yield* Effect.acquireRelease(Effect.sync(() => startChild("vfChild.ts", ["watch-end", root, id])), (c) => Effect.sync(() => c.kill()))
      yield* Effect.promise(() => child.waitForLine((l) => l === "ready"))
      yield* removeServiceFile(root, id)
      const done = yield* Effect.promise(() => child.exited)
      expect(done.stdout.split("\n").filter((l) => l.includes(" "))).toEqual([
        "stream ended SERVICE_NOT_FOUND",
        "callback ended SERVICE_NOT_FOUND",
        "write SERVICE_NOT_FOUND"
      ])
      expect(done.code).toBe(0)
      expect(fs.existsSync(servicePath(root, id))).toBe(false)
    }).pipe(Effect.scoped), 60_000)

  it.live("every write path of a mapping opened before the deletion refuses; reads still work", () =>
    Effect.gen(function*() {
      const { id, root, v, vf } = yield* mappedWithV
      yield* v.set(7)
      yield* removeServiceFile(root, id)
      expect(codeOf(yield* Effect.either(v.set(8)))).toBe("SERVICE_NOT_FOUND")
      expect(codeOf(yield* Effect.either(v.compareAndSet(1, 8)))).toBe("SERVICE_NOT_FOUND")
      expect(codeOf(yield* Effect.either(vf.writeBatch([{ variable: v, value: 8 }])))).toBe("SERVICE_NOT_FOUND")
      expect(codeOf(yield* Effect.either(vf.write("v", new Uint8Array(4))))).toBe("SERVICE_NOT_FOUND")
      expect(codeOf(yield* Effect.either(vf.define("w", Var.u32)))).toBe("SERVICE_NOT_FOUND")
      expect(() => v.unsafeSet(8)).toThrow(expect.objectContaining({ code: "SERVICE_NOT_FOUND" }))
      expect(v.unsafeGet()).toBe(7)
    }).pipe(Effect.scoped, Effect.provide(NativeAddon.layer)))

  it.live("without the addon the file is flagged by plain writes, which a mapping sees", () =>
    Effect.gen(function*() {
      const { id, root, v } = yield* mappedWithV
      const removed = yield* Effect.promise(() => runChild("vfChild.ts", ["remove", root, id], { env: { COMMY_NATIVE: "off" } }))
      expect(removed.stdout.trim()).toBe("removed")
      expect(codeOf(yield* Effect.either(v.set(1)))).toBe("SERVICE_NOT_FOUND")
    }).pipe(Effect.scoped, Effect.provide(NativeAddon.layer)))

  it.live("a FIFO under a service file's name is removed without hanging, with or without the addon", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      for (const env of [{}, { COMMY_NATIVE: "off" }]) {
        const id = "ab".repeat(16)
        execFileSync("mkfifo", [servicePath(root, id)])
        const removed = yield* Effect.promise(() => runChild("vfChild.ts", ["remove", root, id], { env, timeoutMs: 20_000 }))
        expect(removed.stdout.trim()).toBe("removed")
        expect(fs.existsSync(servicePath(root, id))).toBe(false)
      }
    }).pipe(Effect.scoped), 60_000)
})
