// End-to-end smoke test of build/Release/commy.node: every entry point, including bad
// inputs (each must throw the right code), mapping I/O, close semantics, waiters, locks,
// diff on every kernel, worker threads and a second process. Exits 0 only if every check
// passes; the process must also exit by itself (idle waiters/mappings keep nothing alive).
//
//   node native/test/smoke.mjs            (COMMY_ADDON=path/to/commy.node to override)
import { spawnSync, spawn } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"

const require = createRequire(import.meta.url)
const here = path.dirname(fileURLToPath(import.meta.url))
const addonPath = process.env.COMMY_ADDON ?? path.resolve(here, "../../build/Release/commy.node")
const slow = process.env.COMMY_SMOKE_SLOW === "1" // under valgrind: fewer/larger-timeout cases
const binding = require(addonPath)

let passed = 0
let failed = 0
const check = (name, cond, extra) => {
  if (cond) passed++
  else {
    failed++
    console.error(`FAIL ${name}${extra !== undefined ? ": " + extra : ""}`)
  }
}
const throwsCode = (name, fn, code, more) => {
  try {
    fn()
    check(name, false, `did not throw (wanted ${code})`)
  } catch (e) {
    const ok = e instanceof Error && e.code === code && (!more || more(e))
    check(name, ok, `threw ${e?.code ?? e}: ${e?.message}`)
  }
}
const rejectsCode = async (name, p, code) => {
  try {
    await p
    check(name, false, `did not reject (wanted ${code})`)
  } catch (e) {
    check(name, e?.code === code, `rejected ${e?.code}: ${e?.message}`)
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const watchdog = setTimeout(() => {
  console.error("FAIL watchdog: smoke test took too long")
  process.exit(2)
}, slow ? 170000 : 60000)
watchdog.unref()

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "commy-smoke-"))
const file = path.join(tmp, "shared.bin")
const LEN = 3 * 4096 + 100
fs.writeFileSync(file, Buffer.alloc(LEN + 50))

// ---------------------------------------------------------------- basics
check("abiVersion", binding.abiVersion === 3)
const kernels = binding.kernels()
check("kernels ends with scalar", Array.isArray(kernels) && kernels.at(-1) === "scalar", kernels)
check("activeKernel is listed", kernels.includes(binding.activeKernel()), binding.activeKernel())
check("noop", binding.noop() === undefined)
console.log(`kernels: ${kernels.join(", ")} (active ${binding.activeKernel()})`)
const best = binding.activeKernel()
for (const k of kernels) {
  binding.setKernel(k)
  check(`setKernel(${k})`, binding.activeKernel() === k)
}
binding.setKernel(best)
for (const k of ["avx512bw", "avx2", "sse2", "neon"].filter((k) => !kernels.includes(k))) {
  throwsCode(`setKernel(${k}) unavailable`, () => binding.setKernel(k), "ERR_COMMY_KERNEL_UNAVAILABLE")
}
throwsCode("setKernel(bogus)", () => binding.setKernel("bogus"), "ERR_COMMY_KERNEL_UNAVAILABLE")
throwsCode("setKernel(1)", () => binding.setKernel(1), "ERR_COMMY_INVALID_ARGUMENT")
throwsCode("setKernel()", () => binding.setKernel(), "ERR_COMMY_INVALID_ARGUMENT")
check("activeKernel unchanged after bad setKernel", binding.activeKernel() === best)

