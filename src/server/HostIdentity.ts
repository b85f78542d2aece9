/**
 * The identity of this machine, as the server reports it: a client whose own identity matches
 * can map service files directly instead of going through the network.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"

const read = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8").trim() || undefined
  } catch {
    return undefined
  }
}

/** A stable, non-reversible id: the machine id (or hostname) hashed, so nothing is leaked. */
export const hostIdentity = (): string => {
  const source = read("/etc/machine-id") ?? read("/var/lib/dbus/machine-id") ?? os.hostname()
  return crypto.createHash("sha256").update(`commy-host:${source}`).digest("hex").slice(0, 32)
}
