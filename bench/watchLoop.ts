/**
 * Part of group `local`: what one change costs a watcher when nothing else does, in one process.
 * Each round trip writes an f64 and waits until the watcher delivered the event for it (the
 * writer and the watcher share the thread, so no wake crosses CPUs or processes: the CPU cost of
 * the path, hot). Beside it, how many bytes each round trip allocates (V8's sampling heap
 * profiler, every 128 bytes on average, counting objects a GC already collected): garbage per
 * event is what a busy watcher hands the GC, and cold, what a wake after idle has to touch.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Session } from "node:inspector"
import * as path from "node:path"
import { SimdDiff } from "../src/diff/SimdDiff.js"
import { onChange, watch } from "../src/local/Watcher.js"
import type { NativeBinding } from "../src/native/Binding.js"
import { NativeAddon } from "../src/native/NativeAddon.js"
import { pingFile, serviceWithT } from "./files.js"
import { type AsyncCase, fmt, measureAsync, progress, table } from "./harness.js"

const ROUND_TRIPS = 5000

/** Bytes allocated per iteration of `run`, by V8's sampling heap profiler (a statistical count). */
const allocatedPerIteration = async (run: AsyncCase["run"], iterations: number): Promise<number> => {
  const session = new Session()
  session.connect()
  const post = <A>(method: string, params?: object) =>
    new Promise<A>((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result as A))))
  try {
    await post("HeapProfiler.enable")
    await post("HeapProfiler.startSampling", {
      samplingInterval: 128,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true
    })
    await run(iterations)
    const { profile } = await post<{ profile: { head: ProfileNode } }>("HeapProfiler.stopSampling")
    const total = (node: ProfileNode): number => node.selfSize + node.children.reduce((sum, child) => sum + total(child), 0)
    return total(profile.head) / iterations
  } finally {
    session.disconnect()
  }
}

interface ProfileNode {
  readonly selfSize: number
  readonly children: ReadonlyArray<ProfileNode>
}

/** Markdown for the `local` report: the round-trip table and a line summing it up. */
export const measureWatchLoops = async (binding: NativeBinding, root: string): Promise<{ readonly table: string; readonly line: string }> => {
  const scope = Effect.runSync(Scope.make())
  try {
    const provide = <A, E>(effect: Effect.Effect<A, E, NativeAddon | SimdDiff | Scope.Scope>) =>
      Effect.runPromise(effect.pipe(Scope.extend(scope), Effect.provide(NativeAddon.layer), Effect.provide(SimdDiff.layer)))

    // Each watcher resolves the round trip in flight; values differ per write (an equal value is no change).
    let value = 0
    let done: () => void = () => {}
    const roundTrips = (write: (v: number) => void) => async (n: number) => {
      for (let i = 0; i < n; i++) {
        const seen = new Promise<void>((resolve) => (done = resolve))
        write(++value)
        await seen
      }
      return n
    }

    const callback = await provide(serviceWithT(root))
    await provide(onChange(callback.vf, () => done(), { values: true }))
    const reused = await provide(serviceWithT(root))
    await provide(onChange(reused.vf, () => done(), { values: true, reuse: true }))
    const stream = await provide(serviceWithT(root))
    await provide(Effect.forkScoped(Stream.runForEach(watch(stream.vf, { values: true }), () => Effect.sync(() => done()))))
    await new Promise((resolve) => setTimeout(resolve, 20)) // the stream's first pull

    // The floor: the addon's waiter on a word, woken by this thread (what every watcher wake rides
    // on: a callback-mode waiter, as the watcher's), awaited through a promise like the loops below.
    const ping = pingFile(binding, path.join(root, "ping.bin"))
    let pinged: () => void = () => {}
    const pingWaiter = ping.mapping.waiter(() => pinged())
    const pingRun = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const woken = new Promise<void>((resolve) => (pinged = resolve))
        pingWaiter.wait(0, Atomics.load(ping.words, 0), Infinity)
        ping.write(i)
        await woken
      }
      return n
    }
    const cases: Array<AsyncCase & { readonly note: string }> = [
      { name: "bare futex ping (native waiter → callback)", note: "the wake alone: no diff, no event", run: pingRun },
      { name: "onChange (values: true)", note: "write → diff → event → handler", run: roundTrips((v) => callback.t.unsafeSet(v)) },
      { name: "onChange (values: true, reuse: true)", note: "the same, the event's objects reused", run: roundTrips((v) => reused.t.unsafeSet(v)) },
      { name: "watch Stream (values: true) + runForEach", note: "the same through Effect's Stream", run: roundTrips((v) => stream.t.unsafeSet(v)) }
    ]
    progress(`local: watcher round trips in one process, ${ROUND_TRIPS} per trial`)
    const timings = await measureAsync(cases, { trials: 7, iterations: ROUND_TRIPS, warmup: ROUND_TRIPS })
    progress("local: bytes allocated per round trip (sampling heap profiler)")
    const bytes: Array<number> = []
    for (const c of cases) bytes.push(await allocatedPerIteration(c.run, 4 * ROUND_TRIPS))
    pingWaiter.close()
    ping.close()

    const loopBytes = await allocatedPerIteration(async (n) => {
      for (let i = 0; i < n; i++) await new Promise<void>((resolve) => resolve())
      return n
    }, 4 * ROUND_TRIPS)
    const rendered = table(
      ["path", "µs per round trip (median)", "best", "bytes allocated per round trip", "note"],
      cases.map((c, i) => [
        c.name,
        fmt(timings[i]!.medianNs / 1000),
        fmt(timings[i]!.minNs / 1000),
        fmt(bytes[i]!, 4),
        c.note
      ]),
      ["l", "r", "r", "r", "l"]
    )
    const [, cb, re, st] = bytes
    return {
      table: `${rendered}\n\n(Each loop awaits one promise of its own per round trip: ~${fmt(loopBytes, 3)} bytes of the figure.)`,
      line: `- one change through a watcher in one process: onChange ${fmt(timings[1]!.medianNs / 1000)} µs and ${fmt(cb!, 4)} bytes allocated per round trip (with reuse ${fmt(timings[2]!.medianNs / 1000)} µs and ${fmt(re!, 4)} bytes), the Stream ${fmt(timings[3]!.medianNs / 1000)} µs and ${fmt(st!, 4)} bytes (bare ping ${fmt(timings[0]!.medianNs / 1000)} µs)`
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
