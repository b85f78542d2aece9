/**
 * A throwaway Redis for the `local` group: `redis-server` from PATH on a free loopback port,
 * in a temp dir, no persistence, killed when the bench ends (also on Ctrl-C or a crash).
 * Never installs anything: without `redis-server` the contender is skipped.
 *
 * The client is a minimal RESP speaker over one TCP socket: one request, then wait for its
 * reply (pipelining depth 1), so a GET is one full loopback round trip.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { cleanupOnExit, killOnExit } from "./child.js"

/** Absolute path of an executable on PATH, or undefined. */
export const onPath = (name: string): string | undefined => {
  for (const dir of (process.env["PATH"] ?? "").split(path.delimiter)) {
    if (dir === "") continue
    const file = path.join(dir, name)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      if (fs.statSync(file).isFile()) return file
    } catch {
      // not here
    }
  }
  return undefined
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export interface RedisServer {
  readonly version: string
  readonly port: number
  readonly client: RespClient
  readonly stop: () => Promise<void>
}

/** Starts redis-server, or says why not. */
export const startRedis = async (): Promise<RedisServer | { readonly skipped: string }> => {
  const binary = onPath("redis-server")
  if (binary === undefined) return { skipped: "redis-server is not on PATH (install it, e.g. apt-get install redis-server)" }
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "commy-bench-redis-"))
  const removeDir = cleanupOnExit(() => fs.rmSync(dir, { recursive: true, force: true }))
  const child = spawn(binary, [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--daemonize",
    "no",
    "--logfile",
    ""
  ], { stdio: ["ignore", "ignore", "pipe"] })
  killOnExit(child)
  let stderr = ""
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const cleanup = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 2000)
      await exited
      clearTimeout(timer)
    }
    removeDir()
  }
  // Wait for it to accept connections.
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      const client = await RespClient.connect(port)
      const info = String(await client.command("INFO", "server"))
      const version = /redis_version:(\S+)/.exec(info)?.[1] ?? "?"
      return {
        version,
        port,
        client,
        stop: async () => {
          client.close()
          await cleanup()
        }
      }
    } catch (error) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await cleanup()
        return { skipped: `redis-server did not start: ${String(error)} ${stderr.slice(-300)}` }
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

type Reply = string | number | Buffer | null

/** RESP2 over one socket, one request in flight at a time. */
export class RespClient {
  private pending: { resolve: (r: Reply) => void; reject: (e: Error) => void } | undefined
  private data: Buffer = Buffer.alloc(0)

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.data = this.data.length === 0 ? chunk : Buffer.concat([this.data, chunk])
      const parsed = parseReply(this.data, 0)
      if (parsed === undefined) return
      this.data = this.data.subarray(parsed.next)
      const waiter = this.pending
      this.pending = undefined
      if (parsed.reply instanceof Error) waiter?.reject(parsed.reply)
      else waiter?.resolve(parsed.reply)
    })
    socket.on("error", (error) => {
      const waiter = this.pending
      this.pending = undefined
      waiter?.reject(error)
    })
  }

  static connect(port: number): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: "127.0.0.1" })
      socket.setNoDelay(true)
      socket.once("error", reject)
      socket.once("connect", () => {
        socket.off("error", reject)
        resolve(new RespClient(socket))
      })
    })
  }

  /** Encodes a command once, for reuse in a loop. */
  static encode(...args: ReadonlyArray<string | Buffer>): Buffer {
    const parts: Array<Buffer> = [Buffer.from(`*${args.length}\r\n`)]
    for (const arg of args) {
      const bytes = typeof arg === "string" ? Buffer.from(arg) : arg
      parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"))
    }
    return Buffer.concat(parts)
  }

  /** Sends a pre-encoded request and resolves with its reply. */
  send(request: Buffer): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject }
      this.socket.write(request)
    })
  }

  command(...args: ReadonlyArray<string | Buffer>): Promise<Reply> {
    return this.send(RespClient.encode(...args))
  }

  close(): void {
    this.socket.destroy()
  }
}

/** Parses one reply at `at`; undefined if incomplete. Arrays are not needed here. */
const parseReply = (buf: Buffer, at: number): { reply: Reply | Error; next: number } | undefined => {
  const eol = buf.indexOf("\r\n", at)
  if (eol < 0) return undefined
  const line = buf.toString("latin1", at + 1, eol)
  switch (buf[at]) {
    case 0x2b: // +
      return { reply: line, next: eol + 2 }
    case 0x2d: // -
      return { reply: new Error(line), next: eol + 2 }
    case 0x3a: // :
      return { reply: Number(line), next: eol + 2 }
    case 0x24: { // $
      const length = Number(line)
      if (length < 0) return { reply: null, next: eol + 2 }
      const end = eol + 2 + length
      if (buf.length < end + 2) return undefined
      return { reply: buf.subarray(eol + 2, end), next: end + 2 }
    }
    default:
      return { reply: new Error(`unsupported RESP reply type ${String.fromCharCode(buf[at]!)}`), next: buf.length }
  }
}
