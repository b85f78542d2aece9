/**
 * Subscription: one client's subscription to one service, and its pushes.
 *
 * Values wait in `pending`, the latest per variable, so a slow client costs at most one value per
 * variable of memory. An idle socket gets each change at once; one with data still buffered gets
 * the pending values coalesced into the next flush. A socket that stays above the high-water mark
 * for `slowConsumerMs` is closed (4008) rather than letting the server slow down or buffer more.
 */
import type { WebSocket } from "ws"
import { encodeChangedPush, encodeFrame } from "../protocol/Codec.js"
import { CloseCodes, type VariableInfo, type VariableValue } from "../protocol/Messages.js"
import type { Limits } from "./Connection.js"
import type { OpenService, Subscriber } from "./ServiceRegistry.js"

/** Event-loop turns, counted by one setImmediate per turn in which someone asked. */
let turn = 0
let turnPending = false
const currentTurn = (): number => {
  if (!turnPending) {
    turnPending = true
    setImmediate(() => {
      turn++
      turnPending = false
    })
  }
  return turn
}

export class Subscription implements Subscriber {
  private readonly pending = new Map<string, VariableValue>()
  private layout: ReadonlyArray<VariableInfo> | undefined
  /** False until the snapshot and caught_up went out: changes before that wait in `pending`. */
  private ready = false
  private scheduled = false
  private slowSince = 0
  /** The loop turn of the last immediate flush. */
  private immediateTurn = -1
  private ended = false

  constructor(
    readonly id: number,
    readonly service: OpenService,
    private readonly ws: WebSocket,
    private readonly limits: Limits,
    /** Called once when the subscription ends from the server's side. */
    private readonly onEnd: (subscription: Subscription) => void
  ) {}

  /** After the snapshot: from now on changes are pushed. */
  start() {
    this.ready = true
    this.schedule(0)
  }

  deliver(values: ReadonlyArray<VariableValue>, layout?: ReadonlyArray<VariableInfo>) {
    for (const v of values) {
      const known = this.pending.get(v.name)
      if (!known || known.version < v.version) this.pending.set(v.name, v)
    }
    if (layout) this.layout = layout
    // An idle socket gets the first push of a loop turn now: waiting for setImmediate would queue
    // it behind whatever the poll phase brings. Later changes in the same turn (pipelined writes
    // arrive many to a socket read) coalesce into one flush at setImmediate: over plain TCP
    // `bufferedAmount` is always 0, and a frame per write per subscriber saturated the server.
    const turn = currentTurn()
    if (this.ready && !this.scheduled && this.ws.bufferedAmount === 0 && this.immediateTurn !== turn) {
      this.immediateTurn = turn
      this.flush()
    } else this.schedule(0)
  }

  /** The service went away (deleted, server closing): tell the client why. */
  end(code: string, message: string) {
    this.stop()
    this.onEnd(this)
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(encodeFrame({ push: "ended", sub: this.id, code, message }))
  }

  /** Stops pushing (unsubscribed or connection closed). */
  stop() {
    this.ended = true
    this.service.subscribers.delete(this)
  }

  private schedule(delayMs: number) {
    if (this.scheduled || !this.ready || this.ended) return
    this.scheduled = true
    if (delayMs === 0) setImmediate(() => this.flush())
    else setTimeout(() => this.flush(), delayMs)
  }

  private flush() {
    this.scheduled = false
    const { ws, limits } = this
    if (this.ended || ws.readyState !== ws.OPEN) return
    if (this.pending.size === 0 && this.layout === undefined) return
    if (ws.bufferedAmount > limits.highWaterBytes) {
      const now = Date.now()
      if (this.slowSince === 0) this.slowSince = now
      if (now - this.slowSince > limits.slowConsumerMs) {
        return ws.close(CloseCodes.slowConsumer, "subscriber too slow: pushes backed up")
      }
      return this.schedule(5)
    }
    this.slowSince = 0
    const values = [...this.pending.values()]
    this.pending.clear()
    const layout = this.layout
    this.layout = undefined
    ws.send(encodeChangedPush(this.id, values, layout))
  }
}
