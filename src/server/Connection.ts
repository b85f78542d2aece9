/**
 * Connection: one client's WebSocket, speaking protocol v1 (docs/protocol.md).
 *
 * Requests run concurrently (up to `maxInFlight`), each answered with its own `id`. Nothing but
 * `hello` and `auth` is possible before authenticating to the tenant an operation names, and a
 * connection that has not authenticated within `authTimeoutMs` is closed. Every operation checks
 * the principal's grant on the service. Pushes to a slow client coalesce to the latest value per
 * variable (memory bounded by the service's variable count); a client that stays behind for
 * `slowConsumerMs` is closed with a reason instead of slowing the server.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type { WebSocket } from "ws"
import {
  AuthenticationFailed,
  type CommyError,
  InvalidArgument,
  isCommyError,
  LimitExceeded,
  PermissionDenied,
  ProtocolError,
  ServiceNotFound
} from "../CommyError.js"
import { checkName } from "../local/Directory.js"
import { createServiceFile, removeServiceFile, servicePath } from "../local/ServiceFiles.js"
import { decodeRequest, encodeFrame, encodeReply, errorBody } from "../protocol/Codec.js"
import {
  CloseCodes,
  PROTOCOL_VERSION,
  type Request,
  type VariableValue
} from "../protocol/Messages.js"
import type { AuthenticatorService, Peer } from "./Authenticator.js"
import { Subscription } from "./Subscription.js"
import { makeKeyOps } from "./KeyOps.js"
import { makeTenantOps } from "./TenantOps.js"
import type { MetadataStoreService, Principal, Right, ServiceRecord } from "./MetadataStore.js"
import { broadcast, layoutOf, type OpenService, type ServiceRegistry, wireType } from "./ServiceRegistry.js"

export interface Limits {
  readonly maxPayload: number
  readonly maxInFlight: number
  readonly maxSubscriptions: number
  readonly maxBatch: number
  readonly authTimeoutMs: number
  readonly heartbeatMs: number
  readonly slowConsumerMs: number
  /** bufferedAmount above which pushes wait (and the slow-consumer clock runs). */
  readonly highWaterBytes: number
  /** Largest service file a client may create, and most variables in one. */
  readonly maxServiceBytes: number
  readonly maxServiceVariables: number
  /** Most services one tenant may hold; `service.create` beyond it fails with LIMIT_EXCEEDED. */
  readonly maxServicesPerTenant: number
}

export const defaultLimits: Limits = {
  maxPayload: 1024 * 1024,
  maxInFlight: 256,
  maxSubscriptions: 256,
  maxBatch: 256,
  authTimeoutMs: 10_000,
  heartbeatMs: 30_000,
  slowConsumerMs: 10_000,
  highWaterBytes: 4 * 1024 * 1024,
  maxServiceBytes: 256 * 1024 * 1024,
  maxServiceVariables: 65_536,
  maxServicesPerTenant: 4096
}

/** Live counts, reported by GET /health. */
export interface ServerStats {
  connections: number
  subscriptions: number
}

export interface ServerContext {
  readonly stats: ServerStats
  readonly authenticator: AuthenticatorService
  readonly store: MetadataStoreService
  readonly registry: ServiceRegistry
  readonly root: string
  readonly host: string
  readonly version: string
  readonly limits: Limits
}

/** How long a grant lookup is reused: a revoked grant stops working within this time. */
const RIGHTS_TTL_MS = 1_000
const MAX_FAILED_AUTH = 5

type Outcome = { readonly result: unknown; readonly after?: () => void }

