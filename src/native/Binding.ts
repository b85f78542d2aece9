/**
 * The raw shape of the C++ addon (`native/commy.cc`, built as `build/Release/commy.node`).
 *
 * This is the one contract between C++ and TypeScript. Nothing outside `src/native/` touches
 * these functions directly: `NativeAddon` loads them and every caller goes through Effect
 * wrappers that turn the addon's thrown errors into `CommyError` values.
 *
 * Error convention: every entry point validates its arguments and throws a JS `Error` whose
 * `code` is one of {@link NativeErrorCode} or an errno name (`ENOENT`, `EACCES`, ...) with
 * `errno`, `syscall` and (where a path was involved) `path` set, like Node's own fs errors.
 * No input from JS may crash the process or touch memory outside a live mapping.
 */

export type NativeErrorCode =
  | "ERR_COMMY_INVALID_ARGUMENT" // wrong type, negative/fractional/non-finite number, empty path
  | "ERR_COMMY_OUT_OF_BOUNDS" // offset/length outside the mapping or buffer
  | "ERR_COMMY_LENGTH_MISMATCH" // diff inputs of different lengths
  | "ERR_COMMY_DETACHED" // a detached ArrayBuffer was passed
  | "ERR_COMMY_CLOSED" // the mapping or waiter was closed
  | "ERR_COMMY_FILE_TOO_SHORT" // map() asked for more bytes than the file has
  | "ERR_COMMY_KERNEL_UNAVAILABLE" // setKernel()/diff() named a kernel this CPU/build lacks
  | "ERR_COMMY_BUSY" // a Waiter already has a wait in flight

/** Names of the diff kernels, best first. Only those the CPU and build support are reported. */
export type KernelName = "avx512bw" | "avx2" | "sse2" | "neon" | "scalar"

/** Result of a futex wait. `woken` may be spurious: callers re-check the word. */
export type WaitResult = "woken" | "timeout" | "mismatch" | "cancelled"
/** The results by the codes a callback-mode waiter reports (native WaitResult order). */
export const WAIT_RESULTS: ReadonlyArray<WaitResult> = ["woken", "timeout", "mismatch", "cancelled"]

export interface NativeMapping {
  /** External ArrayBuffer over the mapped pages (zero copy). Detached by `close()`. */
  readonly buffer: ArrayBuffer
  /** Mapped length in bytes. */
  readonly length: number
  readonly writable: boolean
  /** True once `close()` ran. */
  readonly closed: boolean
  /** Current size of the underlying file (fstat), in bytes. */
  fileSize(): number
  /** msync(MS_SYNC) of [offset, offset+length) (page-rounded), or the whole mapping. */
  sync(offset?: number, length?: number): void
  /**
   * flock(2) on the mapping's own file descriptor, non-blocking. Returns false if another open
   * file description holds a conflicting lock. The kernel releases it if this process dies.
   */
  tryLock(exclusive: boolean): boolean
  /** Like tryLock but waits (off the JS thread) up to timeoutMs (Infinity allowed). Resolves false on timeout. */
  lock(exclusive: boolean, timeoutMs: number): Promise<boolean>
  unlock(): void
  /**
   * FUTEX_WAKE (shared, not FUTEX_PRIVATE_FLAG) on the 32-bit word at `offset`
   * (4-byte aligned, inside the mapping). Returns how many waiters were woken.
   */
  wake(offset: number, count: number): number
  /**
   * Creates a waiter that runs FUTEX_WAIT without blocking the JS thread: on an io_uring of
   * this thread when available (see `waiterKind`), else on a dedicated native thread.
   */
  waiter(): NativeWaiter
  /**
   * The same, with results delivered to `onSettle` (an index into `WAIT_RESULTS`) from the event loop
   * instead of a promise per wait: a wait allocates nothing.
   */
  waiter(onSettle: (code: number) => void): NativeCallbackWaiter
  /**
   * Detaches `buffer` (old views then read as length 0 instead of faulting), cancels pending
   * waits, and releases the mapping and the file descriptor once no waiter thread uses them.
   * Idempotent. Garbage collection of both the Mapping object and the buffer does the same.
   */
  close(): void
}

