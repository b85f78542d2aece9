/**
 * MappedFile: a file mapped MAP_SHARED into this process, as a scoped Effect resource.
 *
 * The bytes are an external ArrayBuffer over the page cache: a DataView or typed array on
 * `buffer` reads and writes the file with no syscall and no copy, and other processes mapping
 * the same file see the stores. Closing (the scope ending) detaches `buffer` first, so a stale
 * view reads as length 0 instead of faulting.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import type { CommyError } from "../CommyError.js"
import { type NativeCallbackWaiter, type NativeMapping, WAIT_RESULTS, type WaitResult } from "../native/Binding.js"
import { NativeAddon } from "../native/NativeAddon.js"
import { fromNativeError } from "../native/NativeError.js"

export interface MapOptions {
  /** Map read-write (default) or read-only (PROT_READ: stores fault, so they are never attempted). */
  readonly writable?: boolean
  /** Bytes to map from the start of the file; default: the file's current size. */
  readonly length?: number
}

export interface MappedFile {
  readonly path: string
  readonly length: number
  readonly writable: boolean
  /** The mapped bytes. Detached once the file is closed. */
  readonly buffer: ArrayBuffer
  readonly fileSize: Effect.Effect<number, CommyError>
  /** msync(MS_SYNC) of a range (default: all). */
  readonly sync: (offset?: number, length?: number) => Effect.Effect<void, CommyError>
  /** Whole-file flock, non-blocking; false when held elsewhere. Released by the kernel if we die. */
  readonly tryLock: (exclusive: boolean) => Effect.Effect<boolean, CommyError>
  /** Whole-file flock, waiting off the JS thread up to `timeout`; false on timeout. */
  readonly lock: (exclusive: boolean, timeout: Duration.DurationInput) => Effect.Effect<boolean, CommyError>
  readonly unlock: Effect.Effect<void, CommyError>
  /** Wakes up to `count` processes waiting on the 32-bit word at `offset`. */
  readonly wake: (offset: number, count?: number) => Effect.Effect<number, CommyError>
  /** The same, synchronous and best effort (false on any failure): for the write path. */
  readonly unsafeWake: (offset: number) => boolean
  /**
   * Waits (off the JS thread) while the 32-bit word at `offset` equals `expected`, up to
   * `timeout`. Interrupting the effect cancels the native wait. "woken" may be spurious.
   */
  readonly wait: (
    offset: number,
    expected: number,
    timeout?: Duration.DurationInput
  ) => Effect.Effect<WaitResult, CommyError>
  /** The same as a callback (no fiber per wake). */
  readonly unsafeWait: UnsafeWait
  /** A waiter of one's own, reused wait after wait: the Watcher's wake path. */
  readonly unsafeWaiter: MakeUnsafeWaiter
}

/** The Effect form of an UnsafeWait: interrupting it cancels the wait. */
export const waitEffect = (unsafeWait: UnsafeWait) =>
(
  offset: number,
  expected: number,
  timeout?: Duration.DurationInput
): Effect.Effect<WaitResult, CommyError> =>
  Effect.async((resume) =>
    Effect.sync(unsafeWait(offset, expected, toMillis(timeout), (result) =>
      resume(typeof result === "string" ? Effect.succeed(result) : Effect.fail(result))))
  )

/**
 * A futex-style wait as a callback: `onDone` runs later (never synchronously) with the result or
 * an error, unless the returned cancel function ran first.
 */
export type UnsafeWait = (
  offset: number,
  expected: number,
  timeoutMs: number,
  onDone: (result: WaitResult | CommyError) => void
) => () => void

/**
 * A futex-style waiter owned by one caller, one wait at a time, reporting every wait to the
 * `onDone` it was made with (never synchronously). Unlike `UnsafeWait` a wait allocates nothing
 * (no cancel closure), which is why the Watcher's wake path uses it.
 */
export interface UnsafeWaiter {
  /** Starts a wait; the previous one must have been reported or cancelled. */
  readonly wait: (offset: number, expected: number, timeoutMs: number) => void
  /** Withdraws the wait in flight, if any: `onDone` is not called for it. */
  readonly cancel: () => void
}

