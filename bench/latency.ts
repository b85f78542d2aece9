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
 * where no other process competes for the two CPUs at a wake, beside the same ping received by
 * a C program (no Node: the machine's own floor). Paced writes find the receiver idle, its CPU
 * halted and its caches cold; the last part runs the Watcher paths back to back (each write as
 * soon as the receiver echoed the previous one), the receiver busy as under steady traffic.
 * The alone part also runs `onChange` with the opt-in `reuse` (the event's objects reused:
 * nothing allocated per event) and both Watcher paths with the opt-in `spin` (the receiver
 * busy-polls instead of sleeping: what a watcher that can spare a CPU gets). The placement part
 * then pins this process's main thread (the writer) to one CPU and the floors and both Watcher paths to
 * that CPU or the other (`taskset`): on an idle machine the kernel mostly wakes the receiver on
 * the writer's CPU, and the few wakes on the other one, which must first be woken from idle,
 * make the unpinned rows' tail.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { SimdDiff } from "../src/diff/SimdDiff.js"
import { createServiceFile, openServiceFile } from "../src/local/ServiceFiles.js"
import * as Var from "../src/local/VarType.js"
import { onChange } from "../src/local/Watcher.js"
import type { NativeBinding } from "../src/native/Binding.js"
import { loadNative, NativeAddon } from "../src/native/NativeAddon.js"
import { affinityUnavailable, cpusOf, maskOf, pin, setMask } from "./affinity.js"
import { type LiveChild, removeBundles, startChild, startProcess } from "./child.js"
import { pingFile, serviceWithT } from "./files.js"
import { fmt, type GroupSummary, type LatencySchedule, output, percentile, percentileOverSent, progress, ratio, runLatencySchedule, samplesOf, sleepSince, table } from "./harness.js"

const WARMUP = 200
/**
 * Quick unrecorded writes per path first, so the receivers' code is optimised before any is
 * measured. V8 tiers a function up by the bytecode it has run, so code that runs once per wake
 * (the sleep, the layout check) reaches TurboFan only after ~4,500 wakes: with 3,000 here,
 * compiles (1–3 ms on a background thread, up to 0.4 ms on the main one) and deopts of branches
 * first taken then landed among the measured writes, several per row (`--trace-opt`).
 */
const BURST = 10_000
const SAMPLES = 2000
/** After the warm-up, this long of paced writes to every path before measuring (see `LatencySchedule.settleMs`). */
const SETTLE_MS = 12_000
const SPACING_MS = 1

/**
 * "Alone": blocks of 250 writes, each after 20 unrecorded ones. Longer blocks than the remote
 * group's: the target here is absolute (one writer, one watcher running steadily), and with
 * 50-write blocks `onChange`'s p99 rose from ~400 to ~600 µs (colder starts).
 */
const SCHEDULE: LatencySchedule = { warmup: WARMUP, samples: SAMPLES, block: 250, blockWarmup: 20, burst: BURST, settleMs: SETTLE_MS }

/**
 * Back to back: the next write as soon as the previous value came back (the receiver echoes
 * each value to a second file, which this process watches with onChange), so the receiver is
 * busy rather than idle between writes, as under steady traffic. Blocks of 500 per path, each
 * after 50 unrecorded round trips.
 */
const BACK_TO_BACK: LatencySchedule = { warmup: 500, samples: 5000, block: 500, blockWarmup: 50 }

/** The busy-poll window of the opt-in `spin` rows: longer than the write spacing, so they never sleep within a block. */
const SPIN_MS = 5

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const hrnow = () => Number(process.hrtime.bigint())

/** A percentile, µs; `lost`: it falls on writes the receiver did not see by themselves (value: their lower bound). */
interface Latency {
  readonly value: number
  readonly lost: boolean
}

interface Percentiles {
  readonly p50: Latency
  readonly p90: Latency
  readonly p99: Latency
  readonly min: number
  readonly max: number
}

/**
 * Percentiles over every write sent, not just those received: a write the receiver did not see
 * by itself took at least until the next write (it read only the newer value), so it ranks above
 * every received sample. Ranking only the survivors would understate the tail.
 */
const overSent = (d: Distribution): Percentiles => {
  const at = (p: number): Latency => {
    const value = percentileOverSent(d.sorted, d.sent, p)
    return value === undefined ? { value: d.lostAbove, lost: true } : { value, lost: false }
  }
  return { p50: at(50), p90: at(90), p99: at(99), min: d.sorted[0]!, max: d.sorted[d.received - 1]! }
}

const cell = (l: Latency): string => (l.lost ? `> ${fmt(l.value)}` : fmt(l.value))
const µs = (l: Latency): string => `${cell(l)} µs`
const times = (l: Latency, floor: Latency): string => (l.lost || floor.lost ? "—" : ratio(l.value / floor.value))

interface Distribution {
  readonly key: string
  readonly name: string
  readonly sent: number
  readonly received: number
  /** Ascending, microseconds. */
  readonly sorted: Float64Array
  /** Duration of the write call in the writing process, ascending, microseconds. */
  readonly writeCosts: Float64Array
  /** How long a write the receiver did not see by itself took at least (the next write's spacing), µs. */
  readonly lostAbove: number
}

/** The placement rows: receivers pinned to the writer's CPU or the other one. */
interface Placement {
  readonly writerCpu: number
  readonly otherCpu: number
  readonly rows: ReadonlyArray<Distribution>
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
  progress(`latency: ${targets.length} paths ${how === "alone" ? `each alone in blocks of ${SCHEDULE.block}` : "interleaved"}: ${BURST} quick and ${WARMUP} paced warm-up writes each, then ${SAMPLES} measured, ~${SPACING_MS} ms apart`)
  await runLatencySchedule(targets.length, how, SCHEDULE, hrnow, async (i, value, paced) => {
    const before = hrnow()
    targets[i]!.write(value)
    if (value >= 0) writeCosts[i]!.push((hrnow() - before) / 1000)
    if (paced) await sleepSince(before, SPACING_MS)
  }, () => {
    for (const costs of writeCosts) costs.length = 0
  })
  // A path gets its next write after the spacing alone, after a whole rotation interleaved.
  return collect(targets, SAMPLES, writeCosts, SPACING_MS * 1000 * (how === "interleaved" ? targets.length : 1))
}

/** Each child's samples (it prints them when told to stop), in µs. */
const collect = (
  targets: ReadonlyArray<Target>,
  sent: number,
  writeCosts: ReadonlyArray<ReadonlyArray<number>>,
  lostAbove: number
): Promise<Array<Distribution>> =>
  Promise.all(targets.map(async ({ child, key, name }, i) => {
    const line = await child.waitForLine((l) => l.startsWith("samples "), 10_000)
    const sorted = samplesOf(name, line, await child.exited)
    return { key, name, sent, received: sorted.length, sorted, writeCosts: Float64Array.from(writeCosts[i]!).sort(), lostAbove }
  }))

interface EchoTarget extends Target {
  /** Writes `value` and resolves once the receiver wrote it back. */
  readonly roundTrip: (value: number) => Promise<void>
  /** Rejects the round trip in flight, if any. */
  readonly abort: (error: Error) => void
}

/**
 * Back to back: each write waits for the previous value's echo, the paths in alternating blocks.
 * Warm-up writes carry distinct negative values (an unchanged value is no change, hence no echo).
 */
const driveBackToBack = async (targets: ReadonlyArray<EchoTarget>): Promise<Array<Distribution>> => {
  for (const t of targets) await t.child.waitForLine((l) => l === "ready")
  await sleep(100)
  const writeCosts = targets.map(() => [] as Array<number>)
  let trips = 0
  // A receiver that stops echoing (it crashed) fails the group instead of hanging the bench.
  let seen = -1
  const watchdog = setInterval(() => {
    if (trips === seen) for (const t of targets) t.abort(new Error(`latency: no echo within 5 s (after ${trips} round trips)`))
    seen = trips
  }, 5000)
  progress(`latency: ${targets.length} paths back to back, each alone in blocks of ${BACK_TO_BACK.block}: ${BACK_TO_BACK.warmup} warm-up round trips each, then ${BACK_TO_BACK.samples} measured`)
  try {
    await runLatencySchedule(targets.length, "alone", BACK_TO_BACK, hrnow, async (i, value) => {
      const target = targets[i]!
      // The last value stops the receiver: it may exit before its echo is seen.
      if (value === -1) return target.write(value)
      // Warm-up writes carry distinct negative values (an unchanged value is no change: no echo).
      const before = hrnow()
      const echoed = target.roundTrip(value)
      if (value >= 0) writeCosts[i]!.push((hrnow() - before) / 1000)
      await echoed
      trips++
    }, () => {
      for (const costs of writeCosts) costs.length = 0
    })
  } finally {
    clearInterval(watchdog)
  }
  // Each write waits for the previous echo: none can be overtaken.
  return collect(targets, BACK_TO_BACK.samples, writeCosts, Infinity)
}

const floorSource = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "futexReceiver.c")

