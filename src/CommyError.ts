/**
 * CommyError: every failure Commy reports, as tagged, schema-described values.
 *
 * Each member has a stable `code` (SCREAMING_SNAKE) that is the single source of truth for the
 * wire protocol, the CLI and the docs: servers send `{ id, code, message }` and clients rebuild
 * the same class from `code` with {@link classForCode}. Codes are never renamed or reused.
 */
import * as Schema from "effect/Schema"

const base = { message: Schema.String }

export class FileError extends Schema.TaggedError<FileError>()("FileError", {
  ...base,
  /** errno name such as ENOENT, when the OS reported one. */
  errno: Schema.optional(Schema.String),
  syscall: Schema.optional(Schema.String),
  path: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect)
}) {
  static readonly code = "FILE_ERROR"
  readonly code = FileError.code
}

export class FileTooShort extends Schema.TaggedError<FileTooShort>()("FileTooShort", {
  ...base,
  path: Schema.optional(Schema.String)
}) {
  static readonly code = "FILE_TOO_SHORT"
  readonly code = FileTooShort.code
}

export class WatcherError extends Schema.TaggedError<WatcherError>()("WatcherError", {
  ...base,
  cause: Schema.optional(Schema.Defect)
}) {
  static readonly code = "WATCHER_ERROR"
  readonly code = WatcherError.code
}

export class VariableNotFound extends Schema.TaggedError<VariableNotFound>()("VariableNotFound", {
  ...base,
  name: Schema.String
}) {
  static readonly code = "VARIABLE_NOT_FOUND"
  readonly code = VariableNotFound.code
}

export class InvalidOffset extends Schema.TaggedError<InvalidOffset>()("InvalidOffset", {
  ...base
}) {
  static readonly code = "INVALID_OFFSET"
  readonly code = InvalidOffset.code
}

export class InvalidArgument extends Schema.TaggedError<InvalidArgument>()("InvalidArgument", {
  ...base
}) {
  static readonly code = "INVALID_ARGUMENT"
  readonly code = InvalidArgument.code
}

export class SimdError extends Schema.TaggedError<SimdError>()("SimdError", {
  ...base
}) {
  static readonly code = "SIMD_ERROR"
  readonly code = SimdError.code
}

export class DetachedBuffer extends Schema.TaggedError<DetachedBuffer>()("DetachedBuffer", {
  ...base
}) {
  static readonly code = "DETACHED_BUFFER"
  readonly code = DetachedBuffer.code
}

export class MappingClosed extends Schema.TaggedError<MappingClosed>()("MappingClosed", {
  ...base
}) {
  static readonly code = "MAPPING_CLOSED"
  readonly code = MappingClosed.code
}

export class NativeUnavailable extends Schema.TaggedError<NativeUnavailable>()("NativeUnavailable", {
  ...base,
  cause: Schema.optional(Schema.Defect)
}) {
  static readonly code = "NATIVE_UNAVAILABLE"
  readonly code = NativeUnavailable.code
}

export class PermissionDenied extends Schema.TaggedError<PermissionDenied>()("PermissionDenied", {
  ...base
}) {
  static readonly code = "PERMISSION_DENIED"
  readonly code = PermissionDenied.code
}

export class ServiceNotFound extends Schema.TaggedError<ServiceNotFound>()("ServiceNotFound", {
  ...base,
  service: Schema.String
}) {
  static readonly code = "SERVICE_NOT_FOUND"
  readonly code = ServiceNotFound.code
}

export class InvalidName extends Schema.TaggedError<InvalidName>()("InvalidName", {
  ...base,
  name: Schema.String
}) {
  static readonly code = "INVALID_NAME"
  readonly code = InvalidName.code
}

export class TypeMismatch extends Schema.TaggedError<TypeMismatch>()("TypeMismatch", {
  ...base
}) {
  static readonly code = "TYPE_MISMATCH"
  readonly code = TypeMismatch.code
}

export class ValueTooLarge extends Schema.TaggedError<ValueTooLarge>()("ValueTooLarge", {
  ...base,
  capacity: Schema.Number
}) {
  static readonly code = "VALUE_TOO_LARGE"
  readonly code = ValueTooLarge.code
}

export class CorruptFile extends Schema.TaggedError<CorruptFile>()("CorruptFile", {
  ...base,
  path: Schema.optional(Schema.String)
}) {
  static readonly code = "CORRUPT_FILE"
  readonly code = CorruptFile.code
}

