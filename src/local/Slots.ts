/**
 * Slots: the concurrency protocol over a `.mem` file's bytes, shared by every process mapping it.
 *
 * Each slot holds two copies of its value and a commit counter `seq`; the committed copy is
 * `seq & 1`. Readers never block: read seq, read that copy, re-read seq, retry if it moved.
 * Writers serialise on the slot's owner word (CAS 0 -> pid), fill the other copy, then publish
 * it by bumping seq. A writer killed mid-write leaves the committed copy intact; the next writer
 * sees a dead owner pid and takes the slot over.
 *
 * Batches (several variables, all or nothing for snapshot readers) take the header's batch lock,
 * write every inactive copy, record the flips in the header's journal, then flip all seqs inside
 * an odd `batchSeq` window. A batch writer that dies mid-flip is rolled forward from the journal
 * by whoever next takes the batch lock.
 */
import { LockTimeout } from "../CommyError.js"
import {
  C_LENGTH,
  C_VALUE,
  C_VERSION,
  copySize,
  FILE_DELETED,
  getU64,
  H_BATCH_OWNER,
  H_BATCH_SEQ,
  H_CHANGE_GEN,
  H_FLAGS,
  H_JOURNAL_COUNT,
  H_WAITERS,
  JOURNAL_ENTRY_SIZE,
  JOURNAL_OFFSET,
  MAX_BATCH,
  SLEEPERS,
  SLEEPERS_OFFSET,
  S_COPIES,
  S_OWNER,
  S_SEQ,
  setU64
} from "./layout.js"
import type { VarType } from "./VarType.js"

/** How long a writer waits for a slot held by a live process before failing. */
const LOCK_TIMEOUT_MS = 2_000

const sleepCell = new Int32Array(new SharedArrayBuffer(4))
/** Blocks this thread for `ms` (Atomics.wait on a private cell: allowed on Node's main thread). */
const sleep = (ms: number) => Atomics.wait(sleepCell, 0, 0, ms)

