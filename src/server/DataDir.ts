/**
 * DataDir: where the server keeps its durable state (metadata database, service files).
 *
 * Unlike the local cache root (`ServiceFiles.defaultRoot`), this holds API key hashes and
 * persistent services, so it lives under XDG data, not cache, and is owner-only (0700).
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { FileError } from "../CommyError.js"

/**
 * `$COMMY_DATA_DIR`, else `$XDG_DATA_HOME/commy`, else `~/.local/share/commy`.
 * XDG says relative `XDG_DATA_HOME` values are invalid and must be ignored.
 */
export const defaultDataDir = (
  env: Readonly<Record<string, string | undefined>> = process.env,
  home: string = os.homedir()
): string => {
  const explicit = env["COMMY_DATA_DIR"]
  if (explicit !== undefined && explicit !== "") return path.resolve(explicit)
  const xdg = env["XDG_DATA_HOME"]
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(home, ".local", "share")
  return path.join(base, "commy")
}

/** The metadata database inside a data dir. */
export const databaseFile = (dataDir: string): string => path.join(dataDir, "metadata.db")

/** Where the server keeps service files inside a data dir (proposal: the lead's server decides). */
export const servicesDir = (dataDir: string): string => path.join(dataDir, "services")

const fileError = (cause: unknown, context: string, file: string): FileError => {
  const e = (typeof cause === "object" && cause !== null ? cause : {}) as { code?: unknown; syscall?: unknown }
  return new FileError({
    message: `${context}: ${cause instanceof Error ? cause.message : String(cause)}`,
    path: file,
    ...(typeof e.code === "string" ? { errno: e.code } : {}),
    ...(typeof e.syscall === "string" ? { syscall: e.syscall } : {}),
    cause
  })
}

/**
 * Creates `dir` (and missing parents) as 0700. With `tighten` (the default, meant for data dirs),
 * an existing directory we own is also chmodded to 0700, unless it is sticky: a shared directory
 * such as /tmp must never be chmodded. The files inside are 0600 in any case.
 * Returns the absolute path.
 */
export const ensureDir = (
  dir: string,
  options: { readonly tighten?: boolean } = {}
): Effect.Effect<string, FileError> =>
  Effect.try({
    try: () => {
      const absolute = path.resolve(dir)
      fs.mkdirSync(absolute, { recursive: true, mode: 0o700 })
      if (options.tighten !== false) {
        const stat = fs.statSync(absolute)
        const shared = (stat.mode & 0o1000) !== 0
        if (stat.uid === process.getuid?.() && !shared && (stat.mode & 0o077) !== 0) fs.chmodSync(absolute, 0o700)
      }
      return absolute
    },
    catch: (cause) => fileError(cause, `cannot prepare the data directory ${dir}`, dir)
  })

/**
 * Creates `file` if missing as 0600 (never truncating it), tightening an existing file we own.
 * Done before SQLite opens it, since SQLite creates files with the umask's mode and copies the
 * database file's mode onto its -wal and -shm files.
 */
export const ensurePrivateFile = (file: string): Effect.Effect<void, FileError> =>
  Effect.try({
    try: () => {
      fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_RDWR, 0o600))
      const stat = fs.statSync(file)
      if (stat.uid === process.getuid?.() && (stat.mode & 0o077) !== 0) fs.chmodSync(file, 0o600)
    },
    catch: (cause) => fileError(cause, `cannot create ${file}`, file)
  })
