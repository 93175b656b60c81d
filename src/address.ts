/**
 * Terraform addresses: module instances (`module.app["web"]`), resource instances
 * (`module.app["web"].discord_channel.general[0]`) and provider configurations, parsed the way
 * Terraform reads them (`./_address_rules.ts`) and formatted the way it writes them.
 *
 * @module
 */

import {
  parseLegacyProviderConfig,
  parseModuleInstance,
  parseProviderConfig,
  parseResourceInstance,
} from "./_address_rules.ts";
import { isRawNumber } from "./_json.ts";
import { AddressSyntaxError } from "./_traversal.ts";

/** One `module.NAME[KEY]` step of a module instance address. */
export interface ModuleStep {
  /** The module call's name. */
  name: string;
  /** The instance key: a `count` index or a `for_each` key; absent for a single instance. */
  key?: number | string;
}

/** A parsed resource instance address. */
export interface InstanceAddress {
  /** The module instance path; empty for the root module. */
  module: ModuleStep[];
  /** `"managed"` for resources, `"data"` for data sources. */
  mode: "managed" | "data";
  /** Resource type. */
  type: string;
  /** Resource name. */
  name: string;
  /** Instance key; absent for a single instance (or, in a pattern, for all instances). */
  key?: number | string;
}

/**
 * Formats an instance key as Terraform does: `[0]` or `["key"]` with HCL string escapes.
 *
 * @param key a `count` index or a `for_each` key
 * @returns the bracketed key
 *
 * @example
 * ```ts
 * import { formatKey } from "@gaib/state";
 * console.log(formatKey(0), formatKey('a"b')); // [0] ["a\"b"]
 * ```
 */
