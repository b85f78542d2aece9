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
import type { NativeMapping, NativeWaiter, WaitResult } from "../native/Binding.js"
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
  /** The same as a callback, for the Watcher's wake path (no fiber per wake). */
  readonly unsafeWait: UnsafeWait
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

const attempt = <A>(context: string, f: () => A): Effect.Effect<A, CommyError> =>
  Effect.try({ try: f, catch: (cause) => fromNativeError(cause, context) })

const toMillis = (timeout: Duration.DurationInput | undefined): number =>
  timeout === undefined ? Infinity : Duration.toMillis(Duration.decode(timeout))

/**
 * A native waiter with its promise handlers, made once and reused: a wait then allocates its
 * promise and one cancel closure, not a handler pair each time (wakes are the watcher's hot path).
 */
class PooledWaiter {
  onDone: ((result: WaitResult | CommyError) => void) | undefined = undefined
  /** Counts this waiter's waits, so a stale cancel cannot withdraw a later one. */
  uses = 0

  constructor(readonly waiter: NativeWaiter, private readonly idle: Array<PooledWaiter>) {}

  readonly resolved = (result: WaitResult): void => {
    const done = this.onDone
    this.onDone = undefined
    this.idle.push(this)
    done?.(result)
  }

  readonly rejected = (cause: unknown): void => {
    const done = this.onDone
    this.onDone = undefined
    this.waiter.close()
    done?.(fromNativeError(cause, "MappedFile.wait"))
  }
}

const make = (path: string, mapping: NativeMapping): MappedFile => {
  // Idle native waiters, reused: each owns a ring or a thread, costly to create per wait.
  const idle: Array<PooledWaiter> = []

  const unsafeWait: UnsafeWait = (offset, expected, timeoutMs, onDone) => {
    let pooled: PooledWaiter | undefined
    let promise: Promise<WaitResult>
    try {
      pooled = idle.pop() ?? new PooledWaiter(mapping.waiter(), idle)
      promise = pooled.waiter.wait(offset, expected, timeoutMs)
    } catch (cause) {
      if (pooled) idle.push(pooled)
      const error = fromNativeError(cause, "MappedFile.wait")
      queueMicrotask(() => onDone(error))
      return () => {}
    }
    const used = pooled
    const use = ++used.uses
    used.onDone = onDone
    promise.then(used.resolved, used.rejected)
    // The promise then resolves "cancelled" and the waiter goes back to the idle list.
    return () => {
      if (used.uses !== use || used.onDone === undefined) return
      used.onDone = undefined
      used.waiter.cancel()
    }
  }

  return {
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
    unsafeWait
  }
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
    const mapping = yield* Effect.acquireRelease(
      attempt(`mapFile(${path})`, () => {
        // fs errors carry errno codes like the addon's, so one mapping covers both.
        const length = options.length ?? fs.statSync(path).size
        return addon.map(path, writable, length)
      }),
      (mapping) => Effect.sync(() => mapping.close())
    )
    return make(path, mapping)
  })
