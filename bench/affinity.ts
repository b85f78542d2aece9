/**
 * CPU affinity for the latency group's placement rows, through util-linux's `taskset` (Node has
 * no sched_setaffinity). Linux only; callers skip with a notice when `affinityUnavailable` says why.
 */
import { spawnSync } from "node:child_process"
import * as os from "node:os"

/** Why placement cannot be measured here, or undefined when it can (Linux, taskset, ≥ 2 CPUs). */
export const affinityUnavailable = (): string | undefined => {
  if (process.platform !== "linux") return "Linux only"
  if (os.availableParallelism() < 2) return "needs two CPUs"
  const probe = spawnSync("taskset", ["-p", String(process.pid)], { encoding: "utf8" })
  if (probe.error) return `no taskset (${probe.error.message})`
  if (probe.status !== 0) return `taskset failed: ${probe.stderr.trim()}`
  return undefined
}

const taskset = (args: ReadonlyArray<string>): string => {
  const run = spawnSync("taskset", args, { encoding: "utf8" })
  if (run.error) throw run.error
  if (run.status !== 0) throw new Error(`taskset ${args.join(" ")}: ${run.stderr.trim()}`)
  return run.stdout
}

/** The affinity mask (hex, as taskset prints it) of one thread (a process's main thread: its pid). */
export const maskOf = (tid: number): string => {
  const mask = /mask: ([0-9a-f,]+)/.exec(taskset(["-p", String(tid)]))?.[1]
  if (mask === undefined) throw new Error(`taskset printed no mask for ${tid}`)
  return mask
}

/** Sets one thread's mask (hex). */
export const setMask = (tid: number, mask: string): void => void taskset(["-p", mask, String(tid)])

/** Pins one thread (`allThreads`: every thread of process `pid`) to one CPU. */
export const pin = (pid: number, cpu: number, allThreads: boolean): void =>
  void taskset([...(allThreads ? ["-a"] : []), "-p", "-c", String(cpu), String(pid)])

/** The CPUs a mask (hex, as taskset prints it) allows, ascending. */
export const cpusOf = (mask: string): Array<number> => {
  const bits = BigInt(`0x${mask.replaceAll(",", "")}`)
  const cpus: Array<number> = []
  for (let cpu = 0; bits >> BigInt(cpu) !== 0n; cpu++) if ((bits >> BigInt(cpu)) & 1n) cpus.push(cpu)
  return cpus
}
