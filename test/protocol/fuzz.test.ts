/**
 * Untrusted input never throws: random frames through the server's decoder, and random file
 * bytes through VirtualFile.open and its operations, give values or typed errors only.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import fc from "fast-check"
import { Packr } from "msgpackr"
import { isCommyError } from "../../src/CommyError.js"
import { makeBuffer } from "../../src/local/FileAccessor.js"
import { initHeader } from "../../src/local/Directory.js"
import * as Var from "../../src/local/VarType.js"
import { VirtualFile } from "../../src/local/VirtualFile.js"
import { decodeRequest, decodeServerMessage } from "../../src/protocol/Codec.js"

const pack = new Packr({ useRecords: false })

/** Values shaped like requests: right keys, any values. */
const requestLike = fc.record({
  id: fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.string(), fc.constant(null)),
  op: fc.oneof(fc.constantFrom("hello", "auth", "read", "write", "cas", "subscribe", "var.define", "locate"), fc.string()),
  tenant: fc.oneof(fc.string(), fc.nat(), fc.constant(undefined)),
  service: fc.oneof(fc.string(), fc.uint8Array(), fc.constant(undefined)),
  writes: fc.oneof(fc.array(fc.record({ name: fc.string(), value: fc.oneof(fc.uint8Array(), fc.string(), fc.nat()) })), fc.anything()),
  since: fc.oneof(fc.dictionary(fc.string(), fc.anything()), fc.anything()),
  protocol: fc.anything()
}, { requiredKeys: [] })

describe("fuzzing untrusted input", () => {
  it("decodeRequest and decodeServerMessage never throw on random bytes or request-shaped maps", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), requestLike.map((v) => pack.pack(v))), (frame) => {
        const request = decodeRequest(frame)
        if (Either.isLeft(request)) expect(request.left.error.code).toBe("PROTOCOL_ERROR")
        const message = decodeServerMessage(frame)
        if (Either.isLeft(message)) expect(message.left.code).toBe("PROTOCOL_ERROR")
      }),
      { numRuns: 3000 }
    )
  })

  it("VirtualFile.open and its operations answer random file bytes with typed errors only", () => {
    const size = 64 * 1024
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: size - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 64 }),
        fc.boolean(),
        (pokes, withHeader) => {
          const buffer = new ArrayBuffer(size)
          // Half the cases start from a valid header, so the fuzz gets past the magic check.
          if (withHeader) initHeader(new DataView(buffer), size, 8)
          const bytes = new Uint8Array(buffer)
          for (const [at, value] of pokes) bytes[at] = value
          const program = Effect.gen(function*() {
            const vf = yield* VirtualFile.open(makeBuffer({ buffer }))
            yield* Effect.either(vf.define("fuzz", Var.u32))
            yield* Effect.either(vf.list)
            yield* Effect.either(vf.snapshot())
            yield* Effect.either(vf.read("fuzz"))
            yield* Effect.either(vf.write("fuzz", new Uint8Array(4)))
          })
          const exit = Effect.runSyncExit(Effect.either(program))
          // A failure is a typed CommyError, never a defect (an exception).
          expect(exit._tag).toBe("Success")
          if (exit._tag === "Success" && Either.isLeft(exit.value)) expect(isCommyError(exit.value.left)).toBe(true)
        }
      ),
      { numRuns: 2000 }
    )
  })
})
