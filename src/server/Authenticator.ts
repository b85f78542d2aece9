/**
 * Authenticator: how a connection proves who it is, per tenant (the seed's "API key, mTLS,
 * custom"). One handler per `method` of the protocol's `auth` request:
 *
 * - `key`  (default) an API key, checked against the metadata store's hashes;
 * - `mtls` the client certificate the TLS handshake verified (server started with a client CA),
 *          bound to a key with `commy key bind-cert`;
 * - anything else: handlers the embedding program supplies (`Authenticator.layer({ custom })`),
 *   e.g. a token checked against an identity provider. They return a principal, whose grants
 *   come from the store like any key's.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { AuthenticationFailed, type StoreError } from "../CommyError.js"
import { MetadataStore, type MetadataStoreService, type Principal } from "./MetadataStore.js"

export interface AuthRequest {
  readonly tenant: string
  readonly method: string
  /** API key (method `key`). */
  readonly key?: string | undefined
  /** Opaque credential for custom methods. */
  readonly token?: string | undefined
}

/** What the transport knows about the peer. */
export interface Peer {
  readonly remoteAddress?: string | undefined
  /** Present when the client sent a certificate; `authorized` when it chains to the client CA. */
  readonly certificate?: { readonly fingerprint256: string; readonly authorized: boolean } | undefined
}

export type AuthHandler = (
  request: AuthRequest,
  peer: Peer,
  store: MetadataStoreService
) => Effect.Effect<Principal, AuthenticationFailed | StoreError>

export interface AuthenticatorService {
  readonly authenticate: (request: AuthRequest, peer: Peer) => Effect.Effect<Principal, AuthenticationFailed | StoreError>
  readonly methods: ReadonlyArray<string>
}

const failed = (message: string) => Effect.fail(new AuthenticationFailed({ message }))

export const apiKey: AuthHandler = (request, _peer, store) =>
  request.key === undefined ? failed("method key needs a key") : store.authenticate(request.tenant, request.key)

export const mtls: AuthHandler = (request, peer, store) =>
  peer.certificate?.authorized === true
    ? store.authenticateCertificate(request.tenant, peer.certificate.fingerprint256)
    : failed("no client certificate verified by the server's client CA")

export class Authenticator extends Context.Tag("commy/Authenticator")<Authenticator, AuthenticatorService>() {
  /** `key` and `mtls`, plus any custom methods (which may also replace those two). */
  static readonly layer = (
    options: { readonly custom?: Readonly<Record<string, AuthHandler>> } = {}
  ): Layer.Layer<Authenticator, never, MetadataStore> =>
    Layer.effect(
      Authenticator,
      Effect.map(MetadataStore, (store): AuthenticatorService => {
        const handlers: Record<string, AuthHandler> = { key: apiKey, mtls, ...options.custom }
        return {
          methods: Object.keys(handlers),
          authenticate: (request, peer) => {
            const handler = Object.hasOwn(handlers, request.method) ? handlers[request.method] : undefined
            return handler === undefined
              ? failed(`unknown authentication method ${JSON.stringify(request.method)}`)
              : handler(request, peer, store)
          }
        }
      })
    )
}