/** Makes an UnsafeWaiter for the scope: closing the scope cancels its wait and frees it. */
export type MakeUnsafeWaiter = (
  onDone: (result: WaitResult | CommyError) => void
) => Effect.Effect<UnsafeWaiter, CommyError, Scope.Scope>

/** An UnsafeWaiter over UnsafeWait (each wait then allocates its cancel closure). */
export const waiterOf = (unsafeWait: UnsafeWait): MakeUnsafeWaiter => (onDone) =>
  Effect.acquireRelease(
    Effect.sync((): UnsafeWaiter => {
      let withdraw: (() => void) | undefined
      const done = (result: WaitResult | CommyError) => {
        withdraw = undefined
        onDone(result)
      }
      return {
        wait: (offset, expected, timeoutMs) => {
          withdraw = unsafeWait(offset, expected, timeoutMs, done)
        },
        cancel: () => {
          const stop = withdraw
          withdraw = undefined
          stop?.()
        }
      }
    }),
    (waiter) => Effect.sync(waiter.cancel)
  )

const attempt = <A>(context: string, f: () => A): Effect.Effect<A, CommyError> =>
  Effect.try({ try: f, catch: (cause) => fromNativeError(cause, context) })

const toMillis = (timeout: Duration.DurationInput | undefined): number =>
  timeout === undefined ? Infinity : Duration.toMillis(Duration.decode(timeout))

/** A native waiter in callback mode owned by one caller (see UnsafeWaiter). */
class OwnedWaiter implements UnsafeWaiter {
  /** A native wait is queued: its result comes through `settled`. */
  private queued = false
  /** Counts cancels, so a result sent on a microtask is dropped if its wait was withdrawn meanwhile. */
  private uses = 0
  readonly native: NativeCallbackWaiter

  constructor(mapping: NativeMapping, private readonly onDone: (result: WaitResult | CommyError) => void) {
    this.native = mapping.waiter(this.settled)
  }

  /** From the event loop, for a wait that was not withdrawn. */
  readonly settled = (code: number): void => {
    this.queued = false
    this.onDone(WAIT_RESULTS[code]!)
  }

  readonly wait = (offset: number, expected: number, timeoutMs: number): void => {
    let result: WaitResult | CommyError
    try {
      const code = this.native.wait(offset, expected, timeoutMs)
      if (code === -1) {
        this.queued = true
        return
      }
      result = WAIT_RESULTS[code]!
    } catch (cause) {
      result = fromNativeError(cause, "MappedFile.wait")
    }
    this.later(result)
  }

  readonly cancel = (): void => {
    this.uses++
    if (!this.queued) return
    this.queued = false
    this.native.cancel()
  }

  /** The mapping closed under a queued wait (the addon withdrew it without a call). */
  closedUnder(): void {
    if (!this.queued) return
    this.queued = false
    this.later("cancelled")
  }

  private later(result: WaitResult | CommyError): void {
    const use = this.uses
    queueMicrotask(() => {
      if (this.uses === use) this.onDone(result)
    })
  }
}

/** Calls `onDone` with `result` on a microtask unless the returned function runs first. */
const later = <R>(onDone: (result: R) => void, result: R): () => void => {
  let cancelled = false
  queueMicrotask(() => {
    if (!cancelled) onDone(result)
  })
  return () => {
    cancelled = true
  }
}

/**
 * An OwnedWaiter lent to one `unsafeWait` at a time: its results go to the current borrower,
 * and it returns to the idle list when a wait ends or is withdrawn.
 */
interface Loan {
  readonly waiter: OwnedWaiter
  borrower: ((result: WaitResult | CommyError) => void) | undefined
  /** Counts loans, so a stale cancel cannot withdraw a later borrower's wait. */
  loans: number
}

