/**
 * FileAccessor: the bytes of one service file, wherever they live (the seed's FileAccessor trait).
 *
 * - `LocalFileAccessor` maps the `.mem` file (zero copy; other processes see every store).
 * - `BufferFileAccessor` keeps the bytes in process memory: what a remote client mirrors, and
 *   what tests substitute for a real file.
 *
 * Besides byte access, an accessor supplies the two cross-process primitives the file protocol
 * needs: an exclusive lock for layout changes, and wait/wake on the change generation.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { type CommyError, InvalidArgument, InvalidOffset, LockTimeout, PermissionDenied } from "../CommyError.js"
import type { WaitResult } from "../native/Binding.js"
import type { NativeAddon } from "../native/NativeAddon.js"
import { type MakeUnsafeWaiter, mapFile, type UnsafeWait, waitEffect } from "./MappedFile.js"

export interface FileAccessorService {
  /** True when the bytes are this machine's shared mapping (no network in between). */
  readonly isLocal: boolean
  readonly writable: boolean
  /** The live bytes. For a mapping, a view over the page cache. */
  readonly buffer: ArrayBuffer
  /** A copy of [offset, offset+size). */
  readonly readBytes: (offset: number, size: number) => Effect.Effect<Uint8Array, InvalidOffset | InvalidArgument>
  readonly writeBytes: (
    offset: number,
    data: Uint8Array
  ) => Effect.Effect<void, InvalidOffset | InvalidArgument | PermissionDenied>
  readonly fileSize: Effect.Effect<number, CommyError>
  /** Writes dirty pages to disk (msync); a no-op for memory. */
  readonly flush: Effect.Effect<void, CommyError>
  /** Grows the bytes (a buffer only: a mapped file's capacity is reserved when it is created). */
  readonly resize: (size: number) => Effect.Effect<void, CommyError>
  /** Runs `effect` holding the file's exclusive lock (flock for files; the kernel frees it if we die). */
  readonly withLock: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CommyError, R>
  /** Wakes every waiter on the 32-bit word at `offset`. Synchronous: called on the write path. */
  readonly wake: (offset: number) => void
  /** Sleeps while the word at `offset` equals `expected`, up to `timeout`. Interruptible. */
  readonly wait: (offset: number, expected: number, timeout: Duration.DurationInput) => Effect.Effect<WaitResult, CommyError>
  /** `wait` as a callback (no fiber per wake). */
  readonly unsafeWait: UnsafeWait
  /**
   * A reusable callback waiter (what the Watcher's wake path uses: nothing allocated per wait).
   * Optional: without it, watchers adapt `unsafeWait` (`waiterOf`).
   */
  readonly unsafeWaiter?: MakeUnsafeWaiter
}

export class FileAccessor extends Context.Tag("commy/FileAccessor")<FileAccessor, FileAccessorService>() {}

const checkRange = (buffer: ArrayBuffer, offset: number, size: number): InvalidOffset | undefined =>
  Number.isSafeInteger(offset) && Number.isSafeInteger(size) && offset >= 0 && size >= 0 &&
    offset + size <= buffer.byteLength
    ? undefined
    : new InvalidOffset({ message: `range [${offset}, ${offset}+${size}) is outside 0..${buffer.byteLength}` })

const byteAccess = (getBuffer: () => ArrayBuffer, writable: boolean) => ({
  readBytes: (offset: number, size: number) =>
    Effect.suspend((): Effect.Effect<Uint8Array, InvalidOffset | InvalidArgument> => {
      const buffer = getBuffer()
      const bad = checkRange(buffer, offset, size)
      return bad ? Effect.fail(bad) : Effect.succeed(new Uint8Array(buffer, offset, size).slice())
    }),
  writeBytes: (offset: number, data: Uint8Array) =>
    Effect.suspend((): Effect.Effect<void, InvalidOffset | InvalidArgument | PermissionDenied> => {
      if (!writable) return Effect.fail(new PermissionDenied({ message: "this file is open read-only" }))
      if (!(data instanceof Uint8Array)) return Effect.fail(new InvalidArgument({ message: "data must be a Uint8Array" }))
      const buffer = getBuffer()
      const bad = checkRange(buffer, offset, data.length)
      if (bad) return Effect.fail(bad)
      new Uint8Array(buffer, offset, data.length).set(data)
      return Effect.void
    })
})

