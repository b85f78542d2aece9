/**
 * Client: the application's entry point to Commy, as one Effect service.
 *
 * `Client.local` works on this machine's service files: zero-copy mapped variables, change
 * streams woken by futex. Its dependencies (the native addon, SimdDiff) are provided inside the
 * layer; tests build their own Client from substituted layers with `Client.make`.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { CommyError, NativeUnavailable, WatcherError } from "../CommyError.js"
import { SimdDiff } from "../diff/SimdDiff.js"
import type { CreateOptions } from "../local/Directory.js"
import { type ServiceDirectoryEvent, watchServiceDirectory } from "../local/ServiceDirectory.js"
import { createServiceFile, defaultRoot, openServiceFile, removeServiceFile } from "../local/ServiceFiles.js"
import type { VirtualFile } from "../local/VirtualFile.js"
import { type FileChangeEvent, onChange, type OnChangeOptions, watch, type WatchOptions } from "../local/Watcher.js"
import { NativeAddon } from "../native/NativeAddon.js"
import { fromVirtualFile, type LocalSharedService } from "./SharedService.js"

/** The tenant a local SharedService reports: local files belong to no server tenant. */
export const LOCAL_TENANT = "local"

export interface OpenOptions {
  /** Map read-only: writes fail with PermissionDenied, and the OS enforces it (PROT_READ). */
  readonly writable?: boolean
}

export interface ClientService {
  /** Directory holding this machine's service files. */
  readonly root: string
  /** Creates a service file; returns its id (32 hex chars, unguessable unless you pass `id`). */
  readonly createService: (options?: CreateOptions & { readonly id?: string }) => Effect.Effect<string, CommyError>
  /** Opens a service's variables; the mapping is released when the scope closes. */
  readonly openService: (id: string, options?: OpenOptions) => Effect.Effect<VirtualFile, CommyError, Scope.Scope>
  /**
   * Opens a service as a SharedService (locality "local", tenant "local", name = the id): the
   * same handle a RemoteClient's `open` returns, so code written against it moves to a server
   * unchanged. Unmapped when the scope closes.
   */
  readonly open: (id: string, options?: OpenOptions) => Effect.Effect<LocalSharedService, CommyError, Scope.Scope>
  readonly removeService: (id: string) => Effect.Effect<void, CommyError>
  /** Change events for one open service. */
  readonly watch: (file: VirtualFile, options?: WatchOptions) => Stream.Stream<FileChangeEvent, CommyError>
  /** The same events as callbacks, straight from the wake-up (lowest latency); until the scope closes. */
  readonly onChange: (
    file: VirtualFile,
    handler: (event: FileChangeEvent) => void,
    options?: OnChangeOptions
  ) => Effect.Effect<void, CommyError, Scope.Scope>
  /** Service files appearing and disappearing in `root`. */
  readonly serviceEvents: Stream.Stream<ServiceDirectoryEvent, WatcherError>
}

export interface LocalOptions {
  /** Default: `$COMMY_HOME`, else `$XDG_CACHE_HOME/commy`, else `~/.cache/commy`. */
  readonly root?: string
}

/** Builds a local client from whatever NativeAddon and SimdDiff layers are in context. */
export const makeLocal = (options: LocalOptions = {}): Effect.Effect<ClientService, never, NativeAddon | SimdDiff> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<NativeAddon | SimdDiff>()
    const root = options.root ?? defaultRoot()
    return {
      root,
      createService: (create) => createServiceFile(root, create),
      openService: (id, open) => openServiceFile(root, id, open).pipe(Effect.provide(context)),
      open: (id, open) =>
        Effect.map(openServiceFile(root, id, open).pipe(Effect.provide(context)), (file) => fromVirtualFile(file, LOCAL_TENANT, id)),
      removeService: (id) => removeServiceFile(root, id),
      watch: (file, watchOptions) => watch(file, watchOptions).pipe(Stream.provideContext(context)),
      onChange: (file, handler, changeOptions) => onChange(file, handler, changeOptions).pipe(Effect.provide(context)),
      serviceEvents: watchServiceDirectory(root)
    }
  })

export class Client extends Context.Tag("commy/Client")<Client, ClientService>() {
  /** This machine's service files, with the native addon and the best SimdDiff. */
  static readonly local = (options: LocalOptions = {}): Layer.Layer<Client, NativeUnavailable> =>
    Layer.effect(Client, makeLocal(options)).pipe(
      Layer.provide(Layer.merge(NativeAddon.layer, SimdDiff.layer))
    )
}
