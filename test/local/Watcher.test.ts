import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { SimdDiff } from "../../src/diff/SimdDiff.js"
import { bufferServiceFile } from "../../src/local/ServiceFiles.js"
import * as Var from "../../src/local/VarType.js"
import { watch } from "../../src/local/Watcher.js"

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
})
