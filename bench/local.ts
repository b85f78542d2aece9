/**
 * Group `local`: the typed-handle hot path on a real mapped service file, next to the
 * physical limit (a DataView over a plain ArrayBuffer), the N-API call floor, lmdb-js and Redis.
 *
 * Every row is one call in a loop of its own; batches are calibrated to ~60 ms and trials of
 * all rows interleave, so the ratios compare figures taken under the same noise.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { open as openLmdb } from "lmdb"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { createServiceFile, openServiceFile } from "../src/local/ServiceFiles.js"
import { C_VALUE, copySize, H_CHANGE_GEN, S_COPIES, S_SEQ } from "../src/local/layout.js"
import * as Var from "../src/local/VarType.js"
import { NativeAddon, loadNative } from "../src/native/NativeAddon.js"
import {
  type AsyncCase,
  fmt,
  type GroupSummary,
  measureAsync,
  measureSync,
  output,
  progress,
  ratio,
  type SyncCase,
  table,
  type Timing
} from "./harness.js"
import { RespClient, startRedis } from "./redis.js"
import { measureWatchLoops } from "./watchLoop.js"

interface Row {
  readonly timing: Timing
  readonly note: string
}

export const runLocal = async (): Promise<GroupSummary> => {
  const native = loadNative()
  if (Either.isLeft(native)) {
    const line = `local: skipped, the native addon is unavailable (${native.left.message})`
    output(`\n## local\n\n${line}`)
    return { lines: [line] }
  }
  const binding = native.right
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "commy-bench-local-"))
  const scope = Effect.runSync(Scope.make())
  const cleanups: Array<() => Promise<void> | void> = [() => void fs.rmSync(root, { recursive: true, force: true })]
  try {
    // ---- a real service file, mapped ----
    const vf = await Effect.runPromise(
      Effect.gen(function*() {
        const id = yield* createServiceFile(root, { capacity: 1024 * 1024, maxVariables: 64 })
        return yield* openServiceFile(root, id)
      }).pipe(Scope.extend(scope), Effect.provide(NativeAddon.layer))
    )
    cleanups.unshift(() => Effect.runPromise(Scope.close(scope, Exit.void)))
    const [u32, f64, blob] = await Effect.runPromise(Effect.all([
      vf.define("u32", Var.u32),
      vf.define("f64", Var.f64),
      vf.define("blob", Var.bytes(64))
    ]))
    u32.unsafeSet(7)
    f64.unsafeSet(0.5)
    const blobValue = new Uint8Array(64).fill(0xab)
    blob.unsafeSet(blobValue)

    // A second mapping of the same file, to time the addon's wake without the accessor around it.
    const rawMapping = binding.map(vf.path!, true, 4096)
    cleanups.unshift(() => rawMapping.close())
    const mapped = vf.accessor.buffer
    const mappedView = new DataView(mapped)
    const mappedWords = new Int32Array(mapped, 0, mapped.byteLength >>> 2)
    const u32Entry = vf.layout.entries.get("u32")!
    /** The u32's seq word and its value in copy (seq & 1): for the hand-inlined seqlock. */
    const seqIndex = (u32Entry.slot + S_SEQ) >>> 2
    const u32Copy = copySize(u32Entry.capacity)
    const valueAt = (seq: number) => u32Entry.slot + S_COPIES + (seq & 1) * u32Copy + C_VALUE

    const plain = new ArrayBuffer(4096)
    const plainView = new DataView(plain)
    plainView.setUint32(64, 7, true)
    const plainWords = new Int32Array(plain)

    progress("local: mapped file ready; timing reads, writes and baselines")
    const cases: Array<SyncCase & { readonly note: string }> = [
      {
        name: "DataView.getUint32, plain ArrayBuffer",
        note: "the limit: one load in a loop",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += plainView.getUint32(64, true)
          return s
        }
      },
      {
        name: "DataView.setUint32, plain ArrayBuffer",
        note: "the limit for a store",
        run: (n) => {
          for (let i = 0; i < n; i++) plainView.setUint32(64, i, true)
          return plainView.getUint32(64, true)
        }
      },
      {
        name: "Atomics.load, Int32Array over plain ArrayBuffer",
        note: "non-shared buffer",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += Atomics.load(plainWords, 16)
          return s
        }
      },
      {
        name: "DataView.getUint32, mapped buffer",
        note: "same load on the mmap'd external buffer",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += mappedView.getUint32(valueAt(0), true)
          return s
        }
      },
      {
        name: "Atomics.load, Int32Array over mapped buffer",
        note: "one seq read",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += Atomics.load(mappedWords, seqIndex)
          return s
        }
      },
      {
        name: "seqlock read, hand-inlined (mapped)",
        note: "load seq, getUint32, re-load seq: the protocol's floor",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) {
            for (;;) {
              const seq = Atomics.load(mappedWords, seqIndex)
              const v = mappedView.getUint32(valueAt(seq), true)
              if (Atomics.load(mappedWords, seqIndex) === seq) {
                s += v
                break
              }
            }
          }
          return s
        }
      },
      {
        name: "u32 unsafeGet()",
        note: "typed handle read",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += u32.unsafeGet()
          return s
        }
      },
      {
        name: "f64 unsafeGet()",
        note: "typed handle read",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += f64.unsafeGet()
          return s
        }
      },
      {
        name: "bytes(64) unsafeGet()",
        note: "allocates a 64-byte copy (information)",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += blob.unsafeGet().length
          return s
        }
      },
      {
        name: "u32 unsafeSet(v)",
        note: "typed handle write, no watcher sleeping",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += u32.unsafeSet(i & 0xffff)
          return s
        }
      },
      {
        name: "f64 unsafeSet(v)",
        note: "typed handle write, no watcher sleeping",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += f64.unsafeSet(i * 0.5)
          return s
        }
      },
      {
        name: "bytes(64) unsafeSet(v)",
        note: "64-byte write (information)",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) {
            blobValue[0] = i
            s += blob.unsafeSet(blobValue)
          }
          return s
        }
      },
      {
        name: "N-API noop()",
        note: "floor of any addon call",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) {
            binding.noop()
            s++
          }
          return s
        }
      },
      {
        name: "N-API diff() of 16 equal bytes",
        note: "fixed cost of one diff call (information)",
        run: (() => {
          const a = new Uint8Array(16)
          const b = new Uint8Array(16)
          return (n: number) => {
            let s = 0
            for (let i = 0; i < n; i++) s += binding.diff(a, b).length + 1
            return s
          }
        })()
      },
      {
        name: "N-API mapping.wake(changeGen), nobody waiting",
        note: "the FUTEX_WAKE syscall alone (own mapping of the same file)",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += rawMapping.wake(H_CHANGE_GEN, 0x7fffffff) + 1
          return s
        }
      },
      {
        name: "accessor.wake(changeGen), nobody waiting",
        note: "what each write adds while a watcher sleeps (FUTEX_WAKE, synchronous, best effort)",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) {
            vf.accessor.wake(H_CHANGE_GEN)
            s++
          }
          return s
        }
      }
    ]

    // ---- lmdb-js ----
    const lmdbDir = fs.mkdtempSync(path.join(os.tmpdir(), "commy-bench-lmdb-"))
    cleanups.push(() => void fs.rmSync(lmdbDir, { recursive: true, force: true }))
    const lmdb = openLmdb({ path: lmdbDir, compression: false })
    cleanups.unshift(() => lmdb.close())
    await lmdb.put(1, 7)
    await lmdb.put(2, Buffer.from([7, 0, 0, 0]))
    const lmdbVersion = packageVersion("lmdb")
    cases.push(
      {
        name: `lmdb ${lmdbVersion} get(1) → number`,
        note: "number key, msgpack-decoded small integer value",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += lmdb.get(1) as number
          return s
        }
      },
      {
        name: `lmdb ${lmdbVersion} getBinary(2) → 4-byte Buffer`,
        note: "number key, raw bytes copied into a new Buffer",
        run: (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += lmdb.getBinary(2)!.length
          return s
        }
      }
    )

    const timings = measureSync(cases, { trials: 9, warmupMs: 150, trialMs: 60, minIterations: 1e4 })
    const rows: Array<Row> = timings.map((t, i) => ({ timing: t, note: cases[i]!.note }))

    // ---- Redis over loopback ----
    progress("local: starting redis-server")
    const redis = await startRedis()
    if ("skipped" in redis) {
      progress(`local: Redis skipped: ${redis.skipped}`)
    } else {
      cleanups.unshift(() => redis.stop())
      await redis.client.command("SET", "u32", "7")
      const get = RespClient.encode("GET", "u32")
      const asyncCases: Array<AsyncCase> = [{
        name: `Redis ${redis.version} GET (loopback TCP, RESP, depth 1)`,
        run: async (n) => {
          let s = 0
          for (let i = 0; i < n; i++) s += (await redis.client.send(get) as Buffer).length
          return s
        }
      }]
      progress(`local: timing Redis ${redis.version} GET round trips on port ${redis.port}`)
      const redisTimings = await measureAsync(asyncCases, { trials: 9, iterations: 2000, warmup: 2000 })
      rows.push({ timing: redisTimings[0]!, note: "one request-response round trip at a time" })
    }

    const byName = (prefix: string) => rows.find((r) => r.timing.name.startsWith(prefix))!.timing
    const limit = byName("DataView.getUint32, plain").medianNs
    const noop = byName("N-API noop").medianNs
    output(`\n## local: one operation, ns/op (median and best of ${timings[0]!.trials} trials; same run)\n`)
    output(table(
      ["operation", "median ns", "min ns", "× DataView get", "× N-API noop", "batch", "note"],
      rows.map(({ note, timing }) => [
        timing.name,
        fmt(timing.medianNs),
        fmt(timing.minNs),
        ratio(timing.medianNs / limit),
        ratio(timing.medianNs / noop),
        timing.iterations.toExponential(0).replace("e+", "e"),
        note
      ]),
      ["l", "r", "r", "r", "r", "r", "l"]
    ))
    if ("skipped" in redis) output(`\nRedis: skipped (${redis.skipped}).`)

    const loops = await measureWatchLoops(binding, path.join(root, "watch"))
    output(`\n## local: one change through a watcher in one process (write → event, the writer awaiting each event)\n`)
    output(loops.table)
    output(`\n${loops.line}`)

    const lines: Array<string> = []
    for (const name of ["u32 unsafeGet", "f64 unsafeGet"]) {
      const t = byName(name)
      lines.push(`local: ${name}() ${fmt(t.medianNs)} ns median (target ≤ 25 ns: ${t.medianNs <= 25 ? "met" : "NOT met"})`)
    }
    for (const name of ["u32 unsafeSet", "f64 unsafeSet"]) {
      const t = byName(name)
      lines.push(`local: ${name}(v) ${fmt(t.medianNs)} ns median, nobody waiting (target ≤ 60 ns: ${t.medianNs <= 60 ? "met" : "NOT met"})`)
    }
    output("")
    for (const line of lines) output(`- ${line}`)
    return { lines }
  } finally {
    for (const cleanup of cleanups) {
      try {
        await cleanup()
      } catch (error) {
        progress(`local: cleanup failed: ${String(error)}`)
      }
    }
  }
}

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** A dependency's installed version, for the tables. */
export const packageVersion = (name: string): string => {
  try {
    const file = path.join(packageRoot, "node_modules", name, "package.json")
    return (JSON.parse(fs.readFileSync(file, "utf8")) as { version: string }).version
  } catch {
    return "?"
  }
}
