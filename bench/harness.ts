/**
 * The timing harness shared by the benchmark groups.
 *
 * Nanosecond operations are timed in batches: each case supplies its own loop
 * (`run(iterations)`) so every hot call site stays monomorphic (closures made from one shared
 * loop literal would share V8's feedback and go megamorphic). A case returns a number derived
 * from its results, which is accumulated into a module-level sink and printed at exit, so V8
 * cannot eliminate the work. Trials of all cases of a group are interleaved round-robin, so a
 * noisy neighbour hurts every contender alike; we report the median and the minimum per case.
 * Nothing is subtracted: the loop overhead shows in the raw DataView baseline instead.
 */

/** What a group hands back to the runner: one line per target, met or not. */
export interface GroupSummary {
  readonly lines: ReadonlyArray<string>
}

/** Accumulated results of every timed loop. Printed at the end of the run. */
let sink = 0

/** Keeps a value observable so the work that produced it cannot be dead-code-eliminated. */
export const consume = (value: number): void => {
  sink += value
}

export const sinkValue = (): number => sink

const start = process.hrtime.bigint()

/** Progress goes to stderr, tables to stdout: `npm run bench > results.md` keeps only tables. */
export const progress = (message: string): void => {
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  process.stderr.write(`[${seconds.toFixed(1).padStart(6)} s] ${message}\n`)
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >>> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The 0-based nearest rank of percentile `p` among `n` ascending values. */
export const nearestRank = (p: number, n: number): number => Math.max(0, Math.ceil((p / 100) * n) - 1)

/**
 * Percentile `p` of `sent` writes of which the ascending `sorted` were received: a write never
 * received ranks above every sample, so undefined when the percentile falls on one.
 */
export const percentileOverSent = (sorted: ArrayLike<number>, sent: number, p: number): number | undefined => {
  const rank = nearestRank(p, Math.max(sorted.length, sent))
  return rank < sorted.length ? sorted[rank]! : undefined
}

/** Nearest-rank percentile of a non-empty ascending array. */
export const percentile = (sorted: ArrayLike<number>, p: number): number => percentileOverSent(sorted, 0, p)!

/** Latency summary over `sent` writes (default: the samples); a percentile on a lost write is Infinity. */
export const stats = (d: { readonly sorted: ArrayLike<number>; readonly sent?: number }) => {
  const at = (p: number) => percentileOverSent(d.sorted, d.sent ?? 0, p) ?? Infinity
  return { p50: at(50), p90: at(90), p99: at(99), min: d.sorted[0]!, max: d.sorted[d.sorted.length - 1]! }
}

export interface SyncCase {
  readonly name: string
  /** Runs the operation `iterations` times; returns a number derived from the results. */
  readonly run: (iterations: number) => number
  /** Per-call units of work (e.g. bytes), for throughput; default 1. */
  readonly units?: number
}

export interface Timing {
  readonly name: string
  /** Median over trials, nanoseconds per call. */
  readonly medianNs: number
  /** Best trial, nanoseconds per call. */
  readonly minNs: number
  readonly iterations: number
  readonly trials: number
}

export interface SyncOptions {
  /** Timed trials per case. */
  readonly trials?: number
  /** Warm-up time per case before calibration, ms. */
  readonly warmupMs?: number
  /** Wanted duration of one trial, ms: sets the batch size. */
  readonly trialMs?: number
  readonly minIterations?: number
  readonly maxIterations?: number
}

const timeBatch = (run: (iterations: number) => number, iterations: number): number => {
  const t0 = process.hrtime.bigint()
  const result = run(iterations)
  const t1 = process.hrtime.bigint()
  consume(result)
  return Number(t1 - t0)
}

/** A round batch size (1, 2 or 5 times a power of ten) near `n`, clamped. */
const roundBatch = (n: number, min: number, max: number): number => {
  const clamped = Math.min(max, Math.max(min, n))
  const p = 10 ** Math.floor(Math.log10(clamped))
  const m = clamped / p
  return Math.max(min, Math.min(max, (m >= 5 ? 5 : m >= 2 ? 2 : 1) * p))
}

/**
 * Times every case: warm up, calibrate a batch size so a trial lasts about `trialMs`, then run
 * `trials` rounds, each timing one batch of every case in turn.
 */
export const measureSync = (cases: ReadonlyArray<SyncCase>, options: SyncOptions = {}): Array<Timing> => {
  const trials = options.trials ?? 9
  const warmupMs = options.warmupMs ?? 200
  const trialMs = options.trialMs ?? 60
  const minIterations = options.minIterations ?? 1
  const maxIterations = options.maxIterations ?? 1e7
  const batches = cases.map((c) => {
    // Warm up with growing batches until warmupMs passed: optimised code before timing.
    let n = 1
    let spent = 0
    let perOp = 0
    for (let runs = 0; spent < warmupMs * 1e6 || runs < 3; runs++) {
      const ns = timeBatch(c.run, n)
      spent += ns
      perOp = ns / n
      if (ns < 5e6 && n < maxIterations) n *= 4
    }
    // Calibrate on one more batch of the warmed-up code.
    perOp = Math.min(perOp, timeBatch(c.run, n) / n)
    return roundBatch(Math.ceil((trialMs * 1e6) / Math.max(perOp, 0.01)), minIterations, maxIterations)
  })
  const samples = cases.map(() => [] as Array<number>)
  for (let t = 0; t < trials; t++) {
    cases.forEach((c, i) => samples[i]!.push(timeBatch(c.run, batches[i]!) / batches[i]!))
  }
  return cases.map((c, i) => ({
    name: c.name,
    medianNs: median(samples[i]!),
    minNs: Math.min(...samples[i]!),
    iterations: batches[i]!,
    trials
  }))
}

export interface AsyncCase {
  readonly name: string
  /** Runs the operation `iterations` times, one after another; resolves to a derived number. */
  readonly run: (iterations: number) => Promise<number>
}

/** Like measureSync for operations that await (network round trips): fixed batch size. */
export const measureAsync = async (
  cases: ReadonlyArray<AsyncCase>,
  options: { readonly trials?: number; readonly iterations: number; readonly warmup: number }
): Promise<Array<Timing>> => {
  const trials = options.trials ?? 9
  for (const c of cases) consume(await c.run(options.warmup))
  const samples = cases.map(() => [] as Array<number>)
  for (let t = 0; t < trials; t++) {
    for (const [i, c] of cases.entries()) {
      const t0 = process.hrtime.bigint()
      const result = await c.run(options.iterations)
      const t1 = process.hrtime.bigint()
      consume(result)
      samples[i]!.push(Number(t1 - t0) / options.iterations)
    }
  }
  return cases.map((c, i) => ({
    name: c.name,
    medianNs: median(samples[i]!),
    minNs: Math.min(...samples[i]!),
    iterations: options.iterations,
    trials
  }))
}

// ---------- formatting ----------

/** A markdown pipe table, columns padded so it also reads well in a terminal. */
export const table = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  align?: ReadonlyArray<"l" | "r">
): string => {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)))
  const right = (c: number) => (align ? align[c] === "r" : c > 0)
  const line = (cells: ReadonlyArray<string>) =>
    "| " + cells.map((cell, c) => (right(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join(" | ") + " |"
  const rule = "|" + widths.map((w, c) => (right(c) ? "-".repeat(w + 1) + ":" : ":" + "-".repeat(w + 1))).join("|") + "|"
  return [line(headers), rule, ...rows.map(line)].join("\n")
}

/** Significant-figure formatting for table cells. */
export const fmt = (value: number, digits = 3): string => {
  if (!Number.isFinite(value)) return String(value)
  if (value === 0) return "0"
  const abs = Math.abs(value)
  if (abs >= 10 ** digits) return Math.round(value).toString()
  if (abs < 1e-3) return value.toExponential(digits - 1)
  const text = value.toPrecision(digits)
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text
}

export const ratio = (value: number): string => (value >= 100 ? `${Math.round(value)}×` : `${fmt(value)}×`)

export const output = (text: string): void => {
  process.stdout.write(text + "\n")
}

/**
 * A latency receiver's report — its `samples [...]` line (ns) — as ascending µs, once it exited;
 * a receiver that exited badly fails the group.
 */
export const samplesOf = (name: string, line: string, exit: { readonly code: number | null; readonly stderr: string }): Float64Array => {
  if (exit.code !== 0) throw new Error(`${name}: child exited ${exit.code}: ${exit.stderr.slice(-1000)}`)
  return Float64Array.from(JSON.parse(line.slice("samples ".length)) as Array<number>, (ns) => ns / 1000).sort()
}

/** A latency write of this value wakes its receiver without being recorded (warm-up). */
export const UNRECORDED = -3

/**
 * Waits until `ms` milliseconds have passed since `since` (a `process.hrtime.bigint()` reading,
 * ns). A bare `setTimeout(ms)` counts from the event loop's cached clock, which can be most of a
 * millisecond old: paced writes then sometimes came microseconds apart (11 µs, in 0.5% of gaps),
 * and a receiver "missed" a write it had no time to see.
 */
export const sleepSince = async (since: number, ms: number): Promise<void> => {
  for (;;) {
    const left = ms - (Number(process.hrtime.bigint()) - since) / 1e6
    if (left <= 0) return
    await new Promise<void>((resolve) => setTimeout(resolve, Math.ceil(left)))
  }
}

export interface LatencySchedule {
  readonly warmup: number
  readonly samples: number
  /** "alone": measured writes per block of one path, each block after `blockWarmup` unrecorded ones. */
  readonly block: number
  readonly blockWarmup: number
  /**
   * Unrecorded writes per path before the warm-up, ~100 µs apart: enough events for V8 to
   * optimise the receivers' paths (a few hundred paced ones left that to the measured writes,
   * whose p50 and p99 then included compiling and deoptimising). Default 0.
   */
  readonly burst?: number
  /**
   * How long to keep writing to every path in turn (paced, unrecorded) after the warm-up, so
   * that what a Node process does some seconds after a busy phase ends happens before the
   * measured writes, not among them: V8's memory reducer, once the allocation rate drops,
   * runs three mark-compacts ~0.6 s apart (3–27 ms pauses each, traced in the receivers).
   * Default 0.
   */
  readonly settleMs?: number
}

/** Spacing of burst writes: short, yet most of them still wake the receiver on their own. */
const BURST_SPACING_NS = 100_000

/**
 * The order of the writes of latency paths that share one run, so every path sees the same
 * machine noise: a burst and warm-up writes (distinct negative values: an unchanged value is no
 * change, so it would wake no watcher's event path), -2 (the receivers clear their samples), the
 * measured writes (`now()` as the value), then -1 (the receivers report and exit).
 * `interleaved`: one write to each path in turn. `alone`: blocks of writes to one path at a
 * time, in turn, so a path runs by itself yet noise that comes and goes falls on all of them
 * (paths run one after the other got their p99s from different minutes). `write(i, value,
 * paced)` writes to path i and, when `paced`, waits the spacing; `onMeasuring` runs just before
 * the measured writes.
 */
export const runLatencySchedule = async (
  paths: number,
  how: "interleaved" | "alone",
  schedule: LatencySchedule,
  now: () => number,
  write: (path: number, value: number, paced: boolean) => Promise<void>,
  onMeasuring: () => void = () => {}
): Promise<void> => {
  const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
  let unrecorded = UNRECORDED
  const warmupValue = () => unrecorded--
  const round = async (value: () => number) => {
    for (let i = 0; i < paths; i++) await write(i, value(), true)
  }
  for (let p = 0; p < paths; p++) {
    for (let i = 0; i < (schedule.burst ?? 0); i++) {
      const start = now()
      await write(p, warmupValue(), false)
      await new Promise<void>((resolve) => setImmediate(resolve))
      while (now() - start < BURST_SPACING_NS); // busy: any timer would wait a millisecond
    }
  }
  if (how === "interleaved") for (let i = 0; i < schedule.warmup; i++) await round(warmupValue)
  else for (let p = 0; p < paths; p++) for (let i = 0; i < schedule.warmup; i++) await write(p, warmupValue(), true)
  if (schedule.settleMs) {
    progress(`latency: settling for ${schedule.settleMs / 1000} s (paced writes to every path, unrecorded)`)
    const until = now() + schedule.settleMs * 1e6
    while (now() < until) await round(warmupValue)
  }
  await pause(20)
  await round(() => -2)
  await pause(20)
  onMeasuring()
  if (how === "interleaved") {
    for (let i = 0; i < schedule.samples; i++) {
      await round(now)
      if ((i + 1) % 500 === 0) progress(`latency: ${i + 1}/${schedule.samples} interleaved`)
    }
  } else {
    for (let done = 0; done < schedule.samples; done += schedule.block) {
      for (let p = 0; p < paths; p++) {
        for (let i = 0; i < schedule.blockWarmup; i++) await write(p, warmupValue(), true)
        for (let i = 0; i < schedule.block; i++) await write(p, now(), true)
      }
    }
  }
  await pause(50)
  await round(() => -1)
}
