/**
 * The `.mem` file layout (format version 1), byte by byte. docs/file-format.md is the prose
 * version of this module; a change here is a format change.
 *
 * All fields are little-endian. Offsets are absolute from the start of the file, so the file is
 * position independent. Words that other processes change concurrently are 32-bit and 4-byte
 * aligned so `Atomics` and futexes can address them.
 */

export const MAGIC = "COMMYMEM"
export const FORMAT_VERSION = 1

// ---- header (offsets in bytes) ----
export const H_MAGIC = 0 // u8[8]
export const H_VERSION = 8 // u32
export const H_HEADER_SIZE = 12 // u32: where the directory starts
export const H_CAPACITY = 16 // u64: file size reserved at creation (sparse)
export const H_DATA_OFFSET = 24 // u64: start of the slot region
export const H_DATA_USED = 32 // u64: end of the last allocated slot (absolute)
export const H_DIR_CAPACITY = 40 // u32: directory entries available
export const H_DIR_COUNT = 44 // u32: directory entries ever used (high-water mark)
export const H_LAYOUT_GEN = 48 // u32: bumped after every define/remove
export const H_FLAGS = 52 // u32: file flags (FILE_DELETED)
export const H_CHANGE_GEN = 64 // u32: bumped after every committed write (the futex word)
export const H_WAITERS = 68 // u32: processes asleep on H_CHANGE_GEN
export const H_BATCH_OWNER = 72 // u32: pid holding the batch lock, 0 = free
export const H_BATCH_SEQ = 76 // u32: odd while a batch is being committed
export const H_JOURNAL_COUNT = 80 // u32: entries in the batch journal while committing

// Sleeper table: which processes are counted in H_WAITERS, so a watcher killed while asleep
// can be subtracted again by any other watcher (else every write would pay a futex syscall).
export const SLEEPERS_OFFSET = 256 // SLEEPERS × [u32 pid, u32 count]
export const SLEEPERS = 64

export const JOURNAL_OFFSET = 4096
export const JOURNAL_ENTRY_SIZE = 16 // u64 slot offset, u32 target seq, u32 reserved
export const MAX_BATCH = 256
export const HEADER_SIZE = JOURNAL_OFFSET + MAX_BATCH * JOURNAL_ENTRY_SIZE // 8192

// ---- directory entry ----
export const ENTRY_SIZE = 128
export const E_STATE = 0 // u32: 0 free, 1 live, 2 removed
export const E_TYPE = 4 // u32: type id (see codec.ts)
export const E_SLOT = 8 // u64: slot offset (absolute)
export const E_CAPACITY = 16 // u32: value capacity in bytes
export const E_FLAGS = 20 // u32: bit 0 persistent
export const E_NAME_LENGTH = 24 // u32: UTF-8 bytes
export const E_NAME = 32 // u8[96]
export const MAX_NAME_BYTES = ENTRY_SIZE - E_NAME

/** H_FLAGS bit: the service was deleted; set just before the file is unlinked. */
export const FILE_DELETED = 1

export const STATE_FREE = 0
export const STATE_LIVE = 1
export const STATE_REMOVED = 2
export const FLAG_PERSISTENT = 1

// ---- slot ----
// [u32 seq][u32 owner pid][copy 0][copy 1]; copy = [u64 version][u32 length][u32 0][value, 8-aligned]
// The committed value is in copy (seq & 1). A writer fills the other copy, then bumps seq: a
// writer killed mid-write never damages the committed copy, and readers never wait.
export const S_SEQ = 0
export const S_OWNER = 4
export const S_COPIES = 8
export const C_VERSION = 0
export const C_LENGTH = 8
export const C_VALUE = 16

export const align = (n: number, to: number): number => Math.ceil(n / to) * to

/** Bytes of one copy for a value capacity. */
export const copySize = (capacity: number): number => C_VALUE + align(capacity, 8)

/** Bytes of a slot for a value capacity. */
export const slotSize = (capacity: number): number => S_COPIES + 2 * copySize(capacity)

export const PAGE = 4096

/** Where the slot region starts for a directory of `entries`. */
export const dataOffsetFor = (entries: number): number => align(HEADER_SIZE + entries * ENTRY_SIZE, PAGE)

export const entryOffset = (index: number): number => HEADER_SIZE + index * ENTRY_SIZE

/** Reads a u64 that must fit a JS number (the format never needs more than 2^53). */
export const getU64 = (view: DataView, offset: number): number =>
  view.getUint32(offset, true) + view.getUint32(offset + 4, true) * 0x1_0000_0000

export const setU64 = (view: DataView, offset: number, value: number): void => {
  view.setUint32(offset, value >>> 0, true)
  view.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000), true)
}

export const DEFAULT_CAPACITY = 16 * 1024 * 1024
export const DEFAULT_MAX_VARIABLES = 4096
/** Upper bounds any file may claim; larger values are refused as hostile. */
export const MAX_CAPACITY = 2 ** 40
export const MAX_VARIABLES = 1 << 20
export const MAX_VALUE_CAPACITY = 64 * 1024 * 1024