// ---------------------------------------------------------------- diff
function oracle(a, b) {
  const out = []
  for (let i = 0; i < a.length; ) {
    if (a[i] === b[i]) { i++; continue }
    let j = i
    while (j < a.length && a[j] !== b[j]) j++
    out.push(i, j)
    i = j
  }
  return out
}
let seed = 12345
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32)
const sameArray = (x, y) => x.length === y.length && x.every((v, i) => v === y[i])
{
  const lengths = slow ? [0, 1, 7, 63, 64, 65, 255, 257, 1000, 4099] : [0, 1, 2, 7, 8, 15, 16, 31, 33, 63, 64, 65, 127, 129, 255, 256, 257, 511, 1000, 4099, 65537, 300001]
  let mismatches = 0
  for (const n of lengths) {
    for (const pattern of ["none", "single", "runs", "half", "all"]) {
      const oa = Math.floor(rnd() * 64), ob = Math.floor(rnd() * 64)
      const a = new Uint8Array(n + oa).subarray(oa)
      const bb = Buffer.alloc(n + ob).subarray(ob) // Buffer is a Uint8Array too
      for (let i = 0; i < n; i++) a[i] = bb[i] = (rnd() * 256) | 0
      if (n > 0) {
        if (pattern === "single") bb[Math.floor(rnd() * n)] ^= 0x40
        if (pattern === "runs") for (let r = 0; r < 3; r++) { const s = Math.floor(rnd() * n); for (let i = s; i < Math.min(n, s + 70); i++) bb[i] ^= 1 }
        if (pattern === "half") for (let i = 0; i < n; i++) if (rnd() < 0.5) bb[i] ^= 0xff
        if (pattern === "all") for (let i = 0; i < n; i++) bb[i] ^= 0x80
      }
      const want = oracle(a, bb)
      for (const k of kernels) {
        const got = binding.diff(a, bb, k)
        if (!(got instanceof Float64Array) || !sameArray(Array.from(got), want)) {
          mismatches++
          if (mismatches < 5) console.error(`diff mismatch kernel=${k} n=${n} pattern=${pattern}`)
        }
      }
      const dflt = binding.diff(a, bb)
      if (!sameArray(Array.from(dflt), want)) mismatches++
    }
  }
  check("diff matches oracle on every kernel", mismatches === 0, `${mismatches} mismatches`)
  const r = binding.diff(new Uint8Array([1, 2, 3, 4]), new Uint8Array([1, 9, 9, 4]))
  check("diff simple", r instanceof Float64Array && sameArray(Array.from(r), [1, 3]), Array.from(r))
  check("diff empty", binding.diff(new Uint8Array(0), new Uint8Array(0)).length === 0)
  const sab = new Uint8Array(new SharedArrayBuffer(100))
  check("diff over SharedArrayBuffer", binding.diff(sab, new Uint8Array(100)).length === 0)
}
{
  const u8 = new Uint8Array(8)
  throwsCode("diff(non-view)", () => binding.diff([1, 2], u8), "ERR_COMMY_INVALID_ARGUMENT")
  throwsCode("diff(Uint16Array)", () => binding.diff(new Uint16Array(4), u8), "ERR_COMMY_INVALID_ARGUMENT")
  throwsCode("diff(Uint8ClampedArray)", () => binding.diff(u8, new Uint8ClampedArray(8)), "ERR_COMMY_INVALID_ARGUMENT")
  throwsCode("diff(DataView)", () => binding.diff(new DataView(new ArrayBuffer(8)), u8), "ERR_COMMY_INVALID_ARGUMENT")
  throwsCode("diff(ArrayBuffer)", () => binding.diff(new ArrayBuffer(8), u8), "ERR_COMMY_INVALID_ARGUMENT")
  throwsCode("diff()", () => binding.diff(), "ERR_COMMY_INVALID_ARGUMENT")
  throwsCode("diff length mismatch", () => binding.diff(u8, new Uint8Array(9)), "ERR_COMMY_LENGTH_MISMATCH")
  throwsCode("diff kernel 42", () => binding.diff(u8, u8, 42), "ERR_COMMY_INVALID_ARGUMENT")
  throwsCode("diff kernel bogus", () => binding.diff(u8, u8, "bogus"), "ERR_COMMY_KERNEL_UNAVAILABLE")
  const ab = new ArrayBuffer(8)
  const view = new Uint8Array(ab)
  structuredClone(ab, { transfer: [ab] }) // detaches ab
  throwsCode("diff detached current", () => binding.diff(view, u8), "ERR_COMMY_DETACHED")
  throwsCode("diff detached shadow", () => binding.diff(u8, view), "ERR_COMMY_DETACHED")
}

