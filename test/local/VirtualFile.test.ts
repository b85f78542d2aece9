import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { makeBuffer } from "../../src/local/FileAccessor.js"
import { bufferServiceFile } from "../../src/local/ServiceFiles.js"
import * as Var from "../../src/local/VarType.js"
import { VirtualFile } from "../../src/local/VirtualFile.js"

const codeOf = <A, E extends { code: string }>(e: Either.Either<A, E>) => (Either.isLeft(e) ? e.left.code : "ok")

describe("VirtualFile", () => {
  it.effect("defines, writes and reads every type", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const Point = Schema.Struct({ x: Schema.Number, y: Schema.Number, label: Schema.String })
      const cases: Array<[string, Var.VarType<any>, unknown]> = [
        ["u8", Var.u8, 255],
        ["u16", Var.u16, 65535],
        ["u32", Var.u32, 4294967295],
        ["u64", Var.u64, 2n ** 64n - 1n],
        ["i8", Var.i8, -128],
        ["i16", Var.i16, -32768],
        ["i32", Var.i32, -2147483648],
        ["i64", Var.i64, -(2n ** 63n)],
        ["f32", Var.f32, 1.5],
        ["f64", Var.f64, Math.PI],
        ["bool", Var.bool, true],
        ["text", Var.string(32), "héllo wörld"],
        ["blob", Var.bytes(16), new Uint8Array([1, 2, 3])],
        ["point", Var.struct(Point, { capacity: 128, initial: { x: 0, y: 0, label: "" } }), { x: 1, y: -2.5, label: "p" }]
      ]
      for (const [name, type, value] of cases) {
        const v = yield* vf.define(name, type)
        expect(v.unsafeGet()).toEqual(type.read(new DataView(new ArrayBuffer(type.capacity)), 0, 0)) // zero value
        const version = yield* v.set(value)
        expect(version).toBe(1)
        expect(yield* v.get).toEqual(value)
        expect(v.unsafeGet()).toEqual(value)
      }
      const listed = yield* vf.list
      expect(listed.map((i) => i.name).sort()).toEqual(cases.map(([n]) => n).sort())
    }))

  it.effect("define is idempotent for the same type and refuses a different one", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const a = yield* vf.define("x", Var.u32)
      a.unsafeSet(7)
      const b = yield* vf.define("x", Var.u32)
      expect(b.unsafeGet()).toBe(7)
      expect(codeOf(yield* Effect.either(vf.define("x", Var.f64)))).toBe("TYPE_MISMATCH")
      expect(codeOf(yield* Effect.either(vf.variable("x", Var.string(4))))).toBe("TYPE_MISMATCH")
    }))

  it.effect("bad names, values and unknown variables give typed errors", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      for (const name of ["", "a/b", "a\\b", "..", ".", "x\u0000", "tab\t", "x".repeat(97), "\ud800"]) {
        expect(codeOf(yield* Effect.either(vf.define(name, Var.u8)))).toBe("INVALID_NAME")
      }
      const u8 = yield* vf.define("small", Var.u8)
      for (const bad of [256, -1, 1.5, Number.NaN, "1", 1n]) {
        expect(codeOf(yield* Effect.either(u8.set(bad as number)))).toBe("TYPE_MISMATCH")
      }
      expect(() => u8.unsafeSet(300)).toThrow(/u8 needs an integer/)
      const s = yield* vf.define("s", Var.string(4))
      expect(codeOf(yield* Effect.either(s.set("12345")))).toBe("VALUE_TOO_LARGE")
      expect(codeOf(yield* Effect.either(s.set("€€")))).toBe("VALUE_TOO_LARGE")
      expect(yield* s.get).toBe("")
      expect(codeOf(yield* Effect.either(vf.read("missing")))).toBe("VARIABLE_NOT_FOUND")
      expect(codeOf(yield* Effect.either(vf.write("missing", new Uint8Array(1))))).toBe("VARIABLE_NOT_FOUND")
      expect(codeOf(yield* Effect.either(vf.write("small", new Uint8Array(2))))).toBe("VALUE_TOO_LARGE")
      expect(codeOf(yield* Effect.either(vf.write("small", new Uint8Array(0))))).toBe("TYPE_MISMATCH")
    }))

  it.effect("compare-and-set succeeds on the current version and reports the current one on conflict", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const v = yield* vf.define("n", Var.u32)
      expect(yield* v.compareAndSet(0, 10)).toBe(1)
      const conflict = yield* Effect.either(v.compareAndSet(0, 11))
      expect(Either.isLeft(conflict) && conflict.left._tag === "VersionConflict" && conflict.left.current).toBe(1)
      expect(yield* v.get).toBe(10)
      expect(yield* v.compareAndSet(1, 12)).toBe(2)
    }))

  it.effect("batches write all values and snapshots read them consistently", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const a = yield* vf.define("a", Var.u32)
      const b = yield* vf.define("b", Var.string(16))
      const versions = yield* vf.writeBatch([{ variable: a, value: 5 }, { variable: b, value: "five" }])
      expect(versions).toEqual([1, 1])
      const snap = yield* vf.snapshot()
      expect(snap.get("a")!.version).toBe(1)
      expect(new TextDecoder().decode(snap.get("b")!.value)).toBe("five")
      expect(codeOf(yield* Effect.either(vf.writeBatch([{ variable: a, value: 1 }, { variable: a, value: 2 }]))))
        .toBe("INVALID_ARGUMENT")
      expect(codeOf(yield* Effect.either(vf.writeBatch([{ variable: a, value: -1 }, { variable: b, value: "x" }]))))
        .toBe("TYPE_MISMATCH")
      expect(yield* a.get).toBe(5)
    }))

  it.effect("remove retires a variable; a new one never reuses its slot", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile()
      const old = yield* vf.define("gone", Var.u32)
      yield* vf.remove("gone")
      expect(codeOf(yield* Effect.either(vf.read("gone")))).toBe("VARIABLE_NOT_FOUND")
      const fresh = yield* vf.define("gone", Var.u32)
      old.unsafeSet(99)
      expect(fresh.unsafeGet()).toBe(0)
    }))

  it.effect("capacity and directory limits are typed errors", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile({ maxVariables: 2, capacity: 64 * 1024 })
      yield* vf.define("a", Var.u8)
      yield* vf.define("b", Var.u8)
      expect(codeOf(yield* Effect.either(vf.define("c", Var.u8)))).toBe("CAPACITY_EXCEEDED")
      const big = yield* bufferServiceFile({ maxVariables: 8, capacity: 64 * 1024 })
      expect(codeOf(yield* Effect.either(big.define("huge", Var.bytes(60_000))))).toBe("CAPACITY_EXCEEDED")
    }))

  it.effect("a corrupted file is refused with a typed error, never an exception, byte by byte", () =>
    Effect.gen(function*() {
      const vf = yield* bufferServiceFile({ maxVariables: 8, capacity: 64 * 1024 })
      yield* vf.define("alpha", Var.u32)
      yield* vf.define("beta", Var.string(40))
      const pristine = new Uint8Array(vf.accessor.buffer).slice()
      const header = vf.layout.header
      const codes = new Set<string>()
      // every byte of the header's fields, the whole used directory and the slots
      const positions: Array<number> = []
      for (let i = 0; i < 96; i++) positions.push(i)
      for (let i = 8192; i < 8192 + 2 * 128; i++) positions.push(i)
      for (let i = header.dataOffset; i < header.dataUsed; i++) positions.push(i)
      for (const at of positions) {
        for (const value of [0x00, 0xff, 0x80, pristine[at]! ^ 0x01]) {
          const bytes = pristine.slice()
          bytes[at] = value
          const opened = yield* Effect.either(VirtualFile.open(makeBuffer({ buffer: bytes.buffer })))
          if (Either.isLeft(opened)) {
            codes.add(opened.left.code)
            continue
          }
          // Opened: every operation must still answer with a value or a typed error.
          const file = opened.right
          for (const name of ["alpha", "beta"]) {
            const read = yield* Effect.either(file.read(name))
            if (Either.isLeft(read)) codes.add(read.left.code)
          }
          yield* Effect.either(file.snapshot())
          yield* Effect.either(file.define("gamma", Var.u64))
        }
      }
      // SERVICE_NOT_FOUND: byte 52 is the flags word, whose bit 0 marks a deleted service.
      expect([...codes].every((c) => ["CORRUPT_FILE", "UNSUPPORTED_VERSION", "VARIABLE_NOT_FOUND", "SERVICE_NOT_FOUND"].includes(c))).toBe(true)
      expect(codes.has("CORRUPT_FILE")).toBe(true)
      expect(codes.has("UNSUPPORTED_VERSION")).toBe(true)
    }))

  it.effect("a truncated or foreign buffer is refused", () =>
    Effect.gen(function*() {
      expect(codeOf(yield* Effect.either(VirtualFile.open(makeBuffer({ size: 100 }))))).toBe("CORRUPT_FILE")
      expect(codeOf(yield* Effect.either(VirtualFile.open(makeBuffer({ size: 64 * 1024 }))))).toBe("CORRUPT_FILE")
    }))
})