export class UnsupportedVersion extends Schema.TaggedError<UnsupportedVersion>()("UnsupportedVersion", {
  ...base,
  version: Schema.Number
}) {
  static readonly code = "UNSUPPORTED_VERSION"
  readonly code = UnsupportedVersion.code
}

export class CapacityExceeded extends Schema.TaggedError<CapacityExceeded>()("CapacityExceeded", {
  ...base
}) {
  static readonly code = "CAPACITY_EXCEEDED"
  readonly code = CapacityExceeded.code
}

export class LockTimeout extends Schema.TaggedError<LockTimeout>()("LockTimeout", {
  ...base
}) {
  static readonly code = "LOCK_TIMEOUT"
  readonly code = LockTimeout.code
}

export class VersionConflict extends Schema.TaggedError<VersionConflict>()("VersionConflict", {
  ...base,
  name: Schema.String,
  expected: Schema.Number,
  current: Schema.Number
}) {
  static readonly code = "VERSION_CONFLICT"
  readonly code = VersionConflict.code
}

export class TenantNotFound extends Schema.TaggedError<TenantNotFound>()("TenantNotFound", {
  ...base,
  tenant: Schema.String
}) {
  static readonly code = "TENANT_NOT_FOUND"
  readonly code = TenantNotFound.code
}

export class AlreadyExists extends Schema.TaggedError<AlreadyExists>()("AlreadyExists", {
  ...base
}) {
  static readonly code = "ALREADY_EXISTS"
  readonly code = AlreadyExists.code
}

export class AuthenticationFailed extends Schema.TaggedError<AuthenticationFailed>()("AuthenticationFailed", {
  ...base
}) {
  static readonly code = "AUTHENTICATION_FAILED"
  readonly code = AuthenticationFailed.code
}

export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  ...base,
  cause: Schema.optional(Schema.Defect)
}) {
  static readonly code = "STORE_ERROR"
  readonly code = StoreError.code
}

export class ProtocolError extends Schema.TaggedError<ProtocolError>()("ProtocolError", {
  ...base
}) {
  static readonly code = "PROTOCOL_ERROR"
  readonly code = ProtocolError.code
}

export class LimitExceeded extends Schema.TaggedError<LimitExceeded>()("LimitExceeded", {
  ...base
}) {
  static readonly code = "LIMIT_EXCEEDED"
  readonly code = LimitExceeded.code
}

export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", {
  ...base
}) {
  static readonly code = "REQUEST_TIMEOUT"
  readonly code = RequestTimeout.code
}

export class ConnectionClosed extends Schema.TaggedError<ConnectionClosed>()("ConnectionClosed", {
  ...base
}) {
  static readonly code = "CONNECTION_CLOSED"
  readonly code = ConnectionClosed.code
}

/** Every CommyError member; add new members here. */
const classes = [
  FileError,
  FileTooShort,
  WatcherError,
  VariableNotFound,
  InvalidOffset,
  InvalidArgument,
  SimdError,
  DetachedBuffer,
  MappingClosed,
  NativeUnavailable,
  PermissionDenied,
  ServiceNotFound,
  InvalidName,
  TypeMismatch,
  ValueTooLarge,
  CorruptFile,
  UnsupportedVersion,
  CapacityExceeded,
  LockTimeout,
  VersionConflict,
  TenantNotFound,
  AlreadyExists,
  AuthenticationFailed,
  StoreError,
  ProtocolError,
  LimitExceeded,
  RequestTimeout,
  ConnectionClosed
] as const

export type CommyError = InstanceType<(typeof classes)[number]>

/** Schema of the whole union, for encoding errors at a boundary. */
export const CommyError = Schema.Union(...classes)

export type CommyErrorCode = CommyError["code"]

const byCode: ReadonlyMap<string, (typeof classes)[number]> = new Map(classes.map((c) => [c.code, c]))

/** All stable codes, in declaration order (listed in docs/protocol.md). */
export const commyErrorCodes: ReadonlyArray<CommyErrorCode> = classes.map((c) => c.code)

/** The CommyError class for a stable code, if this version knows it. */
export const classForCode = (code: string) => byCode.get(code)

/** True for any CommyError member. */
export const isCommyError = (u: unknown): u is CommyError =>
  typeof u === "object" && u !== null && classes.some((c) => u instanceof c)
