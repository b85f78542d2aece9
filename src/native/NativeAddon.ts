/**
 * Loads the C++ addon once per process (or worker) and provides it as an Effect service.
 *
 * Loading never throws at import: where the addon cannot load (not built, other OS, stale
 * build, `COMMY_NATIVE=off`) the `NativeAddon` layer fails with `NativeUnavailable`, and
 * callers fall back (pure SimdDiff, remote mode).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { NativeUnavailable } from "../CommyError.js"
import { ABI_VERSION, type NativeBinding } from "./Binding.js"

/** The package root: this file lives at src/native/ (tsx, vitest) or dist/native/ (built). */
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")

/** Where the addon is looked for, in order. `COMMY_NATIVE_PATH` overrides (e.g. an ASan build). */
const candidates = (): ReadonlyArray<string> => {
  const override = process.env["COMMY_NATIVE_PATH"]
  if (override !== undefined && override !== "") return [path.resolve(override)]
  return [
    path.join(packageRoot, "build", "Release", "commy.node"),
    path.join(packageRoot, "build", "Debug", "commy.node")
  ]
}

const load = (): Either.Either<NativeBinding, NativeUnavailable> => {
  if (process.env["COMMY_NATIVE"] === "off") {
    return Either.left(new NativeUnavailable({ message: "native addon disabled by COMMY_NATIVE=off" }))
  }
  if (process.platform !== "linux") {
    return Either.left(new NativeUnavailable({ message: `native addon supports Linux only, not ${process.platform}` }))
  }
  const require = createRequire(import.meta.url)
  const failures: Array<string> = []
  for (const file of candidates()) {
    try {
      const binding = require(file) as NativeBinding
      if (binding.abiVersion !== ABI_VERSION) {
        failures.push(`${file}: ABI ${String(binding.abiVersion)}, expected ${ABI_VERSION} (rebuild with npm rebuild)`)
        continue
      }
      return Either.right(binding)
    } catch (cause) {
      failures.push(`${file}: ${cause instanceof Error ? cause.message.split("\n")[0] : String(cause)}`)
    }
  }
  return Either.left(
    new NativeUnavailable({ message: `native addon could not be loaded: ${failures.join("; ")}` })
  )
}

let cached: Either.Either<NativeBinding, NativeUnavailable> | undefined

/** The addon, loaded at most once; never throws. */
export const loadNative = (): Either.Either<NativeBinding, NativeUnavailable> => (cached ??= load())

/** The loaded addon as a service. Tests substitute it with `Layer.succeed(NativeAddon, ...)`. */
export class NativeAddon extends Context.Tag("commy/NativeAddon")<NativeAddon, NativeBinding>() {
  /** Fails with NativeUnavailable where the addon cannot load. */
  static readonly layer: Layer.Layer<NativeAddon, NativeUnavailable> = Layer.effect(
    NativeAddon,
    Effect.suspend(() => loadNative())
  )
}
