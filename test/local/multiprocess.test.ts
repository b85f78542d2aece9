/**
 * Cross-process behaviour of service files, with real OS processes on one real file.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as fs from "node:fs"
import * as path from "node:path"
import { SimdDiff } from "../../src/diff/SimdDiff.js"
import { H_WAITERS } from "../../src/local/layout.js"
import { createServiceFile, openServiceFile, prepareRoot } from "../../src/local/ServiceFiles.js"
import * as Var from "../../src/local/VarType.js"
import { onChange } from "../../src/local/Watcher.js"
import { NativeAddon } from "../../src/native/NativeAddon.js"
import { checksummed, verify } from "../support/checksum.js"
import { runChild, startChild } from "../support/child.js"
import { tempDir } from "../support/tempDir.js"

const live = <A, E>(effect: Effect.Effect<A, E, NativeAddon | SimdDiff | import("effect/Scope").Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide([NativeAddon.layer, SimdDiff.layer]))

/** Waits (polling every 5 ms, for 10 s at most) until `done()` holds. */
const until = (done: () => boolean) =>
  Effect.suspend(() => (done() ? Effect.void : Effect.fail("not yet"))).pipe(
    Effect.retry(Schedule.spaced("5 millis")),
    Effect.timeout("10 seconds")
  )

const setup = Effect.gen(function*() {
  const root = yield* tempDir
  const id = yield* createServiceFile(root, { capacity: 1024 * 1024, maxVariables: 64 })
  return { root, id }
})

