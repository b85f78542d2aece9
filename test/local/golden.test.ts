/**
 * The checked-in golden file (test/golden/v1.mem, made by scripts/make-golden.ts) pins format
 * version 1: read through the library, and through raw offsets exactly as docs/file-format.md
 * describes them, the way a reader in another language would.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import { makeBuffer } from "../../src/local/FileAccessor.js"
import * as Var from "../../src/local/VarType.js"
import { VirtualFile } from "../../src/local/VirtualFile.js"

const golden = () => new Uint8Array(fs.readFileSync(new URL("../golden/v1.mem", import.meta.url)))

describe("golden file v1", () => {
  it.effect("reads every variable through the library", () =>
    Effect.gen(function*() {
      const vf = yield* VirtualFile.open(makeBuffer({ buffer: golden().buffer }))
      const answer = yield* vf.variable("answer", Var.u32)
      expect(yield* answer.getVersioned).toEqual({ value: 42, version: 2 })
      expect(yield* (yield* vf.variable("temperature", Var.f64)).get).toBe(21.5)
      expect(yield* (yield* vf.variable("greeting", Var.string(24))).get).toBe("héllo")
      expect(yield* (yield* vf.variable("big", Var.i64)).get).toBe(-(2n ** 40n))
      const Point = Schema.Struct({ x: Schema.Number, y: Schema.Number })
      expect(yield* (yield* vf.variable("point", Var.struct(Point, { capacity: 32, initial: { x: 0, y: 0 } }))).get)
        .toEqual({ x: 1, y: 2 })
      const names = (yield* vf.list).map((v) => v.name).sort()
      expect(names).toEqual(["answer", "big", "greeting", "point", "temperature"])
      expect((yield* vf.list).find((v) => v.name === "answer")!.persistent).toBe(true)
    }))

  it("decodes by hand from the documented offsets", () => {
    const bytes = golden()
    const view = new DataView(bytes.buffer)
    const u64 = (at: number) => view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe("COMMYMEM")
    expect(view.getUint32(8, true)).toBe(1) // formatVersion
    expect(view.getUint32(12, true)).toBe(8192) // headerSize
    expect(u64(16)).toBe(bytes.length) // capacity
    const dirCapacity = view.getUint32(40, true)
    expect(u64(24)).toBe(Math.ceil((8192 + dirCapacity * 128) / 4096) * 4096) // dataOffset
    // directory entry 0 is "answer", a u32 (type 3)
    const entry = 8192
    expect(view.getUint32(entry, true)).toBe(1)
    expect(view.getUint32(entry + 4, true)).toBe(3)
    const nameLength = view.getUint32(entry + 24, true)
    expect(new TextDecoder().decode(bytes.subarray(entry + 32, entry + 32 + nameLength))).toBe("answer")
    const slot = u64(entry + 8)
    const capacity = view.getUint32(entry + 16, true)
    const copySize = 16 + Math.ceil(capacity / 8) * 8
    const seq = view.getUint32(slot, true)
    const copy = slot + 8 + (seq & 1) * copySize
    expect(u64(copy)).toBe(2) // version
    expect(view.getUint32(copy + 16, true)).toBe(42)
    // entry 4 was removed: state 2
    expect(view.getUint32(8192 + 4 * 128, true)).toBe(2)
  })
})
