/**
 * Watcher: a Stream of FileChangeEvents naming the variables whose values changed.
 *
 * inotify cannot see stores through a shared mapping, so the mechanism is the file's own change
 * generation: writers bump it and futex-wake sleepers (only when the waiter count says someone
 * sleeps). A woken watcher diffs the data region against its shadow copy (SimdDiff, or words in
 * JS for a small region), maps changed byte ranges to variables through a table sorted by slot
 * offset, reads the candidates, and reports those whose value differs from the last event's.
 * Diff and read happen with no batch commit in between, so an event names a batch whole. Writes
 * that coalesce into one wake are all reported: the diff sees every byte that moved.
 */
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type CommyError, LockTimeout, MappingClosed, WatcherError } from "../CommyError.js"
import { millisOf } from "../Durations.js"
import { type DiffError, SimdDiff } from "../diff/SimdDiff.js"
import type { WaitResult } from "../native/Binding.js"
import type { Entry } from "./Directory.js"
import { H_BATCH_SEQ, H_CHANGE_GEN, slotSize } from "./layout.js"
import { waiterOf } from "./MappedFile.js"
import { type SlotRef, slotRef } from "./Slots.js"
import * as VarType from "./VarType.js"
import type { VirtualFile } from "./VirtualFile.js"

export interface VariableChange {
  readonly name: string
  readonly version: number
  /** The new value bytes, when the watcher was asked for values. */
  readonly value?: Uint8Array
}

export interface FileChangeEvent {
  /** The service this file belongs to (its id or path). */
  readonly service: string
  /** Names of the variables whose values changed since the previous event, sorted by offset. */
  readonly variables: ReadonlyArray<string>
  readonly changes: ReadonlyArray<VariableChange>
  /** True when variables were defined or removed since the previous event (`layoutChanges` option). */
  readonly layoutChanged: boolean
}

export interface WatchOptions {
  /** Name reported as `service`. Default: the file's path. */
  readonly service?: string
  /** Carry each changed variable's new value bytes. Default false. */
  readonly values?: boolean
  /** Report changes made by this process too. Default true. */
  readonly ownWrites?: boolean
  /** Also emit an event (possibly with no value changes) when variables are defined or removed. */
  readonly layoutChanges?: boolean
  /** Longest sleep between checks, as a safety net (and the poll period for read-only maps). */
  readonly maxSleep?: Duration.DurationInput
  /**
   * Busy-poll the change generation for up to this long after each event (or since the watch
   * began) before sleeping in the kernel. An idle watcher's wake-up is the slow part of its
   * latency (waking a sleeping thread, often a halted CPU); a polling one sees a write within
   * microseconds, at the price of one CPU kept busy for the whole window. The thread polls in
   * slices of at most 1 ms and yields to the event loop between them, so timers and I/O still
   * run, up to a slice late. Default 0: sleep at once.
   */
  readonly spin?: Duration.DurationInput
}

interface Tracked {
  readonly entry: Entry
  readonly ref: SlotRef
  readonly end: number
  /** Fixed-width types always hold `capacity` bytes; the others store their length. */
  readonly fixed: boolean
  /** Last reported value bytes (the zero value before any event). */
  last: Uint8Array
  /** The scan that last made it a candidate (so a slot is read once per scan). */
  scan: number
  /** `reuse`: the buffer the next changed value is read into (the one reported before `last`). */
  spare: Uint8Array | undefined
  /** `reuse`: the change object every event reporting this variable carries. */
  change: { readonly name: string; version: number; value?: Uint8Array } | undefined
}

const nameOf = (change: VariableChange): string => change.name

const track = (entry: Entry): Tracked => {
  const width = VarType.fixedWidth(entry.typeId)
  return {
    entry,
    ref: slotRef(entry),
    end: entry.slot + slotSize(entry.capacity),
    fixed: width !== undefined,
    last: new Uint8Array(width ?? 0),
    scan: 0,
    spare: undefined,
    change: undefined
  }
}

/** Index of the last tracked slot starting at or before `offset` (binary search). */
const slotAt = (table: ReadonlyArray<Tracked>, offset: number): number => {
  let lo = 0
  let hi = table.length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    if (table[mid]!.entry.slot <= offset) {
      found = mid
      lo = mid + 1
    } else hi = mid - 1
  }
  return found
}

