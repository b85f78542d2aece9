import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import { mapFile } from "../../src/local/MappedFile.js"
import { NativeAddon } from "../../src/native/NativeAddon.js"
import { runChild } from "../support/child.js"
import { tempDir, zeroFile } from "../support/tempDir.js"

const run = <A, E>(effect: Effect.Effect<A, E, NativeAddon | import("effect/Scope").Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(NativeAddon.layer))

/** This process's open file descriptors and threads: what a native waiter holds (a ring or a thread). */
const fdsAndThreads = () => ({
  fds: fs.readdirSync("/proc/self/fd").length,
  threads: fs.readdirSync("/proc/self/task").length
})

describe("MappedFile across real processes", () => {
  it.live("a store through one process's mapping is read through another's", () =>
    run(Effect.gen(function*() {
      const dir = yield* tempDir
      const file = zeroFile(dir, "shared.mem", 4096)
      const mapped = yield* mapFile(file)
      const view = new DataView(mapped.buffer)

      // child stores, we read through the mapping we already had (no re-read of the file)
      const stored = yield* Effect.promise(() => runChild("mapChild.ts", ["store", file, "128", "3735928559"]))
      expect(stored.stderr).toBe("")
      expect(view.getUint32(128, true)).toBe(3735928559)

      // we store, the child reads
      view.setUint32(256, 123456789, true)
      const loaded = yield* Effect.promise(() => runChild("mapChild.ts", ["load", file, "256"]))
      expect(loaded.stdout.trim()).toBe("123456789")
    })))

  it.live("a futex wait in this process is woken by a wake from another process", () =>
    run(Effect.gen(function*() {
      const dir = yield* tempDir
      const file = zeroFile(dir, "futex.mem", 4096)
      const mapped = yield* mapFile(file)
      const waiting = yield* Effect.fork(mapped.wait(64, 0, "20 seconds"))
      // The word stays 0: only a real cross-process FUTEX_WAKE can end this wait before its timeout.
      const child = yield* Effect.promise(() => runChild("mapChild.ts", ["wake", file, "64"]))
      expect(child.stderr).toBe("")
      expect(Number(child.stdout.trim())).toBeGreaterThanOrEqual(1)
      expect(yield* Fiber.join(waiting)).toBe("woken")
    })))

  it.live("a wait times out when nobody wakes it, and reports a mismatch at once", () =>
    run(Effect.gen(function*() {
      const dir = yield* tempDir
      const mapped = yield* mapFile(zeroFile(dir, "timeout.mem", 4096))
      expect(yield* mapped.wait(0, 0, "100 millis")).toBe("timeout")
      expect(yield* mapped.wait(0, 7, "10 seconds")).toBe("mismatch")
    })))

  it.live("interrupting a wait cancels the native wait", () =>
    run(Effect.gen(function*() {
      const dir = yield* tempDir
      const mapped = yield* mapFile(zeroFile(dir, "cancel.mem", 4096))
      const result = yield* Effect.timeout(mapped.wait(0, 0), "50 millis").pipe(Effect.either)
      expect(Either.isLeft(result)).toBe(true)
      // the waiter is reusable afterwards
      expect(yield* mapped.wait(0, 0, "20 millis")).toBe("timeout")
    })))

  it.live("closing the file under an in-flight wait reports it cancelled, once; a wait after that fails typed", () =>
    run(Effect.gen(function*() {
      const dir = yield* tempDir
      const scope = yield* Scope.make()
      const mapped = yield* mapFile(zeroFile(dir, "close.mem", 4096)).pipe(Scope.extend(scope))
      const results: Array<unknown> = []
      mapped.unsafeWait(0, 0, Infinity, (result) => results.push(result))
      yield* Effect.sleep("10 millis")
      yield* Scope.close(scope, Exit.void)
      yield* Effect.sleep("20 millis")
      expect(results).toEqual(["cancelled"])
      const after = yield* Effect.promise(() => new Promise((resolve) => mapped.unsafeWait(0, 0, 10, resolve)))
      expect(after).toMatchObject({ _tag: "MappingClosed" })
    })))

  it.live("closing the file frees its waiters' rings and threads at once, not at garbage collection", () =>
    run(Effect.gen(function*() {
      const dir = yield* tempDir
      const file = zeroFile(dir, "free.mem", 4096)
      const cycle = Effect.gen(function*() {
        const scope = yield* Scope.make()
        const mapped = yield* mapFile(file).pipe(Scope.extend(scope))
        // Two waits in flight at once: two native waiters, each with a ring (fd) or a thread.
        const a = yield* Effect.fork(mapped.wait(0, 0, "5 millis"))
        const b = yield* Effect.fork(mapped.wait(0, 0, "5 millis"))
        expect([yield* Fiber.join(a), yield* Fiber.join(b)]).toEqual(["timeout", "timeout"])
        yield* Scope.close(scope, Exit.void)
      })
      yield* cycle // whatever the first cycle starts lazily for good is in the baseline
      const before = fdsAndThreads()
      for (let i = 0; i < 20; i++) yield* cycle
      expect(fdsAndThreads()).toEqual(before)
    })))

  it.live("a finished wait's cancel does not withdraw a later wait on the same reused waiter", () =>
    run(Effect.gen(function*() {
      const dir = yield* tempDir
      const mapped = yield* mapFile(zeroFile(dir, "stale.mem", 4096))
      const words = new Int32Array(mapped.buffer, 0, 4)
      const waitOnce = () =>
        new Promise<{ result: unknown; cancel: () => void }>((resolve) => {
          const cancel = mapped.unsafeWait(0, Atomics.load(words, 0), 10_000, (result) => resolve({ result, cancel }))
        })
      const woken = <A>(promise: Promise<A>): Promise<A> => {
        Atomics.add(words, 0, 1)
        Effect.runSync(mapped.wake(0))
        return promise
      }
      // Ended by the change: "woken", or "mismatch" when a thread waiter was not in the futex yet.
      const ended = ["woken", "mismatch"]
      const first = yield* Effect.promise(() => woken(waitOnce()))
      expect(ended).toContain(first.result)
      // The second wait takes the first one's (now idle) native waiter; the stale cancel must not touch it.
      let second: unknown
      mapped.unsafeWait(0, Atomics.load(words, 0), 10_000, (result) => (second = result))
      first.cancel()
      yield* Effect.promise(() => woken(new Promise((resolve) => setTimeout(resolve, 50))))
      expect(ended).toContain(second) // not "cancelled"
    })))

  it.live("an owned waiter reports each wait to its one callback, later, and a cancelled wait never", () =>
    run(Effect.gen(function*() {
      const dir = yield* tempDir
      const file = zeroFile(dir, "owned.mem", 4096)
      const mapped = yield* mapFile(file)
      const words = new Int32Array(mapped.buffer, 0, 4)
      const results: Array<unknown> = []
      let settle: () => void = () => {}
      const waiter = yield* mapped.unsafeWaiter((result) => {
        results.push(result)
        settle()
      })
      const next = () => new Promise<void>((resolve) => (settle = resolve))

      // Woken from another process (the word stays 0: only the FUTEX_WAKE ends it).
      let reported = next()
      waiter.wait(64, 0, 20_000)
      const child = yield* Effect.promise(() => runChild("mapChild.ts", ["wake", file, "64"]))
      expect(child.stderr).toBe("")
      yield* Effect.promise(() => reported)
      // A mismatch is known at once but still reported later, never inside `wait`.
      reported = next()
      waiter.wait(0, 7, 20_000)
      expect(results).toEqual(["woken"])
      yield* Effect.promise(() => reported)
      reported = next()
      waiter.wait(0, 0, 10)
      yield* Effect.promise(() => reported)
      expect(results).toEqual(["woken", "mismatch", "timeout"])

      // Cancelled: neither a queued wait nor an immediate result is reported, and the waiter is reusable.
      waiter.wait(0, 0, 20_000)
      waiter.cancel()
      waiter.wait(0, 7, 20_000)
      waiter.cancel()
      Atomics.add(words, 0, 1)
      yield* mapped.wake(0)
      yield* Effect.sleep("50 millis")
      expect(results).toHaveLength(3)
      reported = next()
      waiter.wait(0, Atomics.load(words, 0), 10)
      yield* Effect.promise(() => reported)
      expect(results).toEqual(["woken", "mismatch", "timeout", "timeout"])
    })))

  it.live("an owned waiter: closing the file under its wait reports it cancelled; its scope frees its ring or thread", () =>
    run(Effect.gen(function*() {
      const dir = yield* tempDir
      const file = zeroFile(dir, "owned-close.mem", 4096)
      /** `first`: which scope closes first; `between`: whether the event loop runs between the two. */
      const cycle = (first: "waiter" | "file", between: boolean) =>
        Effect.gen(function*() {
          const fileScope = yield* Scope.make()
          const mapped = yield* mapFile(file).pipe(Scope.extend(fileScope))
          const waiterScope = yield* Scope.make()
          const results: Array<unknown> = []
          const waiter = yield* mapped.unsafeWaiter((result) => results.push(result)).pipe(Scope.extend(waiterScope))
          waiter.wait(0, 0, 20_000)
          yield* Effect.sleep("5 millis")
          const [a, b] = first === "waiter" ? [waiterScope, fileScope] : [fileScope, waiterScope]
          yield* Scope.close(a, Exit.void)
          if (between) yield* Effect.sleep("5 millis")
          yield* Scope.close(b, Exit.void)
          yield* Effect.sleep("5 millis")
          // Closing the mapping reports the wait cancelled, unless the waiter's own scope closed
          // before that report ran: a waiter's scope closing withdraws its wait silently.
          expect(results).toEqual(first === "file" && between ? ["cancelled"] : [])
        })
      yield* cycle("waiter", false)
      const before = fdsAndThreads()
      for (let i = 0; i < 5; i++) {
        for (const first of ["waiter", "file"] as const) {
          yield* cycle(first, false)
          yield* cycle(first, true)
        }
      }
      expect(fdsAndThreads()).toEqual(before)
    })))

  it.live("flock is exclusive between open file descriptions and released on close", () =>
    run(Effect.gen(function*() {
      const dir = yield* tempDir
      const file = zeroFile(dir, "lock.mem", 4096)
      const a = yield* mapFile(file)
      expect(yield* a.tryLock(true)).toBe(true)
      const other = yield* Effect.scoped(Effect.gen(function*() {
        const b = yield* mapFile(file)
        return yield* b.tryLock(true)
      }))
      expect(other).toBe(false)
      yield* a.unlock
      const after = yield* Effect.scoped(Effect.gen(function*() {
        const b = yield* mapFile(file)
        return yield* b.lock(true, "1 second")
      }))
      expect(after).toBe(true)
    })))
})

