/**
 * Commy: processes share named variables, memory-mapped on one machine and over WSS across
 * machines, and learn which variables changed.
 */
export * from "./CommyError.js"

// client
export { Client, type ClientService, type LocalOptions, makeLocal, type OpenOptions } from "./client/Client.js"
export { makeRemote, RemoteClient, type RemoteClientService } from "./client/RemoteClient.js"
export { type Opener, openShared, type SharedOpenOptions } from "./client/Locality.js"
export {
  fromRemoteService,
  fromVirtualFile,
  type Locality,
  type LocalSharedService,
  type RemoteSharedService,
  type SharedBatchWrite,
  type SharedOnChangeOptions,
  type SharedService,
  type SharedServiceApi,
  type SharedVariable,
  type SharedWatchOptions
} from "./client/SharedService.js"

// remote
export { openRemoteService, type RemoteService, type RemoteServiceOptions, type RemoteVariable } from "./remote/RemoteService.js"
export {
  connect,
  type Credentials,
  type RemoteSubscription,
  type TransportOptions,
  WssTransport,
  type WssTransportService
} from "./remote/WssTransport.js"
export * as Protocol from "./protocol/Messages.js"

// server
export { apiKey, type AuthHandler, Authenticator, type AuthenticatorService, type AuthRequest, mtls, type Peer } from "./server/Authenticator.js"
export { DEFAULT_PORT, type RunningServer, type ServerOptions, startServer } from "./server/Server.js"
export { MetadataStore, type MetadataStoreService, type Principal, type Right } from "./server/MetadataStore.js"
export { layer as SqliteMetadataStoreLayer } from "./server/SqliteMetadataStore.js"

// local files
export { type CreateOptions, type Entry, type Header } from "./local/Directory.js"
export { BufferFileAccessor, FileAccessor, type FileAccessorService, LocalFileAccessor, makeBuffer } from "./local/FileAccessor.js"
export {
  type MakeUnsafeWaiter,
  type MapOptions,
  type MappedFile,
  mapFile,
  type UnsafeWait,
  type UnsafeWaiter
} from "./local/MappedFile.js"
export { type ServiceDirectoryEvent, watchServiceDirectory } from "./local/ServiceDirectory.js"
export {
  bufferServiceFile,
  createServiceFile,
  defaultRoot,
  newServiceId,
  openServiceFile,
  prepareRoot,
  removeServiceFile,
  servicePath
} from "./local/ServiceFiles.js"
export type { Versioned } from "./local/Slots.js"
export * as Var from "./local/VarType.js"
export type { TypeOf, VarType } from "./local/VarType.js"
export {
  type BatchWrite,
  type DefineOptions,
  type Variable,
  type VariableInfo,
  VirtualFile,
  type WriteError
} from "./local/VirtualFile.js"
export { type FileChangeEvent, onChange, type OnChangeOptions, type VariableChange, watch, type WatchOptions } from "./local/Watcher.js"

// SIMD diff and the native addon
export { availableKernels, type ChangedRanges, type DiffError, SimdDiff, type SimdDiffService, toPairs } from "./diff/SimdDiff.js"
export type { KernelName, WaitResult } from "./native/Binding.js"
export { loadNative, NativeAddon } from "./native/NativeAddon.js"
