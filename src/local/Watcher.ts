/**
 * Watcher: a Stream of FileChangeEvents naming the variables whose values changed.
 *
 * inotify cannot see stores through a shared mapping, so the mechanism is the file's own change
 * generation: writers bump it and futex-wake sleepers (only when the waiter count says someone
 * sleeps). A woken watcher diffs the data region against its shadow copy with SimdDiff, maps
 * changed byte ranges to variables through a table sorted by slot offset, reads each candidate
 * consistently, and reports those whose value differs from the last event's. Writes that
 * coalesce into one wake are all reported: the diff sees every byte that moved.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type CommyError, LockTimeout } from "../CommyError.js"
import { SimdDiff } from "../diff/SimdDiff.js"
import type { Entry } from "./Directory.js"
import { H_CHANGE_GEN, slotSize } from "./layout.js"
import { slotRef } from "./Slots.js"
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
}

interface Tracked {
  readonly entry: Entry
  readonly end: number
  readonly type: VarType.VarType<Uint8Array>
  /** Last reported value bytes (the zero value before any event). */
  last: Uint8Array
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
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

/** Waits for the next event: `onEvent` or `onError` runs once (maybe synchronously); the result cancels. */
type NextEvent = (onEvent: (event: FileChangeEvent) => void, onError: (error: CommyError) => void) => () => void

/**
 * The watcher's engine, shared by `watch` (a Stream) and `onChange` (a callback): the shadow,
 * the offset table and the sleep on the change generation. Synchronous and callback-driven, so
 * a wake runs the scan straight from the native completion with no fiber in between.
 */
const makeWatchCore = (file: VirtualFile, options: WatchOptions): Effect.Effect<NextEvent, CommyError, SimdDiff | Scope.Scope> =>
  Effect.gen(function*() {
    const simd = yield* SimdDiff
    const memory = file.memory
    const accessor = file.accessor
    const service = options.service ?? file.path ?? "memory"
    const maxSleep = options.maxSleep ?? Duration.seconds(1)
    const ownWrites = options.ownWrites ?? true
    const bytes = new Uint8Array(accessor.buffer)

    let table: Array<Tracked> = []
    let byIndex = new Map<number, Tracked>()
    /** The file's layout the table was built from (a new object after every layout change). */
    let known: VirtualFile["layout"] | undefined
    let dataOffset = 0
    let shadow = new Uint8Array(0)

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
        const tracked: Tracked = old?.entry.slot === entry.slot && old.entry.name === entry.name
          ? old
          : { entry, end: entry.slot + slotSize(entry.capacity), type: VarType.raw(entry.typeId, entry.capacity), last: zeroValue(entry) }
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
      return undefined
    }

    const zeroValue = (entry: Entry) => new Uint8Array(VarType.fixedWidth(entry.typeId) ?? 0)

    // Reused across scans: a wake should allocate little (garbage here shows up as p99 latency).
    let current = bytes.subarray(0, 0)
    const candidates: Array<Tracked> = []
    const noChanges: ReadonlyArray<VariableChange> = []
    const readCandidates = () => candidates.map((t) => memory.readVersioned(slotRef(t.entry), t.type))

    /** One pass: diff, map ranges to variables, report value changes. Synchronous: it runs on every wake. */
    const scanNow = (): FileChangeEvent | undefined | CommyError => {
      const failed = syncLayout()
      if (failed) return failed
      if (current.length !== shadow.length || current.byteOffset !== dataOffset) {
        current = bytes.subarray(dataOffset, dataOffset + shadow.length)
      }
      const ranges = simd.diffNow(current, shadow)
      if (!(ranges instanceof Float64Array)) return ranges
      if (ranges.length === 0) return layoutEvent(noChanges)
      candidates.length = 0
      let lastCandidate: Tracked | undefined
      for (let r = 0; r < ranges.length; r += 2) {
        const start = ranges[r]!
        const end = ranges[r + 1]!
        // Copy first, read after: a write landing in between shows up again in the next diff.
        if (end - start <= 64) for (let i = start; i < end; i++) shadow[i] = current[i]!
        else shadow.set(current.subarray(start, end), start)
        const from = start + dataOffset
        const to = end + dataOffset
        for (let i = Math.max(0, slotAt(table, from)); i < table.length && table[i]!.entry.slot < to; i++) {
          const tracked = table[i]!
          if (tracked.end <= from || tracked === lastCandidate) continue
          candidates.push(tracked)
          lastCandidate = tracked
        }
      }
      const read = memory.consistent(readCandidates)
      if (read instanceof LockTimeout) return read
      const changes: Array<VariableChange> = []
      for (let i = 0; i < candidates.length; i++) {
        const tracked = candidates[i]!
        const { value, version } = read[i]!
        if (sameBytes(value, tracked.last)) continue
        tracked.last = value
        if (!ownWrites && memory.ownVersions[tracked.entry.index] === version) continue
        changes.push(options.values ? { name: tracked.entry.name, version, value } : { name: tracked.entry.name, version })
      }
      return layoutEvent(changes)
    }

    const layoutEvent = (changes: ReadonlyArray<VariableChange>): FileChangeEvent | undefined => {
      const reportLayout = layoutChanged && options.layoutChanges === true
      layoutChanged = false
      if (changes.length === 0 && !reportLayout) return undefined
      const variables = new Array<string>(changes.length)
      for (let i = 0; i < changes.length; i++) variables[i] = changes[i]!.name
      return { service, variables, changes, layoutChanged: reportLayout }
    }

    const generationIndex = H_CHANGE_GEN >>> 2
    const maxSleepMs = Duration.toMillis(Duration.decode(maxSleep))
    // A read-only mapping cannot register as a waiter: it polls the generation instead.
    const pollMs = Math.min(2, maxSleepMs)

    // A watcher that reports this process's own writes must be woken by them too.
    if (ownWrites) {
      yield* Effect.acquireRelease(
        Effect.sync(() => memory.selfWakes++),
        () => Effect.sync(() => memory.selfWakes--)
      )
    }

    // Initial shadow: the state at subscription.
    {
      if (accessor.writable) memory.reapSleepers()
      const failed = syncLayout()
      if (failed) return yield* Effect.fail(failed)
      shadow.set(bytes.subarray(dataOffset, dataOffset + shadow.length))
      for (const tracked of table) {
        tracked.last = memory.readVersioned(slotRef(tracked.entry), tracked.type).value
      }
    }

    /**
     * Scans until there is something to report, sleeping on the change generation in between.
     * Callback-driven: a wake runs the scan straight from the native completion, and the fiber
     * resumes only with an event (a fiber hop per wake cost tens of µs of latency).
     */
    const next: NextEvent = (onEvent, onError) => {
      let cancel: (() => void) | undefined
      let release: (() => void) | undefined
      const step = (): void => {
        cancel = undefined
        for (;;) {
          const seen = Atomics.load(memory.words, generationIndex)
          const event = scanNow()
          if (event !== undefined) return "_tag" in event ? onError(event) : onEvent(event)
          if (!accessor.writable) {
            const timer = setTimeout(step, pollMs)
            cancel = () => clearTimeout(timer)
            return
          }
          // Registered before the last check, so a writer that bumps after it sees us and wakes.
          release = memory.registerSleeper()
          if (Atomics.load(memory.words, generationIndex) !== seen) {
            release()
            release = undefined
            continue
          }
          cancel = accessor.unsafeWait(H_CHANGE_GEN, seen, maxSleepMs, (result) => {
            release?.()
            release = undefined
            if (typeof result !== "string") return onError(result)
            // A quiet period: a good moment to undo sleepers that died asleep.
            if (result === "timeout") memory.reapSleepers()
            step()
          })
          return
        }
      }
      step()
      return () => {
        cancel?.()
        release?.()
      }
    }
    return next
  })

