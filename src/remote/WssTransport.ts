/**
 * WssTransport: the client side of protocol v1 over one WebSocket (the `ws` package).
 *
 * - Every request gets an id; replies are matched by id, so any number can be in flight and a
 *   lost reply fails only its own request (with RequestTimeout), never the ones after it.
 * - On a dropped connection: pending requests fail with ConnectionClosed, the transport
 *   reconnects with exponential backoff and full jitter, says hello, re-authenticates every
 *   tenant, and re-subscribes every subscription from the versions it last saw.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import WebSocket from "ws"
import { type CommyError, ConnectionClosed, LimitExceeded, RequestTimeout } from "../CommyError.js"
import { millisOf } from "../Durations.js"
import { decodeResult, decodeServerMessage, encodeRequest, errorFromBody } from "../protocol/Codec.js"
import {
  AuthResult,
  HelloResult,
  PROTOCOL_VERSION,
  type Push,
  type Request,
  SubscribeResult
} from "../protocol/Messages.js"

/**
 * How to authenticate to one tenant: an API key (`commy_<id>_<secret>`), the client certificate
 * (`method: "mtls"`, with `cert`/`key` in the transport options), or a custom method the server
 * was extended with (`method` + `token`).
 */
export type Credentials =
  | { readonly tenant: string; readonly key: string }
  | { readonly tenant: string; readonly method: "mtls" }
  | { readonly tenant: string; readonly method: string; readonly token: string }

export interface TransportOptions {
  /** `wss://host:port` (or `ws://` for an explicitly insecure loopback server). */
  readonly url: string
  readonly credentials: ReadonlyArray<Credentials>
  /** PEM of a CA (or the server's self-signed certificate) to trust. */
  readonly ca?: string | Buffer
  /** Client certificate and key (PEM), for servers that ask for one. */
  readonly cert?: string | Buffer
  readonly key?: string | Buffer
  /** Default 10 s. */
  readonly requestTimeout?: Duration.DurationInput
  /** Backoff bounds for reconnecting; default 50 ms to 5 s. */
  readonly reconnectMin?: Duration.DurationInput
  readonly reconnectMax?: Duration.DurationInput
  /** Largest frame accepted from the server. Default 64 MiB. */
  readonly maxPayload?: number
}

/** A request as sent: any protocol request without its id (the transport assigns one). */
export type RequestBody = Request extends infer R ? R extends unknown ? Omit<R, "id"> : never : never

export interface SubscriptionCallbacks {
  /** Snapshot, changes and the end of a subscription, in order. */
  readonly onPush: (push: Push) => void
  /** The server's id of the service, on every (re)subscription. */
  readonly onSubscribed?: (serviceId: string) => void
  /** Versions to resume from after a reconnect, and the service id they belong to. */
  readonly resumeFrom: () => { readonly since: Record<string, number>; readonly serviceId?: string }
}

export interface RemoteSubscription {
  readonly serviceId: string
  readonly unsubscribe: Effect.Effect<void>
}

export interface WssTransportService {
  /** Sends one request and decodes its result. */
  readonly request: <A, I>(body: RequestBody, result: Schema.Schema<A, I>) => Effect.Effect<A, CommyError>
  readonly subscribe: (
    tenant: string,
    service: string,
    callbacks: SubscriptionCallbacks
  ) => Effect.Effect<RemoteSubscription, CommyError>
  /** The server's hello of the current connection. */
  readonly hello: () => typeof HelloResult.Type | undefined
  /** Connections made so far (1 + reconnects). */
  readonly connections: () => number
}

export class WssTransport extends Context.Tag("commy/WssTransport")<WssTransport, WssTransportService>() {
  static readonly layer = (options: TransportOptions): Layer.Layer<WssTransport, CommyError> =>
    Layer.scoped(WssTransport, connect(options))
}

interface Pending {
  readonly op: string
  readonly deadline: number
  readonly resolve: (reply: { result?: unknown; error?: { code: string; message: string } }) => void
}

interface ActiveSubscription {
  readonly tenant: string
  readonly service: string
  readonly callbacks: SubscriptionCallbacks
  /** The server's id for it on the current connection. */
  sub: number
  serviceId: string
}

