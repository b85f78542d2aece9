/**
 * The addon is context-aware: the public API works inside worker_threads, several at once, and
 * a worker terminated mid-wait neither hangs nor crashes the process.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import { fileURLToPath } from "node:url"
import { bundled } from "../support/child.js"
import { tempDir, zeroFile } from "../support/tempDir.js"

const addon = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "build", "Release", "commy.node")

const inWorker = (file: string, value: number) =>
  new Promise<any>((resolve, reject) => {
    const worker = new Worker(bundled("workerMap.ts"), { workerData: { file, value }, env: { ...process.env, COMMY_NATIVE_PATH: addon } })
    worker.once("message", (m) => {
      resolve(m)
      void worker.terminate()
    })
    worker.once("error", reject)
  })

describe("worker_threads", () => {
  it.live("three workers map the same file, store, diff and wait through the public API", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = zeroFile(dir, "w.mem", 4096)
      const results = yield* Effect.promise(() => Promise.all([inWorker(file, 7), inWorker(file, 7), inWorker(file, 7)]))
      for (const r of results) {
        expect(r.error).toBeUndefined()
        expect(r.ranges).toEqual([0, 1])
        expect(r.waited).toBe("timeout")
      }
    }).pipe(Effect.scoped))

  it.live("terminating a worker blocked in a futex wait is clean, and the addon still works after", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = zeroFile(dir, "t.mem", 4096)
      const worker = new Worker(bundled("workerMap.ts"), {
        workerData: { file, value: 1, hang: true },
        env: { ...process.env, COMMY_NATIVE_PATH: addon }
      })
      yield* Effect.promise(() => new Promise((resolve) => worker.once("message", resolve)))
      yield* Effect.promise(() => worker.terminate()) // resolves: the waiter thread was cancelled and joined
      const after = yield* Effect.promise(() => inWorker(file, 9))
      expect(after.ranges).toEqual([0, 1])
    }).pipe(Effect.scoped))
})