// ---------------------------------------------------------------- map: errors
throwsCode("map ENOENT", () => binding.map(path.join(tmp, "nope"), true, 10), "ENOENT",
  (e) => e.errno === -2 && e.syscall === "open" && e.path === path.join(tmp, "nope") && /^ENOENT: no such file or directory, open '/.test(e.message))
throwsCode("map EISDIR", () => binding.map(tmp, false, 10), "EISDIR", (e) => e.path === tmp)
throwsCode("map empty path", () => binding.map("", true, 10), "ERR_COMMY_INVALID_ARGUMENT")
throwsCode("map NUL path", () => binding.map(file + "\0x", true, 10), "ERR_COMMY_INVALID_ARGUMENT")
throwsCode("map path number", () => binding.map(42, true, 10), "ERR_COMMY_INVALID_ARGUMENT")
throwsCode("map writable string", () => binding.map(file, "yes", 10), "ERR_COMMY_INVALID_ARGUMENT")
throwsCode("map length 0", () => binding.map(file, true, 0), "ERR_COMMY_INVALID_ARGUMENT")
for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53, "10", undefined]) {
  throwsCode(`map length ${String(bad)}`, () => binding.map(file, true, bad), "ERR_COMMY_INVALID_ARGUMENT")
}
throwsCode("map too short", () => binding.map(file, true, LEN + 51), "ERR_COMMY_FILE_TOO_SHORT", (e) => e.path === file)
if (spawnSync("mkfifo", [path.join(tmp, "fifo")]).status === 0) {
  throwsCode("map FIFO (no hang)", () => binding.map(path.join(tmp, "fifo"), false, 1), "ERR_COMMY_INVALID_ARGUMENT")
}

// ---------------------------------------------------------------- map: I/O
const m = binding.map(file, true, LEN)
check("mapping.length", m.length === LEN)
check("mapping.writable", m.writable === true)
check("mapping.closed", m.closed === false)
check("mapping.buffer", m.buffer instanceof ArrayBuffer && m.buffer.byteLength === LEN)
check("buffer is stable", m.buffer === m.buffer)
check("fileSize", m.fileSize() === LEN + 50)
throwsCode("new Mapping()", () => new m.constructor(), "ERR_COMMY_INVALID_ARGUMENT")
throwsCode("new Mapping({})", () => new m.constructor({}), "ERR_COMMY_INVALID_ARGUMENT")
const dv = new DataView(m.buffer)
dv.setUint32(100, 0xdeadbeef, true)
dv.setUint8(LEN - 1, 0x7f)
const onDisk = fs.readFileSync(file)
check("write through mapping visible in file", onDisk.readUInt32LE(100) === 0xdeadbeef && onDisk[LEN - 1] === 0x7f)
{
  const fd = fs.openSync(file, "r+")
  fs.writeSync(fd, Buffer.from([1, 2, 3]), 0, 3, 200)
  fs.closeSync(fd)
}
check("file write visible in mapping", dv.getUint8(200) === 1 && dv.getUint8(202) === 3)
m.sync()
m.sync(0, 10)
m.sync(4097, 1)
m.sync(LEN)
m.sync(LEN, 0)
check("sync ok", true)
throwsCode("sync offset > length", () => m.sync(LEN + 1), "ERR_COMMY_OUT_OF_BOUNDS")
throwsCode("sync range > length", () => m.sync(10, LEN), "ERR_COMMY_OUT_OF_BOUNDS")
throwsCode("sync -1", () => m.sync(-1), "ERR_COMMY_INVALID_ARGUMENT")
throwsCode("sync 1.5", () => m.sync(1.5), "ERR_COMMY_INVALID_ARGUMENT")
throwsCode("sync length NaN", () => m.sync(0, NaN), "ERR_COMMY_INVALID_ARGUMENT")
{
  const ro = binding.map(file, false, 4096)
  check("read-only mapping", ro.writable === false && new Uint8Array(ro.buffer)[200] === 1)
  check("diff on mapping views", binding.diff(new Uint8Array(ro.buffer, 0, 4096), new Uint8Array(m.buffer, 0, 4096)).length === 0)
  // A store through a read-only mapping must not crash, nor reach the file or other mappings.
  const before = new Uint8Array(m.buffer)[300]
  new Uint8Array(ro.buffer)[300] = before ^ 0xff
  check("read-only store stays private", new Uint8Array(m.buffer)[300] === before && fs.readFileSync(file)[300] === before)
  ro.close()
  const ro2 = binding.map(file, false, LEN)
  new Uint8Array(ro2.buffer)[300] = 1 // dirties page 0 privately
  new Uint8Array(m.buffer)[5000] = 77 // page 1, written through the shared mapping
  check("read-only mapping follows the file on untouched pages", new Uint8Array(ro2.buffer)[5000] === 77)
  ro2.close()
}

