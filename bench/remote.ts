/**
 * Group `remote`: Commy over WSS (a real `commy serve` process, TLS on loopback) next to Redis
 * (plain RESP over TCP), measured side by side in the same run.
 *
 * 1. write → other client's push latency. This process (A) writes an f64 variable whose value
 *    is its `process.hrtime.bigint()` (CLOCK_MONOTONIC, shared by all processes) with
 *    `request({op:"write"})`, a write every ~1 ms; a child process (B, its own connection and its
 *    own event loop) records now − written when the `changed` push arrives: in the transport's
 *    onPush callback, at RemoteService.watch's event, at RemoteService.onChange's callback (one
 *    service and one child per path). Redis: PUBLISH from here, a raw-RESP SUBSCRIBE connection
 *    in a child, the timestamp as the payload. The target compares like with like: Redis is
 *    driven by a raw RESP client, so Commy's target path is driven by a thin writer (a bare `ws`
 *    connection sending `encodeRequest` frames, what a client written from docs/protocol.md
 *    does); writing through the TypeScript client's Effect API is reported beside it. The floor:
 *    a bare `ws` relay process (same TLS certificate, no decoding, no Effect) between a raw `ws`
 *    writer here and a raw `ws` subscriber child: what any Node WebSocket server costs on this
 *    path. All paths are driven interleaved, write by write, so they share the machine's noise
 *    and the server's warm-up; then the writer paths, the floor and Redis each alone, in
 *    alternating short blocks (see `drive`).
 * 2. one-request round trip at depth 1: Commy `read` of one variable vs Redis `GET`, alternating
 *    rounds, each request timed on its own.
 * 3. fan-out: one writer here (pipelined, at most 64 requests in flight, for 5 s) and 100
 *    subscriber connections spread over child processes, counting every value received. Commy
 *    coalesces a slow subscriber's pushes to the latest value per variable, so the writer spreads
 *    its writes over 64 variables and we report distinct writes and the delivered ratio too.
 *    Redis: PUBLISH with the same pipelining to 100 SUBSCRIBE connections (its pub/sub output
 *    buffer limit lifted, so nobody is disconnected; its memory peak is reported).
 *
 * Set COMMY_BENCH_INSECURE=1 to run Commy over plain ws:// (`commy serve --insecure`), like for
 * like with Redis's plain TCP.
 *
 * Set COMMY_BENCH_PROFILE=<dir> to CPU-profile the fan-out server (the inspector's profiler,
 * preloaded with --import, started just before the writer and stopped after the drain) into
 * that directory; the top self-time frames are printed.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import WebSocket from "ws"
import * as Var from "../src/local/VarType.js"
import { decodeServerMessage, encodeRequest } from "../src/protocol/Codec.js"
import { Empty, PROTOCOL_VERSION, ReadResult, ServiceResult, WriteResult } from "../src/protocol/Messages.js"
import { connect, type RequestBody, type WssTransportService } from "../src/remote/WssTransport.js"
import { addonPath, bundleEntry } from "../test/support/bundle.js"
import { makeKey, startTestServer, stopTestServer, type TestServer } from "../test/support/server.js"
import { cleanupOnExit, killOnExit } from "./child.js"
import { fmt, type GroupSummary, type LatencySchedule, output, percentile, progress, ratio, runLatencySchedule, samplesOf, sleepSince, stats, table } from "./harness.js"
import { RespClient, startRedis } from "./redis.js"

const LAT_WARMUP = 500
const LAT_SAMPLES = 2000
const SPACING_MS = 1
const RTT_WARMUP = 1000
const RTT_ROUNDS = 6
const RTT_PER_ROUND = 1000
const FAN_SUBSCRIBERS = 100
const FAN_CHILDREN = Number(process.env["COMMY_BENCH_FAN_CHILDREN"] ?? 2)
const FAN_SECONDS = 5
const FAN_IN_FLIGHT = 64
const FAN_VARIABLES = 64
const TENANT = "bench"

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const hrnow = () => Number(process.hrtime.bigint())
const f64 = (value: number) => {
  const bytes = new Uint8Array(8)
  new DataView(bytes.buffer).setFloat64(0, value, true)
  return bytes
}
const u32 = (value: number) => {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setUint32(0, value >>> 0, true)
  return bytes
}

// ---------- child processes ----------

const here = path.dirname(fileURLToPath(import.meta.url))
let fixtureBundle: string | undefined
/** bench/fixtures/remoteChild.ts bundled once (removed at exit). */
const remoteChildBundle = (): string => {
  if (fixtureBundle) return fixtureBundle
  const out = bundleEntry(path.join(here, "fixtures", "remoteChild.ts"), "commy-bench")
  cleanupOnExit(() => fs.rmSync(out, { force: true }))
  fixtureBundle = out
  return out
}

interface Child {
  readonly pid: number
  readonly waitForLine: (prefix: string, timeoutMs?: number) => Promise<string>
  readonly send: (line: string) => void
  readonly kill: () => void
  readonly exited: Promise<{ readonly code: number | null; readonly stderr: string }>
}

