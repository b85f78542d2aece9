// The transport floor on this machine: one bare Node → Node hop (receiver in a child process),
// 8-byte messages 1 ms apart, 500 warm-up then 2000 measured, over raw TCP, TLS, ws and wss (the
// last two with the `ws` package, as Commy uses it). Prints the one-way latency and how long the
// sender's write call took. TLS uses a throwaway self-signed certificate made with the system's
// openssl (as `commy serve` does). Run: node bench/floor.mjs
import { spawnSync, fork } from "node:child_process"
import fs from "node:fs"
import http from "node:http"
import https from "node:https"
import net from "node:net"
import os from "node:os"
import path from "node:path"
import tls from "node:tls"
import { WebSocket, WebSocketServer } from "ws"

const hr = () => Number(process.hrtime.bigint())
const pct = (sorted, q) => (sorted[Math.floor(sorted.length * q)] / 1000).toFixed(1)

if (process.argv[2] === "child") {
  const [, , , kind, certDir] = process.argv
  const cert = fs.readFileSync(path.join(certDir, "cert.pem"))
  const key = fs.readFileSync(path.join(certDir, "key.pem"))
  const lat = []
  const onData = (buf) => {
    const written = buf.readDoubleLE(buf.length - 8)
    if (written === -2) lat.length = 0
    else if (written !== -1) lat.push(hr() - written)
    else {
      lat.sort((a, b) => a - b)
      process.send(`${kind.padEnd(4)} one-way p50 ${pct(lat, 0.5)} p90 ${pct(lat, 0.9)} p99 ${pct(lat, 0.99)} µs`)
      setTimeout(() => process.exit(0), 50)
    }
  }
  const listening = (server) => server.listen(0, "127.0.0.1", () => process.send(server.address().port))
  if (kind === "ws" || kind === "wss") {
    const server = kind === "wss" ? https.createServer({ cert, key }) : http.createServer()
    new WebSocketServer({ server, perMessageDeflate: false }).on("connection", (s) => s.on("message", onData))
    listening(server)
  } else if (kind === "tls") {
    listening(tls.createServer({ cert, key }, (s) => s.on("data", onData)))
  } else {
    listening(net.createServer((s) => {
      s.setNoDelay(true)
      s.on("data", onData)
    }))
  }
} else {
  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), "commy-floor-"))
  const made = spawnSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
    "-keyout", path.join(certDir, "key.pem"), "-out", path.join(certDir, "cert.pem")
  ], { encoding: "utf8" })
  if (made.status !== 0) throw new Error(`openssl failed: ${made.stderr}`)
  const ca = fs.readFileSync(path.join(certDir, "cert.pem"))
  const connect = async (kind, port) => {
    if (kind === "ws" || kind === "wss") {
      const ws = new WebSocket(`${kind}://127.0.0.1:${port}`, { perMessageDeflate: false, ca })
      await new Promise((resolve) => ws.on("open", resolve))
      return (b) => ws.send(b)
    }
    const socket = kind === "tls" ? tls.connect({ port, host: "127.0.0.1", ca }) : net.connect(port, "127.0.0.1")
    socket.setNoDelay(true)
    await new Promise((resolve) => socket.on(kind === "tls" ? "secureConnect" : "connect", resolve))
    return (b) => socket.write(b)
  }
  const frame = (value) => {
    const b = Buffer.alloc(8)
    b.writeDoubleLE(value)
    return b
  }
  try {
    for (const kind of ["tcp", "tls", "ws", "wss", "tcp", "tls", "ws", "wss"]) {
      const child = fork(new URL(import.meta.url).pathname, ["child", kind, certDir])
      const port = await new Promise((resolve) => child.once("message", resolve))
      const send = await connect(kind, port)
      const costs = []
      for (let i = 0; i < 2500; i++) {
        if (i === 500) {
          send(frame(-2))
          await new Promise((resolve) => setTimeout(resolve, 2))
          costs.length = 0
        }
        const b = Buffer.alloc(8)
        const t0 = hr()
        b.writeDoubleLE(t0)
        send(b)
        costs.push(hr() - t0)
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
      send(frame(-1))
      costs.sort((a, b) => a - b)
      const line = await new Promise((resolve) => child.once("message", resolve))
      console.log(`${line}   send call p50 ${pct(costs, 0.5)} p90 ${pct(costs, 0.9)} µs`)
    }
  } finally {
    fs.rmSync(certDir, { recursive: true, force: true })
  }
  process.exit(0)
}