// ---------------------------------------------------------------- wake
check("wake none", m.wake(0, 1) === 0)
check("wake Infinity", m.wake(0, Infinity) === 0)
check("wake count 0", m.wake(4, 0) === 0)
throwsCode("wake misaligned", () => m.wake(2, 1), "ERR_COMMY_INVALID_ARGUMENT")
throwsCode("wake out of bounds", () => m.wake(LEN - (LEN % 4), 1), "ERR_COMMY_OUT_OF_BOUNDS")
throwsCode("wake far out of bounds", () => m.wake(2 ** 40, 1), "ERR_COMMY_OUT_OF_BOUNDS")
throwsCode("wake count -1", () => m.wake(0, -1), "ERR_COMMY_INVALID_ARGUMENT")
throwsCode("wake count 1.5", () => m.wake(0, 1.5), "ERR_COMMY_INVALID_ARGUMENT")
throwsCode("wake offset string", () => m.wake("0", 1), "ERR_COMMY_INVALID_ARGUMENT")

// ---------------------------------------------------------------- waiters
const u32 = new Uint32Array(m.buffer, 0, 64)
u32[0] = 5
// Waiter kinds: io_uring where the kernel allows it, else (or with COMMY_WAITER=thread) a thread.
// npm test runs this file once per kind.
const kinds = binding.waiterKinds()
check("waiterKinds ends with thread", kinds[kinds.length - 1] === "thread", kinds)
const wantKind = process.env.COMMY_WAITER === "thread" ? "thread" : kinds[0]
check("waiterKind", binding.waiterKind() === wantKind, binding.waiterKind())
throwsCode("setWaiterKind bogus", () => binding.setWaiterKind("bogus"), "ERR_COMMY_INVALID_ARGUMENT")
throwsCode("setWaiterKind number", () => binding.setWaiterKind(1), "ERR_COMMY_INVALID_ARGUMENT")
if (!kinds.includes("io_uring")) {
  throwsCode("setWaiterKind io_uring unavailable", () => binding.setWaiterKind("io_uring"), "ERR_COMMY_KERNEL_UNAVAILABLE")
}
binding.setWaiterKind(wantKind)
const w1 = m.waiter()
const w2 = m.waiter()
check("waiter kind", w1.kind() === wantKind, w1.kind())
console.log(`waiters: ${wantKind} (available: ${kinds.join(", ")})`)
throwsCode("new Waiter()", () => new w1.constructor(), "ERR_COMMY_INVALID_ARGUMENT")
check("wait mismatch", (await w1.wait(0, 4, 1000)) === "mismatch")
check("wait timeout 0", (await w1.wait(0, 5, 0)) === "timeout")
{
  const t0 = Date.now()
  const r = await w1.wait(0, 5, 60)
  const dt = Date.now() - t0
  check("wait timeout", r === "timeout" && dt >= 50, `${r} after ${dt} ms`)
}
{
  const t0 = Date.now()
  const r = await w1.wait(0, 5, 30.5) // fractional milliseconds are accepted
  check("wait fractional timeout", r === "timeout" && Date.now() - t0 >= 25)
}
for (const [name, args, code] of [
  ["offset misaligned", [2, 5, 10], "ERR_COMMY_INVALID_ARGUMENT"],
  ["offset OOB", [LEN - (LEN % 4), 5, 10], "ERR_COMMY_OUT_OF_BOUNDS"],
  ["offset -4", [-4, 5, 10], "ERR_COMMY_INVALID_ARGUMENT"],
  ["expected -1", [0, -1, 10], "ERR_COMMY_INVALID_ARGUMENT"],
  ["expected 2^32", [0, 2 ** 32, 10], "ERR_COMMY_INVALID_ARGUMENT"],
  ["expected 1.5", [0, 1.5, 10], "ERR_COMMY_INVALID_ARGUMENT"],
  ["timeout -1", [0, 5, -1], "ERR_COMMY_INVALID_ARGUMENT"],
  ["timeout NaN", [0, 5, NaN], "ERR_COMMY_INVALID_ARGUMENT"],
  ["timeout string", [0, 5, "10"], "ERR_COMMY_INVALID_ARGUMENT"],
  ["no args", [], "ERR_COMMY_INVALID_ARGUMENT"],
]) {
  throwsCode(`wait ${name}`, () => w1.wait(...args), code)
}
// Wakes until `want` waiters were woken in total (threads may not be in the futex yet).
async function wakeUntil(mapping, offset, want, ms = 5000) {
  let total = 0
  const deadline = Date.now() + ms
  while (total < want && Date.now() < deadline) {
    total += mapping.wake(offset, 2 ** 31 - 1)
    if (total < want) await sleep(2)
  }
  return total
}
{
  const p1 = w1.wait(0, 5, Infinity)
  const p2 = w2.wait(0, 5, 10000)
  throwsCode("second wait is BUSY", () => w1.wait(0, 5, 10), "ERR_COMMY_BUSY")
  const woken = await wakeUntil(m, 0, 2)
  check("wake returned 2", woken === 2, woken)
  const [r1, r2] = await Promise.all([p1, p2])
  check("two waiters woken", r1 === "woken" && r2 === "woken", `${r1} ${r2}`)
}
{
  const p = w1.wait(0, 5, Infinity)
  await sleep(20)
  w1.cancel()
  check("cancel resolves cancelled", (await p) === "cancelled")
  w1.cancel() // nothing in flight: no-op
  const p2 = w1.wait(0, 5, Infinity) // immediately cancel: request may not even be picked up
  w1.cancel()
  check("immediate cancel", (await p2) === "cancelled")
  check("waiter reusable after cancel", (await w1.wait(0, 5, 20)) === "timeout")
}
{
  // Many quick cancel/wait cycles race the thread at every stage.
  let bad = 0
  for (let i = 0; i < (slow ? 20 : 300); i++) {
    const p = w2.wait(0, 5, Infinity)
    if (i % 3 === 1) await Promise.resolve()
    if (i % 3 === 2) await sleep(0)
    w2.cancel()
    if ((await p) !== "cancelled") bad++
  }
  check("cancel races", bad === 0, bad)
}
{
  const w3 = m.waiter()
  const p = w3.wait(0, 5, Infinity)
  w3.close()
  check("close resolves cancelled", (await p) === "cancelled")
  w3.close() // idempotent
  throwsCode("wait after waiter close", () => w3.wait(0, 5, 10), "ERR_COMMY_CLOSED")
  throwsCode("cancel after waiter close", () => w3.cancel(), "ERR_COMMY_CLOSED")
}