/**
 * How a waiter sleeps. "io_uring": the JS thread queues FUTEX_WAIT on its own ring and the
 * event loop polls the ring, so a wake from another process reaches the loop directly (Linux
 * >= 6.7, io_uring not blocked). "thread": a native thread blocks in FUTEX_WAIT and hands the
 * result to the loop (two wake-ups instead of one).
 */
export type WaiterKind = "io_uring" | "thread"

export interface NativeWaiter {
  /**
   * FUTEX_WAIT on the 32-bit word at `offset` while it equals `expected` (uint32), for at most
   * timeoutMs (Infinity = no timeout). One wait in flight per waiter (else ERR_COMMY_BUSY).
   */
  wait(offset: number, expected: number, timeoutMs: number): Promise<WaitResult>
  /** Resolves the in-flight wait (if any) with "cancelled". */
  cancel(): void
  /** Cancels and releases the thread or ring. Idempotent. */
  close(): void
  /** Which mechanism this waiter uses. */
  kind(): WaiterKind
}

/** A waiter in callback mode (`mapping.waiter(onSettle)`). */
export interface NativeCallbackWaiter {
  /**
   * Starts a wait as `NativeWaiter.wait` does. Returns -1 when it is queued: `onSettle` is then
   * called once, from the event loop, with 0 (woken), 1 (timeout) or 2 (mismatch), unless
   * `cancel`, `close` or the mapping's `close` withdraws the wait first (then it is not called).
   * Returns 1 or 2 when the wait ended at once (a zero timeout, a word already different):
   * `onSettle` is not called. A throwing `onSettle` is an uncaught exception.
   */
  wait(offset: number, expected: number, timeoutMs: number): number
  /** Withdraws the in-flight wait (if any) without calling `onSettle`. */
  cancel(): void
  /** Withdraws and releases the thread or ring. Idempotent. */
  close(): void
  kind(): WaiterKind
}

export interface NativeBinding {
  /** Bumped whenever this interface changes; the loader refuses a stale build. */
  readonly abiVersion: number
  /** Kernels usable on this machine, best first (always ends with "scalar"). */
  kernels(): ReadonlyArray<KernelName>
  /** The kernel `diff` uses by default: best available, or `COMMY_SIMD_KERNEL` / `setKernel`. */
  activeKernel(): KernelName
  setKernel(name: KernelName): void
  /**
   * Compares two equal-length byte views and returns the changed byte ranges, merged and
   * byte-exact, as a flat Float64Array [start0, end0, start1, end1, ...] with end exclusive.
   * `kernel` forces one kernel for this call (tests compare kernels one by one).
   */
  diff(current: Uint8Array, shadow: Uint8Array, kernel?: KernelName): Float64Array
  /**
   * Opens `path` (O_RDWR or O_RDONLY, O_CLOEXEC; never creates) and maps its first `length`
   * bytes. Writable: MAP_SHARED. Read-only: MAP_PRIVATE with PROT_WRITE, so a stray store only
   * dirties a private copy of that page (never the file) instead of crashing the process; its
   * futexes are process-local.
   */
  map(path: string, writable: boolean, length: number): NativeMapping
  /** Waiter kinds usable here, best first (always ends with "thread"). */
  waiterKinds(): ReadonlyArray<WaiterKind>
  /** The kind new waiters of this environment get: io_uring where usable unless `COMMY_WAITER=thread`. */
  waiterKind(): WaiterKind
  /** Chooses the kind for waiters created from now on (ERR_COMMY_KERNEL_UNAVAILABLE if unusable). */
  setWaiterKind(kind: WaiterKind): void
  /** Does nothing: the cost of one N-API call, a benchmark baseline. */
  noop(): void
}

/** Must equal `COMMY_ABI_VERSION` in native/commy.cc. */
export const ABI_VERSION = 3
