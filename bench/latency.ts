/**
 * Group `latency`: how long after one process writes does another process's Watcher see it?
 *
 * This process (A) writes an f64 variable whose value is its `process.hrtime.bigint()`
 * (CLOCK_MONOTONIC, the same clock in every process), a write every ~1 ms so each is its own
 * wake; the child (B) runs `watch(vf, { values: true })` and records now − written per event.
 * For reference, in the same run and interleaved write by write: a bare futex ping through the
 * addon's native waiter (word + timestamp in a 4 KiB file, FUTEX_WAKE from here), the floor
 * under the Watcher's path; and the Watcher's sleep alone (`accessor.wait` in an Effect fiber,
 * then `unsafeGet`), which splits the Watcher's time into waking up and scanning. Then the floor
 * and the two Watcher paths run again each alone (one writer, one watcher: the target's setup),
 * where no other process competes for the two CPUs at a wake.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { createServiceFile, openServiceFile } from "../src/local/ServiceFiles.js"
import * as Var from "../src/local/VarType.js"
import { loadNative, NativeAddon } from "../src/native/NativeAddon.js"
import { type LiveChild, removeBundles, startChild } from "./child.js"
import { fmt, type GroupSummary, type LatencySchedule, output, percentile, progress, ratio, runLatencySchedule, stats, table } from "./harness.js"

const WARMUP = 200
const SAMPLES = 2000
const SPACING_MS = 1

/**
 * "Alone": blocks of 250 writes, each after 20 unrecorded ones. Longer blocks than the remote
 * group's: the target here is absolute (one writer, one watcher running steadily), and with
 * 50-write blocks `onChange`'s p99 rose from ~400 to ~600 µs (colder starts).
 */
const SCHEDULE: LatencySchedule = { warmup: WARMUP, samples: SAMPLES, block: 250, blockWarmup: 20 }

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const hrnow = () => Number(process.hrtime.bigint())

interface Distribution {
  readonly key: string
  readonly name: string
  readonly sent: number
  readonly received: number
  /** Ascending, microseconds. */
  readonly sorted: Float64Array
  /** Duration of the write call in the writing process, ascending, microseconds. */
  readonly writeCosts: Float64Array
}

interface Target {
  readonly key: string
  readonly name: string
  readonly child: LiveChild
  readonly write: (value: number) => void
}

/** Drives the children together (see `runLatencySchedule`) and collects their samples. */
const drive = async (targets: ReadonlyArray<Target>, how: "interleaved" | "alone"): Promise<Array<Distribution>> => {
  for (const t of targets) await t.child.waitForLine((l) => l === "ready")
  await sleep(100)
  // How long each write call itself takes in this process (part of the latency: the timestamp
  // is taken before the call), µs; measured writes only.
  const writeCosts = targets.map(() => [] as Array<number>)
  progress(`latency: ${targets.length} paths ${how === "alone" ? `each alone in blocks of ${SCHEDULE.block}` : "interleaved"}: ${WARMUP} warm-up writes each, then ${SAMPLES} measured, ~${SPACING_MS} ms apart`)
  await runLatencySchedule(targets.length, how, SCHEDULE, hrnow, async (i, value) => {
    const before = hrnow()
    targets[i]!.write(value)
    if (value >= 0) writeCosts[i]!.push((hrnow() - before) / 1000)
    await sleep(SPACING_MS)
  }, () => {
    for (const costs of writeCosts) costs.length = 0
  })
  return Promise.all(targets.map(async ({ child, key, name }, i) => {
    const line = await child.waitForLine((l) => l.startsWith("samples "), 10_000)
    const result = await child.exited
    if (result.code !== 0) throw new Error(`${name}: child exited ${result.code}: ${result.stderr.slice(-1000)}`)
    const samples = JSON.parse(line.slice("samples ".length)) as Array<number>
    const sorted = Float64Array.from(samples, (ns) => ns / 1000).sort()
    return { key, name, sent: SAMPLES, received: sorted.length, sorted, writeCosts: Float64Array.from(writeCosts[i]!).sort() }
  }))
}