const startRemoteChild = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Child => {
  const child = spawn(process.execPath, [remoteChildBundle(), ...args], {
    env: { ...process.env, COMMY_NATIVE_PATH: addonPath, ...env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  killOnExit(child)
  const lines: Array<string> = []
  const listeners = new Set<() => void>()
  let stderr = ""
  readline.createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line)
    for (const l of [...listeners]) l()
  })
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
  child.stdin!.on("error", () => {}) // a child that already exited
  let closed = false
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once("close", (code) => {
      closed = true
      for (const l of [...listeners]) l()
      resolve({ code, stderr })
    })
  )
  return {
    pid: child.pid!,
    waitForLine: (prefix, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          done()
          reject(new Error(`remoteChild ${args[0]}: no "${prefix}" line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`))
        }, timeoutMs)
        const done = () => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        const check = () => {
          const found = lines.find((l) => l.startsWith(prefix))
          if (found !== undefined) {
            done()
            resolve(found)
          } else if (closed) {
            done()
            reject(new Error(`remoteChild ${args[0]} exited before "${prefix}"; stderr: ${stderr.slice(-2000)}`))
          }
        }
        listeners.add(check)
        check()
      }),
    send: (line) => void child.stdin!.write(line + "\n"),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    },
    exited
  }
}

/** utime + stime of a process in seconds (Linux /proc), or NaN. */
const cpuSeconds = (pid: number): number => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // fields[0] is the state (field 3): utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / 100 // USER_HZ is 100 on Linux
  } catch {
    return Number.NaN
  }
}

/**
 * A thin Commy writer, the counterpart of the raw-RESP client that drives Redis: one bare `ws`
 * connection speaking the protocol of docs/protocol.md (hello, auth, then `write` frames from
 * `encodeRequest`), one request at a time, no Effect runtime. It separates what the server and
 * the wire cost from what the TypeScript client's Effect API adds in the writing process.
 */
const thinWriter = async (url: string, ca: string, tenant: string, key: string) => {
  const ws = new WebSocket(url, { ca, perMessageDeflate: false })
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject))
  const waiting: Array<(frame: Buffer) => void> = []
  ws.on("message", (frame: Buffer) => waiting.shift()?.(frame))
  let id = 0
  const request = (body: RequestBody) =>
    new Promise<Buffer>((resolve) => {
      waiting.push(resolve)
      ws.send(encodeRequest(body, ++id))
    })
  await request({ op: "hello", protocol: PROTOCOL_VERSION, client: "bench-thin" })
  const auth = decodeServerMessage(await request({ op: "auth", tenant, key }))
  if (Either.isLeft(auth) || "error" in auth.right) throw new Error(`thin writer: auth failed: ${JSON.stringify(auth)}`)
  return {
    write: (service: string) => (value: number) => request({ op: "write", tenant, service, writes: [{ name: "t", value: f64(value) }] }),
    close: () => ws.close()
  }
}

// ---------- 1. latency ----------

interface Distribution {
  readonly key: string
  readonly name: string
  readonly sent: number
  readonly received: number
  /** Ascending, microseconds. */
  readonly sorted: Float64Array
}

type LatencyStats = ReturnType<typeof stats>

interface LatencyPath {
  readonly key: string
  readonly name: string
  readonly child: Child
  readonly write: (value: number) => Promise<unknown>
}

/**
 * "Alone" blocks of 50 writes (10 unrecorded warm-up, ~60 ms) so that the machine's stalls fall on
 * every path alike: with 250-write blocks the alone p99 ratio swung 0.56–2.3× from run to run;
 * with 50 it stayed 0.86–1.44× (5 runs) (p50 ratios 1.34–1.48× instead of 1.25–1.48×: the paths
 * are a little less warm).
 */
const SCHEDULE: LatencySchedule = { warmup: LAT_WARMUP, samples: LAT_SAMPLES, block: 50, blockWarmup: 10 }

/** Drives the paths together (see `runLatencySchedule`; one service and receiver per path) and collects their samples. */
const drive = async (paths: ReadonlyArray<LatencyPath>, how: "interleaved" | "alone"): Promise<Array<Distribution>> => {
  for (const p of paths) await p.child.waitForLine("ready")
  await sleep(100)
  progress(`remote: latency, ${paths.length} paths ${how === "alone" ? `each alone in blocks of ${SCHEDULE.block}` : "interleaved"}: ${LAT_WARMUP} warm-up writes each, then ${LAT_SAMPLES} measured, ~${SPACING_MS} ms apart`)
  await runLatencySchedule(paths.length, how, SCHEDULE, hrnow, async (i, value) => {
    const before = hrnow()
    await Promise.all([paths[i]!.write(value), sleepSince(before, SPACING_MS)])
  })
  return Promise.all(paths.map(async ({ child, key, name }) => {
    const line = await child.waitForLine("samples ", 10_000)
    const sorted = samplesOf(name, line, await child.exited)
    return { key, name, sent: LAT_SAMPLES, received: sorted.length, sorted }
  }))
}

// ---------- 2. round trip ----------

interface RoundTrip {
  readonly name: string
  /** Ascending, microseconds. */
  readonly sorted: Float64Array
  readonly perSecond: number
}