// ---------------------------------------------------------------- callback-mode waiters
{
  throwsCode("waiter(non-function)", () => m.waiter(5), "ERR_COMMY_INVALID_ARGUMENT")
  let onSettle = () => {}
  let calls = 0
  const cw = m.waiter((code) => {
    calls++
    onSettle(code)
  })
  check("callback waiter kind", cw.kind() === wantKind, cw.kind())
  check("callback: mismatch at once", cw.wait(0, 4, 1000) === 2)
  check("callback: timeout 0 at once", cw.wait(0, 5, 0) === 1)
  throwsCode("callback: bad offset", () => cw.wait(2, 5, 10), "ERR_COMMY_INVALID_ARGUMENT")
  check("callback: nothing called for immediate results", calls === 0, calls)
  let next = new Promise((resolve) => { onSettle = resolve })
  check("callback: queued returns -1", cw.wait(0, 5, 30) === -1)
  throwsCode("callback: second wait is BUSY", () => cw.wait(0, 5, 10), "ERR_COMMY_BUSY")
  check("callback: timeout", (await next) === 1)
  next = new Promise((resolve) => { onSettle = resolve })
  cw.wait(0, 5, Infinity)
  const woken = await wakeUntil(m, 0, 1)
  check("callback: woken", woken === 1 && (await next) === 0, woken)
  onSettle = () => {}
  calls = 0
  cw.wait(0, 5, Infinity)
  await sleep(10)
  cw.cancel()
  cw.wait(0, 5, Infinity) // cancelled before the thread may even have picked it up
  cw.cancel()
  await sleep(30)
  check("callback: cancel calls nothing", calls === 0, calls)
  // Re-armed from inside onSettle, as the watcher does: every change seen, none missed.
  const rounds = slow ? 20 : 200
  let seen = 0
  const done = new Promise((resolve) => {
    onSettle = (code) => {
      if (code === 0) seen++
      if (seen >= rounds) return resolve()
      while (cw.wait(0, u32[0], 5000) !== -1) {} // (the word may have moved meanwhile)
    }
  })
  cw.wait(0, u32[0], 5000)
  for (let i = 0; i < rounds && seen < rounds; i++) {
    await wakeUntil(m, 0, 1, 1000)
    await sleep(0)
  }
  await Promise.race([done, sleep(5000)])
  check("callback: re-armed from onSettle", seen === rounds, `${seen}/${rounds}`)
  cw.close()
  cw.close() // idempotent
  throwsCode("callback: wait after close", () => cw.wait(0, 5, 10), "ERR_COMMY_CLOSED")
}
if (typeof globalThis.gc === "function") {
  // An inline onSettle that nothing else references lives as long as its waiter.
  let settled = 0
  const inline = m.waiter(() => settled++)
  for (let i = 0; i < 3; i++) {
    globalThis.gc()
    inline.wait(0, 5, 5)
    await sleep(20)
  }
  check("inline onSettle survives GC between waits", settled === 3, settled)
  inline.close()
}