/**
 * Compiles the bare futex ping's receiver in C (fixtures/futexReceiver.c: the same io_uring
 * wait, no Node) with `cc`: the program's path, or why it is skipped (no compiler; not Linux).
 */
const buildFloorInC = (root: string): string | { readonly skipped: string } => {
  if (process.platform !== "linux") return { skipped: "Linux only" }
  const program = path.join(root, "futexReceiver")
  const built = spawnSync("cc", ["-O2", "-o", program, floorSource], { encoding: "utf8" })
  if (built.error) return { skipped: `no C compiler (cc: ${built.error.message})` }
  if (built.status !== 0) return { skipped: `cc failed: ${built.stderr.trim().slice(-300)}` }
  return program
}

/**
 * Starts the C receiver on its own 4 KiB ping file. Skipped where the kernel has no io_uring
 * futex wait (the addon then uses its thread waiter, which this would not mirror).
 */
const startFloorInC = async (
  program: string,
  binding: NativeBinding,
  file: string,
  started: (child: LiveChild) => void
): Promise<Omit<Target, "name"> | { readonly skipped: string }> => {
  const ping = pingFile(binding, file)
  const child = startProcess(program, [ping.file], "futexReceiver")
  started(child)
  try {
    await child.waitForLine((l) => l === "ready", 10_000)
  } catch {
    const { stderr } = await child.exited
    ping.close()
    return { skipped: stderr.trim().split("\n").pop() ?? "it did not start" }
  }
  void child.exited.then(ping.close)
  return { key: "cfutex", child, write: ping.write }
}