const roundTrips = async (cases: ReadonlyArray<{ name: string; once: () => Promise<unknown> }>): Promise<Array<RoundTrip>> => {
  for (const c of cases) for (let i = 0; i < RTT_WARMUP; i++) await c.once()
  const samples = cases.map(() => [] as Array<number>)
  const wall = cases.map(() => 0)
  for (let round = 0; round < RTT_ROUNDS; round++) {
    for (const [k, c] of cases.entries()) {
      const start = hrnow()
      let previous = start
      for (let i = 0; i < RTT_PER_ROUND; i++) {
        await c.once()
        const t = hrnow()
        samples[k]!.push((t - previous) / 1000)
        previous = t
      }
      wall[k]! += previous - start
    }
  }
  return cases.map((c, k) => ({
    name: c.name,
    sorted: Float64Array.from(samples[k]!).sort(),
    perSecond: (RTT_ROUNDS * RTT_PER_ROUND) / (wall[k]! / 1e9)
  }))
}

// ---------- 3. fan-out ----------

interface FanOut {
  readonly name: string
  readonly subscribers: number
  readonly writes: number
  readonly writeSeconds: number
  readonly delivered: number
  /** Values received while the writer was writing. */
  readonly deliveredInWindow: number
  readonly pushes: number
  /** From the first write to the last value received, seconds. */
  readonly untilDrained: number
  readonly cpu: { readonly server: number; readonly subscribers: number; readonly writer: number }
  readonly note: string
}

interface ChildCount {
  readonly values: number
  readonly pushes: number
  readonly last: number
  readonly buckets: ReadonlyArray<number>
}

/**
 * Starts the subscriber children (`ready` from each), runs `writeFor` (which returns the number
 * of writes acknowledged), collects the counts.
 */
const fanOut = async (options: {
  readonly name: string
  readonly childArgs: (connections: number) => ReadonlyArray<string>
  readonly env?: Record<string, string>
  readonly serverPid: number
  readonly writeFor: (deadline: number) => Promise<number>
  /** Before the writer starts / after the subscribers drained (profiling hooks). */
  readonly onStart?: (() => Promise<unknown>) | undefined
  readonly onWritten?: (() => Promise<unknown>) | undefined
  readonly note: () => Promise<string>
}): Promise<FanOut> => {
  const children: Array<Child> = []
  try {
    progress(`remote: fan-out ${options.name}: connecting ${FAN_SUBSCRIBERS} subscribers in ${FAN_CHILDREN} processes`)
    for (let c = 0; c < FAN_CHILDREN; c++) {
      const share = Math.floor(FAN_SUBSCRIBERS / FAN_CHILDREN) + (c < FAN_SUBSCRIBERS % FAN_CHILDREN ? 1 : 0)
      children.push(startRemoteChild(options.childArgs(share), options.env))
    }
    await Promise.all(children.map((child) => child.waitForLine("ready")))
    await sleep(200)
    await options.onStart?.()
    progress(`remote: fan-out ${options.name}: writing for ${FAN_SECONDS} s (≤ ${FAN_IN_FLIGHT} in flight)`)
    const t0 = hrnow()
    for (const child of children) child.send(`start ${t0}`)
    const cpu0 = { server: cpuSeconds(options.serverPid), subs: children.reduce((s, c) => s + cpuSeconds(c.pid), 0), writer: process.cpuUsage() }
    const writes = await options.writeFor(t0 + FAN_SECONDS * 1e9)
    const t1 = hrnow()
    const cpuSpan = (t1 - t0) / 1e9
    const cpu = {
      server: (cpuSeconds(options.serverPid) - cpu0.server) / cpuSpan,
      subscribers: (children.reduce((s, c) => s + cpuSeconds(c.pid), 0) - cpu0.subs) / cpuSpan,
      writer: (() => {
        const used = process.cpuUsage(cpu0.writer)
        return (used.user + used.system) / 1e6 / cpuSpan
      })()
    }
    progress(`remote: fan-out ${options.name}: ${writes} writes acknowledged; draining`)
    for (const child of children) child.send("stop")
    const counts = await Promise.all(children.map(async (child) => {
      const line = await child.waitForLine("done ", 60_000)
      return JSON.parse(line.slice("done ".length)) as ChildCount
    }))
    await options.onWritten?.()
    const windowBuckets = Math.floor((t1 - t0) / 10e6)
    return {
      name: options.name,
      subscribers: FAN_SUBSCRIBERS,
      writes,
      writeSeconds: (t1 - t0) / 1e9,
      delivered: counts.reduce((s, c) => s + c.values, 0),
      deliveredInWindow: counts.reduce((s, c) => s + c.buckets.slice(0, windowBuckets).reduce((a, b) => a + b, 0), 0),
      pushes: counts.reduce((s, c) => s + c.pushes, 0),
      untilDrained: (Math.max(...counts.map((c) => c.last)) - t0) / 1e9,
      cpu,
      note: await options.note()
    }
  } finally {
    for (const child of children) child.kill()
  }
}

