/**
 * `state replace-provider FROM TO` as a pure function on a state, following Terraform's
 * `internal/command/state_replace_provider.go` (hashicorp/terraform at 883c7221, lines
 * 120-175): every resource whose provider is FROM gets TO, keeping its module and alias.
 * Unlike Terraform, which knows only resource-level providers, the per-instance providers
 * of OpenTofu 1.9+ (`provider["…"].alias["key"]` on an instance) are rewritten too.
 *
 * @module
 */

import { formatKey } from "./address.ts";
import {
  parseLegacyProviderConfig,
  parseProviderConfig,
  parseProviderSource,
  type ProviderConfigAddress,
} from "./_address_rules.ts";
import { formatInstanceAddress, instanceKey, resourceAddress } from "./address.ts";
import { StateEditError } from "./errors.ts";
import { printable } from "./_printable.ts";
import type { GaibState } from "./types.ts";

/** The hosts a source without a hostname means: Terraform's registry and OpenTofu's. */
const DEFAULT_HOSTS = new Set(["registry.terraform.io", "registry.opentofu.org"]);

/** One provider address that changes. */
export interface ProviderChange {
  /** The resource (`resource`) or instance (`instance`) address. */
  address: string;
  /** Whether the resource's `provider` or an instance's own `provider` changes. */
  level: "resource" | "instance";
  /** The provider configuration address before. */
  from: string;
  /** The provider configuration address after. */
  to: string;
}

/** What {@linkcode replaceProvider} did. */
export interface ProviderReplaceResult {
  /** The new state (same serial: the caller raises it). */
  state: GaibState;
  /** Every provider address that changed, in state order. */
  changes: ProviderChange[];
  /** FROM, normalized (`*` for the host when none was given: either registry). */
  from: string;
  /** TO, normalized (`*` for the host when none was given: the host each address had). */
  to: string;
}

interface Source {
  host: string | null;
  namespace: string;
  type: string;
}

function parseSource(text: string, which: "FROM" | "TO"): Source {
  const normalized = parseProviderSource(text);
  if (normalized === null || (which === "TO" && normalized.split("/")[1] === "-")) {
    throw new StateEditError(
      `Invalid ${which} provider "${printable(text)}": expected a provider source such as ` +
        `gaib/discord or registry.terraform.io/gaib/discord` +
        (which === "FROM" ? " (-/discord for a pre-0.13 legacy address)." : "."),
      "InvalidProvider",
      text,
    );
  }
  const [host, namespace, type] = normalized.split("/");
  return { host: text.split("/").length === 3 ? host : null, namespace, type };
}

function parseAddress(text: string): ProviderConfigAddress | null {
  for (const parse of [(t: string) => parseProviderConfig(t, true), parseLegacyProviderConfig]) {
    try {
      return parse(text);
    } catch {
      // try the other form
    }
  }
  return null;
}

function format(address: ProviderConfigAddress): string {
  const module = address.module.map((name) => `module.${name}.`).join("");
  const alias = address.alias === undefined ? "" : `.${address.alias}`;
  const key = address.key === undefined ? "" : formatKey(address.key);
  return `${module}provider[${JSON.stringify(address.provider)}]${alias}${key}`;
}

/**
 * Rewrites every provider configuration address of FROM into TO, at resource and instance
 * level. A source without a hostname (`gaib/discord`) matches both registry.terraform.io and
 * registry.opentofu.org (Terraform and OpenTofu each default to their own), and a TO without
 * one keeps the host each address had.
 *
 * @param state the state (not changed)
 * @param from the provider to replace, such as `registry.terraform.io/old/discord`
 * @param to the provider to use instead, such as `gaib/discord`
 * @returns the new state and every change
 * @throws {StateEditError} `InvalidProvider` for a malformed source or FROM equal to TO
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createEmptyState } from "./state.ts";
 * import { replaceProvider } from "./_provider_replace.ts";
 *
 * const state = {
 *   ...createEmptyState(),
 *   resources: [{
 *     mode: "managed" as const, type: "discord_role", name: "r",
 *     provider: 'provider["registry.terraform.io/old/discord"].eu',
 *     instances: [{ attributes: {} }],
 *   }],
 * };
 * const { state: next, changes } = replaceProvider(state, "old/discord", "gaib/discord");
 * assert.equal(next.resources![0].provider, 'provider["registry.terraform.io/gaib/discord"].eu');
 * assert.equal(changes.length, 1);
 * ```
 */
export function replaceProvider(state: GaibState, from: string, to: string): ProviderReplaceResult {
  const a = parseSource(from, "FROM");
  const b = parseSource(to, "TO");
  const same = a.namespace === b.namespace && a.type === b.type &&
    (a.host === b.host || b.host === null);
  if (same) {
    throw new StateEditError(
      `FROM (${printable(from)}) and TO (${printable(to)}) name the same provider: nothing to ` +
        "replace.",
      "InvalidProvider",
      from,
    );
  }
  const rewrite = (text: unknown): string | null => {
    if (typeof text !== "string" || text === "") return null;
    const address = parseAddress(text);
    if (address === null) return null;
    const [host, namespace, type] = address.provider.split("/");
    const hostMatches = a.host === null ? DEFAULT_HOSTS.has(host) : a.host === host;
    if (!hostMatches || namespace !== a.namespace || type !== a.type) return null;
    const newHost = b.host ?? (DEFAULT_HOSTS.has(host) ? host : "registry.terraform.io");
    return format({ ...address, provider: `${newHost}/${b.namespace}/${b.type}` });
  };
  const changes: ProviderChange[] = [];
  const resources = (state.resources ?? []).map((resource) => {
    const base = resourceAddress(resource);
    let copy = resource;
    const own = rewrite(resource.provider);
    if (own !== null) {
      copy = { ...resource, provider: own };
      changes.push({
        address: formatInstanceAddress(base),
        level: "resource",
        from: resource.provider!,
        to: own,
      });
    }
    const instances = resource.instances.map((instance) => {
      const next = rewrite(instance.provider);
      if (next === null) return instance;
      const key = instanceKey(instance);
      const deposed = instance.deposed === undefined ? "" : ` (deposed ${instance.deposed})`;
      changes.push({
        address: formatInstanceAddress({ ...base, key }) + deposed,
        level: "instance",
        from: instance.provider!,
        to: next,
      });
      return { ...instance, provider: next };
    });
    return instances.some((i, n) => i !== resource.instances[n]) ? { ...copy, instances } : copy;
  });
  const show = (s: Source) => `${s.host ?? "*"}/${s.namespace}/${s.type}`;
  return { state: { ...state, resources }, changes, from: show(a), to: show(b) };
}
