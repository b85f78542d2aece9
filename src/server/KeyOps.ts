/**
 * The protocol's key and grant operations for one connection (docs/protocol.md, "Keys and
 * grants"): what `commy key` and `commy grant` do on the server's host, for a remote operator.
 *
 * Operators only: a key that manages keys can mint any right, so nothing less may do it. The
 * secret of a new key is returned once and kept only as its hash, as with the CLI.
 */
import * as Effect from "effect/Effect"
import { type CommyError, InvalidArgument } from "../CommyError.js"
import type { KeyInfo } from "../protocol/Messages.js"
import type { ApiKeyRecord, MetadataStoreService, Principal, Right } from "./MetadataStore.js"
import { operatorCheck } from "./TenantOps.js"

export interface KeyOps {
  readonly create: (input: { readonly tenant: string; readonly label?: string | undefined; readonly operator?: boolean | undefined }) => Effect.Effect<{ readonly key: KeyInfo; readonly secret: string }, CommyError>
  readonly list: (tenant: string) => Effect.Effect<{ readonly keys: ReadonlyArray<KeyInfo> }, CommyError>
  readonly revoke: (tenant: string, keyId: string) => Effect.Effect<Record<string, never>, CommyError>
  readonly grant: (input: { readonly tenant: string; readonly keyId: string; readonly service: string; readonly rights: ReadonlyArray<Right> }) => Effect.Effect<Record<string, never>, CommyError>
  readonly grants: (tenant: string, keyId: string) => Effect.Effect<{ readonly grants: ReadonlyArray<{ readonly service: string; readonly rights: ReadonlyArray<Right> }> }, CommyError>
}

const MAX_LABEL = 200

const info = (k: ApiKeyRecord): KeyInfo => ({
  id: k.id,
  tenant: k.tenant,
  label: k.label,
  createdAt: k.createdAt,
  revoked: k.revoked,
  operator: k.operator
})

export const makeKeyOps = (store: MetadataStoreService, principals: Map<string, Principal>): KeyOps => {
  const { requireOperator } = operatorCheck(store, principals)
  return {
    create: (input) =>
      Effect.gen(function*() {
        yield* requireOperator("key.create")
        const label = input.label ?? ""
        if (label.length > MAX_LABEL || /[\u0000-\u001f\u007f]/.test(label)) {
          return yield* new InvalidArgument({ message: `a key label is at most ${MAX_LABEL} characters, without control characters` })
        }
        const { record, secret } = yield* store.createKey({ tenant: input.tenant, label, operator: input.operator ?? false })
        return { key: info(record), secret }
      }),
    list: (tenant) =>
      Effect.gen(function*() {
        yield* requireOperator("key.list")
        return { keys: (yield* store.listKeys(tenant)).map(info) }
      }),
    revoke: (tenant, keyId) =>
      Effect.gen(function*() {
        yield* requireOperator("key.revoke")
        yield* store.revokeKey(tenant, keyId)
        return {}
      }),
    grant: (input) =>
      Effect.gen(function*() {
        yield* requireOperator("grant.set")
        yield* store.grant(input)
        return {}
      }),
    grants: (tenant, keyId) =>
      Effect.gen(function*() {
        yield* requireOperator("grant.list")
        const grants = yield* store.listGrants(tenant, keyId)
        return { grants: grants.map((g) => ({ service: g.service, rights: g.rights })) }
      })
  }
}