/** `inFlight` requests kept going until `deadline`; resolves with the number acknowledged. */
const pipelined = (inFlight: number, deadline: number, one: (i: number) => Promise<boolean>): Promise<number> =>
  new Promise((resolve) => {
    let running = 0
    let sent = 0
    let acked = 0
    const launch = () => {
      while (running < inFlight && hrnow() < deadline) {
        running++
        void one(sent++).then((ok) => {
          running--
          if (ok) acked++
          if (running === 0 && hrnow() >= deadline) resolve(acked)
          else launch()
        })
      }
    }
    launch()
  })

/** A PUBLISH connection with its own pipelining: replies are one line each (`:<n>\r\n`). */
const redisPublisher = (port: number): Promise<{ publish: (payload: string) => Promise<boolean>; close: () => void }> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1" })
    socket.setNoDelay(true)
    socket.once("error", reject)
    const waiting: Array<(ok: boolean) => void> = []
    let head = 0
    socket.on("data", (chunk: Buffer) => {
      for (let at = chunk.indexOf(10); at >= 0; at = chunk.indexOf(10, at + 1)) waiting[head++]!(true)
      if (head > 4096) {
        waiting.splice(0, head)
        head = 0
      }
    })
    socket.once("connect", () =>
      resolve({
        publish: (payload) =>
          new Promise<boolean>((done) => {
            waiting.push(done)
            socket.write(RespClient.encode("PUBLISH", "fan", payload))
          }),
        close: () => socket.destroy()
      }))
  })

// ---------- profile ----------

/** Top self-time frames of a .cpuprofile, as "percent function file:line". */
const topFrames = (file: string, count: number): Array<string> => {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>
    samples: Array<number>
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  for (const id of profile.samples) {
    const frame = byId.get(id)!.callFrame
    const label = `${frame.functionName || "(anonymous)"} ${path.basename(frame.url || "")}${frame.url ? `:${frame.lineNumber + 1}` : ""}`
    self.set(label, (self.get(label) ?? 0) + 1)
  }
  const total = profile.samples.length
  return [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, count).map(([label, n]) => `${((100 * n) / total).toFixed(1).padStart(5)}% ${label}`)
}

// ---------- the group ----------

/**
 * A preload for the server when profiling: `--cpu-prof` is refused in NODE_OPTIONS, but
 * `--import` is not, so the server starts the inspector's profiler itself and writes the profile
 * on SIGUSR2 (the fan-out window only, not startup).
 */
const PROFILE_HOOK = `
import * as inspector from "node:inspector"
import * as fs from "node:fs"
const session = new inspector.Session()
session.connect()
session.post("Profiler.setSamplingInterval", { interval: 200 })
session.post("Profiler.enable")
process.on("SIGUSR2", () => {
  const out = process.env.COMMY_BENCH_PROFILE_OUT
  if (out && fs.existsSync(out + ".started")) {
    session.post("Profiler.stop", (error, result) => {
      if (!error) fs.writeFileSync(out + ".tmp", JSON.stringify(result.profile))
      fs.renameSync(out + ".tmp", out)
    })
  } else if (out) {
    session.post("Profiler.start", () => fs.writeFileSync(out + ".started", ""))
  }
})
`

const startServer = async (dataDir: string, profileOut?: string): Promise<TestServer> => {
  const saved = { options: process.env["NODE_OPTIONS"], out: process.env["COMMY_BENCH_PROFILE_OUT"] }
  if (profileOut) {
    const hook = path.join(path.dirname(dataDir), "profile-hook.mjs")
    fs.writeFileSync(hook, PROFILE_HOOK)
    process.env["NODE_OPTIONS"] = `${saved.options ?? ""} --import=${hook}`.trim()
    process.env["COMMY_BENCH_PROFILE_OUT"] = profileOut
  }
  try {
    const server = await startTestServer(dataDir, 0, process.env["COMMY_BENCH_INSECURE"] ? ["--insecure"] : [])
    cleanupOnExit(() => server.child.kill("SIGKILL"))
    return server
  } finally {
    if (profileOut) {
      for (const [name, value] of [["NODE_OPTIONS", saved.options], ["COMMY_BENCH_PROFILE_OUT", saved.out]] as const) {
        if (value === undefined) delete process.env[name]
        else process.env[name] = value
      }
    }
  }
}

/** Sends SIGUSR2 and waits for `file` to appear. */
const signalAndWait = async (pid: number, file: string): Promise<boolean> => {
  process.kill(pid, "SIGUSR2")
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    if (fs.existsSync(file)) return true
    await sleep(20)
  }
  return false
}