export const handleConnection = (ws: WebSocket, peer: Peer, ctx: ServerContext): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const fibers = yield* FiberSet.make<unknown, never>()
    const run = FiberSet.runtime(fibers)<never>()
    const runFork = yield* run
    const principals = new Map<string, Principal>()
    const tenants = makeTenantOps(ctx.store, ctx.registry, principals)
    const keys = makeKeyOps(ctx.store, principals)
    const rightsCache = new Map<string, { rights: ReadonlySet<Right>; at: number }>()
    const subscriptions = new Map<number, Subscription>()
    const self = {}
    let helloDone = false
    let inFlight = 0
    let failedAuth = 0
    let nextSub = 1
    const limits = ctx.limits

    ctx.stats.connections++
    const send = (message: unknown) => {
      if (ws.readyState === ws.OPEN) ws.send(encodeFrame(message))
    }
    const sendResult = (id: number, result: unknown) => {
      if (ws.readyState === ws.OPEN) ws.send(encodeReply(id, result))
    }
    const close = (code: number, reason: string) => {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason)
    }

    const authTimer = setTimeout(() => {
      if (principals.size === 0) close(CloseCodes.authTimeout, "not authenticated in time")
    }, limits.authTimeoutMs)

    // ---------- authorisation ----------

    const principalFor = (tenant: string) =>
      Effect.suspend(() => {
        const principal = principals.get(tenant)
        return principal
          ? Effect.succeed(principal)
          : Effect.fail(new PermissionDenied({ message: `not authenticated to tenant ${JSON.stringify(tenant)}` }))
      })

    const rightsOn = (principal: Principal, service: string) =>
      Effect.gen(function*() {
        // Keyed by the key id too: re-authenticating with another key must not inherit the old rights.
        const key = `${principal.tenant}\u0000${principal.keyId}\u0000${service}`
        const cached = rightsCache.get(key)
        if (cached && Date.now() - cached.at < RIGHTS_TTL_MS) return cached.rights
        const rights = yield* ctx.store.rightsFor(principal, service)
        rightsCache.set(key, { rights, at: Date.now() })
        return rights
      })

    /**
     * The service record, if the caller may use it with `right`. No right at all looks exactly
     * like a missing service, so names of other services do not leak.
     */
    const allows = (rights: ReadonlySet<Right>, right: Right) => rights.has(right) || rights.has("admin")

    const authorise = (tenant: string, service: string, right: Right) =>
      Effect.gen(function*() {
        const principal = yield* principalFor(tenant)
        const rights = yield* rightsOn(principal, service)
        if (rights.size === 0) {
          return yield* new ServiceNotFound({ message: `no service ${JSON.stringify(service)} in ${tenant}`, service })
        }
        if (!allows(rights, right)) return yield* new PermissionDenied({ message: `${right} right on ${service} required` })
        return { principal, record: yield* ctx.store.getService(tenant, service), rights }
      })

    /**
     * Services this connection used recently, with the rights it had: a read or write within
     * the rights TTL needs no store query and no registry lock (the hot path of every request).
     */
    const recent = new Map<
      string,
      { readonly service: OpenService; readonly rights: ReadonlySet<Right>; readonly principal: Principal; readonly at: number }
    >()

    /** The service, when this connection used it within the rights TTL with that right. */
    const cached = (tenant: string, service: string, right: Right): OpenService | undefined => {
      const hit = recent.get(`${tenant}\u0000${service}`)
      // Only for the principal it was authorised for (a later auth to the tenant replaces it).
      return hit && !hit.service.closed && Date.now() - hit.at < RIGHTS_TTL_MS && allows(hit.rights, right) &&
          principals.get(tenant) === hit.principal
        ? hit.service
        : undefined
    }

    const use = (tenant: string, service: string, right: Right): Effect.Effect<OpenService, CommyError> =>
      Effect.suspend(() => {
        const hit = cached(tenant, service, right)
        if (hit) return Effect.succeed(hit)
        return Effect.flatMap(authorise(tenant, service, right), ({ principal, record, rights }) =>
          Effect.tap(ctx.registry.acquire(record, self), (open) => {
            recent.set(`${tenant}\u0000${service}`, { service: open, rights, principal, at: Date.now() })
          }))
      })

    // The hot operations, synchronous: run without a fiber when the service is cached (the
    // common case), and from `dispatch` otherwise. Results are reply bodies or CommyErrors.
    type Hot = Extract<Request, { op: "read" | "write" | "cas" }>
    const hotRight = (req: Hot): Right => (req.op === "read" ? "read" : "write")
    const runHot = (service: OpenService, req: Hot): Outcome | CommyError => {
      switch (req.op) {
        case "read": {
          const snapshot = service.file.snapshotNow(req.names)
          if (!(snapshot instanceof Map)) return snapshot as CommyError
          const values = [...snapshot].map(([name, v]) => ({ name, version: v.version, value: v.value }))
          return { result: { values } }
        }
        case "write": {
          if (req.writes.length === 0 || req.writes.length > limits.maxBatch) {
            return new LimitExceeded({ message: `a write carries 1 to ${limits.maxBatch} values` })
          }
          const versions = service.file.writeNamedNow(req.writes)
          if (!Array.isArray(versions)) return versions as CommyError
          broadcast(service, req.writes.map((w, i) => ({ name: w.name, version: versions[i]!, value: w.value })))
          return { result: { versions } }
        }
        case "cas": {
          const version = service.file.compareAndSetNow(req.name, req.expected, req.value)
          if (typeof version !== "number") return version
          broadcast(service, [{ name: req.name, version, value: req.value }])
          return { result: { version } }
        }
      }
    }
    const hotEffect = (req: Hot): Effect.Effect<Outcome, CommyError> =>
      Effect.flatMap(use(req.tenant, req.service, hotRight(req)), (service) => {
        const outcome = runHot(service, req)
        return "result" in outcome ? Effect.succeed(outcome) : Effect.fail(outcome)
      })

    const info = (r: ServiceRecord) => ({ tenant: r.tenant, name: r.name, id: r.id, persistent: r.persistent })

    // ---------- operations ----------

    const dispatch = (req: Request): Effect.Effect<Outcome, CommyError> => {
      if (!helloDone && req.op !== "hello") {
        return Effect.fail(new ProtocolError({ message: "the first request must be hello" }))
      }
      switch (req.op) {
        case "hello":
          if (req.protocol !== PROTOCOL_VERSION) {
            return Effect.fail(new ProtocolError({ message: `protocol ${req.protocol} unsupported; this server speaks ${PROTOCOL_VERSION}` }))
          }
          helloDone = true
          return Effect.succeed({
            result: {
              protocol: PROTOCOL_VERSION,
              server: `commy/${ctx.version}`,
              host: ctx.host,
              maxPayload: limits.maxPayload,
              maxInFlight: limits.maxInFlight,
              heartbeatMs: limits.heartbeatMs
            }
          })
        case "auth":
          return Effect.matchEffect(ctx.authenticator.authenticate({ ...req, method: req.method ?? "key" }, peer), {
            onFailure: (error) => {
              if (++failedAuth >= MAX_FAILED_AUTH) setImmediate(() => close(CloseCodes.authTimeout, "too many failed authentications"))
              if (error._tag === "AuthenticationFailed") return Effect.fail(error)
              // A store failure is the server's problem: log it, tell the client only that auth failed.
              return Effect.zipRight(
                Effect.logError(`authentication could not be checked: ${error.message}`),
                Effect.fail(new AuthenticationFailed({ message: "authentication failed" }))
              )
            },
            onSuccess: (principal) => {
              principals.set(req.tenant, principal)
              return Effect.succeed({ result: { tenant: principal.tenant, keyId: principal.keyId } })
            }
          })
        case "ping":
          return Effect.succeed({ result: { time: Date.now() } })
        case "tenant.create":
          return Effect.map(tenants.create(req.tenant), (result) => ({ result }))
        case "tenant.get":
          return Effect.map(tenants.get(req.tenant), (result) => ({ result }))
        case "tenant.list":
          return Effect.map(tenants.list, (result) => ({ result }))
        case "tenant.delete":
          return Effect.map(tenants.remove(req.tenant), (result) => ({ result }))
        case "key.create":
          return Effect.map(keys.create(req), (result) => ({ result }))
        case "key.list":
          return Effect.map(keys.list(req.tenant), (result) => ({ result }))
        case "key.revoke":
          return Effect.map(keys.revoke(req.tenant, req.keyId), (result) => ({ result }))
        case "grant.set":
          return Effect.map(keys.grant(req), (result) => ({ result }))
        case "grant.list":
          return Effect.map(keys.grants(req.tenant, req.keyId), (result) => ({ result }))
        case "service.create":
          return Effect.gen(function*() {
            const principal = yield* principalFor(req.tenant)
            const rights = yield* rightsOn(principal, req.service)
            if (!rights.has("admin")) return yield* new PermissionDenied({ message: `admin right on ${req.service} required` })
            if ((req.capacity ?? 0) > limits.maxServiceBytes || (req.maxVariables ?? 0) > limits.maxServiceVariables) {
              return yield* new LimitExceeded({
                message: `a service holds at most ${limits.maxServiceBytes} bytes and ${limits.maxServiceVariables} variables`
              })
            }
            const record = yield* ctx.store.createService({
              tenant: req.tenant,
              name: req.service,
              persistent: req.persistent ?? false,
              maxServices: limits.maxServicesPerTenant
            })
            const created = yield* Effect.either(createServiceFile(ctx.root, {
              id: record.id,
              ...(req.capacity === undefined ? {} : { capacity: req.capacity }),
              ...(req.maxVariables === undefined ? {} : { maxVariables: req.maxVariables })
            }))
            if (Either.isLeft(created)) {
              yield* Effect.ignore(ctx.store.deleteService(req.tenant, req.service))
              return yield* created.left
            }
            // The tenant (or the service) may have been deleted while the file was written: its
            // deletion found no file to remove, so the file goes here.
            const current = yield* Effect.either(ctx.store.getService(req.tenant, req.service))
            if (Either.isLeft(current) || current.right.id !== record.id) {
              yield* Effect.ignore(removeServiceFile(ctx.root, record.id))
              return yield* new ServiceNotFound({ message: `${req.tenant}/${req.service} was deleted while it was created`, service: req.service })
            }
            // The creator is a client: a non-persistent service lives while its creator does.
            yield* ctx.registry.acquire(record, self)
            return { result: { service: info(record) } }
          })
        case "service.get":
          return Effect.map(authorise(req.tenant, req.service, "read"), (r) => ({ result: { service: info(r.record) } }))
        case "service.list":
          return Effect.gen(function*() {
            const principal = yield* principalFor(req.tenant)
            const all = yield* ctx.store.listServices(req.tenant)
            const visible: Array<ReturnType<typeof info>> = []
            for (const r of all) if ((yield* rightsOn(principal, r.name)).size > 0) visible.push(info(r))
            return { result: { services: visible } }
          })
        case "service.delete":
          return Effect.gen(function*() {
            const { record } = yield* authorise(req.tenant, req.service, "admin")
            yield* ctx.registry.destroy(record)
            return { result: {} }
          })
        case "var.define":
          return Effect.gen(function*() {
            const bad = checkName(req.name)
            if (bad) return yield* bad
            const type = wireType(req.type, req.capacity)
            if (typeof type === "string") return yield* new InvalidArgument({ message: type })
            const service = yield* use(req.tenant, req.service, "write")
            const variable = yield* service.file.define(req.name, type, { persistent: req.persistent ?? false })
            const version = yield* variable.version
            broadcast(service, [], yield* layoutOf(service.file))
            return { result: { name: req.name, type: req.type, capacity: type.capacity, persistent: req.persistent ?? false, version } }
          })
        case "var.remove":
          return Effect.gen(function*() {
            const service = yield* use(req.tenant, req.service, "admin")
            yield* service.file.remove(req.name)
            broadcast(service, [], yield* layoutOf(service.file))
            return { result: {} }
          })
        case "var.list":
          return Effect.gen(function*() {
            const service = yield* use(req.tenant, req.service, "read")
            return { result: { variables: yield* layoutOf(service.file) } }
          })
        case "read":
        case "write":
        case "cas":
          return hotEffect(req)
        case "subscribe":
          return Effect.gen(function*() {
            if (subscriptions.size >= limits.maxSubscriptions) {
              return yield* new LimitExceeded({ message: `at most ${limits.maxSubscriptions} subscriptions per connection` })
            }
            const service = yield* use(req.tenant, req.service, "read")
            const sub = new Subscription(nextSub++, service, ws, limits, (ended) => {
              if (subscriptions.delete(ended.id)) ctx.stats.subscriptions--
            })
            // Registered before the snapshot: a change racing it is queued, sent after caught_up.
            subscriptions.set(sub.id, sub)
            ctx.stats.subscriptions++
            service.subscribers.add(sub)
            const snapshot = yield* service.file.snapshot()
            const layout = yield* layoutOf(service.file)
            const resynced = req.serviceId !== undefined && req.serviceId !== service.record.id
            const since = resynced ? undefined : req.since
            const values: Array<VariableValue> = []
            let regressed = false
            for (const [name, v] of snapshot) {
              const known = since?.[name]
              if (known !== undefined && known > v.version) regressed = true
              if (known === undefined || known < v.version) values.push({ name, version: v.version, value: v.value })
            }
            const removed = since ? Object.keys(since).filter((name) => !snapshot.has(name)) : []
            // A client ahead of the server (it restarted without the values) cannot be replayed.
            const full = resynced || regressed
            const push = {
              push: "snapshot",
              sub: sub.id,
              layout,
              values: full ? [...snapshot].map(([name, v]) => ({ name, version: v.version, value: v.value })) : values,
              removed,
              resynced: full
            }
            return {
              result: { sub: sub.id, serviceId: service.record.id },
              after: () => {
                send(push)
                send({ push: "caught_up", sub: sub.id })
                sub.start()
              }
            }
          })
        case "unsubscribe":
          return Effect.sync(() => {
            const sub = subscriptions.get(req.sub)
            if (sub) {
              subscriptions.delete(req.sub)
              ctx.stats.subscriptions--
              sub.stop()
            }
            return { result: {} }
          })
        case "locate":
          return Effect.gen(function*() {
            // A mapping shows every value: even a writable one needs the read right too.
            const service = yield* use(req.tenant, req.service, "read")
            if (req.writable) yield* use(req.tenant, req.service, "write")
            return {
              result: { host: ctx.host, path: servicePath(ctx.root, service.record.id), size: service.file.accessor.buffer.byteLength }
            }
          })
      }
    }

    const reply = (id: number, exit: Exit.Exit<Outcome, CommyError>) => {
      if (Exit.isSuccess(exit)) {
        sendResult(id, exit.value.result)
        exit.value.after?.()
        return
      }
      const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
      const error = failure && isCommyError(failure)
        ? failure
        : new ProtocolError({ message: "internal error" })
      if (!failure) void Runtime.runFork(runtime)(Effect.logError("request failed", exit.cause))
      send({ id, error: errorBody(error) })
    }

    const onMessage = (data: Buffer | ArrayBuffer | Array<Buffer>, isBinary: boolean) => {
      if (!isBinary) {
        return send({ id: null, error: errorBody(new ProtocolError({ message: "text frames are not accepted: send MessagePack in binary frames" })) })
      }
      const frame = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data
      const decoded = decodeRequest(frame)
      if (Either.isLeft(decoded)) return send({ id: decoded.left.id, error: errorBody(decoded.left.error) })
      const req = decoded.right
      // Fast path: a read/write/cas on a service this connection already holds runs right here.
      if ((req.op === "read" || req.op === "write" || req.op === "cas") && helloDone) {
        const service = cached(req.tenant, req.service, hotRight(req))
        if (service) {
          const outcome = runHot(service, req)
          return "result" in outcome ? sendResult(req.id, outcome.result) : send({ id: req.id, error: errorBody(outcome) })
        }
      }
      if (inFlight >= limits.maxInFlight) {
        return send({ id: req.id, error: errorBody(new LimitExceeded({ message: `more than ${limits.maxInFlight} requests in flight` })) })
      }
      inFlight++
      runFork(Effect.exit(dispatch(req)).pipe(
        Effect.map((exit) => reply(req.id, exit)),
        Effect.ensuring(Effect.sync(() => inFlight--))
      ))
    }

    ws.on("message", onMessage)
    // Protocol violations (oversized frame: 1009, bad opcode, invalid UTF-8...) arrive here; ws
    // closes the socket itself with the matching code. Without a listener they would crash the server.
    ws.on("error", (cause) => {
      void Runtime.runFork(runtime)(Effect.logDebug(`connection error: ${cause.message}`))
    })

    // Heartbeat: a peer that does not answer a ping within one period is gone.
    let alive = true
    ws.on("pong", () => (alive = true))
    const heartbeat = setInterval(() => {
      if (!alive) return ws.terminate()
      alive = false
      ws.ping()
    }, limits.heartbeatMs)

    const cleanup = Effect.gen(function*() {
      clearTimeout(authTimer)
      clearInterval(heartbeat)
      for (const sub of subscriptions.values()) sub.stop()
      ctx.stats.subscriptions -= subscriptions.size
      subscriptions.clear()
      ctx.stats.connections--
      yield* FiberSet.clear(fibers)
      yield* ctx.registry.releaseAll(self)
    })
    yield* Effect.async<void>((resume) => {
      ws.once("close", () => resume(Effect.void))
      if (ws.readyState === ws.CLOSED) resume(Effect.void)
    }).pipe(
      // Server shutdown interrupts us: tell the client why before letting go.
      Effect.onInterrupt(() => Effect.sync(() => close(CloseCodes.goingAway, "server shutting down"))),
      Effect.ensuring(cleanup)
    )
  })
