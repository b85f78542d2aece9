/**
 * One esbuild recipe for every child process the tests and benchmarks start: a TypeScript entry
 * bundled (tree-shaken) to one plain ESM file under node_modules/.cache/<dir>, so a child starts
 * in ~100 ms instead of paying tsx's compile and effect's module loading (~0.45 s).
 */
import * as crypto from "node:crypto"
import * as esbuild from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")

/** The addon by absolute path: a bundle lives in node_modules/.cache, not where the loader looks. */
export const addonPath = path.join(packageRoot, "build", "Release", "commy.node")

/**
 * Packages left out of bundles: native addons that find their `.node` file relative to their
 * own package (the bundle lives in node_modules/.cache, so they still resolve from node_modules).
 */
const external = ["better-sqlite3"]

/**
 * Bundles `entry` to a new file in node_modules/.cache/`cacheDir`; returns its path. `alias`
 * maps import names to files (examples import "commy": the source, not a possibly stale dist/).
 */
export const bundleEntry = (entry: string, cacheDir: string, alias: Record<string, string> = {}): string => {
  const dir = path.join(packageRoot, "node_modules", ".cache", cacheDir)
  fs.mkdirSync(dir, { recursive: true })
  const out = path.join(dir, `${path.basename(entry, ".ts")}-${crypto.randomBytes(4).toString("hex")}.mjs`)
  esbuild.buildSync({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external,
    alias,
    // CommonJS dependencies (ws, ...) require Node builtins: give the ESM bundle a `require`.
    banner: { js: "import { createRequire as __commyRequire } from \"node:module\"; const require = __commyRequire(import.meta.url);" },
    logLevel: "error"
  })
  return out
}
