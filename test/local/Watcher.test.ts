import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { SimdDiff } from "../../src/diff/SimdDiff.js"
import { bufferServiceFile } from "../../src/local/ServiceFiles.js"
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
})