export const runRemote = async (): Promise<GroupSummary> => {
  const loadAtStart = os.loadavg()
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "commy-bench-remote-"))
  const removeRoot = cleanupOnExit(() => fs.rmSync(root, { recursive: true, force: true }))
  const scope = Effect.runSync(Scope.make())
  const servers: Array<TestServer> = []
  const children: Array<Child> = []
  const redis = await startRedis()
  if ("skipped" in redis) progress(`remote: Redis skipped: ${redis.skipped}`)
  else progress(`remote: Redis ${redis.version} on port ${redis.port}`)

  const latencies: Array<Distribution> = []
  const closers: Array<() => void> = []
  const aloneLatencies: Array<Distribution> = []
  let rtts: Array<RoundTrip> = []
  const fans: Array<FanOut> = []
  let profileLines: Array<string> = []
  const profileDir = process.env["COMMY_BENCH_PROFILE"]
  try {
    // ---- server, key, writer connection ----
    progress("remote: starting commy serve (esbuild bundle of src/cli/main.ts), fresh data dir")
    const server = await startServer(path.join(root, "data"))
    servers.push(server)
    const key = await Effect.runPromise(makeKey(server.dataDir, { tenant: TENANT, grants: [{ service: "*", rights: ["admin"] }] }))
    const env = { COMMY_BENCH_CA: server.ca, COMMY_BENCH_KEY: key }
    const open = (s: TestServer) =>
      Effect.runPromise(Scope.extend(connect({ url: s.url, ca: s.ca, credentials: [{ tenant: TENANT, key }] }), scope))
    const transport = await open(server)
    const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(effect)
    // One service per Commy path, so each write wakes exactly one subscriber (as each PUBLISH does).
    // `thin`: the thin writer (raw ws + encodeRequest, like the raw-RESP client on the Redis side);
    // the others write through the client's Effect API, Effect.runPromise(transport.request(...)).
    const commyPaths = [
      { key: "thin", mode: "transport", name: "Commy, thin writer → changed push (transport onPush)" },
      { key: "transport", mode: "transport", name: "Commy, Effect API writer → changed push (transport onPush)" },
      { key: "watch", mode: "watch", name: "Commy, Effect API writer → RemoteService.watch event" },
      { key: "onchange", mode: "onchange", name: "Commy, Effect API writer → RemoteService.onChange callback" }
    ] as const
    for (const { key: how } of commyPaths) {
      await run(transport.request({ op: "service.create", tenant: TENANT, service: `lat-${how}`, persistent: true }, ServiceResult))
      await run(transport.request({ op: "var.define", tenant: TENANT, service: `lat-${how}`, name: "t", type: Var.f64.id }, Empty))
    }
    const writeT = (service: string) => (value: number) =>
      run(transport.request({ op: "write", tenant: TENANT, service, writes: [{ name: "t", value: f64(value) }] }, WriteResult))
    const thin = await thinWriter(server.url, server.ca, TENANT, key)
    closers.push(thin.close)

    // ---- 1. latency ----
    const publish = (value: number) =>
      "skipped" in redis ? Promise.resolve() : redis.client.send(RespClient.encode("PUBLISH", "lat", String(value)))
    const paths: Array<LatencyPath> = []
    const commyChild = (mode: string, service: string) => ["latency-commy", mode, server.url, TENANT, service]
    for (const { key: how, mode, name } of commyPaths) {
      const child = startRemoteChild(commyChild(mode, `lat-${how}`), env)
      children.push(child)
      paths.push({ key: how, name, child, write: how === "thin" ? thin.write(`lat-${how}`) : writeT(`lat-${how}`) })
    }
    const insecure = Boolean(process.env["COMMY_BENCH_INSECURE"])
    const relay = startRemoteChild(["relay-server", server.dataDir, insecure ? "plain" : "tls"])
    children.push(relay)
    const relayUrl = `${insecure ? "ws" : "wss"}://127.0.0.1:${(await relay.waitForLine("listening ")).slice("listening ".length)}`
    const relayWriter = new WebSocket(relayUrl, { ca: server.ca, perMessageDeflate: false })
    await new Promise((resolve, reject) => relayWriter.once("open", resolve).once("error", reject))
    closers.push(() => relayWriter.close())
    const relayReplies: Array<() => void> = []
    relayWriter.on("message", () => relayReplies.shift()?.())
    const relayWrite = (value: number) =>
      new Promise<void>((resolve) => {
        relayReplies.push(resolve)
        const frame = Buffer.alloc(8)
        frame.writeDoubleLE(value)
        relayWriter.send(frame)
      })
    const relayName = `floor: bare ws relay, ${insecure ? "ws://" : "wss://"} (no decoding)`
    const relayChild = startRemoteChild(["latency-relay", relayUrl], env)
    children.push(relayChild)
    paths.push({ key: "floor", name: relayName, child: relayChild, write: relayWrite })
    if (!("skipped" in redis)) {
      const child = startRemoteChild(["latency-redis", String(redis.port), "lat"])
      children.push(child)
      paths.push({ key: "redis", name: "Redis PUBLISH → subscriber", child, write: publish })
    }
    latencies.push(...await drive(paths, "interleaved"))
    // Then each writer path alone (fresh receivers; see `drive`): a path driven by itself stays
    // warm in the caches between its writes, which favours the smaller footprint.
    const aloneChild = (args: ReadonlyArray<string>) => {
      const child = startRemoteChild(args, env)
      children.push(child)
      return child
    }
    const alonePaths: Array<LatencyPath> = [
      { key: "thin", name: `${commyPaths[0].name}, alone`, child: aloneChild(commyChild("transport", "lat-thin")), write: thin.write("lat-thin") },
      { key: "transport", name: `${commyPaths[1].name}, alone`, child: aloneChild(commyChild("transport", "lat-transport")), write: writeT("lat-transport") },
      { key: "floor", name: `${relayName}, alone`, child: aloneChild(["latency-relay", relayUrl]), write: relayWrite }
    ]
    if (!("skipped" in redis)) {
      alonePaths.push({ key: "redis", name: "Redis PUBLISH → subscriber, alone", child: aloneChild(["latency-redis", String(redis.port), "lat"]), write: publish })
    }
    aloneLatencies.push(...await drive(alonePaths, "alone"))
    relay.kill()

    // ---- 2. round trip ----
    progress(`remote: round trips at depth 1: ${RTT_WARMUP} warm-up, then ${RTT_ROUNDS} alternating rounds of ${RTT_PER_ROUND}`)
    const readT = transport.request({ op: "read", tenant: TENANT, service: "lat-transport", names: ["t"] }, ReadResult)
    const cases: Array<{ name: string; once: () => Promise<unknown> }> = [{ name: "Commy read (1 variable)", once: () => run(readT) }]
    if (!("skipped" in redis)) {
      await redis.client.command("SET", "t", Buffer.from(f64(12345)))
      const get = RespClient.encode("GET", "t")
      cases.push({ name: "Redis GET", once: () => redis.client.send(get) })
    }
    rtts = await roundTrips(cases)

    // ---- 3. fan-out ----
    progress(`remote: fan-out: fresh commy serve${profileDir ? ` (CPU profile into ${profileDir})` : ""}`)
    if (profileDir) fs.mkdirSync(profileDir, { recursive: true })
    const profileOut = profileDir ? path.join(path.resolve(profileDir), `commy-serve-fanout-${process.pid}.cpuprofile`) : undefined
    const fanServer = await startServer(path.join(root, "fan-data"), profileOut)
    servers.push(fanServer)
    const fanKey = await Effect.runPromise(makeKey(fanServer.dataDir, { tenant: TENANT, grants: [{ service: "*", rights: ["admin"] }] }))
    const writer: WssTransportService = await Effect.runPromise(
      Scope.extend(connect({ url: fanServer.url, ca: fanServer.ca, credentials: [{ tenant: TENANT, key: fanKey }] }), scope)
    )
    await run(writer.request({ op: "service.create", tenant: TENANT, service: "fan", persistent: true }, ServiceResult))
    const names = Array.from({ length: FAN_VARIABLES }, (_, i) => `v${i}`)
    for (const name of names) {
      await run(writer.request({ op: "var.define", tenant: TENANT, service: "fan", name, type: Var.u32.id }, Empty))
    }
    fans.push(await fanOut({
      name: "Commy",
      childArgs: (n) => ["fanout-commy", fanServer.url, TENANT, "fan", String(n)],
      env: { COMMY_BENCH_CA: fanServer.ca, COMMY_BENCH_KEY: fanKey },
      serverPid: fanServer.child.pid,
      onStart: profileOut ? () => signalAndWait(fanServer.child.pid, `${profileOut}.started`) : undefined,
      onWritten: profileOut ? () => signalAndWait(fanServer.child.pid, profileOut) : undefined,
      writeFor: (deadline) =>
        pipelined(FAN_IN_FLIGHT, deadline, (i) =>
          Effect.runPromise(Effect.either(
            writer.request({ op: "write", tenant: TENANT, service: "fan", writes: [{ name: names[i % FAN_VARIABLES]!, value: u32(i) }] }, WriteResult)
          )).then(Either.isRight)),
      note: async () => `${FAN_VARIABLES} u32 variables written round-robin, one value per write request`
    }))
    if (profileOut) {
      fs.rmSync(`${profileOut}.started`, { force: true })
      if (fs.existsSync(profileOut)) {
        progress(`remote: server profile of the fan-out window: ${profileOut}`)
        profileLines = [`commy serve CPU profile, fan-out window (writes + drain), top self time: ${profileOut}`, ...topFrames(profileOut, 20)]
      } else profileLines = ["commy serve CPU profile: not written"]
    }
    if (!("skipped" in redis)) {
      await redis.client.command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 0 0")
      await redis.client.command("CONFIG", "RESETSTAT")
      const info = String(await redis.client.command("INFO", "server"))
      const redisPid = Number(/process_id:(\d+)/.exec(info)?.[1] ?? 0)
      const publisher = await redisPublisher(redis.port)
      try {
        fans.push(await fanOut({
          name: "Redis",
          childArgs: (n) => ["fanout-redis", String(redis.port), "fan", String(n)],
          serverPid: redisPid,
          writeFor: (deadline) => pipelined(FAN_IN_FLIGHT, deadline, (i) => publisher.publish(String(i))),
          note: async () => {
            const memory = String(await redis.client.command("INFO", "memory"))
            const peak = /used_memory_peak_human:(\S+)/.exec(memory)?.[1] ?? "?"
            return `PUBLISH of the counter in decimal; pub/sub output buffers unlimited, Redis memory peak ${peak}`
          }
        }))
      } finally {
        publisher.close()
      }
    }
  } finally {
    for (const close of closers) close()
    for (const child of children) child.kill()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    for (const server of servers) await stopTestServer(server).catch(() => undefined)
    if (!("skipped" in redis)) await redis.stop()
    removeRoot()
    if (fixtureBundle) fs.rmSync(fixtureBundle, { force: true })
    fixtureBundle = undefined
  }

  // ---------- report ----------
  const lines: Array<string> = []
  const find = (list: ReadonlyArray<Distribution>, key: string) => {
    const d = list.find((l) => l.key === key)
    return d && stats(d)
  }
  const thinLat = find(latencies, "thin")!
  const commyLat = find(latencies, "transport")!
  const watchLat = find(latencies, "watch")!
  const onChangeLat = find(latencies, "onchange")!
  const floorLat = find(latencies, "floor")!
  const redisLat = find(latencies, "redis")
  const thinAlone = find(aloneLatencies, "thin")!
  const commyAlone = find(aloneLatencies, "transport")!
  const floorAlone = find(aloneLatencies, "floor")!
  const redisAlone = find(aloneLatencies, "redis")
  const commyRtt = rtts[0]!
  const redisRtt = rtts[1]
  const commyFan = fans[0]!
  const redisFan = fans[1]
  const perSub = (f: FanOut) => f.delivered / (f.writes * f.subscribers)
  const rate = (f: FanOut) => f.delivered / f.untilDrained
  const rateInWindow = (f: FanOut) => f.deliveredInWindow / f.writeSeconds
  const x = (a: number, b: number | undefined) => (b === undefined ? "–" : ratio(a / b))
  const r = (v: number | undefined) => (v === undefined ? "–" : fmt(v))

  output(`\n## remote: Commy (WSS, separate \`commy serve\` process) vs Redis ${"skipped" in redis ? "(skipped)" : redis.version} (TCP), same run\n`)
  output(`Load average at the start of the group: ${loadAtStart.map((l) => l.toFixed(2)).join(", ")} on ${os.cpus().length} cores (anything above ~0 means other work shared the machine during this run).\n`)
  output(table(
    ["metric", "Commy", "Redis", "Commy ÷ Redis", "target"],
    [
      ["write → other client's push (thin writers), p50 µs", fmt(thinLat.p50), r(redisLat?.p50), x(thinLat.p50, redisLat?.p50), "≤ 1.5×"],
      ["write → other client's push (thin writers), p90 µs", fmt(thinLat.p90), r(redisLat?.p90), x(thinLat.p90, redisLat?.p90), ""],
      ["write → other client's push (thin writers), p99 µs", fmt(thinLat.p99), r(redisLat?.p99), x(thinLat.p99, redisLat?.p99), "≤ 1.5×"],
      ["the same, each path alone, p50 µs", fmt(thinAlone.p50), r(redisAlone?.p50), x(thinAlone.p50, redisAlone?.p50), "≤ 1.5×"],
      ["the same, each path alone, p99 µs", fmt(thinAlone.p99), r(redisAlone?.p99), x(thinAlone.p99, redisAlone?.p99), "≤ 1.5×"],
      ["write via the Effect API → push, p50 µs", fmt(commyLat.p50), r(redisLat?.p50), x(commyLat.p50, redisLat?.p50), ""],
      ["round trip (read / GET), p50 µs", fmt(percentile(commyRtt.sorted, 50)), r(redisRtt && percentile(redisRtt.sorted, 50)), x(percentile(commyRtt.sorted, 50), redisRtt && percentile(redisRtt.sorted, 50)), ""],
      ["round trip (read / GET), p99 µs", fmt(percentile(commyRtt.sorted, 99)), r(redisRtt && percentile(redisRtt.sorted, 99)), x(percentile(commyRtt.sorted, 99), redisRtt && percentile(redisRtt.sorted, 99)), ""],
      ["requests/s at depth 1", fmt(commyRtt.perSecond), r(redisRtt?.perSecond), x(commyRtt.perSecond, redisRtt?.perSecond), ""],
      [`fan-out: distinct writes/s (1 writer, ≤ ${FAN_IN_FLIGHT} in flight)`, fmt(commyFan.writes / commyFan.writeSeconds), r(redisFan && redisFan.writes / redisFan.writeSeconds), x(commyFan.writes / commyFan.writeSeconds, redisFan && redisFan.writes / redisFan.writeSeconds), ""],
      [`fan-out: values delivered/s, summed over ${FAN_SUBSCRIBERS} subscribers (until drained)`, fmt(rate(commyFan)), r(redisFan && rate(redisFan)), x(rate(commyFan), redisFan && rate(redisFan)), "≥ 200k/s"],
      ["fan-out: values delivered/s while the writer ran", fmt(rateInWindow(commyFan)), r(redisFan && rateInWindow(redisFan)), x(rateInWindow(commyFan), redisFan && rateInWindow(redisFan)), ""],
      ["fan-out: delivered ÷ (writes × subscribers)", fmt(perSub(commyFan)), r(redisFan && perSub(redisFan)), "", ""]
    ],
    ["l", "r", "r", "r", "l"]
  ))

  /** A detail row, with ratios to Redis and to the floor measured the same way ("–" where there is none). */
  const latencyRow = (d: Distribution, redis: LatencyStats | undefined, floor: LatencyStats | undefined) => {
    const s = stats(d)
    return [d.name, `${d.received}/${d.sent}`, fmt(s.min), fmt(s.p50), fmt(s.p90), fmt(s.p99), fmt(s.max), x(s.p50, redis?.p50), x(s.p99, redis?.p99), x(s.p50, floor?.p50)]
  }
  output(`\n### remote: write → push latency detail, µs (${LAT_SAMPLES} writes per path ~${SPACING_MS} ms apart after ${LAT_WARMUP} warm-up, the paths interleaved write by write; each receiver in its own process)\n`)
  output(table(
    ["path", "received", "min", "p50", "p90", "p99", "max", "p50 × Redis", "p99 × Redis", "p50 × floor"],
    [
      ...latencies.map((d) => latencyRow(d, redisLat, floorLat)),
      ...aloneLatencies.map((d) => latencyRow(d, redisAlone, floorAlone))
    ],
    ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r"]
  ))
  output(`\nPercentiles rank every write sent: one whose value never reached the receiver ranks above all received, and a percentile that falls on such writes reads Infinity.`)

  output(`\n### remote: fan-out detail (${FAN_SUBSCRIBERS} subscriber connections in ${FAN_CHILDREN} processes, writer in the bench process, ${FAN_SECONDS} s)\n`)
  output(table(
    ["system", "writes", "values delivered", "pushes (frames)", "values/push", "drained after s", "server CPU", "subscribers' CPU", "writer CPU", "notes"],
    fans.map((f) => [
      f.name,
      String(f.writes),
      String(f.delivered),
      String(f.pushes),
      fmt(f.delivered / Math.max(1, f.pushes)),
      fmt(f.untilDrained),
      `${Math.round(f.cpu.server * 100)}%`,
      `${Math.round(f.cpu.subscribers * 100)}%`,
      `${Math.round(f.cpu.writer * 100)}%`,
      f.note
    ]),
    ["l", "r", "r", "r", "r", "r", "r", "r", "r", "l"]
  ))
  if (profileLines.length > 0) {
    output("\n```")
    for (const line of profileLines) output(line)
    output("```")
  }

  const met = (ok: boolean) => (ok ? "met" : "NOT met")
  /** "p50 a vs b µs = r× (target ≤ 1.5×: met); p99 …" for one Commy path against Redis measured the same way. */
  const versus = (commy: LatencyStats, redis: LatencyStats, target: boolean) =>
    `p50 ${fmt(commy.p50)} vs ${fmt(redis.p50)} µs = ${ratio(commy.p50 / redis.p50)}${target ? ` (target ≤ 1.5×: ${met(commy.p50 <= 1.5 * redis.p50)})` : ""}; ` +
    `p99 ${fmt(commy.p99)} vs ${fmt(redis.p99)} µs = ${ratio(commy.p99 / redis.p99)}${target ? ` (${met(commy.p99 <= 1.5 * redis.p99)})` : ""}`
  if (redisLat && redisAlone) {
    lines.push(`remote: write → push vs Redis PUBLISH → subscriber, thin writers (raw ws / raw RESP), paths interleaved: ${versus(thinLat, redisLat, true)}`)
    lines.push(`remote: the same, each path alone: ${versus(thinAlone, redisAlone, true)}`)
    lines.push(
      `remote: writing through the Effect API (Effect.runPromise(request) per write): interleaved ${versus(commyLat, redisLat, false)}; ` +
        `alone p50 ${fmt(commyAlone.p50)} µs = ${ratio(commyAlone.p50 / redisAlone.p50)}`
    )
  } else lines.push(`remote: write → push p50 ${fmt(thinLat.p50)} µs, p99 ${fmt(thinLat.p99)} µs (Redis skipped: no ratio)`)
  lines.push(
    `remote: floor (bare ws relay, no decoding) p50 ${fmt(floorLat.p50)} µs interleaved, ${fmt(floorAlone.p50)} µs alone` +
      (redisLat && redisAlone ? ` = ${ratio(floorLat.p50 / redisLat.p50)} / ${ratio(floorAlone.p50 / redisAlone.p50)} Redis` : "") +
      `; Commy's push (thin writer) p50 = ${ratio(thinLat.p50 / floorLat.p50)} / ${ratio(thinAlone.p50 / floorAlone.p50)} the floor`
  )
  lines.push(
    `remote: at RemoteService.watch (mirror applied + diffed) p50 ${fmt(watchLat.p50)} µs, p99 ${fmt(watchLat.p99)} µs; ` +
      `at RemoteService.onChange p50 ${fmt(onChangeLat.p50)} µs, p99 ${fmt(onChangeLat.p99)} µs; vs the transport push p50 ${fmt(commyLat.p50)} µs`
  )
  lines.push(
    `remote: fan-out ${fmt(rate(commyFan))} values/s delivered to ${FAN_SUBSCRIBERS} subscribers (target ≥ 200k/s: ${met(rate(commyFan) >= 200_000)}); ` +
      `${fmt(commyFan.writes / commyFan.writeSeconds)} distinct writes/s, delivered ratio ${fmt(perSub(commyFan))}` +
      (redisFan ? `; Redis ${fmt(rate(redisFan))} values/s` : "")
  )
  output("")
  for (const line of lines) output(`- ${line}`)
  return { lines }
}
