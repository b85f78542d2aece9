/**
 * The wire protocol's messages (protocol version 1), as effect Schemas. docs/protocol.md is the
 * prose version. Every WebSocket binary frame is one MessagePack map; every frame is decoded with
 * these schemas at the boundary, on both sides.
 *
 * - Requests carry `id` (client-chosen unsigned integer, unique among its in-flight requests)
 *   and `op`. Any number may be in flight; replies may come in any order.
 * - Replies carry the same `id` and either `result` or `error: { code, message }`.
 * - Pushes carry `push` and no `id`.
 */
import * as Schema from "effect/Schema"

export const PROTOCOL_VERSION = 1

const Name = Schema.String
const Bytes = Schema.Uint8ArrayFromSelf
const Version = Schema.Number
const Id = Schema.Number.pipe(Schema.int(), Schema.nonNegative(), Schema.lessThanOrEqualTo(2 ** 32 - 1))
const Target = { tenant: Name, service: Name }

const request = <Op extends string, Fields extends Schema.Struct.Fields>(op: Op, fields: Fields) =>
  Schema.Struct({ id: Id, op: Schema.Literal(op), ...fields })

export const Hello = request("hello", { protocol: Schema.Number, client: Schema.optional(Schema.String) })
export const Auth = request("auth", {
  tenant: Name,
  /** "key" (default), "mtls", or a method the server was extended with. */
  method: Schema.optional(Schema.String),
  key: Schema.optional(Schema.String),
  token: Schema.optional(Schema.String)
})
export const Ping = request("ping", {})
/** Tenants: create and delete need an operator key; get and list show what the connection may see. */
export const TenantCreate = request("tenant.create", { tenant: Name })
export const TenantGet = request("tenant.get", { tenant: Name })
export const TenantList = request("tenant.list", {})
export const TenantDelete = request("tenant.delete", { tenant: Name })
/** Keys and grants: operators only. */
export const KeyCreate = request("key.create", {
  tenant: Name,
  label: Schema.optional(Schema.String),
  operator: Schema.optional(Schema.Boolean)
})
export const KeyList = request("key.list", { tenant: Name })
export const KeyRevoke = request("key.revoke", { tenant: Name, keyId: Schema.String })
export const RightName = Schema.Literal("read", "write", "admin")
/** Replaces the key's rights on `service` ("*" = every service); no rights removes the grant. */
export const GrantSet = request("grant.set", { tenant: Name, keyId: Schema.String, service: Name, rights: Schema.Array(RightName) })
export const GrantList = request("grant.list", { tenant: Name, keyId: Schema.String })
export const ServiceCreate = request("service.create", {
  ...Target,
  persistent: Schema.optional(Schema.Boolean),
  capacity: Schema.optional(Schema.Number),
  maxVariables: Schema.optional(Schema.Number)
})
export const ServiceGet = request("service.get", Target)
export const ServiceList = request("service.list", { tenant: Name })
export const ServiceDelete = request("service.delete", Target)
export const VarDefine = request("var.define", {
  ...Target,
  name: Name,
  /** Type id of docs/file-format.md (1 u8 … 14 struct). */
  type: Schema.Number,
  capacity: Schema.optional(Schema.Number),
  persistent: Schema.optional(Schema.Boolean)
})
export const VarRemove = request("var.remove", { ...Target, name: Name })
export const VarList = request("var.list", Target)
export const Read = request("read", { ...Target, names: Schema.optional(Schema.Array(Name)) })
export const Write = request("write", {
  ...Target,
  writes: Schema.Array(Schema.Struct({ name: Name, value: Bytes }))
})
export const Cas = request("cas", { ...Target, name: Name, expected: Version, value: Bytes })
export const Subscribe = request("subscribe", {
  ...Target,
  /** Versions the client already has, by variable name: only newer values are sent. */
  since: Schema.optional(Schema.Record({ key: Name, value: Version })),
  /** The service id those versions belong to; a different id forces a full, "resynced" snapshot. */
  serviceId: Schema.optional(Schema.String)
})
export const Unsubscribe = request("unsubscribe", { sub: Id })
/** Where the service file is; `writable: true` also asks for the write right (to map it writable). */
export const Locate = request("locate", { ...Target, writable: Schema.optional(Schema.Boolean) })

export const Request = Schema.Union(
  Hello,
  Auth,
  Ping,
  TenantCreate,
  TenantGet,
  TenantList,
  TenantDelete,
  KeyCreate,
  KeyList,
  KeyRevoke,
  GrantSet,
  GrantList,
  ServiceCreate,
  ServiceGet,
  ServiceList,
  ServiceDelete,
  VarDefine,
  VarRemove,
  VarList,
  Read,
  Write,
  Cas,
  Subscribe,
  Unsubscribe,
  Locate
)
export type Request = typeof Request.Type
export type Op = Request["op"]

// ---------- results ----------

export const VariableValue = Schema.Struct({ name: Name, version: Version, value: Bytes })
export type VariableValue = typeof VariableValue.Type