/**
 * Data regions up to this size are diffed word by word in JS, without the addon call and its
 * result array: hot, 64 B took 40 ns vs 1.26 µs through the addon, 2 KiB 0.88 vs 1.03 µs,
 * 4 KiB 2.1 vs 1.3 µs (one-off measurement, 2026-11-30).
 */
const SMALL_REGION = 2048

/** Longest a busy-polling watcher holds the JS thread before yielding to the event loop. */
const SPIN_SLICE_MS = 1

/**
 * Events a watcher delivers in one go before it yields to the event loop. A writer faster than
 * the handler (or a handler that writes to the file it watches) moves the generation again
 * during every scan, and rescanning at once would then hold the thread for as long as it writes.
 */
const EVENTS_BEFORE_YIELD = 64

/** Waits for the next event: `onEvent` or `onError` runs once (maybe synchronously); the result cancels. */
type NextEvent = (onEvent: (event: FileChangeEvent) => void, onError: (error: CommyError) => void) => () => void

/**
 * The watcher's engine, shared by `watch` (a Stream) and `onChange` (a callback): the shadow,
 * the offset table and the sleep on the change generation. Synchronous and callback-driven, so
 * a wake runs the scan straight from the native completion with no fiber in between.
 */
const makeWatchCore = (
  file: VirtualFile,
  options: WatchOptions & { readonly reuse?: boolean }
): Effect.Effect<NextEvent, CommyError, SimdDiff | Scope.Scope> =>
  Effect.gen(function*() {
    const simd = yield* SimdDiff
    const memory = file.memory
    const accessor = file.accessor
    const service = options.service ?? file.path ?? "memory"
    const ownWrites = options.ownWrites ?? true
    const values = options.values === true
    const reuse = options.reuse === true
    const { bytes, words } = memory

    let table: Array<Tracked> = []
    let byIndex = new Map<number, Tracked>()
    /** The file's layout the table was built from (a new object after every layout change). */
    let known: VirtualFile["layout"] | undefined
    let dataOffset = 0
    let shadow = new Uint8Array(0)
    // Word views of the data region and the shadow, for the small-region diff (null: use SimdDiff).
    let currentWords: Int32Array | null = null
    let shadowWords: Int32Array | null = null
    let current = bytes.subarray(0, 0)

    let layoutChanged = false
    /** Rebuilds the offset table after a layout change; keeps what we knew of old variables. */
    const syncLayout = (): CommyError | undefined => {
      const failed = file.refresh()
      if (failed) return failed
      const layout = file.layout
      if (layout === known) return undefined
      if (known !== undefined) layoutChanged = true
      const { entries, header } = layout
      const next: Array<Tracked> = []
      const nextByIndex = new Map<number, Tracked>()
      for (const entry of entries.values()) {
        const old = byIndex.get(entry.index)
        const tracked = old?.entry.slot === entry.slot && old.entry.name === entry.name ? old : track(entry)
        next.push(tracked)
        nextByIndex.set(entry.index, tracked)
      }
      next.sort((a, b) => a.entry.slot - b.entry.slot)
      table = next
      byIndex = nextByIndex
      known = layout
      // The data region only grows; new bytes start as zeros in the shadow, like a fresh slot.
      if (header.dataOffset !== dataOffset || header.dataUsed - header.dataOffset > shadow.length) {
        const grown = new Uint8Array(header.dataUsed - header.dataOffset)
        if (header.dataOffset === dataOffset) grown.set(shadow)
        shadow = grown
        dataOffset = header.dataOffset
      }
      current = bytes.subarray(dataOffset, dataOffset + shadow.length)
      const small = shadow.length <= SMALL_REGION && shadow.length % 4 === 0 && dataOffset % 4 === 0
      currentWords = small ? new Int32Array(bytes.buffer, dataOffset, shadow.length >>> 2) : null
      shadowWords = small ? new Int32Array(shadow.buffer, 0, shadow.length >>> 2) : null
      return undefined
    }

    // Reused across scans: a wake should allocate little (garbage here shows up as p99 latency).
    // The first `candidateCount` entries are this scan's; the array is never truncated, since
    // `length = 0` drops its backing store and the next push allocates another (~150 B a scan).
    const candidates: Array<Tracked> = []
    let candidateCount = 0
    let scanId = 0
    // What the last read found per candidate: its new value (undefined: same as `last`) and version.
    const readValues: Array<Uint8Array | undefined> = []
    let readVersions = new Float64Array(16)

    /**
     * The region's changed range [start, end) (relative to the data region): the shadow takes
     * the new bytes first and the slots are read after, so a write landing in between shows up
     * again in the next diff rather than being lost.
     */
    const addRange = (start: number, end: number): void => {
      if (end - start <= 64) for (let i = start; i < end; i++) shadow[i] = current[i]!
      else shadow.set(current.subarray(start, end), start)
      const from = start + dataOffset
      const to = end + dataOffset
      for (let i = Math.max(0, slotAt(table, from)); i < table.length && table[i]!.entry.slot < to; i++) {
        const tracked = table[i]!
        if (tracked.end <= from || tracked.scan === scanId) continue
        tracked.scan = scanId
        candidates[candidateCount++] = tracked
      }
    }

    /** Word-by-word diff of a small region (slots are 8-byte aligned: a word is never in two slots). */
    const diffSmall = (now: Int32Array, seen: Int32Array): void => {
      const n = now.length
      for (let i = 0; i < n; i++) {
        if (now[i] === seen[i]) continue
        let j = i + 1
        while (j < n && now[j] !== seen[j]) j++
        addRange(i << 2, j << 2)
        i = j
      }
    }

    /** Reads every candidate's committed value, copying only those that differ from `last`. */
    const readCandidates = (): undefined => {
      if (readVersions.length < candidateCount) readVersions = new Float64Array(candidateCount * 2)
      for (let i = 0; i < candidateCount; i++) {
        const t = candidates[i]!
        readVersions[i] = memory.readChanged(t.ref, t.fixed, t.last, readValues, i, t.spare)
      }
      return undefined
    }

    /** Adds the slots whose bytes differ from the shadow to the candidates. */
    const diffIntoCandidates = (): DiffError | undefined => {
      if (currentWords !== null) diffSmall(currentWords, shadowWords!)
      else {
        const ranges = simd.diffNow(current, shadow)
        if (!(ranges instanceof Float64Array)) return ranges
        for (let r = 0; r < ranges.length; r += 2) addRange(ranges[r]!, ranges[r + 1]!)
      }
      return undefined
    }

    const bySlot = (a: Tracked, b: Tracked) => a.entry.slot - b.entry.slot
    /** The slow path's pass: more candidates (kept in slot order, as events list them), all read again. */
    const diffAndRead = (): DiffError | undefined => {
      const failed = diffIntoCandidates()
      if (failed) return failed
      // Rare (a batch committing): sorting the prefix alone may reallocate, which is fine here.
      candidates.length = candidateCount
      candidates.sort(bySlot)
      return readCandidates()
    }

    const batchIndex = H_BATCH_SEQ >>> 2
    /**
     * Diffs and reads the candidates with no batch commit in between, so an event names every
     * variable of a batch or none (a batch flipping between the diff and the read would
     * otherwise be reported in two halves) and their values are of one moment.
     */
    const diffConsistent = (): DiffError | LockTimeout | undefined => {
      scanId++
      candidateCount = 0
      // The common case inline: no batch committing, none committed meanwhile.
      const before = Atomics.load(words, batchIndex)
      if ((before & 1) === 0) {
        const failed = diffIntoCandidates()
        if (failed) return failed
        if (candidateCount === 0 && Atomics.load(words, batchIndex) === before) return undefined
        readCandidates()
        if (Atomics.load(words, batchIndex) === before) return undefined
      }
      // A batch is committing, or committed meanwhile, or its writer died: diff again (adding
      // the rest of the batch) and re-read, between commits; `consistent` waits or recovers.
      return memory.consistent(diffAndRead)
    }

    // `reuse`: one event, its arrays, a change object per variable and two value buffers per
    // variable (the reported one and the next), all overwritten by the next event. Arrays are
    // resized by `length` only when the count changes (V8 keeps their backing store when they
    // shrink a little, so a steady count allocates nothing).
    const shared = {
      service,
      variables: [] as Array<string>,
      changes: [] as Array<VariableChange>,
      layoutChanged: false
    }
    /** The change to report for `tracked`: its own reused object, or a fresh one. */
    const changeOf = (tracked: Tracked, version: number, value: Uint8Array): VariableChange => {
      if (!reuse) return values ? { name: tracked.entry.name, version, value } : { name: tracked.entry.name, version }
      const change = tracked.change ??= { name: tracked.entry.name, version }
      change.version = version
      if (values) change.value = value
      return change
    }

    /** One pass: diff, map ranges to variables, report value changes. Synchronous: it runs on every wake. */
    const scanNow = (): FileChangeEvent | undefined | CommyError => {
      const failed = syncLayout() ?? diffConsistent()
      if (failed) return failed
      // Fresh events get their arrays only once there is something to report.
      let changes: Array<VariableChange> | undefined = reuse ? shared.changes : undefined
      let n = 0
      for (let i = 0; i < candidateCount; i++) {
        const value = readValues[i]
        if (value === undefined) continue
        const tracked = candidates[i]!
        const version = readVersions[i]!
        // The buffer reported last time is free again (its event is over): the next read's target.
        if (reuse) tracked.spare = tracked.last
        tracked.last = value
        if (!ownWrites && memory.ownVersions[tracked.entry.index] === version) continue
        const change = changeOf(tracked, version, value)
        if (changes === undefined) changes = [change] // exactly sized: `[]` grows to 17 slots
        else changes[n] = change
        n++
      }
      const reportLayout = layoutChanged && options.layoutChanges === true
      layoutChanged = false
      if (n === 0 && !reportLayout) return undefined
      changes ??= []
      if (!reuse) return { service, variables: changes.map(nameOf), changes, layoutChanged: reportLayout }
      if (changes.length !== n) changes.length = n
      for (let i = 0; i < n; i++) shared.variables[i] = changes[i]!.name
      if (shared.variables.length !== n) shared.variables.length = n
      shared.layoutChanged = reportLayout
      return shared
    }

    const generationIndex = H_CHANGE_GEN >>> 2
    const maxSleepMs = yield* millisOf("maxSleep", options.maxSleep, "1 second")
    const spinMs = yield* millisOf("spin", options.spin, 0)
    /** When the current busy-poll window closes (0: none open; it opens when a check finds nothing). */
    let spinUntil = 0
    /**
     * Polls the change generation until it moves from `seen`, for one slice at most. True when
     * it moved. The clock is read only every 4096 loads (~30 µs): each reading allocates (a
     * boxed number, ~16–32 B), and read every 64 loads it made the poller scavenge ~40 times a
     * second, each pause landing on an event.
     */
    const pollSlice = (seen: number, until: number): boolean => {
      for (;;) {
        for (let i = 0; i < 4096; i++) if (Atomics.load(words, generationIndex) !== seen) return true
        if (performance.now() >= until) return false
      }
    }
    // A read-only mapping cannot register as a waiter: it polls the generation instead.
    const pollMs = Math.min(2, maxSleepMs)

    // A watcher that reports this process's own writes must be woken by them too.
    if (ownWrites) {
      yield* Effect.acquireRelease(
        Effect.sync(() => memory.selfWakes++),
        () => Effect.sync(() => memory.selfWakes--)
      )
    }

    /** The change generation as of the start of the last scan: unchanged since means nothing new to see. */
    let scanned = Atomics.load(words, generationIndex)
    // Initial shadow and last values: the state at subscription.
    {
      if (accessor.writable) memory.reapSleepers()
      const failed = syncLayout()
      if (failed) return yield* Effect.fail(failed)
      // Shadow and values of one moment between batch commits, like every scan after.
      const failedRead = memory.consistent(() => {
        shadow.set(current)
        candidateCount = 0
        for (const tracked of table) candidates[candidateCount++] = tracked
        return readCandidates()
      })
      if (failedRead) return yield* Effect.fail(failedRead)
      for (let i = 0; i < candidateCount; i++) {
        const value = readValues[i]
        if (value !== undefined) candidates[i]!.last = value
      }
    }

    /** Events delivered since control last came from the event loop (a wake, a timer, an immediate). */
    let burstEvents = 0
    /** When polling in this turn of the event loop must stop (0: not polled yet in this turn). */
    let burstDeadline = 0

    // One request for an event is outstanding at a time (a stream pulls again only after an
    // event, onChange re-arms only after one), so its callbacks and the wake path's closures live
    // in the watcher and are reused: a wake allocates little beyond the event it reports.
    const sleeper = yield* Effect.acquireRelease(
      Effect.sync(() => memory.sleeper()),
      (sleeper) => Effect.sync(() => memory.dropSleeper(sleeper))
    )
    let onEvent: (event: FileChangeEvent) => void = () => {}
    let onError: (error: CommyError) => void = () => {}
    /** A request is outstanding. */
    let pending = false
    /** Cancels what the outstanding request waits on (a futex wait, a timer or an immediate). */
    let cancelWait: (() => void) | undefined
    /** Whether the scan after the pending immediate must run even if the generation did not move. */
    let forceAfterYield = false

    const deliver = (event: FileChangeEvent | CommyError): void => {
      pending = false
      if ("_tag" in event) onError(event)
      else onEvent(event)
    }
    const afterYield = () => step(forceAfterYield, true)
    const afterPoll = () => step(true, true)
    const afterWait = (result: WaitResult | CommyError): void => {
      sleeper.release()
      if (typeof result !== "string") {
        cancelWait = undefined
        return deliver(result)
      }
      // A quiet period: a good moment to undo sleepers that died asleep, and to rescan in
      // case a writer died between its commit and its generation bump.
      if (result === "timeout") memory.reapSleepers()
      step(result === "timeout", true)
    }
    // One waiter for the watcher's life, reused by every sleep (read-only maps poll instead).
    const makeWaiter = accessor.unsafeWaiter ?? waiterOf(accessor.unsafeWait)
    const waiter = accessor.writable ? yield* makeWaiter(afterWait) : undefined
    /** Carries on from a fresh turn of the event loop. */
    const yieldThen = (force: boolean): void => {
      forceAfterYield = force
      const handle = setImmediate(afterYield)
      cancelWait = () => clearImmediate(handle)
    }

    /**
     * Scans until there is something to report, sleeping on the change generation in between.
     * Callback-driven: a wake runs the scan straight from the native completion, and the fiber
     * resumes only with an event (a fiber hop per wake cost tens of µs of latency). `force`: scan
     * even if the generation did not move (the timeout safety net). `fresh`: called from the
     * event loop rather than from a handler's re-arm.
     */
    const step = (force: boolean, fresh: boolean): void => {
      cancelWait = undefined
      if (fresh) {
        burstEvents = 0
        burstDeadline = 0
      }
      // Closing the mapping detaches its buffer (and cancels our wait): stop with a typed error.
      if (words.length === 0) return deliver(new MappingClosed({ message: `${service} was closed under its watcher` }))
      for (;;) {
        const seen = Atomics.load(words, generationIndex)
        if (force || seen !== scanned) {
          if (burstEvents >= EVENTS_BEFORE_YIELD) return yieldThen(force)
          force = false
          scanned = seen
          const event = scanNow()
          if (event !== undefined) {
            spinUntil = 0
            burstEvents++
            return deliver(event)
          }
        }
        if (spinMs > 0) {
          const now = performance.now()
          if (spinUntil === 0) spinUntil = now + spinMs
          if (now < spinUntil) {
            if (burstDeadline === 0) burstDeadline = now + SPIN_SLICE_MS
            if (now < burstDeadline && pollSlice(seen, Math.min(spinUntil, burstDeadline))) continue
            // Let the event loop run, then poll on (or sleep, once the window has closed).
            return yieldThen(false)
          }
        }
        if (waiter === undefined) {
          const timer = setTimeout(afterPoll, pollMs)
          cancelWait = () => clearTimeout(timer)
          return
        }
        // Counted before the last check, so a writer that bumps after it sees us and wakes.
        sleeper.sleep()
        if (Atomics.load(words, generationIndex) !== seen) {
          sleeper.release()
          continue
        }
        waiter.wait(H_CHANGE_GEN, seen, maxSleepMs)
        cancelWait = waiter.cancel
        return
      }
    }

    /** Withdraws the outstanding request, if any. */
    const cancel = (): void => {
      if (!pending) return
      pending = false
      const stop = cancelWait
      cancelWait = undefined
      stop?.()
      sleeper.release()
    }
    const next: NextEvent = (handleEvent, handleError) => {
      onEvent = handleEvent
      onError = handleError
      pending = true
      step(false, false)
      return cancel
    }
    return next
  })

