// The transport floor on this machine: one-way latency of a bare Node → Node message over raw TCP
// and over ws (no TLS), 2000+ messages 1 ms apart, receiver in a child process. Run: node bench/floor.mjs
import { WebSocketServer, WebSocket } from "ws"
import net from "node:net"
import { fork } from "node:child_process"
const hr = () => Number(process.hrtime.bigint())
if (process.argv[2] === "child") {
  const kind = process.argv[3]
  const lat = []
  const onData = (buf) => { const w = buf.readDoubleLE(0); if (w === -1) { lat.sort((a, b) => a - b); process.send(`${kind} one-way p50 ${(lat[lat.length >> 1] / 1000).toFixed(1)} p90 ${(lat[Math.floor(lat.length * .9)] / 1000).toFixed(1)} p99 ${(lat[Math.floor(lat.length * .99)] / 1000).toFixed(1)} µs`); setTimeout(() => process.exit(0), 50) } else lat.push(hr() - w) }
  if (kind === "ws") { const wss = new WebSocketServer({ port: 0, perMessageDeflate: false }, () => process.send(wss.address().port)); wss.on("connection", (s) => s.on("message", onData)) }
  else { const srv = net.createServer((s) => { s.setNoDelay(true); s.on("data", onData) }).listen(0, () => process.send(srv.address().port)) }
} else {
  for (const kind of ["tcp", "ws", "tcp", "ws"]) {
    const child = fork(new URL(import.meta.url).pathname, ["child", kind])
    const port = await new Promise((r) => child.once("message", r))
    let send
    if (kind === "ws") { const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false }); await new Promise((r) => ws.on("open", r)); send = (b) => ws.send(b) }
    else { const s = net.connect(port, "127.0.0.1"); s.setNoDelay(true); await new Promise((r) => s.on("connect", r)); send = (b) => s.write(b) }
    const b = Buffer.alloc(8)
    for (let i = 0; i < 2200; i++) { b.writeDoubleLE(hr()); send(Buffer.from(b)); await new Promise((r) => setTimeout(r, 1)) }
    b.writeDoubleLE(-1); send(b)
    console.log(await new Promise((r) => child.once("message", r)))
  }
  process.exit(0)
}
