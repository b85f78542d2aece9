// Child process for the cross-process futex check in smoke.mjs.
//   node futex-child.mjs <addon> <file> <length>
// Maps the same file, checks it sees the parent's marker byte, then FUTEX_WAKEs the word at
// offset 8 until it wakes someone (the parent's waiter thread), and prints the result.
import { createRequire } from "node:module"
const require = createRequire(import.meta.url)
const [addonPath, file, lengthText] = process.argv.slice(2)
const binding = require(addonPath)
const m = binding.map(file, true, Number(lengthText))
const bytes = new Uint8Array(m.buffer)
const sawMarker = bytes[100] === 0xab
bytes[101] = 0xcd // the parent checks it sees this write
const deadline = Date.now() + 10000
let woke = 0
while (Date.now() < deadline) {
  woke = m.wake(8, 1)
  if (woke > 0) break
  await new Promise((r) => setTimeout(r, 2))
}
m.close()
process.stdout.write(JSON.stringify({ sawMarker, woke }) + "\n")