/**
 * Watches one VirtualFile. The stream never ends on its own; interrupting it releases the
 * waiter registration. Events start from the state at subscription: nothing is replayed.
 *
 * Built as one channel loop (wait for an event, write it, repeat) inside a channel-level
 * bracket: `Stream.repeatEffect` in `Stream.unwrapScoped` measured 17.5 KB of allocation and
 * ~8 µs per element hot, this 12.7 KB and ~4.5 µs (the rest is the consumer's channel executor).
 */
export const watch = (file: VirtualFile, options: WatchOptions = {}): Stream.Stream<FileChangeEvent, CommyError, SimdDiff> =>
  Stream.fromChannel(Channel.acquireUseRelease(
    Scope.make(),
    (scope) =>
      // No `reuse` here: a stream's consumer may hold an event past the next pull.
      Channel.unwrap(Effect.map(Scope.extend(makeWatchCore(file, { ...options, reuse: false }), scope), (next) => {
        // Pulled only when the consumer asks: writes made meanwhile coalesce into the next event.
        const pull = Effect.async<FileChangeEvent, CommyError>((resume) =>
          Effect.sync(next((event) => resume(Effect.succeed(event)), (error) => resume(Effect.fail(error))))
        )
        const loop: Channel.Channel<Chunk.Chunk<FileChangeEvent>, unknown, CommyError, unknown, unknown, unknown> =
          Channel.flatMap(pull, (event) => Channel.zipRight(Channel.write(Chunk.of(event)), loop))
        return loop
      })),
    (scope, exit) => Scope.close(scope, exit)
  ))

