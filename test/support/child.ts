/**
 * Runs a TypeScript fixture in a real child Node process and collects its output.
 *
 * Fixtures are bundled once per test process with esbuild into plain ESM, so a child starts in
 * ~100 ms instead of paying tsx's compile on every spawn (tests spawn hundreds of children).
 */
import { spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { addonPath, bundleEntry } from "./bundle.js"

const here = path.dirname(fileURLToPath(import.meta.url))
export const fixture = (name: string): string => path.resolve(here, "..", "fixtures", name)

const bundles = new Map<string, string>()

/** Children still running: killed when this test process exits, so a failed test leaks none. */
const live = new Set<ReturnType<typeof spawn>>()
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL")
})
const track = <C extends ReturnType<typeof spawn>>(child: C): C => {
  live.add(child)
  child.once("exit", () => live.delete(child))
  return child
}

/** The fixture bundled to one .mjs file (cached for this test process); also for worker_threads. */
export const bundled = (name: string): string => {
  const cached = bundles.get(name)
  if (cached) return cached
  const out = bundleEntry(fixture(name), "commy-fixtures")
  bundles.set(name, out)
  return out
}

/** Child environment: the addon is found by absolute path, since the bundle moved. */
const childEnv = (extra: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv => ({
  COMMY_NATIVE_PATH: addonPath,
  ...process.env,
  ...extra
})

export interface ChildResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export const runChild = (
  script: string,
  args: ReadonlyArray<string>,
  options: {
    readonly env?: NodeJS.ProcessEnv
    readonly timeoutMs?: number
    /** Run as another OS user (needs root). */
    readonly user?: { readonly uid: number; readonly gid: number }
  } = {}
): Promise<ChildResult> =>
  new Promise((resolve, reject) => {
    const child = track(spawn(process.execPath, [bundled(script), ...args], {
      env: childEnv(options.env),
      stdio: ["ignore", "pipe", "pipe"],
      ...options.user
    }))
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000)
    child.on("error", reject)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })

/** A long-running child whose stdout lines can be awaited while it runs. */
export interface LiveChild {
  readonly pid: number
  readonly lines: ReadonlyArray<string>
  /** Resolves with the first line (already seen or future) that matches. */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>
  kill(signal?: NodeJS.Signals): void
  readonly exited: Promise<ChildResult>
}

export const startChild = (
  script: string,
  args: ReadonlyArray<string>,
  options: { readonly env?: NodeJS.ProcessEnv } = {}
): LiveChild => {
  const child = track(spawn(process.execPath, [bundled(script), ...args], {
    env: childEnv(options.env),
    stdio: ["ignore", "pipe", "pipe"]
  }))
  const lines: Array<string> = []
  const listeners = new Set<(line: string) => void>()
  let partial = ""
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d: Buffer) => {
    const text = d.toString()
    stdout += text
    partial += text
    const parts = partial.split("\n")
    partial = parts.pop()!
    for (const line of parts) {
      lines.push(line)
      for (const l of [...listeners]) l(line)
    }
  })
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<ChildResult>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  )
  return {
    pid: child.pid!,
    lines,
    waitForLine: (match, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const seen = lines.find(match)
        if (seen !== undefined) return resolve(seen)
        const timer = setTimeout(() => {
          listeners.delete(listener)
          reject(new Error(`no matching line within ${timeoutMs} ms; stdout: ${stdout.slice(-500)} stderr: ${stderr.slice(-2000)}`))
        }, timeoutMs)
        const listener = (line: string) => {
          if (!match(line)) return
          clearTimeout(timer)
          listeners.delete(listener)
          resolve(line)
        }
        listeners.add(listener)
        void exited.then(() => {
          if (!listeners.has(listener)) return
          clearTimeout(timer)
          listeners.delete(listener)
          reject(new Error(`child exited before a matching line; stdout: ${stdout.slice(-500)} stderr: ${stderr.slice(-2000)}`))
        })
      }),
    kill: (signal = "SIGKILL") => {
      child.kill(signal)
    },
    exited
  }
}
