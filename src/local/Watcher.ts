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

/**
 * Watches one VirtualFile. The stream never ends on its own; interrupting it releases the
 * waiter registration. Events start from the state at subscription: nothing is replayed.
 */
export const watch = (file: VirtualFile, options: WatchOptions = {}): Stream.Stream<FileChangeEvent, CommyError, SimdDiff> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const simd = yield* SimdDiff
    const memory = file.memory
    const accessor = file.accessor
    const service = options.service ?? file.path ?? "memory"
    const maxSleep = options.maxSleep ?? Duration.seconds(1)
    const ownWrites = options.ownWrites ?? true
    const bytes = new Uint8Array(accessor.buffer)

    let table: Array<Tracked> = []
    let byIndex = new Map<number, Tracked>()
    let layoutGeneration = -1
    let dataOffset = 0
    let shadow = new Uint8Array(0)

    let layoutChanged = false
    /** Rebuilds the offset table after a layout change; keeps what we knew of old variables. */
    const syncLayout = (): CommyError | undefined => {
      const failed = file.refresh()
      if (failed) return failed
      const { entries, header } = file.layout
      if (header.layoutGeneration === layoutGeneration) return undefined
      if (layoutGeneration !== -1) layoutChanged = true
      const next: Array<Tracked> = []
      const nextByIndex = new Map<number, Tracked>()
      for (const entry of entries.values()) {
        const known = byIndex.get(entry.index)
        const tracked: Tracked = known?.entry.slot === entry.slot && known.entry.name === entry.name
          ? known
          : { entry, end: entry.slot + slotSize(entry.capacity), type: VarType.raw(entry.typeId, entry.capacity), last: zeroValue(entry) }
        next.push(tracked)
        nextByIndex.set(entry.index, tracked)
      }
      next.sort((a, b) => a.entry.slot - b.entry.slot)
      table = next
      byIndex = nextByIndex
      layoutGeneration = header.layoutGeneration
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

    /** One pass: diff, map ranges to variables, report value changes. Synchronous: it runs on every wake. */
    const scanNow = (): FileChangeEvent | undefined | CommyError => {
      const failed = syncLayout()
      if (failed) return failed
      const current = bytes.subarray(dataOffset, dataOffset + shadow.length)
      const ranges = simd.diffNow(current, shadow)
      if (!(ranges instanceof Float64Array)) return ranges
      if (ranges.length === 0) return layoutEvent([])
      const candidates: Array<Tracked> = []
      let lastCandidate: Tracked | undefined
      for (let r = 0; r < ranges.length; r += 2) {
        const start = ranges[r]! + dataOffset
        const end = ranges[r + 1]! + dataOffset
        // Copy first, read after: a write landing in between shows up again in the next diff.
        shadow.set(bytes.subarray(start, end), start - dataOffset)
        for (let i = Math.max(0, slotAt(table, start)); i < table.length && table[i]!.entry.slot < end; i++) {
          const tracked = table[i]!
          if (tracked.end <= start || tracked === lastCandidate) continue
          candidates.push(tracked)
          lastCandidate = tracked
        }
      }
      const read = memory.consistent(() => candidates.map((t) => memory.readVersioned(slotRef(t.entry), t.type)))
      if (read instanceof LockTimeout) return read
      const changes: Array<VariableChange> = []
      candidates.forEach((tracked, i) => {
        const { value, version } = read[i]!
        if (sameBytes(value, tracked.last)) return
        tracked.last = value
        if (!ownWrites && memory.ownVersions[tracked.entry.index] === version) return
        changes.push(options.values ? { name: tracked.entry.name, version, value } : { name: tracked.entry.name, version })
      })
      return layoutEvent(changes)
    }

    const layoutEvent = (changes: ReadonlyArray<VariableChange>): FileChangeEvent | undefined => {
      const reportLayout = layoutChanged && options.layoutChanges === true
      layoutChanged = false
      if (changes.length === 0 && !reportLayout) return undefined
      return { service, variables: changes.map((c) => c.name), changes, layoutChanged: reportLayout }
    }

    const generationIndex = H_CHANGE_GEN >>> 2
    /** Sleeps until the change generation moves from `seen` (or maxSleep passes). */
    const sleepFrom = (seen: number) =>
      accessor.writable
        ? Effect.acquireUseRelease(
          // Registered before the last check, so a writer that bumps after it sees us and wakes.
          Effect.sync(() => memory.registerSleeper()),
          () => Atomics.load(memory.words, generationIndex) === seen
            ? Effect.flatMap(accessor.wait(H_CHANGE_GEN, seen, maxSleep), (result) =>
              // A quiet period: a good moment to undo sleepers that died asleep.
              result === "timeout" ? Effect.sync(() => memory.reapSleepers()) : Effect.void)
            : Effect.void,
          (release) => Effect.sync(release)
        )
        // A read-only mapping cannot register as a waiter: poll the generation instead.
        : Effect.sleep(Duration.millis(Math.min(2, Duration.toMillis(Duration.decode(maxSleep)))))

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

    const nextEvent: Effect.Effect<FileChangeEvent, CommyError> = Effect.gen(function*() {
      for (;;) {
        const seen = Atomics.load(memory.words, generationIndex)
        const event = scanNow()
        if (event !== undefined && "_tag" in event) return yield* Effect.fail(event)
        if (event) return event
        yield* sleepFrom(seen)
      }
    })
    return Stream.repeatEffect(nextEvent)
  }))
