/** A fresh owner-only temporary directory per test, removed when the scope closes. */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "commy-test-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Creates a zero-filled file of `size` bytes (0600) in `dir`. */
export const zeroFile = (dir: string, name: string, size: number): string => {
  const file = path.join(dir, name)
  fs.writeFileSync(file, Buffer.alloc(size), { mode: 0o600 })
  return file
}
