import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Stream from "effect/Stream"
import type { CommyError, WatcherError } from "../../src/CommyError.js"
import { SimdDiff } from "../../src/diff/SimdDiff.js"
import { bufferServiceFile, createServiceFile, openServiceFile } from "../../src/local/ServiceFiles.js"
import { NativeAddon } from "../../src/native/NativeAddon.js"
import { tempDir } from "../support/tempDir.js"
import * as Cause from "effect/Cause"
import * as Option from "effect/Option"
import { VirtualFile } from "../../src/local/VirtualFile.js"
import { H_WAITERS } from "../../src/local/layout.js"
import * as Var from "../../src/local/VarType.js"
import { onChange, watch } from "../../src/local/Watcher.js"
import * as Scope from "effect/Scope"
import * as Exit from "effect/Exit"
import type { FileChangeEvent } from "../../src/local/Watcher.js"

describe("Watcher (in-memory file)", () => {
  it.live("names exactly the variables whose values changed, with values", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const a = yield* vf.define("a", Var.u32)
      const b = yield* vf.define("b", Var.string(16))
      const c = yield* vf.define("c", Var.f64)
      const events = yield* Effect.fork(Stream.runCollect(Stream.take(watch(vf, { values: true }), 2)))
      yield* Effect.sleep("20 millis")
      a.unsafeSet(1)
      b.unsafeSet("hi")
      yield* Effect.sleep("20 millis")
      c.unsafeSet(2.5)
      a.unsafeSet(1) // same value: not a change
      const [first, second] = Chunk.toArray(yield* Fiber.join(events))
      expect(first!.variables).toEqual(["a", "b"])
      expect(first!.changes.map((x) => x.version)).toEqual([1, 1])
      expect(new TextDecoder().decode(first!.changes[1]!.value)).toBe("hi")
      expect(second!.variables).toEqual(["c"])
    }).pipe(Effect.provide(SimdDiff.layer)))

  it.live("onChange: the same events as callbacks, coalesced per wake, and nothing after its scope closes", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const a = yield* vf.define("a", Var.u32)
      const b = yield* vf.define("b", Var.string(16))
      const seen: Array<FileChangeEvent> = []
      const scope = yield* Scope.make()
      yield* onChange(vf, (event) => seen.push(event), { values: true }).pipe(Scope.extend(scope))
      a.unsafeSet(1)
      b.unsafeSet("hi")
      yield* Effect.sleep("20 millis")
      expect(seen.map((e) => e.variables)).toEqual([["a", "b"]])
      expect(new TextDecoder().decode(seen[0]!.changes[1]!.value)).toBe("hi")
      a.unsafeSet(2)
      yield* Effect.sleep("20 millis")
      expect(seen.map((e) => e.variables)).toEqual([["a", "b"], ["a"]])
      yield* Scope.close(scope, Exit.void)
      a.unsafeSet(3)
      yield* Effect.sleep("20 millis")
      expect(seen).toHaveLength(2)
    }).pipe(Effect.provide(SimdDiff.layer)))

  it.live("onChange: a handler that writes to the file it watches gets an event for each of its own writes", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const n = yield* vf.define("n", Var.u32)
      const values: Array<number> = []
      yield* onChange(vf, () => {
        const v = n.unsafeGet()
        values.push(v)
        if (v < 1000) n.unsafeSet(v + 1) // each event triggers the next write
      })
      n.unsafeSet(1)
      yield* Effect.sleep("200 millis")
      expect(values[values.length - 1]).toBe(1000)
    }).pipe(Effect.scoped, Effect.provide(SimdDiff.layer)))

  it.live("ownWrites: false leaves out this file's own writes but reports another writer's, even of the same variable", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      // A second VirtualFile over the same bytes: its writes are "another process's".
      const other = yield* VirtualFile.open(vf.accessor)
      const a = yield* vf.define("a", Var.u32)
      const b = yield* vf.define("b", Var.u32)
      const otherA = yield* other.variable("a", Var.u32)
      const seen: Array<FileChangeEvent> = []
      yield* onChange(vf, (event) => seen.push(event), { ownWrites: false })
      a.unsafeSet(1)
      b.unsafeSet(1)
      yield* Effect.sleep("20 millis")
      expect(seen).toEqual([])
      otherA.unsafeSet(2)
      yield* Effect.sleep("20 millis")
      expect(seen.map((e) => e.variables)).toEqual([["a"]])
      expect(seen[0]!.changes[0]!.version).toBe(2)
      // Ours then theirs before one wake: the newest version is theirs, so it is reported.
      a.unsafeSet(3)
      otherA.unsafeSet(4)
      yield* Effect.sleep("20 millis")
      expect(seen.map((e) => e.variables)).toEqual([["a"], ["a"]])
    }).pipe(Effect.scoped, Effect.provide(SimdDiff.layer)))

  it.live("a data region too large for the word-by-word diff goes through SimdDiff with the same events", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const big = yield* vf.define("big", Var.bytes(4000))
      const vars = []
      for (let i = 0; i < 20; i++) vars.push(yield* vf.define(`v${i}`, Var.u32))
      const events = yield* Effect.fork(Stream.runCollect(Stream.take(watch(vf, { values: true }), 2)))
      yield* Effect.sleep("20 millis")
      vars[19]!.unsafeSet(19)
      big.unsafeSet(new Uint8Array(4000).fill(7))
      vars[0]!.unsafeSet(1)
      yield* Effect.sleep("20 millis")
      vars[5]!.unsafeSet(5)
      const [first, second] = Chunk.toArray(yield* Fiber.join(events))
      expect(first!.variables).toEqual(["big", "v0", "v19"])
      expect(first!.changes[0]!.value).toEqual(new Uint8Array(4000).fill(7))
      expect(second!.variables).toEqual(["v5"])
    }).pipe(Effect.provide(SimdDiff.layer)))

  it.live("watch: writes made while the consumer is busy are reported at its next pull, coalesced", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const a = yield* vf.define("a", Var.u32)
      const b = yield* vf.define("b", Var.u32)
      const events = yield* Effect.fork(
        watch(vf, { values: true }).pipe(
          Stream.mapEffect((event) => Effect.as(Effect.sleep("30 millis"), event)),
          Stream.take(2),
          Stream.runCollect
        )
      )
      yield* Effect.sleep("20 millis")
      a.unsafeSet(1)
      yield* Effect.sleep("10 millis")
      // The consumer is still busy with the first event.
      b.unsafeSet(1)
      a.unsafeSet(2)
      a.unsafeSet(3)
      const [first, second] = Chunk.toArray(yield* Fiber.join(events))
      expect(first!.variables).toEqual(["a"])
      expect(second!.variables).toEqual(["a", "b"])
      expect(second!.changes.map((c) => c.version)).toEqual([3, 1])
    }).pipe(Effect.provide(SimdDiff.layer)))

  it.live("watch: ending or interrupting the stream releases its sleeper registration", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const a = yield* vf.define("a", Var.u32)
      const waiters = () => Atomics.load(vf.memory.words, H_WAITERS >>> 2)
      const taken = yield* Effect.fork(Stream.runCollect(Stream.take(watch(vf), 1)))
      const idle = yield* Effect.fork(Stream.runDrain(watch(vf)))
      yield* Effect.sleep("20 millis")
      expect(waiters()).toBe(2)
      expect(vf.memory.selfWakes).toBe(2)
      a.unsafeSet(1)
      yield* Fiber.join(taken)
      yield* Effect.sleep("20 millis")
      expect(waiters()).toBe(1)
      yield* Fiber.interrupt(idle)
      expect(waiters()).toBe(0)
      expect(vf.memory.selfWakes).toBe(0)
    }).pipe(Effect.provide(SimdDiff.layer)))

  it.live("watch with spin: polls instead of sleeping, reports writes made between its slices, and stops polling when interrupted", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const a = yield* vf.define("a", Var.u32)
      const waiters = () => Atomics.load(vf.memory.words, H_WAITERS >>> 2)
      const events = yield* Effect.fork(Stream.runCollect(Stream.take(watch(vf, { spin: "1 minute" }), 2)))
      yield* Effect.sleep("20 millis") // timers run while it polls
      expect(waiters()).toBe(0)
      a.unsafeSet(1)
      yield* Effect.sleep("20 millis")
      a.unsafeSet(2)
      const seen = yield* Fiber.join(events)
      expect(Chunk.toReadonlyArray(seen).map((e) => e.changes.map((c) => c.name))).toEqual([["a"], ["a"]])
      // Polling keeps this thread's event loop busy; once the stream is interrupted it idles.
      const busy = (during: Effect.Effect<void>) =>
        Effect.gen(function*() {
          const start = performance.eventLoopUtilization()
          yield* during
          return performance.eventLoopUtilization(start).utilization
        })
      const idle = yield* Effect.fork(Stream.runDrain(watch(vf, { spin: "1 minute" })))
      expect(yield* busy(Effect.sleep("100 millis"))).toBeGreaterThan(0.8)
      yield* Fiber.interrupt(idle)
      expect(yield* busy(Effect.sleep("100 millis"))).toBeLessThan(0.5)
      expect(waiters()).toBe(0)
    }).pipe(Effect.provide(SimdDiff.layer)))

  for (const spin of [undefined, "1 minute"] as const) {
    it.live(`onChange${spin ? " with spin" : ""}: a handler that writes on every event does not hold the thread (the watcher yields to the event loop every 64 events)`, () =>
      Effect.gen(function*() {
        const vf = yield* bufferServiceFile()
        const a = yield* vf.define("a", Var.u32)
        let stoppedBy: "timer" | "cap" | undefined
        let events = 0
        // Each event's write makes the next event at once: without a yield the chain would only
        // end at the handler's own cap, with the timer still waiting.
        yield* onChange(vf, () => {
          events++
          if (stoppedBy !== undefined) return
          if (events >= 100_000) stoppedBy = "cap"
          else a.unsafeSet(events)
        }, spin ? { spin } : {})
        setTimeout(() => (stoppedBy ??= "timer"), 5)
        a.unsafeSet(1_000_000)
        yield* Effect.promise(() => new Promise<void>((resolve) => {
          const check = () => (stoppedBy ? resolve() : setImmediate(check))
          check()
        }))
        expect(stoppedBy).toBe("timer")
        expect(events).toBeGreaterThan(64)
      }).pipe(Effect.scoped, Effect.provide(SimdDiff.layer)))
  }

  it.live("a duration option it cannot read fails with InvalidArgument naming it (no defect)", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const spin = yield* Stream.runDrain(watch(vf, { spin: "soon" as never })).pipe(Effect.flip)
      expect(spin).toMatchObject({ _tag: "InvalidArgument", code: "INVALID_ARGUMENT" })
      expect(spin.message).toContain("spin")
      const maxSleep = yield* onChange(vf, () => {}, { maxSleep: { weeks: 1 } as never }).pipe(Effect.scoped, Effect.flip)
      expect(maxSleep).toMatchObject({ _tag: "InvalidArgument" })
      expect(maxSleep.message).toContain("maxSleep")
    }).pipe(Effect.provide(SimdDiff.layer)))

  it.live("onChange: a handler that throws becomes a WatcherError for onError (or an error log) and the watcher carries on", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const vf = yield* openServiceFile(root, yield* createServiceFile(root))
      const x = yield* vf.define("x", Var.u32)
      const seen: Array<number> = []
      /** A handler that records x and throws on its own first event. */
      const throwFirst = () => {
        let calls = 0
        return (event: FileChangeEvent) => {
          const value = event.changes.find((c) => c.name === "x")?.value
          if (value === undefined) return
          seen.push(new DataView(value.buffer, value.byteOffset, 4).getUint32(0, true))
          if (++calls === 1) throw new Error("handler failed")
        }
      }
      const errors: Array<CommyError> = []
      const logged: Array<string> = []
      const logger = Logger.make(({ message }) => logged.push(String(message)))
      // With onError: typed; without: logged. Both watchers see both writes.
      yield* onChange(vf, throwFirst(), { values: true, onError: (error) => errors.push(error) })
      yield* onChange(vf, throwFirst(), { values: true }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      x.unsafeSet(1)
      yield* Effect.sleep("30 millis")
      x.unsafeSet(2)
      yield* Effect.sleep("30 millis")
      expect(seen).toEqual([1, 1, 2, 2])
      expect(errors.map((e) => [e.code, e.message])).toEqual([["WATCHER_ERROR", "the onChange handler threw: Error: handler failed"]])
      expect((errors[0] as WatcherError).cause).toBeInstanceOf(Error)
      expect(logged).toEqual(["the onChange handler threw: Error: handler failed"])
    }).pipe(Effect.scoped, Effect.provide([NativeAddon.layer, SimdDiff.layer])))

  it.live("onChange with reuse: one event object, its arrays and two value buffers per variable, overwritten event by event, with the same contents as fresh events", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const vf = yield* openServiceFile(root, yield* createServiceFile(root))
      const a = yield* vf.define("a", Var.u32)
      const b = yield* vf.define("b", Var.string(16))
      const c = yield* vf.define("c", Var.f64)
      /** What each event said, copied inside the handler (as `reuse` asks). */
      const copy = (event: FileChangeEvent) => ({
        variables: [...event.variables],
        changes: event.changes.map((x) => ({ name: x.name, version: x.version, value: Array.from(x.value!) }))
      })
      const reused: Array<ReturnType<typeof copy>> = []
      const fresh: Array<ReturnType<typeof copy>> = []
      const objects: Array<FileChangeEvent> = []
      const aValues: Array<Uint8Array> = []
      yield* onChange(vf, (event) => {
        reused.push(copy(event))
        objects.push(event)
        const value = event.changes.find((x) => x.name === "a")?.value
        if (value) aValues.push(value)
      }, { values: true, reuse: true })
      yield* onChange(vf, (event) => fresh.push(copy(event)), { values: true })
      const writes: Array<() => void> = [
        () => (a.unsafeSet(1), b.unsafeSet("hi")),
        () => c.unsafeSet(2.5),
        () => (a.unsafeSet(2), b.unsafeSet("hello"), c.unsafeSet(-1)),
        () => b.unsafeSet("world"), // same length as the last: its buffer is reused too
        () => a.unsafeSet(3)
      ]
      for (const write of writes) {
        write()
        yield* Effect.sleep("30 millis")
      }
      expect(reused).toEqual(fresh)
      expect(reused.map((e) => e.variables)).toEqual([["a", "b"], ["c"], ["a", "b", "c"], ["b"], ["a"]])
      expect(new Set(objects).size).toBe(1)
      // a's value bytes alternate between two buffers, the first again on the third event naming a.
      expect(aValues).toHaveLength(3)
      expect(aValues[2]).toBe(aValues[0])
      expect(aValues[1]).not.toBe(aValues[0])
      // The Stream ignores it: its consumer may keep an event past the next pull.
      const streamed = yield* Effect.fork(Stream.runCollect(Stream.take(watch(vf, { values: true, reuse: true } as never), 2)))
      yield* Effect.sleep("20 millis")
      a.unsafeSet(4)
      yield* Effect.sleep("20 millis")
      a.unsafeSet(5)
      const [first, second] = Chunk.toArray(yield* Fiber.join(streamed))
      expect(first).not.toBe(second)
      expect([first!.changes[0]!.value![0], second!.changes[0]!.value![0]]).toEqual([4, 5])
    }).pipe(Effect.scoped, Effect.provide([NativeAddon.layer, SimdDiff.layer])))

  it.live("onChange with reuse and layoutChanges: a layout-only event is the same object too, with no changes", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const a = yield* vf.define("a", Var.u32)
      const seen: Array<{ event: FileChangeEvent; layoutChanged: boolean; variables: Array<string> }> = []
      yield* onChange(vf, (event) => seen.push({ event, layoutChanged: event.layoutChanged, variables: [...event.variables] }), {
        reuse: true,
        layoutChanges: true
      })
      a.unsafeSet(1)
      yield* Effect.sleep("20 millis")
      yield* vf.define("b", Var.u32)
      yield* Effect.sleep("20 millis")
      a.unsafeSet(2)
      yield* Effect.sleep("20 millis")
      expect(seen.map(({ layoutChanged, variables }) => ({ layoutChanged, variables }))).toEqual([
        { layoutChanged: false, variables: ["a"] },
        { layoutChanged: true, variables: [] },
        { layoutChanged: false, variables: ["a"] }
      ])
      expect(new Set(seen.map((s) => s.event)).size).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(SimdDiff.layer)))

  it.live("a mapped file closed under its watchers: watch fails and onChange's onError gets MappingClosed, nothing throws, nobody stays counted asleep", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const id = yield* createServiceFile(root, {})
      const fileScope = yield* Scope.make()
      const vf = yield* openServiceFile(root, id).pipe(Scope.extend(fileScope))
      // Another mapping of the same file, as a writer in another process would see the header.
      const other = yield* openServiceFile(root, id)
      const waiters = () => Atomics.load(other.memory.words, H_WAITERS >>> 2)
      yield* vf.define("a", Var.u32)
      const errors: Array<string> = []
      yield* onChange(vf, () => {}, { onError: (error) => errors.push(error._tag) })
      const stream = yield* Effect.fork(Stream.runDrain(watch(vf)))
      yield* Effect.sleep("20 millis")
      expect(waiters()).toBe(2)
      yield* Scope.close(fileScope, Exit.void)
      // Else every write elsewhere would pay a futex wake for watchers that are gone.
      expect(waiters()).toBe(0)
      const exit = yield* Fiber.await(stream).pipe(Effect.timeout("2 seconds"))
      expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause)).toEqual(Option.some(expect.objectContaining({ _tag: "MappingClosed" })))
      expect(errors).toEqual(["MappingClosed"])
    }).pipe(Effect.scoped, Effect.provide([NativeAddon.layer, SimdDiff.layer])))
})