/** Is `pid` a live process? EPERM means it exists under another user. */
export const processAlive = (pid: number): boolean => {
  if (pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** One variable's placement, resolved from the directory. */
export interface SlotRef {
  /** Directory entry index. */
  readonly index: number
  readonly slot: number
  readonly capacity: number
  /** Bytes of one copy. */
  readonly copy: number
}

export const slotRef = (entry: { readonly index: number; readonly slot: number; readonly capacity: number }): SlotRef => ({
  index: entry.index,
  slot: entry.slot,
  capacity: entry.capacity,
  copy: copySize(entry.capacity)
})

/** Versioned value as read from a slot. */
export interface Versioned<A> {
  readonly value: A
  readonly version: number
}

/**
 * The shared words and bytes of one file, plus the hooks the file's owner supplies: `wake`
 * (futex wake, called only when someone sleeps) and the process id used as lock owner.
 */
export class SlotMemory {
  readonly view: DataView
  readonly words: Int32Array
  readonly bytes: Uint8Array
  readonly pid: number
  /**
   * The last version this process wrote, per directory entry: lets a watcher leave out this
   * process's own writes. A typed array store, so the write path stays allocation-free.
   */
  ownVersions: Float64Array = new Float64Array(0)

  constructor(
    buffer: ArrayBuffer,
    /** Futex wake of the change generation; called only when a watcher sleeps. */
    readonly wake: () => void,
    /** False for a read-only mapping, where any store would fault. */
    readonly writable: boolean = true,
    pid: number = process.pid
  ) {
    this.view = new DataView(buffer)
    this.words = new Int32Array(buffer, 0, buffer.byteLength >>> 2)
    this.bytes = new Uint8Array(buffer)
    this.pid = pid
  }

  /**
   * True once the service was deleted (its file is about to be, or was, unlinked): writes here
   * would reach nobody. A plain load: it is advice, checked once per write and per scan.
   */
  deleted(): boolean {
    return (this.words[H_FLAGS >>> 2]! & FILE_DELETED) !== 0
  }

  /** Flags the file deleted, then bumps the change generation and wakes sleepers, which see it and end. */
  markDeleted(): void {
    Atomics.or(this.words, H_FLAGS >>> 2, FILE_DELETED)
    this.changed()
  }

  // ---------- reads ----------

  /** The committed value: a consistent copy, never torn. */
  read<A>(ref: SlotRef, type: VarType<A>): A {
    const { view, words } = this
    const seqIndex = (ref.slot + S_SEQ) >>> 2
    for (;;) {
      const seq = Atomics.load(words, seqIndex)
      const copy = ref.slot + S_COPIES + (seq & 1) * ref.copy
      if (type.fixed) {
        const value = type.read(view, copy + C_VALUE, ref.capacity)
        if (Atomics.load(words, seqIndex) === seq) return value
        continue
      }
      // Variable-length values can decode garbage from a torn copy: only trust a stable seq.
      try {
        const length = Math.min(view.getUint32(copy + C_LENGTH, true), ref.capacity)
        const value = type.read(view, copy + C_VALUE, length)
        if (Atomics.load(words, seqIndex) === seq) return value
      } catch (error) {
        if (Atomics.load(words, seqIndex) === seq) throw error
      }
    }
  }

  /**
   * The hot paths of one typed handle as closures. Each handle gets its own `type.read` and
   * `type.write` call sites, which V8 keeps monomorphic; through the shared `read`/`write`
   * methods every type meets at one site and the call goes megamorphic (~10 ns more per write).
   * Same protocol as `read` and `write`, which also serve the uncontended cases these skip.
   */
  handle<A>(ref: SlotRef, type: VarType<A>): { readonly get: () => A; readonly set: (value: A) => number | LockTimeout } {
    const { view, words, pid } = this
    const seqIndex = (ref.slot + S_SEQ) >>> 2
    const ownerIndex = (ref.slot + S_OWNER) >>> 2
    const base = ref.slot + S_COPIES
    const { copy, capacity } = ref
    const get = type.fixed
      ? (): A => {
        for (;;) {
          const seq = Atomics.load(words, seqIndex)
          const value = type.read(view, base + (seq & 1) * copy + C_VALUE, capacity)
          if (Atomics.load(words, seqIndex) === seq) return value
        }
      }
      : (): A => this.read(ref, type)
    const set = (value: A): number | LockTimeout => {
      // Contended (or a dead owner to recover): the general path.
      if (Atomics.compareExchange(words, ownerIndex, 0, pid) !== 0) return this.write(ref, type, value)
      const seq = words[seqIndex]!
      const next = base + ((seq + 1) & 1) * copy
      const version = getU64(view, base + (seq & 1) * copy + C_VERSION) + 1
      setU64(view, next + C_VERSION, version)
      view.setUint32(next + C_LENGTH, type.write(view, next + C_VALUE, value), true)
      Atomics.add(words, seqIndex, 1)
      Atomics.store(words, ownerIndex, 0)
      this.ownVersions[ref.index] = version
      this.changed()
      return version
    }
    return { get, set }
  }

  /**
   * The watcher's read: the committed version, with `into[i]` set to a copy of the value's bytes
   * when they differ from `last`, else to undefined (nothing copied: an unchanged candidate
   * allocates nothing). `fixed`: the type always holds `capacity` bytes. Same protocol as `read`.
   * `spare`: a buffer to copy into instead of a new one, used when its length fits the value.
   */
  readChanged(
    ref: SlotRef,
    fixed: boolean,
    last: Uint8Array,
    into: Array<Uint8Array | undefined>,
    i: number,
    spare?: Uint8Array
  ): number {
    const { view, words, bytes } = this
    const seqIndex = (ref.slot + S_SEQ) >>> 2
    for (;;) {
      const seq = Atomics.load(words, seqIndex)
      const at = ref.slot + S_COPIES + (seq & 1) * ref.copy
      const version = getU64(view, at + C_VERSION)
      const length = fixed ? ref.capacity : Math.min(view.getUint32(at + C_LENGTH, true), ref.capacity)
      const from = at + C_VALUE
      let same = length === last.length
      for (let k = 0; same && k < length; k++) same = bytes[from + k] === last[k]
      let value: Uint8Array | undefined
      if (same) value = undefined
      else if (spare?.length === length) {
        if (length <= 64) for (let k = 0; k < length; k++) spare[k] = bytes[from + k]!
        else spare.set(bytes.subarray(from, from + length))
        value = spare
      } else value = bytes.slice(from, from + length)
      // seq unchanged: no commit in between, so that copy was not being written.
      if (Atomics.load(words, seqIndex) === seq) {
        into[i] = value
        return version
      }
    }
  }

  /** The committed value and its version (count of committed writes). */
  readVersioned<A>(ref: SlotRef, type: VarType<A>): Versioned<A> {
    const { view, words } = this
    const seqIndex = (ref.slot + S_SEQ) >>> 2
    for (;;) {
      const seq = Atomics.load(words, seqIndex)
      const copy = ref.slot + S_COPIES + (seq & 1) * ref.copy
      try {
        const version = getU64(view, copy + C_VERSION)
        const length = type.fixed ? ref.capacity : Math.min(view.getUint32(copy + C_LENGTH, true), ref.capacity)
        const value = type.read(view, copy + C_VALUE, length)
        if (Atomics.load(words, seqIndex) === seq) return { value, version }
      } catch (error) {
        if (Atomics.load(words, seqIndex) === seq) throw error
      }
    }
  }

  /** The committed version alone. */
  version(ref: SlotRef): number {
    const { view, words } = this
    const seqIndex = (ref.slot + S_SEQ) >>> 2
    for (;;) {
      const seq = Atomics.load(words, seqIndex)
      const version = getU64(view, ref.slot + S_COPIES + (seq & 1) * ref.copy + C_VERSION)
      if (Atomics.load(words, seqIndex) === seq) return version
    }
  }

  /**
   * Runs `read` so that no batch commit overlaps it: readers of several variables see every
   * batch whole or not at all.
   */
  consistent<A>(read: () => A): A | LockTimeout {
    const index = H_BATCH_SEQ >>> 2
    const deadline = Date.now() + LOCK_TIMEOUT_MS
    for (let spins = 0;; spins++) {
      const before = Atomics.load(this.words, index)
      if ((before & 1) === 0) {
        const result = read()
        if (Atomics.load(this.words, index) === before) return result
        continue
      }
      // A batch is committing (microseconds), or its writer died mid-commit.
      if (spins > 64) {
        const owner = Atomics.load(this.words, H_BATCH_OWNER >>> 2)
        if (owner !== 0 && !processAlive(owner) && this.writable) {
          const taken = this.acquireBatch()
          if (taken !== undefined) return taken
          this.releaseBatch()
          continue
        }
        if (Date.now() > deadline) return new LockTimeout({ message: "a batch commit did not finish" })
        sleep(1)
      }
    }
  }

  // ---------- writes ----------

  /**
   * Writes `value` (already checked against `type`) and returns the new version.
   * Fails only when another live process holds the slot for longer than the lock timeout.
   */
  write<A>(ref: SlotRef, type: VarType<A>, value: A, explicitVersion?: number): number | LockTimeout {
    const failed = this.acquireSlot(ref, false)
    if (failed !== undefined) return failed
    const version = this.fill(ref, type, value, explicitVersion)
    this.publish(ref)
    this.releaseSlot(ref)
    this.ownVersions[ref.index] = version
    this.changed()
    return version
  }

  /** Writes only if the committed version is `expected`; else reports the current version. */
  compareAndSet<A>(
    ref: SlotRef,
    type: VarType<A>,
    expected: number,
    value: A
  ): { readonly ok: boolean; readonly version: number } | LockTimeout {
    const failed = this.acquireSlot(ref, false)
    if (failed !== undefined) return failed
    const current = this.committedVersion(ref)
    if (current !== expected) {
      this.releaseSlot(ref)
      return { ok: false, version: current }
    }
    const version = this.fill(ref, type, value)
    this.publish(ref)
    this.releaseSlot(ref)
    this.ownVersions[ref.index] = version
    this.changed()
    return { ok: true, version }
  }

  /**
   * Writes several variables so that snapshot readers see all of them or none.
   * `items` must name distinct slots. Returns the new versions in item order.
   */
  writeBatch(items: ReadonlyArray<BatchItem>): ReadonlyArray<number> | LockTimeout {
    if (items.length === 1) {
      const only = items[0]!
      const version = this.write(only.ref, only.type, only.value, only.version)
      return typeof version === "number" ? [version] : version
    }
    const batchFailed = this.acquireBatch()
    if (batchFailed !== undefined) return batchFailed
    // Lock slots in address order so two batches never deadlock.
    const order = items.map((_, i) => i).sort((a, b) => items[a]!.ref.slot - items[b]!.ref.slot)
    const locked: Array<SlotRef> = []
    for (const i of order) {
      const failed = this.acquireSlot(items[i]!.ref, true)
      if (failed !== undefined) {
        for (const ref of locked) this.releaseSlot(ref)
        this.releaseBatch()
        return failed
      }
      locked.push(items[i]!.ref)
    }
    const versions = items.map((item) => this.fill(item.ref, item.type, item.value, item.version))
    // Journal the flips, then flip inside an odd batchSeq window.
    const { view, words } = this
    items.forEach((item, i) => {
      const at = JOURNAL_OFFSET + i * JOURNAL_ENTRY_SIZE
      setU64(view, at, item.ref.slot)
      view.setUint32(at + 8, (Atomics.load(words, (item.ref.slot + S_SEQ) >>> 2) + 1) >>> 0, true)
    })
    Atomics.store(words, H_JOURNAL_COUNT >>> 2, items.length)
    Atomics.add(words, H_BATCH_SEQ >>> 2, 1)
    for (const item of items) this.publish(item.ref)
    Atomics.add(words, H_BATCH_SEQ >>> 2, 1)
    Atomics.store(words, H_JOURNAL_COUNT >>> 2, 0)
    for (const ref of locked) this.releaseSlot(ref)
    this.releaseBatch()
    items.forEach((item, i) => (this.ownVersions[item.ref.index] = versions[i]!))
    this.changed()
    return versions
  }

  /**
   * A watcher's registration in the header's waiter count, made once and reused for every sleep
   * (a sleep allocates nothing). The per-process entry in the sleeper table lets survivors undo a
   * dead sleeper.
   */
  sleeper(): Sleeper {
    const sleeper = new Sleeper(this)
    this.sleepers.add(sleeper)
    return sleeper
  }

  /** Sleepers of this instance, asleep or not (JS-local: one thread uses an instance). */
  private readonly sleepers = new Set<Sleeper>()
  /** How many of them are counted asleep right now. */
  asleepCount = 0
  /** This process's entry in the sleeper table (word index of its pid), once found. */
  private sleeperEntry = -1

  /** The word index of this process's sleeper-table entry, claiming one if needed (-1: table full). */
  sleeperSlot(): number {
    const { words, pid } = this
    if (this.sleeperEntry >= 0 && Atomics.load(words, this.sleeperEntry) === pid) return this.sleeperEntry
    this.sleeperEntry = -1
    for (let i = 0; i < SLEEPERS; i++) {
      const at = (SLEEPERS_OFFSET + i * 8) >>> 2
      const owner = Atomics.load(words, at)
      if (owner === pid || (owner === 0 && Atomics.compareExchange(words, at, 0, pid) === 0)) return this.sleeperEntry = at
    }
    return -1
  }

  /** Forgets a sleeper whose watcher ended (uncounting it first if it was asleep). */
  dropSleeper(sleeper: Sleeper): void {
    sleeper.release()
    this.sleepers.delete(sleeper)
  }

  /**
   * Uncounts every sleeper of this instance: called just before the mapping closes, while the
   * header can still be written (else writers elsewhere would futex-wake a watcher that is gone
   * on every write, until this process exits).
   */
  releaseSleepers(): void {
    for (const sleeper of this.sleepers) sleeper.release()
  }

  /** Watchers of this instance that report this process's own writes (and so must be woken by them). */
  selfWakes = 0

  /** Subtracts sleepers whose process died (killed while asleep). */
  reapSleepers(): void {
    const { words } = this
    for (let i = 0; i < SLEEPERS; i++) {
      const at = (SLEEPERS_OFFSET + i * 8) >>> 2
      const owner = Atomics.load(words, at)
      if (owner === 0 || owner === this.pid || processAlive(owner)) continue
      const count = Atomics.exchange(words, at + 1, 0)
      if (count > 0) Atomics.sub(words, H_WAITERS >>> 2, count)
      Atomics.compareExchange(words, at, owner, 0)
    }
  }

  /** Bumps the change generation and wakes sleeping watchers, if any (else no syscall). */
  changed(): void {
    Atomics.add(this.words, H_CHANGE_GEN >>> 2, 1)
    const waiters = Atomics.load(this.words, H_WAITERS >>> 2)
    // No syscall when nobody sleeps, nor when every sleeper is a watcher of this very instance
    // that ignores its own writes (the server's watcher, on the server's writes). A sleeper that
    // registers after the load above re-checks the generation we just bumped, so none is missed.
    if (waiters !== 0 && (waiters !== this.asleepCount || this.selfWakes > 0)) this.wake()
  }

  /** Zeroes a freshly allocated slot (the region may hold bytes of a define that died). */
  clearSlot(ref: SlotRef): void {
    new Uint8Array(this.view.buffer, ref.slot, S_COPIES + 2 * ref.copy).fill(0)
  }

  // ---------- internals ----------

  private committedVersion(ref: SlotRef): number {
    const seq = Atomics.load(this.words, (ref.slot + S_SEQ) >>> 2)
    return getU64(this.view, ref.slot + S_COPIES + (seq & 1) * ref.copy + C_VERSION)
  }

  /**
   * Fills the inactive copy; the caller owns the slot. Returns the version it will publish:
   * the next one, or `explicit` (a mirror copying another file's versions).
   */
  private fill<A>(ref: SlotRef, type: VarType<A>, value: A, explicit?: number): number {
    const { view } = this
    // A plain load: the caller owns the slot, so only it changes seq (saves an Atomics call).
    const seq = this.words[(ref.slot + S_SEQ) >>> 2]!
    const active = ref.slot + S_COPIES + (seq & 1) * ref.copy
    const next = ref.slot + S_COPIES + ((seq + 1) & 1) * ref.copy
    const version = explicit ?? getU64(view, active + C_VERSION) + 1
    setU64(view, next + C_VERSION, version)
    view.setUint32(next + C_LENGTH, type.write(view, next + C_VALUE, value), true)
    return version
  }

  private publish(ref: SlotRef): void {
    Atomics.add(this.words, (ref.slot + S_SEQ) >>> 2, 1)
  }

  private releaseSlot(ref: SlotRef): void {
    Atomics.store(this.words, (ref.slot + S_OWNER) >>> 2, 0)
  }

  /** Takes the slot's owner word. `holdingBatch`: the caller owns the batch lock already. */
  private acquireSlot(ref: SlotRef, holdingBatch: boolean): LockTimeout | undefined {
    const index = (ref.slot + S_OWNER) >>> 2
    if (Atomics.compareExchange(this.words, index, 0, this.pid) === 0) return undefined
    const deadline = Date.now() + LOCK_TIMEOUT_MS
    for (let spins = 0;; spins++) {
      const owner = Atomics.compareExchange(this.words, index, 0, this.pid)
      if (owner === 0) return undefined
      if (spins < 200) continue
      if (!processAlive(owner)) {
        // The owner died mid-write: its half-filled copy was never published. Take the slot
        // over, but only through the batch lock, so a dead batch's journal is replayed first.
        if (holdingBatch) {
          if (Atomics.compareExchange(this.words, index, owner, this.pid) === owner) return undefined
          continue
        }
        const failed = this.acquireBatch()
        if (failed !== undefined) return failed
        const taken = Atomics.compareExchange(this.words, index, owner, this.pid) === owner
        this.releaseBatch()
        if (taken) return undefined
        continue
      }
      if (Date.now() > deadline) {
        return new LockTimeout({ message: `variable slot at ${ref.slot} held by live process ${owner}` })
      }
      sleep(spins < 1000 ? 0 : 1)
    }
  }

  private acquireBatch(): LockTimeout | undefined {
    const index = H_BATCH_OWNER >>> 2
    const deadline = Date.now() + LOCK_TIMEOUT_MS
    for (let spins = 0;; spins++) {
      const owner = Atomics.compareExchange(this.words, index, 0, this.pid)
      if (owner === 0) return undefined
      if (spins > 200 && !processAlive(owner)) {
        if (Atomics.compareExchange(this.words, index, owner, this.pid) === owner) {
          this.recoverBatch(owner)
          return undefined
        }
        continue
      }
      if (spins > 200 && Date.now() > deadline) {
        return new LockTimeout({ message: `batch lock held by live process ${owner}` })
      }
      if (spins > 200) sleep(spins < 1000 ? 0 : 1)
    }
  }

  private releaseBatch(): void {
    Atomics.store(this.words, H_BATCH_OWNER >>> 2, 0)
  }

  /** Rolls a dead batch forward: its copies were complete before the journal was written. */
  private recoverBatch(deadOwner: number): void {
    const { view, words } = this
    const count = Math.min(Atomics.load(words, H_JOURNAL_COUNT >>> 2), MAX_BATCH)
    for (let i = 0; i < count; i++) {
      const at = JOURNAL_OFFSET + i * JOURNAL_ENTRY_SIZE
      const slot = getU64(view, at)
      const target = view.getUint32(at + 8, true) | 0
      if (slot % 8 !== 0 || slot + 8 > view.byteLength) continue
      const seqIndex = (slot + S_SEQ) >>> 2
      const ownerIndex = (slot + S_OWNER) >>> 2
      if (Atomics.compareExchange(words, ownerIndex, deadOwner, this.pid) === deadOwner) {
        if (Atomics.load(words, seqIndex) === ((target - 1) | 0)) Atomics.store(words, seqIndex, target)
        Atomics.store(words, ownerIndex, 0)
      }
    }
    if (Atomics.load(words, H_BATCH_SEQ >>> 2) & 1) Atomics.add(words, H_BATCH_SEQ >>> 2, 1)
    Atomics.store(words, H_JOURNAL_COUNT >>> 2, 0)
  }
}

export interface BatchItem {
  readonly ref: SlotRef
  readonly type: VarType<any>
  readonly value: unknown
  /** Publish this version instead of the next one (mirrors only). */
  readonly version?: number
}

/**
 * One watcher's place in the waiter count: `sleep` counts it (before its last check of the
 * change generation, so a writer that bumps after that check sees it and wakes), `release`
 * uncounts it. Reused for every sleep of its watcher.
 */
export class Sleeper {
  /** The sleeper-table entry counted by the current sleep (-1: not asleep, or the table was full). */
  private entry = -1
  private counted = false

  constructor(private readonly memory: SlotMemory) {}

  sleep(): void {
    if (this.counted) return
    const { words } = this.memory
    // Table full: still counted, just not repairable if this process dies asleep.
    this.entry = this.memory.sleeperSlot()
    if (this.entry >= 0) Atomics.add(words, this.entry + 1, 1)
    Atomics.add(words, H_WAITERS >>> 2, 1)
    this.counted = true
    this.memory.asleepCount++
  }

  release(): void {
    if (!this.counted) return
    this.counted = false
    this.memory.asleepCount--
    const { words } = this.memory
    // The file was closed under its watcher (the buffer is detached): nothing left to undo here.
    if (words.length === 0) return
    Atomics.sub(words, H_WAITERS >>> 2, 1)
    if (this.entry >= 0) Atomics.sub(words, this.entry + 1, 1)
  }
}