// ---------------------------------------------------------------- locks
{
  const m2 = binding.map(file, false, 16) // a second open file description
  check("tryLock exclusive", m.tryLock(true) === true)
  check("other OFD tryLock exclusive fails", m2.tryLock(true) === false)
  check("other OFD tryLock shared fails", m2.tryLock(false) === false)
  const t0 = Date.now()
  check("lock times out", (await m2.lock(true, 50)) === false && Date.now() - t0 >= 45)
  check("lock timeout 0", (await m2.lock(false, 0)) === false)
  const pending = m2.lock(false, Infinity)
  await sleep(30)
  m.unlock()
  const t1 = Date.now()
  check("lock acquired after unlock", (await pending) === true)
  check("lock acquired promptly", Date.now() - t1 < 1000)
  check("shared + shared", m.tryLock(false) === true)
  m.unlock()
  m2.unlock()
  check("uncontended lock()", (await m.lock(true, 100)) === true)
  const pending2 = m2.lock(true, Infinity)
  await sleep(10)
  m2.close()
  await rejectsCode("lock rejects when mapping closes", pending2, "ERR_COMMY_CLOSED")
  m.unlock()
  throwsCode("tryLock string", () => m.tryLock("x"), "ERR_COMMY_INVALID_ARGUMENT")
  throwsCode("tryLock none", () => m.tryLock(), "ERR_COMMY_INVALID_ARGUMENT")
  throwsCode("lock timeout -1", () => m.lock(true, -1), "ERR_COMMY_INVALID_ARGUMENT")
  throwsCode("lock timeout NaN", () => m.lock(true, NaN), "ERR_COMMY_INVALID_ARGUMENT")
  throwsCode("lock exclusive 1", () => m.lock(1, 10), "ERR_COMMY_INVALID_ARGUMENT")
}

// ---------------------------------------------------------------- cross-process futex
{
  new Uint8Array(m.buffer)[100] = 0xab
  u32[2] = 0 // offset 8
  const p = w1.wait(8, 0, 15000)
  const child = spawn(process.execPath, [path.join(here, "futex-child.mjs"), addonPath, file, String(LEN)], {
    stdio: ["ignore", "pipe", "inherit"],
  })
  let out = ""
  child.stdout.on("data", (d) => (out += d))
  const code = await new Promise((r) => child.on("close", r))
  const r = await p
  let info = {}
  try { info = JSON.parse(out) } catch {}
  check("child saw parent's write", info.sawMarker === true, out)
  check("child woke our waiter (cross-process futex)", code === 0 && info.woke === 1 && r === "woken", `${code} ${out} ${r}`)
  check("parent sees child's write", new Uint8Array(m.buffer)[101] === 0xcd)
}