const make = (path: string, mapping: NativeMapping): { readonly file: MappedFile; readonly close: () => void } => {
  // Every native waiter (each owns a ring or a thread, costly to create), freed when the file
  // closes; and those `unsafeWait` may lend out.
  const all = new Set<OwnedWaiter>()
  const idle: Array<Loan> = []
  let closed = false

  const newWaiter = (onDone: (result: WaitResult | CommyError) => void): OwnedWaiter => {
    const waiter = new OwnedWaiter(mapping, onDone)
    all.add(waiter)
    return waiter
  }

  const unsafeWait: UnsafeWait = (offset, expected, timeoutMs, onDone) => {
    let loan = idle.pop()
    if (loan === undefined) {
      try {
        const made: Loan = {
          waiter: newWaiter((result) => {
            const borrower = made.borrower
            made.borrower = undefined
            // A failed wait (a closed mapping, a failed submission): not worth lending again.
            if (typeof result !== "string") {
              if (all.delete(made.waiter)) made.waiter.native.close()
            } else if (!closed) idle.push(made)
            borrower?.(result)
          }),
          borrower: undefined,
          loans: 0
        }
        loan = made
      } catch (cause) {
        return later(onDone, fromNativeError(cause, "MappedFile.wait"))
      }
    }
    const lent = loan
    const number = ++lent.loans
    lent.borrower = onDone
    lent.waiter.wait(offset, expected, timeoutMs)
    return () => {
      if (lent.loans !== number || lent.borrower === undefined) return
      lent.borrower = undefined
      lent.waiter.cancel()
      if (!closed) idle.push(lent)
    }
  }

  const unsafeWaiter: MakeUnsafeWaiter = (onDone) =>
    Effect.acquireRelease(
      attempt("MappedFile.waiter", () => newWaiter(onDone)),
      (waiter) =>
        Effect.sync(() => {
          // Even after the mapping closed: its "cancelled" report may still be on its way.
          waiter.cancel()
          if (all.delete(waiter)) waiter.native.close() // else the mapping's close freed it
        })
    )

  /** Closes the mapping, tells in-flight waits they were cancelled, and frees every waiter's ring or thread. */
  const close = (): void => {
    closed = true
    mapping.close()
    for (const waiter of all) {
      waiter.closedUnder()
      waiter.native.close()
    }
    all.clear()
    idle.length = 0
  }

  const file: MappedFile = {
    path,
    length: mapping.length,
    writable: mapping.writable,
    buffer: mapping.buffer,
    fileSize: attempt("MappedFile.fileSize", () => mapping.fileSize()),
    sync: (offset, length) =>
      attempt("MappedFile.sync", () => (offset === undefined ? mapping.sync() : mapping.sync(offset, length))),
    tryLock: (exclusive) => attempt("MappedFile.tryLock", () => mapping.tryLock(exclusive)),
    lock: (exclusive, timeout) =>
      Effect.tryPromise({
        try: () => mapping.lock(exclusive, toMillis(timeout)),
        catch: (cause) => fromNativeError(cause, "MappedFile.lock")
      }),
    unlock: attempt("MappedFile.unlock", () => mapping.unlock()),
    wake: (offset, count = 0x7fffffff) => attempt("MappedFile.wake", () => mapping.wake(offset, count)),
    unsafeWake: (offset) => {
      try {
        mapping.wake(offset, 0x7fffffff)
        return true
      } catch {
        return false
      }
    },
    wait: waitEffect(unsafeWait),
    unsafeWait,
    unsafeWaiter
  }
  return { file, close }
}

/**
 * Maps an existing file. The mapping, its file descriptor and any waiter threads are released
 * when the scope closes.
 */
export const mapFile = (
  path: string,
  options: MapOptions = {}
): Effect.Effect<MappedFile, CommyError, NativeAddon | Scope.Scope> =>
  Effect.gen(function*() {
    const addon = yield* NativeAddon
    const writable = options.writable ?? true
    const { file } = yield* Effect.acquireRelease(
      attempt(`mapFile(${path})`, () => {
        // fs errors carry errno codes like the addon's, so one mapping covers both.
        const length = options.length ?? fs.statSync(path).size
        return make(path, addon.map(path, writable, length))
      }),
      ({ close }) => Effect.sync(close)
    )
    return file
  })