export function formatKey(key: number | string): string {
  if (typeof key === "number") return `[${key}]`;
  let out = "";
  for (let i = 0; i < key.length; i++) {
    const c = key[i];
    if (c === "\\") out += "\\\\";
    else if (c === '"') out += '\\"';
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if ((c === "$" || c === "%") && key[i + 1] === "{") out += c + c;
    else if (c < " ") out += `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
    else out += c;
  }
  return `["${out}"]`;
}

/**
 * Formats a module instance path: `module.a["x"].module.b[0]`, or `""` for the root module.
 *
 * @param steps the module path
 * @returns the address
 *
 * @example
 * ```ts
 * import { formatModuleAddress } from "@gaib/state";
 * console.log(formatModuleAddress([{ name: "app", key: "web" }])); // module.app["web"]
 * ```
 */
export function formatModuleAddress(steps: readonly ModuleStep[]): string {
  return steps.map((s) => `module.${s.name}${s.key === undefined ? "" : formatKey(s.key)}`)
    .join(".");
}

/**
 * Formats a resource instance address as `terraform state list` prints it.
 *
 * @param address the parts of the address
 * @returns the address, such as `module.app["web"].discord_channel.general[0]`
 *
 * @example
 * ```ts
 * import { formatInstanceAddress } from "@gaib/state";
 * const address = formatInstanceAddress({
 *   module: [{ name: "app", key: "web" }], mode: "managed",
 *   type: "discord_channel", name: "general", key: 0,
 * });
 * console.log(address); // module.app["web"].discord_channel.general[0]
 * ```
 */
export function formatInstanceAddress(address: InstanceAddress): string {
  const prefix = address.module.length ? formatModuleAddress(address.module) + "." : "";
  const mode = address.mode === "data" ? "data." : "";
  const key = address.key === undefined ? "" : formatKey(address.key);
  return `${prefix}${mode}${address.type}.${address.name}${key}`;
}

/**
 * The key of a resource instance in a state: its `index_key`, or `undefined` when it has none
 * (absent, or `null` as some hand-written files have it). A numeric key is read as Terraform
 * reads it: as a whole number, by dropping any fraction (`1.0` and `1.5` are both `1`).
 *
 * @param instance a resource instance object
 * @returns the `count` index or `for_each` key
 *
 * @example
 * ```ts
 * import { instanceKey } from "@gaib/state";
 * console.log(instanceKey({ index_key: 2 }), instanceKey({ index_key: null })); // 2 undefined
 * ```
 */
export function instanceKey(instance: { index_key?: unknown }): number | string | undefined {
  const key = instance.index_key;
  if (typeof key === "string") return key;
  // encoding/json decodes the number as a float64; prepareStateV4 converts it with int().
  if (typeof key === "number") return Math.trunc(key) + 0;
  if (isRawNumber(key)) return Math.trunc(Number(key.rawJSON)) + 0;
  return undefined;
}

/**
 * The address of a resource block of a state (without an instance key).
 *
 * @param resource the resource block (`module`, `mode`, `type`, `name`)
 * @returns its address
 * @throws {SyntaxError} when its module address is malformed
 *
 * @example
 * ```ts
 * import { formatInstanceAddress, resourceAddress } from "@gaib/state";
 * const address = resourceAddress({ module: 'module.app["web"]', mode: "managed", type: "t", name: "n" });
 * console.log(formatInstanceAddress(address)); // module.app["web"].t.n
 * ```
 */
export function resourceAddress(
  resource: { module?: string; mode: "managed" | "data"; type: string; name: string },
): InstanceAddress {
  return {
    module: resource.module ? parseModuleAddress(resource.module) : [],
    mode: resource.mode,
    type: resource.type,
    name: resource.name,
  };
}

/**
 * Parses a module instance address such as `module.app["web"].module.db[0]`, as Terraform
 * reads one (spaces and comments between the parts are allowed).
 *
 * @param text the address; `""` is the root module
 * @returns the module path
 * @throws {SyntaxError} when the address is malformed, naming the position
 *
 * @example
 * ```ts
 * import { parseModuleAddress } from "@gaib/state";
 * console.log(parseModuleAddress('module.app["web"]')); // [ { name: "app", key: "web" } ]
 * ```
 */
export function parseModuleAddress(text: string): ModuleStep[] {
  return text === "" ? [] : parseModuleInstance(text);
}

/**
 * Parses a resource or resource instance address, as `terraform state` commands take it.
 *
 * @param text such as `discord_role.admin`, `module.app["web"].discord_channel.general[0]`
 *   or `data.discord_guild.main`
 * @returns the parsed address; `key` is absent when the text names no instance
 * @throws {SyntaxError} when the address is malformed, naming the position
 *
 * @example
 * ```ts
 * import { parseInstanceAddress } from "@gaib/state";
 * const address = parseInstanceAddress("module.app[1].discord_role.admin");
 * console.log(address.module[0].key, address.type); // 1 discord_role
 * ```
 */
export function parseInstanceAddress(text: string): InstanceAddress {
  const address = parseResourceInstance(text);
  if (address.mode === "ephemeral") {
    throw new AddressSyntaxError(text, "ephemeral resources are never stored in a state", 0);
  }
  return address as InstanceAddress;
}

/**
 * Checks that a provider configuration address is one Terraform or OpenTofu reads in a state:
 * the current form `provider["registry.terraform.io/ns/type"].alias`, the legacy form
 * `provider.type.alias`, either optionally behind a module path, or OpenTofu's instance keys
 * (`.alias["key"]`).
 *
 * @param text the address as found in a state file
 * @returns whether it is a provider address
 *
 * @example
 * ```ts
 * import { isProviderAddress } from "@gaib/state";
 * console.log(isProviderAddress('provider["registry.terraform.io/hashicorp/null"]')); // true
 * console.log(isProviderAddress("provider. null")); // true
 * console.log(isProviderAddress("not a provider")); // false
 * ```
 */
export function isProviderAddress(text: string): boolean {
  const parsers = [(t: string) => parseProviderConfig(t, true), parseLegacyProviderConfig];
  for (const parse of parsers) {
    try {
      parse(text);
      return true;
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
    }
  }
  return false;
}
