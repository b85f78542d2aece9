/**
 * Commy benchmarks. `npm run bench` runs every group; `npm run bench -- diff local` runs some.
 *
 *   diff     SimdDiff throughput per kernel vs the pure layer and Buffer.compare
 *   local    typed-handle get/set on a mapped file vs DataView, N-API noop, lmdb, Redis
 *   latency  cross-process change latency through the Watcher, and a bare futex ping
 *
 * Progress goes to stderr; markdown tables to stdout.
 */
import * as os from "node:os"
import { runDiff } from "./diff.js"
import { fmt, output, progress, sinkValue } from "./harness.js"
import { runLatency } from "./latency.js"
import { runLocal } from "./local.js"
import { runRemote } from "./remote.js"

const groups = {
  diff: runDiff,
  local: runLocal,
  latency: runLatency,
  remote: runRemote
} as const
type Group = keyof typeof groups

const args = process.argv.slice(2)
const unknown = args.filter((a) => !(a in groups))
if (unknown.length > 0) {
  process.stderr.write(`unknown group(s) ${unknown.join(", ")}; groups: ${Object.keys(groups).join(", ")}\n`)
  process.exit(2)
}
const selected: ReadonlyArray<Group> = args.length > 0 ? (args as Array<Group>) : (Object.keys(groups) as Array<Group>)

const cpu = os.cpus()[0]?.model ?? "unknown CPU"
output(`# Commy benchmarks\n`)
output(`${new Date().toISOString()} · ${cpu} · ${os.cpus().length} cores · Node ${process.version} · ` +
  `${os.type()} ${os.release()} · groups: ${selected.join(", ")}`)

const summaries: Array<string> = []
for (const group of selected) {
  progress(`group ${group}: start`)
  const summary = await groups[group]()
  summaries.push(...summary.lines)
  progress(`group ${group}: done`)
}

output(`\n## Targets\n`)
for (const line of summaries) output(`- ${line}`)
progress(`all done (sink ${fmt(sinkValue())})`)
