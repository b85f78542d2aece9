/**
 * Writes test/golden/v1.mem: a small format-version-1 file with one variable of most types.
 * Run only on a deliberate format change: `node --import tsx scripts/make-golden.ts`.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import { bufferServiceFile } from "../src/local/ServiceFiles.js"
import * as Var from "../src/local/VarType.js"

export const Point = Schema.Struct({ x: Schema.Number, y: Schema.Number })

const program = Effect.gen(function*() {
  const vf = yield* bufferServiceFile({ capacity: 16384, maxVariables: 8 })
  const answer = yield* vf.define("answer", Var.u32, { persistent: true })
  yield* answer.set(41)
  yield* answer.set(42) // version 2
  yield* (yield* vf.define("temperature", Var.f64)).set(21.5)
  yield* (yield* vf.define("greeting", Var.string(24))).set("héllo")
  yield* (yield* vf.define("big", Var.i64)).set(-(2n ** 40n))
  const gone = yield* vf.define("removed", Var.u8)
  yield* gone.set(1)
  yield* vf.remove("removed")
  yield* (yield* vf.define("point", Var.struct(Point, { capacity: 32, initial: { x: 0, y: 0 } }))).set({ x: 1, y: 2 })
  fs.writeFileSync(new URL("../test/golden/v1.mem", import.meta.url), new Uint8Array(vf.accessor.buffer))
})

void Effect.runPromise(program)
