/**
 * The protocol's tenant operations for one connection (docs/protocol.md, "Tenants").
 *
 * `tenant.create` and `tenant.delete` need an operator: a connection that authenticated with at
 * least one operator key. Operators also get and list every tenant; other connections only the
 * tenants they authenticated to. Key status is asked of the store on every call (these are rare
 * operations), so a revoked key or a deleted tenant takes effect at once, unlike grants (cached
 * for a second by the connection).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { type CommyError, PermissionDenied } from "../CommyError.js"
import { checkName } from "../local/Directory.js"
import type { TenantInfo } from "../protocol/Messages.js"
import type { MetadataStoreService, Principal, Tenant } from "./MetadataStore.js"
import type { ServiceRegistry } from "./ServiceRegistry.js"

export interface TenantOps {
  readonly create: (tenant: string) => Effect.Effect<{ readonly tenant: TenantInfo }, CommyError>
  readonly get: (tenant: string) => Effect.Effect<{ readonly tenant: TenantInfo }, CommyError>
  readonly list: Effect.Effect<{ readonly tenants: ReadonlyArray<TenantInfo> }, CommyError>
  readonly remove: (tenant: string) => Effect.Effect<Record<string, never>, CommyError>
}

/**
 * Whether the connection is an operator now: any key it authenticated with is a valid operator
 * key (asked of the store each time, so a revocation takes effect at once).
 */
export const operatorCheck = (store: MetadataStoreService, principals: Map<string, Principal>) => {
  const isOperator = Effect.suspend(() =>
    Effect.map(
      Effect.forEach([...principals.values()], (p) => store.keyStatus(p)),
      (statuses) => statuses.some((s) => s.operator)
    )
  )
  const requireOperator = (op: string) =>
    Effect.flatMap(isOperator, (operator) =>
      operator ? Effect.void : Effect.fail(new PermissionDenied({ message: `${op} needs an operator key` })))
  return { isOperator, requireOperator }
}

/** `principals` is the connection's own map (tenant → principal); `remove` drops the deleted tenant from it. */
export const makeTenantOps = (
  store: MetadataStoreService,
  registry: ServiceRegistry,
  principals: Map<string, Principal>
): TenantOps => {
  const { isOperator, requireOperator } = operatorCheck(store, principals)

  /** The connection's principal for the tenant, if its key is still valid. */
  const activePrincipal = (tenant: string) =>
    Effect.suspend(() => {
      const principal = principals.get(tenant)
      if (principal === undefined) {
        return Effect.fail(new PermissionDenied({ message: `not authenticated to tenant ${JSON.stringify(tenant)}` }))
      }
      return Effect.flatMap(store.keyStatus(principal), (status) =>
        status.active
          ? Effect.succeed(principal)
          : Effect.fail(new PermissionDenied({ message: `the key used for tenant ${JSON.stringify(tenant)} is no longer valid` })))
    })

  /** Permission before the name: a non-operator learns nothing about tenants it cannot see. */
  const checked = (tenant: string, allowed: Effect.Effect<unknown, CommyError>) =>
    Effect.flatMap(allowed, () => {
      const bad = checkName(tenant)
      return bad ? Effect.fail(bad) : Effect.void
    })

  const info = (t: Tenant) =>
    Effect.map(store.countServices(t.name), (services): TenantInfo => ({ name: t.name, createdAt: t.createdAt, services }))

  return {
    create: (tenant) =>
      Effect.gen(function*() {
        yield* requireOperator("tenant.create")
        return { tenant: yield* info(yield* store.createTenant(tenant)) }
      }),
    get: (tenant) =>
      Effect.gen(function*() {
        yield* checked(tenant, Effect.flatMap(isOperator, (operator) => (operator ? Effect.void : activePrincipal(tenant))))
        return { tenant: yield* info(yield* store.getTenant(tenant)) }
      }),
    list: Effect.gen(function*() {
      if (yield* isOperator) return { tenants: yield* Effect.forEach(yield* store.listTenants, info) }
      const tenants: Array<Tenant> = []
      for (const name of [...principals.keys()].sort()) {
        // Tenants whose key was revoked, or that were deleted, since authenticating are left out.
        const visible = yield* Effect.either(Effect.zipRight(activePrincipal(name), store.getTenant(name)))
        if (Either.isRight(visible)) tenants.push(visible.right)
        else if (visible.left._tag === "StoreError") return yield* visible.left
      }
      return { tenants: yield* Effect.forEach(tenants, info) }
    }),
    remove: (tenant) =>
      Effect.gen(function*() {
        yield* checked(tenant, requireOperator("tenant.delete"))
        // The records go first, in one transaction: from then on the tenant's keys fail and no
        // service can be created in it. Then each service is closed (subscribers get `ended`)
        // and its file removed.
        const services = yield* store.deleteTenant(tenant)
        for (const record of services) {
          yield* registry.destroy(record, `service ${record.name} was deleted with its tenant ${record.tenant}`)
        }
        principals.delete(tenant)
        return {}
      })
  }
}