/**
 * Watches one VirtualFile. The stream never ends on its own; interrupting it releases the
 * waiter registration. Events start from the state at subscription: nothing is replayed.
 */
export const watch = (file: VirtualFile, options: WatchOptions = {}): Stream.Stream<FileChangeEvent, CommyError, SimdDiff> =>
  Stream.unwrapScoped(Effect.map(makeWatchCore(file, options), (next) =>
    Stream.repeatEffect(Effect.async<FileChangeEvent, CommyError>((resume) =>
      Effect.sync(next((event) => resume(Effect.succeed(event)), (error) => resume(Effect.fail(error))))
    ))))

export interface OnChangeOptions extends WatchOptions {
  /** Called once if the watcher stops on an error (a corrupted file, a failed wait). */
  readonly onError?: (error: CommyError) => void
}

/**
 * Calls `onEvent` for each change until the scope closes: the same events as `watch`, delivered
 * straight from the wake-up (no fiber, no stream), for code that reacts in place, like a Redis
 * client's message handler. `onError` gets a failure that stopped the watcher (default: none).
 */
export const onChange = (
  file: VirtualFile,
  onEvent: (event: FileChangeEvent) => void,
  options: OnChangeOptions = {}
): Effect.Effect<void, CommyError, SimdDiff | Scope.Scope> =>
  Effect.gen(function*() {
    const next = yield* makeWatchCore(file, options)
    let cancel: (() => void) | undefined
    let stopped = false
    const onError = (error: CommyError) => {
      stopped = true
      options.onError?.(error)
    }
    // Re-arms after each event; an event found synchronously is delivered by this loop rather
    // than by recursion, so a handler that writes cannot grow the stack.
    const arm = (): void => {
      for (;;) {
        let arming = true
        let ready: FileChangeEvent | undefined
        cancel = next((event) => {
          if (arming) ready = event
          else if (!stopped) {
            onEvent(event)
            if (!stopped) arm()
          }
        }, onError)
        arming = false
        if (ready === undefined || stopped) return
        onEvent(ready)
        if (stopped) return
      }
    }
    yield* Effect.acquireRelease(Effect.sync(arm), () =>
      Effect.sync(() => {
        stopped = true
        cancel?.()
      }))
  })