/** Connects (failing if the first connection or its authentication fails) and stays connected. */
export const connect = (options: TransportOptions): Effect.Effect<WssTransportService, CommyError, Scope.Scope> =>
  Effect.gen(function*() {
    const timeoutMs = yield* millisOf("requestTimeout", options.requestTimeout, "10 seconds")
    const minDelay = yield* millisOf("reconnectMin", options.reconnectMin, "50 millis")
    const maxDelay = yield* millisOf("reconnectMax", options.reconnectMax, "5 seconds")
    const pending = new Map<number, Pending>()
    const subscriptions = new Set<ActiveSubscription>()
    const bySub = new Map<number, ActiveSubscription>()
    let ws: WebSocket | undefined
    let nextId = 1
    let hello: typeof HelloResult.Type | undefined
    let closed = false
    let connections = 0
    let attempt = 0

    type Reply = { result?: unknown; error?: { code: string; message: string } }

    // One sweeper for every request's deadline instead of a timer per request.
    let sweeper: ReturnType<typeof setInterval> | undefined
    const sweep = () => {
      const now = Date.now()
      for (const entry of [...pending.values()]) {
        if (entry.deadline <= now) {
          entry.resolve({ error: { code: RequestTimeout.code, message: `no reply to ${entry.op} within ${timeoutMs} ms` } })
        }
      }
      if (pending.size === 0 && sweeper) {
        clearInterval(sweeper)
        sweeper = undefined
      }
    }

    /** Sends one request; `onReply` runs exactly once (reply, timeout or disconnect). Returns its id. */
    const send = (socket: WebSocket, body: RequestBody, onReply: (reply: Reply) => void, onResult?: (result: unknown) => void) => {
      const id = nextId++ >>> 0
      if (nextId > 0xffffffff) nextId = 1
      pending.set(id, {
        op: body.op,
        deadline: Date.now() + timeoutMs,
        resolve: (reply) => {
          if (!pending.delete(id)) return
          if (onResult && reply.result !== undefined) onResult(reply.result)
          onReply(reply)
        }
      })
      if (!sweeper) sweeper = setInterval(sweep, Math.max(10, Math.min(250, timeoutMs / 4))).unref()
      if (socket.readyState !== WebSocket.OPEN) {
        pending.get(id)!.resolve({ error: { code: ConnectionClosed.code, message: "not connected" } })
      } else {
        socket.send(encodeRequest(body, id))
      }
      return id
    }

    const rawRequest = (
      socket: WebSocket,
      body: RequestBody,
      /** Runs synchronously on a successful reply, before any later frame is handled. */
      onResult?: (result: unknown) => void
    ): Promise<Reply> => new Promise((resolve) => send(socket, body, resolve, onResult))

    const toResult = <A, I>(reply: { result?: unknown; error?: { code: string; message: string } }, schema: Schema.Schema<A, I>) =>
      reply.error
        ? Either.left(errorFromBody(reply.error))
        : decodeResult(schema)(reply.result)

    const onPush = (push: Push) => {
      const active = bySub.get(push.sub)
      if (!active) return
      if (push.push === "ended") {
        bySub.delete(push.sub)
        subscriptions.delete(active)
      }
      active.callbacks.onPush(push)
    }

    const failPending = (message: string) => {
      for (const p of [...pending.values()]) p.resolve({ error: { code: ConnectionClosed.code, message } })
    }

    /** Opens a socket, says hello, authenticates, re-subscribes. Resolves with an error or undefined. */
    const open = (): Promise<CommyError | undefined> =>
      new Promise((resolve) => {
        const socket = new WebSocket(options.url, {
          ...(options.ca ? { ca: options.ca } : {}),
          ...(options.cert ? { cert: options.cert } : {}),
          ...(options.key ? { key: options.key } : {}),
          maxPayload: options.maxPayload ?? 64 * 1024 * 1024,
          perMessageDeflate: false,
          handshakeTimeout: timeoutMs
        })
        let settled = false
        const settle = (error: CommyError | undefined) => {
          if (settled) return
          settled = true
          resolve(error)
        }
        socket.binaryType = "nodebuffer"
        socket.on("message", (data: Buffer, isBinary) => {
          if (!isBinary) return
          const decoded = decodeServerMessage(data)
          if (Either.isLeft(decoded)) return
          const message = decoded.right
          if ("push" in message) return onPush(message)
          if (message.id === null) return
          const waiting = pending.get(message.id)
          if (waiting) waiting.resolve("error" in message ? { error: message.error } : { result: message.result ?? {} })
        })
        socket.on("error", (cause) => settle(new ConnectionClosed({ message: `cannot connect to ${options.url}: ${cause.message}` })))
        socket.on("close", (code, reason) => {
          if (ws === socket) ws = undefined
          failPending(`connection closed (${code} ${reason.toString()})`)
          settle(new ConnectionClosed({ message: `connection closed (${code} ${reason.toString()})` }))
          if (!closed && connections > 0) scheduleReconnect()
        })
        socket.on("open", async () => {
          const greeting = toResult(await rawRequest(socket, { op: "hello", protocol: PROTOCOL_VERSION, client: "commy-ts/0.1.0" }), HelloResult)
          if (Either.isLeft(greeting)) {
            socket.close()
            return settle(greeting.left)
          }
          for (const credentials of options.credentials) {
            const auth = toResult(await rawRequest(socket, { op: "auth", ...credentials }), AuthResult)
            if (Either.isLeft(auth)) {
              socket.close()
              return settle(auth.left)
            }
          }
          ws = socket
          hello = greeting.right
          connections++
          attempt = 0
          bySub.clear()
          for (const active of subscriptions) {
            const resumed = await subscribeOn(socket, active)
            if (resumed) {
              // Could not resume (service gone, right revoked): the subscriber learns why.
              subscriptions.delete(active)
              active.callbacks.onPush({ push: "ended", sub: active.sub, code: resumed.code, message: resumed.message })
            }
          }
          settle(undefined)
        })
      })

    const subscribeOn = async (socket: WebSocket, active: ActiveSubscription): Promise<CommyError | undefined> => {
      const resume = active.callbacks.resumeFrom()
      const reply = toResult(
        await rawRequest(socket, {
          op: "subscribe",
          tenant: active.tenant,
          service: active.service,
          since: resume.since,
          ...(resume.serviceId === undefined ? {} : { serviceId: resume.serviceId })
        }, (result) => {
          // The snapshot push may be in the same TCP chunk as this reply: register first.
          const decoded = decodeResult(SubscribeResult)(result)
          if (Either.isRight(decoded)) {
            active.sub = decoded.right.sub
            active.serviceId = decoded.right.serviceId
            bySub.set(active.sub, active)
            active.callbacks.onSubscribed?.(decoded.right.serviceId)
          }
        }),
        SubscribeResult
      )
      return Either.isLeft(reply) ? reply.left : undefined
    }

    let reconnectTimer: ReturnType<typeof setTimeout> | undefined
    const scheduleReconnect = () => {
      if (closed || reconnectTimer) return
      // Full jitter: many clients dropped at once do not come back in lockstep.
      const ceiling = Math.min(maxDelay, minDelay * 2 ** attempt++)
      reconnectTimer = setTimeout(async () => {
        reconnectTimer = undefined
        if (closed) return
        const failed = await open()
        if (failed) scheduleReconnect()
      }, Math.random() * ceiling)
    }

    const first = yield* Effect.promise(open)
    if (first) return yield* first

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        if (reconnectTimer) clearTimeout(reconnectTimer)
        if (sweeper) clearInterval(sweeper)
        failPending("transport closed")
        ws?.close(1000, "client closing")
      })
    )

    const request = <A, I>(body: RequestBody, schema: Schema.Schema<A, I>): Effect.Effect<A, CommyError> =>
      Effect.async<A, CommyError>((resume) => {
        const socket = ws
        if (!socket) return resume(Effect.fail(new ConnectionClosed({ message: "not connected (reconnecting)" })))
        if (pending.size >= (hello?.maxInFlight ?? 256)) {
          return resume(Effect.fail(new LimitExceeded({ message: "too many requests in flight" })))
        }
        const id = send(socket, body, (reply) => {
          const result = toResult(reply, schema)
          resume(Either.isRight(result) ? Effect.succeed(result.right) : Effect.fail(result.left))
        })
        // Interrupted: forget the request; a late reply is then ignored.
        return Effect.sync(() => void pending.delete(id))
      })

    const subscribe = (tenant: string, service: string, callbacks: SubscriptionCallbacks) =>
      Effect.gen(function*() {
        const socket = ws
        if (!socket) return yield* new ConnectionClosed({ message: "not connected (reconnecting)" })
        const active: ActiveSubscription = { tenant, service, callbacks, sub: -1, serviceId: "" }
        const failed = yield* Effect.promise(() => subscribeOn(socket, active))
        if (failed) return yield* failed
        subscriptions.add(active)
        const handle: RemoteSubscription = {
          serviceId: active.serviceId,
          unsubscribe: Effect.suspend(() => {
            subscriptions.delete(active)
            bySub.delete(active.sub)
            const current = ws
            return current ? Effect.ignore(Effect.promise(() => rawRequest(current, { op: "unsubscribe", sub: active.sub }))) : Effect.void
          })
        }
        return handle
      })

    return {
      request,
      subscribe,
      hello: () => hello,
      connections: () => connections
    } satisfies WssTransportService
  })