export const runLatency = async (): Promise<GroupSummary> => {
  const native = loadNative()
  if (Either.isLeft(native)) {
    const line = `latency: skipped, the native addon is unavailable (${native.left.message})`
    output(`\n## latency\n\n${line}`)
    return { lines: [line] }
  }
  const binding = native.right
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "commy-bench-latency-"))
  const scope = Effect.runSync(Scope.make())
  const children: Array<LiveChild> = []
  let interleaved: Array<Distribution> = []
  const alone: Array<Distribution> = []
  const pingFile = path.join(root, "ping.bin")
  fs.writeFileSync(pingFile, Buffer.alloc(4096), { mode: 0o600 })
  const mapping = binding.map(pingFile, true, 4096)
  try {
    // ---- bare futex ping: word 0 and an f64 timestamp at byte 8 of a 4 KiB file ----
    const words = new Int32Array(mapping.buffer, 0, 4)
    const view = new DataView(mapping.buffer)
    // ---- the Watcher: an f64 variable "t" in a service file ----
    // (and a second file for the Effect-wrapped wait alone, so its writes wake only that child)
    const serviceWithT = Effect.gen(function*() {
      const id = yield* createServiceFile(root, { capacity: 1024 * 1024, maxVariables: 64 })
      const vf = yield* openServiceFile(root, id)
      const t = yield* vf.define("t", Var.f64)
      return { id, t }
    }).pipe(Scope.extend(scope), Effect.provide(NativeAddon.layer))
    const watched = await Effect.runPromise(serviceWithT)
    const called = await Effect.runPromise(serviceWithT)
    const waited = await Effect.runPromise(serviceWithT)
    const paths: Array<{ key: string; name: string; args: Array<string>; write: (value: number) => void }> = [
      {
        key: "futex",
        name: "bare futex ping (native waiter → JS promise)",
        args: ["futex", pingFile],
        write: (value) => {
          view.setFloat64(8, value, true)
          Atomics.add(words, 0, 1)
          mapping.wake(0, 1)
        }
      },
      {
        key: "wait",
        name: "accessor.wait in a fiber, then unsafeGet (no diff)",
        args: ["wait", root, waited.id],
        write: (value) => void waited.t.unsafeSet(value)
      },
      {
        key: "watch",
        name: "Watcher event, Stream (watch, values: true)",
        args: ["watch", root, watched.id],
        write: (value) => void watched.t.unsafeSet(value)
      },
      {
        key: "callback",
        name: "Watcher event, callback (onChange, values: true)",
        args: ["callback", root, called.id],
        write: (value) => void called.t.unsafeSet(value)
      }
    ]
    const launch = (spec: (typeof paths)[number], suffix = ""): Target => {
      const child = startChild("latencyChild.ts", spec.args)
      children.push(child)
      return { key: spec.key, name: spec.name + suffix, child, write: spec.write }
    }
    progress("latency: starting four receiving children (bundled with esbuild)")
    interleaved = await drive(paths.map((p) => launch(p)), "interleaved")
    // Then the floor and the two Watcher paths each alone (one writer, one watcher, as the target
    // is stated), in alternating blocks so that the machine's passing noise falls on all three.
    const aloneKeys = ["futex", "callback", "watch"]
    alone.push(...await drive(aloneKeys.map((key) => launch(paths.find((p) => p.key === key)!, ", alone")), "alone"))
  } finally {
    for (const child of children) child.kill()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    fs.rmSync(root, { recursive: true, force: true })
    mapping.close()
    removeBundles()
  }

  const find = (list: ReadonlyArray<Distribution>, key: string) => stats(list.find((d) => d.key === key)!)
  const base = find(interleaved, "futex")
  const baseAlone = find(alone, "futex")
  const row = (floor: ReturnType<typeof stats>) => (d: Distribution) => {
    const s = stats(d)
    return [
      d.name,
      `${d.received}/${d.sent}`,
      fmt(s.min),
      fmt(s.p50),
      fmt(s.p90),
      fmt(s.p99),
      fmt(s.max),
      ratio(s.p50 / floor.p50),
      ratio(s.p99 / floor.p99),
      `${fmt(percentile(d.writeCosts, 50))} / ${fmt(percentile(d.writeCosts, 99))}`
    ]
  }
  output(`\n## latency: write in one process → seen in another, µs (${SAMPLES} writes ~${SPACING_MS} ms apart, after ${WARMUP} warm-up; first the four paths interleaved write by write, then three of them each alone)\n`)
  output(table(
    ["path", "received", "min", "p50", "p90", "p99", "max", "p50 × futex", "p99 × futex", "write call p50 / p99"],
    [...interleaved.map(row(base)), ...alone.map(row(baseAlone))],
    ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r"]
  ))
  const verdict = (value: number, target: number) => (value <= target ? "met" : "NOT met")
  const summary = (how: string, floor: ReturnType<typeof stats>, list: ReadonlyArray<Distribution>) => {
    const callback = find(list, "callback")
    const stream = find(list, "watch")
    return [
      `latency (${how}): Watcher p50 ${fmt(callback.p50)} µs via onChange, ${fmt(stream.p50)} µs via the Stream (target ≤ 50 µs: ${verdict(callback.p50, 50)} / ${verdict(stream.p50, 50)}); bare futex p50 ${fmt(floor.p50)} µs`,
      `latency (${how}): Watcher p99 ${fmt(callback.p99)} µs via onChange, ${fmt(stream.p99)} µs via the Stream (target ≤ 300 µs: ${verdict(callback.p99, 300)} / ${verdict(stream.p99, 300)}); bare futex p99 ${fmt(floor.p99)} µs`
    ]
  }
  const lines = [...summary("paths interleaved", base, interleaved), ...summary("each alone", baseAlone, alone)]
  output("")
  for (const line of lines) output(`- ${line}`)
  return { lines }
}