export interface OnChangeOptions extends WatchOptions {
  /**
   * Deliver every event in the same objects, overwritten by the next event: the event, its
   * `variables` and `changes` arrays, the change objects and the `value` bytes are valid until
   * the handler returns, so copy what you keep (like lmdb-js's `getBinaryFast`). The watcher
   * then allocates nothing per event for fixed-width variables (nor for others whose length did
   * not change; ~60 B remain inside the N-API callback, against ~0.5 KB without): a busy watcher
   * hands the GC next to no garbage, and an idle one touches fewer fresh heap pages (each a page
   * fault). Default false.
   */
  readonly reuse?: boolean
  /**
   * Called with a `WatcherError` (code `WATCHER_ERROR`, the exception as its `cause`) each time
   * `onEvent` throws, after which the watcher carries on; and once, last, with the error that
   * stopped the watcher (a corrupted file, a failed wait). Without it, a throwing `onEvent` is
   * logged at error level through Effect's logger.
   */
  readonly onError?: (error: CommyError) => void
}

/**
 * Calls `onEvent` for each change until the scope closes: the same events as `watch`, delivered
 * straight from the wake-up (no fiber, no stream), for code that reacts in place, like a Redis
 * client's message handler. An exception thrown by `onEvent` becomes a `WatcherError` for
 * `onError` (or an error log) and the watcher carries on with the next change.
 */
