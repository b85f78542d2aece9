/**
 * Child processes for the bench. A fixture is bundled once with esbuild into one plain ESM file
 * under node_modules/.cache/commy-bench/ (everything tree-shaken), so a child starts in ~100 ms
 * instead of paying tsx's compile and effect's module loading; the addon is then found through
 * COMMY_NATIVE_PATH, since the bundle lives elsewhere.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { addonPath, bundleEntry } from "../test/support/bundle.js"

/** Processes started by the bench, and synchronous cleanups: run on any exit path. */
const started = new Set<ChildProcess>()
const exitCleanups = new Set<() => void>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on("exit", () => {
    for (const child of started) child.kill("SIGKILL")
    for (const cleanup of exitCleanups) cleanup()
  })
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => process.exit(130))
  }
}

/** Registers a child process to be killed however the bench ends (Ctrl-C, a crash, normal exit). */
export const killOnExit = (child: ChildProcess): void => {
  installExitHook()
  started.add(child)
  child.once("exit", () => started.delete(child))
}

/** Runs `cleanup` at exit unless the returned function is called first (which also runs it). */
export const cleanupOnExit = (cleanup: () => void): (() => void) => {
  installExitHook()
  exitCleanups.add(cleanup)
  return () => {
    if (exitCleanups.delete(cleanup)) cleanup()
  }
}

const here = path.dirname(fileURLToPath(import.meta.url))
const bundles = new Map<string, string>()

/** bench/fixtures/<name> bundled to one .mjs (cached for this bench process). */
export const bundled = (name: string): string => {
  const cached = bundles.get(name)
  if (cached) return cached
  const out = bundleEntry(path.join(here, "fixtures", name), "commy-bench")
  bundles.set(name, out)
  return out
}

/** Removes this process's bundles (they are cheap to rebuild). */
export const removeBundles = (): void => {
  for (const file of bundles.values()) fs.rmSync(file, { force: true })
  bundles.clear()
}

export interface LiveChild {
  readonly pid: number
  /** Resolves with the first stdout line (seen already or later) that matches. */
  readonly waitForLine: (match: (line: string) => boolean, timeoutMs?: number) => Promise<string>
  readonly kill: () => void
  readonly exited: Promise<{ readonly code: number | null; readonly stderr: string }>
}

/** Runs bench/fixtures/`fixture` (bundled) in a new Node process. */
export const startChild = (fixture: string, args: ReadonlyArray<string>): LiveChild =>
  startProcess(process.execPath, [bundled(fixture), ...args], fixture)

/** Runs any program as a bench child (killed however the bench ends); `label` names it in errors. */
export const startProcess = (command: string, args: ReadonlyArray<string>, label = command): LiveChild => {
  const child = spawn(command, args, {
    env: { COMMY_NATIVE_PATH: addonPath, ...process.env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  killOnExit(child)
  const lines: Array<string> = []
  const listeners = new Set<() => void>()
  let partial = ""
  let stderr = ""
  child.stdout.on("data", (d: Buffer) => {
    partial += d.toString()
    const parts = partial.split("\n")
    partial = parts.pop()!
    lines.push(...parts)
    for (const l of [...listeners]) l()
  })
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
  // A program that cannot start (ENOENT, EACCES) is reported through waitForLine and `exited`.
  child.once("error", (error) => (stderr += String(error)))
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once("close", (code) => {
      for (const l of [...listeners]) l()
      resolve({ code, stderr })
    })
  )
  let closed = false
  void exited.then(() => (closed = true))
  return {
    pid: child.pid!,
    waitForLine: (match, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match)
          if (found !== undefined) {
            done()
            resolve(found)
          } else if (closed || child.exitCode !== null) {
            done()
            reject(new Error(`${label} exited before the expected line; stderr: ${stderr.slice(-2000)}`))
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`${label}: no expected line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`))
        }, timeoutMs)
        const done = () => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        listeners.add(check)
        check()
      }),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    },
    exited
  }
}