export const VariableInfo = Schema.Struct({
  name: Name,
  type: Schema.Number,
  capacity: Schema.Number,
  persistent: Schema.Boolean,
  version: Version
})
export type VariableInfo = typeof VariableInfo.Type

export const ServiceInfo = Schema.Struct({
  tenant: Name,
  name: Name,
  id: Schema.String,
  persistent: Schema.Boolean
})
export type ServiceInfo = typeof ServiceInfo.Type

export const TenantInfo = Schema.Struct({
  name: Name,
  /** Milliseconds since the epoch. */
  createdAt: Schema.Number,
  /** How many services the tenant holds (all of them, whatever the caller's grants). */
  services: Schema.Number
})
export type TenantInfo = typeof TenantInfo.Type

export const ErrorBody = Schema.Struct({
  code: Schema.String,
  message: Schema.String,
  /** VERSION_CONFLICT: the variable's current version. */
  current: Schema.optional(Schema.Number)
})
export type ErrorBody = typeof ErrorBody.Type

// Error first: `result: Unknown` would also accept a frame without `result`.
export const Reply = Schema.Union(
  Schema.Struct({ id: Schema.NullOr(Id), error: ErrorBody }),
  Schema.Struct({ id: Id, result: Schema.Unknown })
)
export type Reply = typeof Reply.Type

// Result shapes per op (decoded by the client from `result`).
export const HelloResult = Schema.Struct({
  protocol: Schema.Number,
  server: Schema.String,
  /** Identity of the server's machine: a client with the same host id can map files locally. */
  host: Schema.String,
  maxPayload: Schema.Number,
  maxInFlight: Schema.Number,
  heartbeatMs: Schema.Number
})
export const AuthResult = Schema.Struct({ tenant: Name, keyId: Schema.String })
export const TenantResult = Schema.Struct({ tenant: TenantInfo })
export const TenantListResult = Schema.Struct({ tenants: Schema.Array(TenantInfo) })
export const KeyInfo = Schema.Struct({
  /** Public id (the part of the key string before the secret); safe to log. */
  id: Schema.String,
  tenant: Name,
  label: Schema.String,
  /** Milliseconds since the epoch. */
  createdAt: Schema.Number,
  revoked: Schema.Boolean,
  operator: Schema.Boolean
})
export type KeyInfo = typeof KeyInfo.Type
/** `secret` is the whole key string, shown this once: the server keeps only its hash. */
export const KeyCreateResult = Schema.Struct({ key: KeyInfo, secret: Schema.String })
export const KeyListResult = Schema.Struct({ keys: Schema.Array(KeyInfo) })
export const GrantInfo = Schema.Struct({ service: Name, rights: Schema.Array(RightName) })
export type GrantInfo = typeof GrantInfo.Type
export const GrantListResult = Schema.Struct({ grants: Schema.Array(GrantInfo) })
export const ServiceResult = Schema.Struct({ service: ServiceInfo })
export const ServiceListResult = Schema.Struct({ services: Schema.Array(ServiceInfo) })
export const VarListResult = Schema.Struct({ variables: Schema.Array(VariableInfo) })
export const ReadResult = Schema.Struct({ values: Schema.Array(VariableValue) })
export const WriteResult = Schema.Struct({ versions: Schema.Array(Version) })
export const CasResult = Schema.Struct({ version: Version })
export const SubscribeResult = Schema.Struct({ sub: Id, serviceId: Schema.String })
export const LocateResult = Schema.Struct({ host: Schema.String, path: Schema.String, size: Schema.Number })
export const Empty = Schema.Struct({})

// ---------- pushes ----------

export const SnapshotPush = Schema.Struct({
  push: Schema.Literal("snapshot"),
  sub: Id,
  /** The variables and their types, so a client can build its mirror. */
  layout: Schema.Array(VariableInfo),
  values: Schema.Array(VariableValue),
  /** Variables the client listed in `since` that no longer exist. */
  removed: Schema.Array(Name),
  /** True when the client's `since` could not be replayed: drop everything you had. */
  resynced: Schema.Boolean
})
export const CaughtUpPush = Schema.Struct({ push: Schema.Literal("caught_up"), sub: Id })
export const ChangedPush = Schema.Struct({
  push: Schema.Literal("changed"),
  sub: Id,
  values: Schema.Array(VariableValue),
  /** Present when variables were defined or removed since the last push. */
  layout: Schema.optional(Schema.Array(VariableInfo)),
  removed: Schema.optional(Schema.Array(Name))
})
export const EndedPush = Schema.Struct({
  push: Schema.Literal("ended"),
  sub: Id,
  code: Schema.String,
  message: Schema.String
})
export const Push = Schema.Union(SnapshotPush, CaughtUpPush, ChangedPush, EndedPush)
export type Push = typeof Push.Type

/** Anything the server sends. */
export const ServerMessage = Schema.Union(Reply, Push)
export type ServerMessage = typeof ServerMessage.Type

/** WebSocket close codes the server uses (4000-4999 are application codes). */
export const CloseCodes = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  tooBig: 1009,
  authTimeout: 4001,
  slowConsumer: 4008,
  tooManyErrors: 4009
} as const