/** One summary line per placed receiver kind: its p50 / p99 on the writer's CPU and on the other. */
const placementLines = ({ otherCpu, rows, writerCpu }: Placement): Array<string> =>
  [["cfutex", "the futex ping's receiver in C"], ["futex", "the futex ping's receiver in Node"], ["callback", "onChange"], ["watch", "the Stream"]].flatMap(([kind, what]) => {
    const same = rows.find((d) => d.key === `${kind}@${writerCpu}`)
    const other = rows.find((d) => d.key === `${kind}@${otherCpu}`)
    if (!same || !other) return []
    const [a, b] = [overSent(same), overSent(other)]
    return [`latency (placed, paced): ${what} on the writer's CPU p50 ${µs(a.p50)} / p99 ${µs(a.p99)}, on the other CPU p50 ${µs(b.p50)} / p99 ${µs(b.p99)}`]
  })

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
  const backToBack: Array<Distribution> = []
  let placement: Placement | undefined
  const notes: Array<string> = []
  const ping = pingFile(binding, path.join(root, "ping.bin"))
  /** The ping files' mappings, closed at the end. */
  const closers: Array<() => void> = [ping.close]
  try {
    // ---- the Watcher: an f64 variable "t" in a service file ----
    // (and a second file for the Effect-wrapped wait alone, so its writes wake only that child)
    const newService = () => Effect.runPromise(serviceWithT(root).pipe(Scope.extend(scope), Effect.provide(NativeAddon.layer)))
    const watched = await newService()
    const called = await newService()
    const waited = await newService()
    const watchedSpinning = await newService()
    const calledSpinning = await newService()
    const reused = await newService()
    const paths: Array<{ key: string; name: string; args: Array<string>; write: (value: number) => void }> = [
      {
        key: "futex",
        name: "bare futex ping (native waiter → JS callback)",
        args: ["futex", ping.file],
        write: ping.write
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
      },
      // Alone only: opt-in reuse (no garbage per event), and busy-polling (the receiver polls
      // instead of sleeping, one CPU busy).
      {
        key: "reuse",
        name: "Watcher event, callback (onChange, values: true, reuse: true)",
        args: ["reuse", root, reused.id],
        write: (value) => void reused.t.unsafeSet(value)
      },
      {
        key: "callback-spin",
        name: `Watcher event, callback (onChange, values: true, spin: ${SPIN_MS} ms)`,
        args: ["callback", root, calledSpinning.id, String(SPIN_MS)],
        write: (value) => void calledSpinning.t.unsafeSet(value)
      },
      {
        key: "watch-spin",
        name: `Watcher event, Stream (watch, values: true, spin: ${SPIN_MS} ms)`,
        args: ["watch", root, watchedSpinning.id, String(SPIN_MS)],
        write: (value) => void watchedSpinning.t.unsafeSet(value)
      }
    ]
    const launch = (spec: (typeof paths)[number], suffix = ""): Target => {
      const child = startChild("latencyChild.ts", spec.args)
      children.push(child)
      return { key: spec.key, name: spec.name + suffix, child, write: spec.write }
    }
    progress("latency: starting four receiving children (bundled with esbuild)")
    const interleavedKeys = ["futex", "wait", "watch", "callback"]
    interleaved = await drive(paths.filter((p) => interleavedKeys.includes(p.key)).map((p) => launch(p)), "interleaved")
    // Then the floors and the two Watcher paths each alone (one writer, one watcher, as the
    // target is stated), in alternating blocks so that the machine's passing noise falls on all.
    const aloneTargets = ["futex", "callback", "reuse", "watch", "callback-spin", "watch-spin"].map((key) => launch(paths.find((p) => p.key === key)!, ", alone"))
    const program = buildFloorInC(root)
    const floorInC = typeof program === "string"
      ? await startFloorInC(program, binding, path.join(root, "ping-c.bin"), (child) => children.push(child))
      : program
    if ("skipped" in floorInC) notes.push(`the C floor was skipped: ${floorInC.skipped}`)
    else aloneTargets.unshift({ ...floorInC, name: "bare futex ping, C receiver (io_uring + epoll, no Node), alone" })
    alone.push(...await drive(aloneTargets, "alone"))
    // Then where the receiver wakes, pinned: on the writer's CPU or the other one.
    const unavailable = affinityUnavailable()
    if (unavailable) notes.push(`the placement rows were skipped: ${unavailable}`)
    else {
      const [writerCpu, otherCpu] = cpusOf(maskOf(process.pid))
      const receivers: Array<{ target: Target; cpu: number }> = []
      for (const [where, cpu] of [["the writer's CPU", writerCpu!], ["the other CPU", otherCpu!]] as const) {
        if (typeof program === "string") {
          const inC = await startFloorInC(program, binding, path.join(root, `ping-c-${cpu}.bin`), (child) => children.push(child))
          if (!("skipped" in inC)) receivers.push({ target: { ...inC, key: `cfutex@${cpu}`, name: `bare futex ping, C receiver, on ${where}` }, cpu })
        }
        const nodePing = pingFile(binding, path.join(root, `ping-${cpu}.bin`))
        closers.push(nodePing.close)
        receivers.push({ target: launch({ key: `futex@${cpu}`, name: `bare futex ping (Node), on ${where}`, args: ["futex", nodePing.file], write: nodePing.write }), cpu })
        for (const [mode, what] of [["callback", "callback (onChange"], ["watch", "Stream (watch"]] as const) {
          const service = await newService()
          const name = `Watcher event, ${what}, values: true), on ${where}`
          receivers.push({ target: launch({ key: `${mode}@${cpu}`, name, args: [mode, root, service.id], write: (value) => void service.t.unsafeSet(value) }), cpu })
        }
      }
      // Every thread of each receiver (all started once it is ready), and this process's main
      // thread, the writer; its mask is restored after.
      for (const { target, cpu } of receivers) {
        await target.child.waitForLine((l) => l === "ready")
        pin(target.child.pid, cpu, true)
      }
      const mask = maskOf(process.pid)
      pin(process.pid, writerCpu!, false)
      try {
        placement = { writerCpu: writerCpu!, otherCpu: otherCpu!, rows: await drive(receivers.map((r) => r.target), "alone") }
      } finally {
        setMask(process.pid, mask)
      }
    }
    // Back to back: the same two Watcher paths with the receiver busy instead of idle.
    const echo = async (key: string, name: string, mode: string): Promise<EchoTarget> => {
      const files = await Effect.runPromise(Effect.gen(function*() {
        const { id: x, t } = yield* serviceWithT(root)
        const y = yield* createServiceFile(root, { capacity: 1024 * 1024, maxVariables: 64 })
        const echoes = yield* openServiceFile(root, y)
        yield* echoes.define("ack", Var.f64)
        return { x, y, t, echoes }
      }).pipe(Scope.extend(scope), Effect.provide(NativeAddon.layer)))
      let pending: { readonly resolve: () => void; readonly reject: (error: Error) => void } | undefined
      const settle = (error?: Error) => {
        const p = pending
        pending = undefined
        if (error) p?.reject(error)
        else p?.resolve()
      }
      await Effect.runPromise(onChange(files.echoes, () => settle(), { ownWrites: false }).pipe(Scope.extend(scope), Effect.provide(SimdDiff.layer)))
      const child = startChild("latencyChild.ts", [mode, root, files.x, files.y])
      children.push(child)
      const write = (value: number) => void files.t.unsafeSet(value)
      return {
        key,
        name,
        child,
        write,
        roundTrip: (value) =>
          new Promise<void>((resolve, reject) => {
            pending = { resolve, reject }
            write(value)
          }),
        abort: settle
      }
    }
    backToBack.push(...await driveBackToBack([
      await echo("callback", "Watcher event, callback (onChange, values: true), back to back", "echo-callback"),
      await echo("watch", "Watcher event, Stream (watch, values: true), back to back", "echo-watch")
    ]))
  } finally {
    for (const child of children) child.kill()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    fs.rmSync(root, { recursive: true, force: true })
    for (const close of closers) close()
    removeBundles()
  }

  const find = (list: ReadonlyArray<Distribution>, key: string) => overSent(list.find((d) => d.key === key)!)
  const base = find(interleaved, "futex")
  const baseAlone = find(alone, "futex")
  const row = (floor: Percentiles) => (d: Distribution) => {
    const s = overSent(d)
    return [
      d.name,
      `${d.received}/${d.sent}`,
      fmt(s.min),
      cell(s.p50),
      cell(s.p90),
      cell(s.p99),
      fmt(s.max),
      times(s.p50, floor.p50),
      times(s.p99, floor.p99),
      `${fmt(percentile(d.writeCosts, 50))} / ${fmt(percentile(d.writeCosts, 99))}`
    ]
  }
  output(`\n## latency: write in one process → seen in another, µs (${SAMPLES} writes ~${SPACING_MS} ms apart, after ${BURST} quick and ${WARMUP} paced warm-up writes and ${SETTLE_MS / 1000} s of paced writes to every path; first the four paths interleaved write by write, then the floors and the two Watcher paths each alone; then back to back: ${BACK_TO_BACK.samples} round trips per path, each write as soon as the previous value was echoed)\n`)
  /** The rows' table; `floor` names what the ratio columns divide by. */
  const latencyTable = (floor: string, rows: ReadonlyArray<ReadonlyArray<string>>) =>
    table(
      ["path", "received", "min", "p50", "p90", "p99", "max", `p50 × ${floor}`, `p99 × ${floor}`, "write call p50 / p99"],
      rows,
      ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r"]
    )
  output(latencyTable("futex", [...interleaved.map(row(base)), ...alone.map(row(baseAlone)), ...backToBack.map(row(baseAlone))]))
  output(`\n"received" counts the writes the receiver saw by themselves. A write it did not see before the next one (it read only the newer value) took longer than the spacing (~${SPACING_MS} ms paced, more interleaved): percentiles count those as slower than every received sample, and "> x" marks a percentile that falls on them (x: the spacing, their lower bound). "max" is the slowest received sample.`)
  if (placement) {
    const { otherCpu, rows, writerCpu } = placement
    const floorOf = (d: Distribution) => find(rows, `futex@${d.key.split("@")[1]}`)
    output(`\n## latency by placement: the writer (this process's main thread) pinned to CPU ${writerCpu}, each receiver (all its threads) to the same CPU or to CPU ${otherCpu}; paced as above, each alone in blocks\n`)
    output(latencyTable("Node ping", rows.map((d) => row(floorOf(d))(d))))
    output(`\nA receiver on the writer's CPU runs once the writer sleeps (or preempts it); one on the other CPU must first have that CPU woken from idle. The alone rows above leave the choice to the kernel.`)
  }
  for (const note of notes) output(`\n${note}`)
  const verdict = (l: Latency, target: number) => (!l.lost && l.value <= target ? "met" : "NOT met")
  const summary = (how: string, list: ReadonlyArray<Distribution>, floor?: Percentiles) => {
    const callback = find(list, "callback")
    const stream = find(list, "watch")
    const floorAt = (p: "p50" | "p99") => (floor ? `; bare futex ${p} ${µs(floor[p])}` : "")
    return [
      `latency (${how}): Watcher p50 ${µs(callback.p50)} via onChange, ${µs(stream.p50)} via the Stream (target ≤ 50 µs: ${verdict(callback.p50, 50)} / ${verdict(stream.p50, 50)})${floorAt("p50")}`,
      `latency (${how}): Watcher p99 ${µs(callback.p99)} via onChange, ${µs(stream.p99)} via the Stream (target ≤ 300 µs: ${verdict(callback.p99, 300)} / ${verdict(stream.p99, 300)})${floorAt("p99")}`
    ]
  }
  const reuseLines = (reuse: Percentiles) => [
    `latency (each alone, paced): onChange with reuse: true (nothing allocated per event) p50 ${µs(reuse.p50)}, p99 ${µs(reuse.p99)} (targets ≤ 50 / ≤ 300 µs: ${verdict(reuse.p50, 50)} / ${verdict(reuse.p99, 300)})`
  ]
  const floorInC = alone.find((d) => d.key === "cfutex")
  const spinning = alone.filter((d) => d.key.endsWith("-spin")).map((d) => ({ ...d, key: d.key.slice(0, -"-spin".length) }))
  // The interleaved rows compare the paths under the same contention (four receivers and this
  // writer on two CPUs); the target's setup is one writer and one watcher: alone, or back to back.
  output("")
  for (const line of summary("paths interleaved, for the ratios", interleaved, base)) output(`- ${line}`)
  const lines = [
    ...summary("each alone, paced", alone, baseAlone),
    ...reuseLines(find(alone, "reuse")),
    ...(floorInC
      ? [`latency (each alone, paced): the futex ping's receiver in C p50 ${µs(overSent(floorInC).p50)} / p99 ${µs(overSent(floorInC).p99)}, in Node ${µs(baseAlone.p50)} / ${µs(baseAlone.p99)} (the machine's floor, then Node's)`]
      : []),
    ...(placement ? placementLines(placement) : []),
    ...summary("back to back", backToBack),
    ...summary(`each alone, paced, opt-in spin: ${SPIN_MS} ms (the receiver polls: one CPU busy)`, spinning)
  ]
  output("")
  for (const line of lines) output(`- ${line}`)
  return { lines }
}