export const onChange = (
  file: VirtualFile,
  onEvent: (event: FileChangeEvent) => void,
  options: OnChangeOptions = {}
): Effect.Effect<void, CommyError, SimdDiff | Scope.Scope> =>
  Effect.gen(function*() {
    const next = yield* makeWatchCore(file, options)
    const runtime = yield* Effect.runtime<never>()
    let cancel: (() => void) | undefined
    let stopped = false
    const onError = (error: CommyError) => {
      stopped = true
      options.onError?.(error)
    }
    /** The handler's own exception must not stop the watcher (nothing would re-arm it). */
    const handle = (event: FileChangeEvent): void => {
      try {
        onEvent(event)
      } catch (cause) {
        const error = new WatcherError({ message: `the onChange handler threw: ${String(cause)}`, cause })
        if (options.onError) options.onError(error)
        else Runtime.runFork(runtime)(Effect.logError(error.message, Cause.die(cause)))
      }
    }
    // Re-arms after each event; an event found synchronously is delivered by this loop rather
    // than by recursion, so a handler that writes cannot grow the stack.
    let arming = false
    let ready: FileChangeEvent | undefined
    const receive = (event: FileChangeEvent): void => {
      if (arming) ready = event
      else if (!stopped) {
        handle(event)
        if (!stopped) arm()
      }
    }
    const arm = (): void => {
      for (;;) {
        arming = true
        cancel = next(receive, onError)
        arming = false
        const event = ready
        ready = undefined
        if (event === undefined || stopped) return
        handle(event)
        if (stopped) return
      }
    }
    yield* Effect.acquireRelease(Effect.sync(arm), () =>
      Effect.sync(() => {
        stopped = true
        cancel?.()
      }))
  })

