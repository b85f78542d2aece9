/**
 * The files the latency measurements write to: a service with one f64 variable "t" (what the
 * Watcher paths watch), and a bare futex ping (a word and an f64 timestamp in a 4 KiB file: the
 * floor under every watcher's wake).
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import { createServiceFile, openServiceFile } from "../src/local/ServiceFiles.js"
import * as Var from "../src/local/VarType.js"
import type { NativeBinding } from "../src/native/Binding.js"

/** A new service under `root` with an f64 "t". Needs the addon and a scope (the mapping's). */
export const serviceWithT = (root: string) =>
  Effect.gen(function*() {
    const id = yield* createServiceFile(root, { capacity: 1024 * 1024, maxVariables: 64 })
    const vf = yield* openServiceFile(root, id)
    const t = yield* vf.define("t", Var.f64)
    return { id, vf, t }
  })

/** A bare futex ping target: `write` stores the timestamp at byte 8, bumps word 0 and wakes one waiter. */
export const pingFile = (binding: NativeBinding, file: string) => {
  fs.writeFileSync(file, Buffer.alloc(4096), { mode: 0o600 })
  const mapping = binding.map(file, true, 4096)
  const words = new Int32Array(mapping.buffer, 0, 4)
  const view = new DataView(mapping.buffer)
  return {
    file,
    mapping,
    words,
    write: (value: number) => {
      view.setFloat64(8, value, true)
      Atomics.add(words, 0, 1)
      mapping.wake(0, 1)
    },
    close: () => mapping.close()
  }
}