// ---------------------------------------------------------------- workers
async function runWorker(source) {
  const w = new Worker(source, { eval: true, workerData: { addonPath, file, LEN } })
  const messages = []
  w.on("message", (msg) => messages.push(msg))
  const exitCode = await new Promise((resolve, reject) => { w.on("error", reject); w.on("exit", resolve) })
  return { exitCode, messages, worker: w }
}
{
  // A worker loads its own instance, exits naturally with an idle waiter and open mapping.
  const { exitCode, messages } = await runWorker(`
    const { parentPort, workerData } = require("node:worker_threads")
    const b = require(workerData.addonPath)
    const m = b.map(workerData.file, true, workerData.LEN)
    const w = m.waiter()
    w.wait(0, 12345, 10).then((r) => { parentPort.postMessage(r + ":" + b.kernels().length) })
  `)
  check("worker: load + idle waiter exits", exitCode === 0 && messages[0] === "mismatch:" + kernels.length, `${exitCode} ${messages}`)
}
{
  // Workers terminated at random moments while their JS re-arms waits (from onSettle, from a
  // promise) and wakes them: a call into the addon during termination must not abort the process
  // (node-addon-api's unthrowable-exception path, NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS).
  for (let i = 0; i < (slow ? 4 : 15); i++) {
    const w = new Worker(`
      const { parentPort, workerData } = require("node:worker_threads")
      const b = require(workerData.addonPath)
      const m = b.map(workerData.file, true, workerData.LEN)
      const u = new Uint32Array(m.buffer)
      for (let j = 0; j < 4; j++) {
        const cw = m.waiter(() => { try { cw.wait(32, u[8], 1) } catch {} })
        cw.wait(32, u[8], 1)
      }
      const pw = m.waiter()
      const loop = () => { try { pw.wait(32, u[8], 1).then(loop) } catch {} }
      loop()
      setInterval(() => { u[8]++; try { m.wake(32, 100) } catch {} }, 0)
      parentPort.postMessage("up")
    `, { eval: true, workerData: { addonPath, file, LEN } })
    await new Promise((resolve) => w.once("message", resolve))
    await sleep(Math.random() * 20)
    await w.terminate()
  }
  check("workers terminated mid re-arm", true)
}
{
  // A throwing onSettle is an uncaught exception (here the worker's), not a crash.
  const w = new Worker(`
    const { workerData } = require("node:worker_threads")
    const b = require(workerData.addonPath)
    const m = b.map(workerData.file, true, workerData.LEN)
    m.waiter(() => { throw new Error("boom from onSettle") }).wait(16, 12345, 10) // mismatch: no call
    m.waiter(() => { throw new Error("boom from onSettle") }).wait(0, new Uint32Array(m.buffer)[0], 10)
  `, { eval: true, workerData: { addonPath, file, LEN } })
  const error = await new Promise((resolve) => { w.on("error", resolve); w.on("exit", () => resolve(undefined)) })
  check("throwing onSettle reaches uncaughtException", error?.message === "boom from onSettle", error)
}
{
  // A worker exiting with a callback-mode wait in flight.
  const { exitCode } = await runWorker(`
    const { workerData } = require("node:worker_threads")
    const b = require(workerData.addonPath)
    const m = b.map(workerData.file, true, workerData.LEN)
    m.waiter(() => {}).wait(16, new Uint32Array(m.buffer)[4], Infinity)
    setTimeout(() => process.exit(4), 30)
  `)
  check("worker process.exit with a callback wait in flight", exitCode === 4, exitCode)
}
{
  // A worker terminated while a wait is in flight (Infinity) must not hang or crash.
  const w = new Worker(`
    const { parentPort, workerData } = require("node:worker_threads")
    const b = require(workerData.addonPath)
    const m = b.map(workerData.file, true, workerData.LEN)
    const u = new Uint32Array(m.buffer); u[4] = 7
    const ws = [m.waiter(), m.waiter()]
    ws.forEach((w) => w.wait(16, 7, Infinity))
    m.lock(true, Infinity) // contended below: a lock thread is polling too
    parentPort.postMessage("waiting")
  `, { eval: true, workerData: { addonPath, file, LEN } })
  check("main holds lock for worker test", m.tryLock(true) === true)
  await new Promise((r) => w.once("message", r))
  await sleep(50)
  const t0 = Date.now()
  const exitCode = await w.terminate()
  check("worker terminated with waits in flight", typeof exitCode === "number" && Date.now() - t0 < 5000, exitCode)
  m.unlock()
}
{
  // process.exit() inside a worker with a wait in flight.
  const { exitCode } = await runWorker(`
    const { workerData } = require("node:worker_threads")
    const b = require(workerData.addonPath)
    const m = b.map(workerData.file, true, workerData.LEN)
    const w = m.waiter()
    w.wait(16, 7, Infinity)
    setTimeout(() => process.exit(3), 30)
  `)
  check("worker process.exit with wait in flight", exitCode === 3, exitCode)
}