describe("service files across processes", () => {
  it.live("(a) a value written in one process is read in another; files and dirs are owner-only", () =>
    live(Effect.gen(function*() {
      const { id, root } = yield* setup
      const child = yield* Effect.promise(() => runChild("vfChild.ts", ["write", root, id, "answer", "42"]))
      expect(child.stderr).toBe("")
      const vf = yield* openServiceFile(root, id)
      const v = yield* vf.variable("answer", Var.u32)
      expect(v.unsafeGet()).toBe(42)
      expect(fs.statSync(root).mode & 0o777).toBe(0o700)
      expect(fs.statSync(path.join(root, `service_${id}.mem`)).mode & 0o777).toBe(0o600)
    })))

  it.live("(b) two writers and a reader hammer one 64-byte variable for 5 s: zero torn reads", () =>
    live(Effect.gen(function*() {
      const { id, root } = yield* setup
      const results = yield* Effect.promise(() =>
        Promise.all([
          runChild("vfChild.ts", ["hammer-write", root, id, "5"]),
          runChild("vfChild.ts", ["hammer-write", root, id, "5"]),
          runChild("vfChild.ts", ["hammer-read", root, id, "5"])
        ])
      )
      for (const r of results) expect(r.stderr).toBe("")
      const writes = results.slice(0, 2).map((r) => Number(/writes (\d+)/.exec(r.stdout)![1]))
      const [, reads, torn] = /reads (\d+) torn (\d+)/.exec(results[2]!.stdout)!.map(Number)
      expect(writes[0]).toBeGreaterThan(1000)
      expect(writes[1]).toBeGreaterThan(1000)
      expect(reads).toBeGreaterThan(1000)
      expect(torn).toBe(0)
    })), 60_000)

  it.live("(c) writers killed with SIGKILL mid-write 200+ times: readers and new writers carry on", () =>
    live(Effect.gen(function*() {
      const { id, root } = yield* setup
      const vf = yield* openServiceFile(root, id)
      const blob = yield* vf.define("blob", Var.bytes(64))
      const ownerWord = vf.layout.entries.get("blob")!.slot + 4
      const words = new Int32Array(vf.accessor.buffer)
      let kills = 0
      let diedHoldingSlot = 0
      for (let round = 0; round < 50; round++) {
        // Four writers start together: they race to take over slots left by the last round's dead.
        const writers = Array.from({ length: 4 }, () => startChild("vfChild.ts", ["crash-writer", root, id]))
        yield* Effect.promise(() => Promise.all(writers.map((w) => w.waitForLine((l) => l === "ready"))))
        yield* Effect.sleep(`${Math.floor(Math.random() * 15)} millis`)
        for (const w of writers) w.kill("SIGKILL")
        yield* Effect.promise(() => Promise.all(writers.map((w) => w.exited)))
        kills += writers.length
        // A non-zero owner now is a writer that died inside its write: the path under test.
        if (Atomics.load(words, ownerWord >>> 2) !== 0) diedHoldingSlot++
        // The file is intact: the committed value verifies and this process can still write.
        expect(verify(blob.unsafeGet())).toBe(true)
        const version = yield* blob.set(checksummed(round))
        expect(version).toBeGreaterThan(0)
      }
      expect(kills).toBeGreaterThanOrEqual(200)
      expect(diedHoldingSlot).toBeGreaterThan(0)
      console.log(`kills ${kills}, rounds where a writer died holding the slot: ${diedHoldingSlot}/50`)
    })), 240_000)

  it.live("(c) a process killed holding the allocation lock leaves nothing to clean up", () =>
    live(Effect.gen(function*() {
      const { id, root } = yield* setup
      const holder = startChild("vfChild.ts", ["hold-lock", root, id])
      yield* Effect.promise(() => holder.waitForLine((l) => l === "locked"))
      holder.kill("SIGKILL")
      yield* Effect.promise(() => holder.exited)
      const vf = yield* openServiceFile(root, id)
      const v = yield* vf.define("after", Var.u32)
      expect(v.unsafeGet()).toBe(0)
    })))

  it.live("(c) creators killed with SIGKILL mid-create, 20 times, leave only complete service files", () =>
    live(Effect.gen(function*() {
      const root = yield* tempDir
      for (let round = 0; round < 20; round++) {
        const creator = startChild("createChild.ts", [root])
        yield* Effect.promise(() => creator.waitForLine((l) => l === "ready"))
        yield* Effect.sleep(`${Math.floor(Math.random() * 10)} millis`)
        creator.kill("SIGKILL")
        yield* Effect.promise(() => creator.exited)
      }
      const leftovers = fs.readdirSync(root).filter((n) => n.startsWith(".tmp-")).length
      console.log(`creators killed mid-create left ${leftovers} temp files for prepareRoot to remove`)
      yield* prepareRoot(root)
      const names = fs.readdirSync(root)
      expect(names.filter((n) => !/^service_[0-9a-f]{32}\.mem$/.test(n))).toEqual([])
      expect(names.length).toBeGreaterThanOrEqual(20)
      for (const name of names) {
        const id = /^service_([0-9a-f]{32})\.mem$/.exec(name)![1]!
        yield* Effect.scoped(openServiceFile(root, id)) // a complete, valid header every time
      }
    })), 120_000)

  it.live("(c) a temp file left by a dead creator is removed when the root is prepared", () =>
    live(Effect.gen(function*() {
      const root = yield* tempDir
      // A temp file of a dead creator (pid 999999 is above pid_max's default), as a kill between
      // writing the header and linking the file into place leaves it.
      fs.writeFileSync(path.join(root, `.tmp-999999-abcdef.mem`), "partial", { mode: 0o600 })
      yield* prepareRoot(root)
      expect(fs.readdirSync(root)).toEqual([])
    })))

  // The Stream and the callback front ends, and both native waiter kinds (io_uring where the
  // kernel allows it, else this repeats the thread kind).
  for (
    const [label, mode, env] of [
      ["watch (Stream)", "watch", {}],
      ["watch (Stream), thread waiter", "watch", { COMMY_WAITER: "thread" }],
      ["onChange (callback)", "on-change", {}],
      ["onChange (callback, reuse)", "on-change-reuse", {}]
    ] as const
  ) {
  it.live(`(d) ${label}: a watcher in another process names exactly the changed variables; after 100,000 writes it ends with every final value`, () =>
    live(Effect.gen(function*() {
      const { id, root } = yield* setup
      const vf = yield* openServiceFile(root, id)
      const vars = []
      for (let i = 0; i < 10; i++) vars.push(yield* vf.define(`v${i}`, Var.u32))
      const watcher = startChild("vfChild.ts", mode === "watch" ? ["watch", root, id, "1000000"] : [mode, root, id], { env })
      yield* Effect.promise(() => watcher.waitForLine((l) => l === "ready"))

      vars[3]!.unsafeSet(33)
      vars[7]!.unsafeSet(77)
      // One event or two (the watcher may wake between the writes): together exactly v3 and v7.
      const named = new Set<string>()
      yield* Effect.promise(() =>
        watcher.waitForLine((line) => {
          if (!line.startsWith("{")) return false
          for (const name of (JSON.parse(line) as { variables: Array<string> }).variables) named.add(name)
          return named.has("v3") && named.has("v7")
        })
      )
      expect([...named].sort()).toEqual(["v3", "v7"])
      const eventsBeforeBurst = watcher.lines.filter((l) => l.startsWith("{")).length

      const burst = yield* Effect.promise(() => runChild("vfChild.ts", ["burst", root, id, "100000"]))
      expect(burst.stdout.trim()).toBe("done")
      // final values: v{k} = the last i < 100000 with i % 10 == k
      const finals = new Map<string, number>()
      for (let k = 0; k < 10; k++) finals.set(`v${k}`, 99990 + k)
      const latest = new Map<string, number>()
      let seen = 0
      yield* Effect.promise(() =>
        watcher.waitForLine((line) => {
          if (!line.startsWith("{") || seen++ < eventsBeforeBurst) return false
          const event = JSON.parse(line) as { changes: Array<{ name: string; value: Array<number> }> }
          for (const c of event.changes) latest.set(c.name, new DataView(Uint8Array.from(c.value).buffer).getUint32(0, true))
          return [...finals].every(([name, value]) => latest.get(name) === value)
        }, 20_000)
      )
      watcher.kill("SIGTERM")
      expect(Object.fromEntries(latest)).toEqual(Object.fromEntries(finals))
    })), 60_000)
  }

  it.live("(e) while another process hammers batches and a 64-byte value, every event names a batch whole, with consistent values, never torn", () =>
    live(Effect.gen(function*() {
      const { id, root } = yield* setup
      const vf = yield* openServiceFile(root, id)
      yield* vf.define("a", Var.u32)
      yield* vf.define("b", Var.u32)
      yield* vf.define("blob", Var.bytes(64))
      const problems: Array<string> = []
      const u32 = (value: Uint8Array) => new DataView(value.buffer, value.byteOffset, 4).getUint32(0, true)
      // Fresh events, and `reuse` (whose value buffers are overwritten event by event).
      const counts = [false, true].map((reuse) => {
        const count = { events: 0, batches: 0 }
        return Effect.as(onChange(vf, (event) => {
          count.events++
          const byName = new Map(event.changes.map((c) => [c.name, c]))
          const a = byName.get("a")
          const b = byName.get("b")
          if (a || b) {
            count.batches++
            if (!a || !b) problems.push(`half a batch: ${event.variables.join(",")}`)
            else if (u32(a.value!) !== u32(b.value!) || a.version !== b.version) {
              problems.push(`a ${u32(a.value!)} v${a.version}, b ${u32(b.value!)} v${b.version}`)
            }
          }
          const blob = byName.get("blob")
          if (blob && !verify(blob.value!)) problems.push("torn blob")
        }, { values: true, reuse, onError: (error) => problems.push(error.message) }), count)
      })
      const watchers = yield* Effect.all(counts)
      const writer = yield* Effect.promise(() => runChild("vfChild.ts", ["hammer-batch", root, id, "3"]))
      expect(writer.stderr).toBe("")
      yield* Effect.sleep("100 millis")
      expect(problems.slice(0, 5)).toEqual([])
      for (const { batches, events } of watchers) {
        expect(batches).toBeGreaterThan(100)
        expect(events).toBeGreaterThanOrEqual(batches)
      }
    })), 60_000)

  it.live("a watcher killed while asleep is subtracted from the waiter count by the next watcher", () =>
    live(Effect.gen(function*() {
      const { id, root } = yield* setup
      const vf = yield* openServiceFile(root, id)
      yield* vf.define("x", Var.u32)
      const waiters = () => Atomics.load(vf.memory.words, 68 >>> 2)
      const settled = (expected: number) =>
        Effect.eventually(Effect.suspend(() => (waiters() === expected ? Effect.void : Effect.fail("not yet"))).pipe(
          Effect.zipLeft(Effect.sleep("10 millis"))
        )).pipe(Effect.timeout("10 seconds"))

      const first = startChild("vfChild.ts", ["watch", root, id, "1"])
      yield* Effect.promise(() => first.waitForLine((l) => l === "ready"))
      yield* settled(1)
      first.kill("SIGKILL")
      yield* Effect.promise(() => first.exited)
      expect(waiters()).toBe(1) // the dead sleeper is still counted: writes would pay a wake syscall

      const second = startChild("vfChild.ts", ["watch", root, id, "1"])
      yield* Effect.promise(() => second.waitForLine((l) => l === "ready"))
      yield* settled(1) // the first was reaped, the second counts
      second.kill("SIGKILL")
      yield* Effect.promise(() => second.exited)
      vf.memory.reapSleepers()
      expect(waiters()).toBe(0)
    })), 60_000)
  it.live("spin: a busy-polling watcher sees another process's writes without sleeping, lets the event loop run, and sleeps once its window closes", () =>
    live(Effect.gen(function*() {
      const { id, root } = yield* setup
      const vf = yield* openServiceFile(root, id)
      const waiters = () => Atomics.load(vf.memory.words, H_WAITERS >>> 2)
      const seen: Array<ReadonlyArray<string>> = []
      let timerRan = false
      // A window far longer than the test's first part: the watcher polls and never sleeps.
      yield* onChange(vf, (event) => seen.push(event.variables), { spin: "1 minute" })
      setTimeout(() => (timerRan = true), 5)
      // The child's output and exit reach this process only if the event loop runs between slices.
      yield* Effect.promise(() => runChild("vfChild.ts", ["write", root, id, "polled", "7"]))
      yield* until(() => seen.length > 0)
      expect(seen).toEqual([["polled"]])
      expect(timerRan).toBe(true)
      // Polling, not asleep: writers see no sleeper, so they make no futex call.
      expect(waiters()).toBe(0)

      // A short window: once it closes the watcher sleeps in the kernel and still wakes for a write.
      const other = yield* openServiceFile(root, id)
      const events: Array<ReadonlyArray<string>> = []
      yield* onChange(other, (event) => events.push(event.variables), { spin: "20 millis", ownWrites: false })
      yield* until(() => waiters() === 1)
      yield* Effect.promise(() => runChild("vfChild.ts", ["write", root, id, "slept", "8"]))
      yield* until(() => events.length > 0)
      expect(events).toEqual([["slept"]])
    })))
})
