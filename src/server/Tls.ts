/**
 * TLS material for `commy serve`: the operator's certificate and key, or a self-signed pair
 * made once in the data directory (0600) with the system's `openssl`.
 */
import * as Effect from "effect/Effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { FileError } from "../CommyError.js"

export interface TlsMaterial {
  readonly cert: string
  readonly key: string
  /** Where the certificate is, for clients that want to trust it (`--ca`). */
  readonly certPath: string
  readonly selfSigned: boolean
}

const readPair = (certPath: string, keyPath: string, selfSigned: boolean) =>
  Effect.try({
    try: (): TlsMaterial => ({
      cert: fs.readFileSync(certPath, "utf8"),
      key: fs.readFileSync(keyPath, "utf8"),
      certPath,
      selfSigned
    }),
    catch: (cause) =>
      new FileError({ message: `cannot read TLS certificate/key (${certPath}, ${keyPath}): ${String(cause)}`, cause })
  })

/** Uses the given pair, else the data dir's self-signed pair, creating it on first start. */
export const loadTls = (options: {
  readonly dataDir: string
  readonly certFile?: string | undefined
  readonly keyFile?: string | undefined
}): Effect.Effect<TlsMaterial, FileError> =>
  Effect.gen(function*() {
    if (options.certFile !== undefined && options.keyFile !== undefined) {
      return yield* readPair(options.certFile, options.keyFile, false)
    }
    const certPath = path.join(options.dataDir, "tls-cert.pem")
    const keyPath = path.join(options.dataDir, "tls-key.pem")
    if (!fs.existsSync(certPath) || !fs.existsSync(keyPath)) {
      const made = spawnSync("openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", keyPath, "-out", certPath, "-days", "3650", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
      ], { encoding: "utf8", timeout: 30_000 })
      if (made.status !== 0) {
        return yield* new FileError({
          message: `could not create a self-signed certificate with openssl (${made.error?.message ?? made.stderr.trim()}); pass --cert and --key`
        })
      }
      fs.chmodSync(keyPath, 0o600)
      fs.chmodSync(certPath, 0o600)
    }
    return yield* readPair(certPath, keyPath, true)
  })