// ---------------------------------------------------------------- close
{
  const p1 = w1.wait(0, 5, Infinity)
  let cwCalls = 0
  const cw = m.waiter(() => cwCalls++)
  check("callback wait before close", cw.wait(0, 5, Infinity) === -1)
  await sleep(10)
  const view = new Uint8Array(m.buffer)
  m.close()
  check("close cancels waits", (await p1) === "cancelled")
  await sleep(20)
  check("close withdraws a callback wait without a call", cwCalls === 0, cwCalls)
  throwsCode("callback wait on closed mapping", () => cw.wait(0, 5, 10), "ERR_COMMY_CLOSED")
  check("closed flag", m.closed === true)
  check("buffer detached", m.buffer.byteLength === 0 && view.length === 0 && view[0] === undefined)
  let threw = false
  try { dv.getUint8(0) } catch { threw = true }
  check("old DataView throws instead of faulting", threw)
  m.close() // idempotent
  throwsCode("fileSize after close", () => m.fileSize(), "ERR_COMMY_CLOSED")
  throwsCode("sync after close", () => m.sync(), "ERR_COMMY_CLOSED")
  throwsCode("tryLock after close", () => m.tryLock(true), "ERR_COMMY_CLOSED")
  throwsCode("lock after close", () => m.lock(true, 10), "ERR_COMMY_CLOSED")
  throwsCode("unlock after close", () => m.unlock(), "ERR_COMMY_CLOSED")
  throwsCode("wake after close", () => m.wake(0, 1), "ERR_COMMY_CLOSED")
  throwsCode("waiter after close", () => m.waiter(), "ERR_COMMY_CLOSED")
  throwsCode("wait on closed mapping", () => w1.wait(0, 5, 10), "ERR_COMMY_CLOSED")
  w1.close()
  w2.close()
}
{
  // Buffer transferred away before close: close must not unmap memory still in use.
  const m3 = binding.map(file, true, 4096)
  const moved = structuredClone(m3.buffer, { transfer: [m3.buffer] })
  m3.close()
  check("transferred buffer still readable after close", new Uint8Array(moved)[200] === 1)
}

// Left open on purpose: an idle waiter and an open mapping must not keep the process alive.
const leftover = binding.map(file, true, LEN)
leftover.waiter()
if (typeof globalThis.gc === "function") {
  for (let i = 0; i < 20; i++) binding.map(file, true, 4096).waiter() // dropped: GC cleans up
  // Dropped with the closure that owns it (onSettle is held weakly while idle).
  for (let i = 0; i < 20; i++) {
    const owner = { waiter: undefined }
    owner.waiter = binding.map(file, true, 4096).waiter(() => owner)
  }
  globalThis.gc()
  await sleep(10)
  globalThis.gc()
}

fs.rmSync(tmp, { recursive: true, force: true })
console.log(`${passed} passed, ${failed} failed`)
process.exitCode = failed === 0 ? 0 : 1