/** Maps `path` (an existing, initialised service file). */
export const makeLocal = (
  path: string,
  options: { readonly writable?: boolean } = {}
): Effect.Effect<FileAccessorService, CommyError, NativeAddon | Scope.Scope> =>
  Effect.gen(function*() {
    const writable = options.writable ?? true
    const mapped = yield* mapFile(path, { writable })
    const lockTimeout = Duration.seconds(10)
    return {
      isLocal: true,
      writable,
      buffer: mapped.buffer,
      ...byteAccess(() => mapped.buffer, writable),
      fileSize: mapped.fileSize,
      flush: mapped.sync(),
      resize: () =>
        Effect.fail(new InvalidArgument({ message: "a mapped service file has a fixed capacity, reserved at creation" })),
      withLock: (effect) =>
        Effect.acquireUseRelease(
          Effect.flatMap(mapped.lock(true, lockTimeout), (ok) =>
            ok ? Effect.void : Effect.fail(new LockTimeout({ message: `could not lock ${path} within 10 s` }))),
          () => effect,
          () => Effect.orDie(mapped.unlock)
        ),
      // Best effort by design: a failed wake only delays watchers until their timeout.
      wake: (offset) => void mapped.unsafeWake(offset),
      wait: mapped.wait,
      unsafeWait: mapped.unsafeWait,
      unsafeWaiter: mapped.unsafeWaiter
    } satisfies FileAccessorService
  })

/**
 * An in-memory accessor over `buffer` (default: `size` zero bytes). Waits are served in-process:
 * `wake` resolves every waiter whose word changed.
 */
export const makeBuffer = (init: { readonly size: number } | { readonly buffer: ArrayBuffer }): FileAccessorService => {
  let buffer = "buffer" in init ? init.buffer : new ArrayBuffer(init.size)
  const waiters = new Set<() => void>()
  // In-process only; a semaphore is taken synchronously when free, so callers may run it sync.
  const lock = Effect.unsafeMakeSemaphore(1)
  const unsafeWait = (
    offset: number,
    expected: number,
    timeoutMs: number,
    onDone: (result: WaitResult) => void
  ): () => void => {
    let timer: ReturnType<typeof setTimeout> | undefined
    let cancelled = false
    const stop = () => {
      waiters.delete(onWake)
      clearTimeout(timer)
    }
    const done = (result: WaitResult) => {
      stop()
      // Never inside the writer's call (its other writes of this tick coalesce into one wake),
      // and never synchronously, as for a mapped file.
      queueMicrotask(() => cancelled || onDone(result))
    }
    const onWake = () => done("woken")
    if (new Int32Array(buffer, offset, 1)[0]! !== (expected | 0)) done("mismatch")
    else {
      waiters.add(onWake)
      if (Number.isFinite(timeoutMs)) timer = setTimeout(() => done("timeout"), timeoutMs)
    }
    return () => {
      cancelled = true
      stop()
    }
  }
  return {
    isLocal: false,
    writable: true,
    get buffer() {
      return buffer
    },
    ...byteAccess(() => buffer, true),
    fileSize: Effect.sync(() => buffer.byteLength),
    flush: Effect.void,
    resize: (size) =>
      Effect.suspend(() => {
        if (!Number.isSafeInteger(size) || size < buffer.byteLength) {
          return Effect.fail(new InvalidArgument({ message: `cannot resize ${buffer.byteLength} bytes to ${size}` }))
        }
        const next = new ArrayBuffer(size)
        new Uint8Array(next).set(new Uint8Array(buffer))
        buffer = next
        return Effect.void
      }),
    withLock: (effect) => lock.withPermits(1)(effect),
    wake: () => {
      for (const resume of [...waiters]) resume()
    },
    wait: waitEffect(unsafeWait),
    unsafeWait
  }
}

/** Layers, for programs that work on one file. */
export const LocalFileAccessor = {
  layer: (path: string, options: { readonly writable?: boolean } = {}) =>
    Layer.scoped(FileAccessor, makeLocal(path, options))
}

export const BufferFileAccessor = {
  layer: (size: number) => Layer.sync(FileAccessor, () => makeBuffer({ size }))
}