describe("MappedFile bad input", () => {
  it.live("typed errors for missing files, short files and out-of-range offsets", () =>
    run(Effect.gen(function*() {
      const dir = yield* tempDir
      const missing = yield* Effect.either(mapFile(path.join(dir, "nope.mem")))
      expect(Either.isLeft(missing) && missing.left.code).toBe("FILE_ERROR")
      expect(Either.isLeft(missing) && missing.left._tag === "FileError" && missing.left.errno).toBe("ENOENT")

      const file = zeroFile(dir, "short.mem", 100)
      const short = yield* Effect.either(mapFile(file, { length: 4096 }))
      expect(Either.isLeft(short) && short.left.code).toBe("FILE_TOO_SHORT")

      for (const length of [-1, 0.5, Number.NaN, 2 ** 60]) {
        const bad = yield* Effect.either(mapFile(file, { length }))
        expect(Either.isLeft(bad) && bad.left.code).toMatch(/INVALID_ARGUMENT|FILE_TOO_SHORT/)
      }

      const mapped = yield* mapFile(file)
      for (const offset of [-4, 1, 2.5, 100, 4096, Number.POSITIVE_INFINITY]) {
        const wake = yield* Effect.either(mapped.wake(offset))
        expect(Either.isLeft(wake) && wake.left.code).toMatch(/INVALID_ARGUMENT|INVALID_OFFSET/)
        const wait = yield* Effect.either(mapped.wait(offset, 0, "1 millis"))
        expect(Either.isLeft(wait) && wait.left.code).toMatch(/INVALID_ARGUMENT|INVALID_OFFSET/)
      }
    })))

  it.live("closing detaches the buffer: old views read as empty, calls fail with MAPPING_CLOSED", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = zeroFile(dir, "closed.mem", 4096)
      const { mapped, view } = yield* Effect.scoped(
        Effect.map(mapFile(file), (mapped) => ({ mapped, view: new Uint8Array(mapped.buffer) }))
      ).pipe(Effect.provide(NativeAddon.layer))
      expect(view.length).toBe(0)
      expect(view[0]).toBeUndefined()
      expect(mapped.buffer.byteLength).toBe(0)
      const closed = yield* Effect.either(mapped.wake(0))
      expect(Either.isLeft(closed) && closed.left.code).toBe("MAPPING_CLOSED")
      const sized = yield* Effect.either(mapped.fileSize)
      expect(Either.isLeft(sized) && sized.left.code).toBe("MAPPING_CLOSED")
    }).pipe(Effect.scoped))
})
