/**
 * Terraform's address grammars, read from a traversal (`./_traversal.ts`) the way OpenTofu's
 * `internal/addrs` reads them, so a state is accepted or refused for the same addresses:
 * module instances (`module_instance.go`: ParseModuleInstanceStr), resources and resource
 * instances (`parse_target.go`: ParseAbsResourceStr, ParseAbsResourceInstanceStr), provider
 * configurations (`provider_config.go`: ParseAbsProviderConfigStr,
 * ParseAbsProviderConfigInstanceStr, ParseLegacyAbsProviderConfigStr), provider source strings
 * (opentofu/registry-address `provider.go`: ParseProviderSource, ParseProviderPart; svchost
 * ForComparison) and checkable objects (`checkable.go`: ParseCheckableStr).
 *
 * @module
 */

import type { ModuleStep } from "./address.ts";
import { AddressSyntaxError, type IndexStep, parseTraversal, type Step } from "./_traversal.ts";

/** A parsed resource or resource instance address. */
export interface ResourceAddress {
  module: ModuleStep[];
  mode: "managed" | "data" | "ephemeral";
  type: string;
  name: string;
  key?: number | string;
}

/** A parsed provider configuration address. */
export interface ProviderConfigAddress {
  /** Module path (provider configurations never sit in a keyed module instance). */
  module: string[];
  /** The provider, normalized: `hostname/namespace/type`. */
  provider: string;
  alias?: string;
  /** OpenTofu's provider instance key (`provider["…"].alias["key"]`). */
  key?: number | string;
}

const INT64_MAX = 2n ** 63n - 1n;

/** The integer a number literal denotes, or `null` when it is not a whole number. */
function wholeNumber(literal: string): bigint | null {
  const m = /^(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(literal);
  if (!m) return null;
  const fraction = m[2] ?? "";
  let digits = BigInt(m[1] + fraction);
  const exponent = Number(m[3] ?? "0") - fraction.length;
  if (digits === 0n) return 0n;
  if (exponent >= 0) return exponent > 40 ? INT64_MAX + 1n : digits * 10n ** BigInt(exponent);
  const divisor = 10n ** BigInt(Math.min(-exponent, 400));
  if (digits % divisor !== 0n) return null;
  digits /= divisor;
  return digits;
}

/** ParseInstanceKey (instance_key.go): a string, or a whole number that fits an int. */
function instanceKeyOf(text: string, step: IndexStep): number | string {
  if (typeof step.key === "string") return step.key;
  const value = wholeNumber(step.key.number);
  if (value === null) fail(text, "an index must be a whole number", step.at);
  if (value > INT64_MAX) fail(text, "the index is too large", step.at);
  return Number(value);
}

function fail(text: string, what: string, at: number): never {
  throw new AddressSyntaxError(text, what, at);
}

/** The position just after the last step, for "expected … here" messages. */
function end(text: string): number {
  return text.length;
}

/**
 * parseModuleInstancePrefix (module_instance.go): the leading `module.NAME[KEY]` steps and
 * what follows them.
 */
function modulePrefix(text: string, steps: Step[]): { module: ModuleStep[]; rest: Step[] } {
  const module: ModuleStep[] = [];
  let i = 0;
  while (i < steps.length) {
    const first = steps[i];
    if (first.kind !== "name") fail(text, "expected a name", first.at);
    if (first.name !== "module") break;
    const name = steps[i + 1];
    if (name?.kind !== "name") {
      fail(text, 'expected a module name after "module"', name?.at ?? end(text));
    }
    const step: ModuleStep = { name: name.name };
    i += 2;
    const key = steps[i];
    if (key?.kind === "index") {
      step.key = instanceKeyOf(text, key);
      i++;
    }
    module.push(step);
  }
  return { module, rest: steps.slice(i) };
}

/**
 * Parses a module instance address (`module.a["x"].module.b[0]`); `""` is not one.
 *
 * @throws {AddressSyntaxError} when it is malformed
 */
export function parseModuleInstance(text: string): ModuleStep[] {
  const { module, rest } = modulePrefix(text, parseTraversal(text));
  if (rest.length > 0) {
    fail(
      text,
      module.length ? "unexpected text after the module path" : 'expected "module."',
      rest[0].at,
    );
  }
  return module;
}

/** parseResourceInstanceUnderModule / parseResourceUnderModule (parse_target.go). */
function resourceUnder(
  text: string,
  module: ModuleStep[],
  rest: Step[],
  allowKey: boolean,
): ResourceAddress {
  if (rest.length === 0) fail(text, "expected a resource after the module path", end(text));
  let mode: ResourceAddress["mode"] = "managed";
  const root = rest[0];
  if (root.kind === "name" && (root.name === "data" || root.name === "ephemeral")) {
    mode = root.name;
    rest = rest.slice(1);
  }
  const [type, name, key, extra] = rest;
  if (type?.kind !== "name") fail(text, "expected a resource type", type?.at ?? end(text));
  if (name?.kind !== "name") fail(text, "expected a resource name", name?.at ?? end(text));
  const address: ResourceAddress = { module, mode, type: type.name, name: name.name };
  if (key !== undefined) {
    if (key.kind !== "index") fail(text, "unexpected text after the address", key.at);
    if (!allowKey) fail(text, "a resource address must not have an instance key", key.at);
    address.key = instanceKeyOf(text, key);
  }
  if (extra !== undefined) fail(text, "unexpected text after the address", extra.at);
  return address;
}

/**
 * ParseAbsResourceInstanceStr: a resource instance address (the key is optional).
 *
 * @throws {AddressSyntaxError} when it is malformed
 */
export function parseResourceInstance(text: string): ResourceAddress {
  const { module, rest } = modulePrefix(text, parseTraversal(text));
  return resourceUnder(text, module, rest, true);
}

/**
 * ParseAbsResourceStr: a resource address without an instance key (what `dependencies`
 * holds).
 *
 * @throws {AddressSyntaxError} when it is malformed
 */
export function parseResource(text: string): ResourceAddress {
  const { module, rest } = modulePrefix(text, parseTraversal(text));
  return resourceUnder(text, module, rest, false);
}

/** What ParseProviderPart accepts: an IDNA label of letters, digits and single dashes. */
const PROVIDER_PART = /^[\p{L}\p{N}\p{M}]+(?:-[\p{L}\p{N}\p{M}]+)*$/u;
const HOST_LABEL = /^[\p{L}\p{N}\p{M}](?:[\p{L}\p{N}\p{M}-]*[\p{L}\p{N}\p{M}])?$/u;
/** The default registry of Terraform and of OpenTofu: legacy ("-") namespaces live there. */
const DEFAULT_HOSTS = new Set(["registry.terraform.io", "registry.opentofu.org"]);

function providerPart(part: string): string | null {
  // ParseProviderPart: no dots, no "--" (so no punycode), IDNA lowercasing.
  return PROVIDER_PART.test(part) ? part.toLowerCase() : null;
}

/** svchost.ForComparison: a hostname with an optional port, lowercased, ":443" dropped. */
function hostname(given: string): string | null {
  const colon = given.indexOf(":");
  let port = "";
  if (colon !== -1) {
    const digits = given.slice(colon + 1);
    given = given.slice(0, colon);
    // strconv.Atoi, then at most 65535.
    if (!/^[+-]?\d+$/.test(digits) || Number(digits) > 65535) return null;
    port = Number(digits) === 443 ? "" : `:${Number(digits)}`;
  }
  const labels = given.split(".");
  if (labels.some((l) => !HOST_LABEL.test(l) || l.toLowerCase().startsWith("xn--"))) return null;
  return given.toLowerCase() + port;
}

/**
 * ParseProviderSourceString: `[hostname/][namespace/]type`, normalized to all three parts.
 *
 * @returns the normalized source, or `null` when it is invalid
 */
export function parseProviderSource(source: string): string | null {
  const parts = source.split("/");
  if (parts.length > 3 || parts.some((p) => p === "")) return null;
  const type = providerPart(parts[parts.length - 1]);
  if (type === null) return null;
  let namespace = "hashicorp";
  if (parts.length >= 2) {
    const given = parts[parts.length - 2];
    const part = given === "-" ? "-" : providerPart(given);
    if (part === null) return null;
    namespace = part;
  }
  let host = "registry.opentofu.org";
  if (parts.length === 3) {
    const h = hostname(parts[0]);
    if (h === null) return null;
    host = h;
  }
  if (namespace === "-" && !DEFAULT_HOSTS.has(host)) return null;
  // Types named like repositories ("terraform-provider-x") are refused.
  if (type.startsWith("terraform-") || type.startsWith("opentofu-")) return null;
  return `${host}/${namespace}/${type}`;
}

function providerModule(text: string, steps: Step[]): { module: string[]; rest: Step[] } {
  const { module, rest } = modulePrefix(text, steps);
  if (module.some((s) => s.key !== undefined)) {
    fail(text, "a provider configuration cannot sit in a keyed module instance", 0);
  }
  const root = rest[0];
  if (rest.length < 2 || root.kind !== "name" || root.name !== "provider") {
    fail(text, 'expected "provider" followed by the provider', root?.at ?? end(text));
  }
  return { module: module.map((s) => s.name), rest };
}

/**
 * ParseAbsProviderConfigStr (`allowKey` false) and ParseAbsProviderConfigInstanceStr
 * (`allowKey` true): `module.m.provider["registry.terraform.io/hashicorp/aws"].alias["key"]`.
 *
 * @throws {AddressSyntaxError} when it is malformed
 */
export function parseProviderConfig(text: string, allowKey: boolean): ProviderConfigAddress {
  const { module, rest } = providerModule(text, parseTraversal(text));
  if (rest.length > 4) fail(text, "unexpected text after the provider address", rest[4].at);
  const [, source, alias, key] = rest;
  if (source.kind !== "index" || typeof source.key !== "string") {
    fail(text, 'expected the provider source in brackets after "provider"', source.at);
  }
  const provider = parseProviderSource(source.key);
  if (provider === null) fail(text, "invalid provider source", source.at);
  const address: ProviderConfigAddress = { module, provider };
  if (alias !== undefined) {
    if (alias.kind !== "name") fail(text, "expected a configuration alias", alias.at);
    address.alias = alias.name;
  }
  if (key !== undefined) {
    if (key.kind !== "index") fail(text, "expected an instance key in brackets", key.at);
    if (!allowKey) fail(text, "a provider address must not include an instance key", key.at);
    address.key = instanceKeyOf(text, key);
  }
  return address;
}

/**
 * ParseLegacyAbsProviderConfigStr: the form Terraform 0.12 wrote, `provider.aws.alias`.
 *
 * @throws {AddressSyntaxError} when it is malformed
 */
export function parseLegacyProviderConfig(text: string): ProviderConfigAddress {
  const { module, rest } = providerModule(text, parseTraversal(text));
  if (rest.length > 3) fail(text, "unexpected text after the provider address", rest[3].at);
  const [, type, alias] = rest;
  if (type.kind !== "name") fail(text, 'expected a provider type after "provider."', type.at);
  // NewBuiltInProvider for "terraform", NewLegacyProvider (namespace "-") for the rest.
  const provider = type.name === "terraform"
    ? "terraform.io/builtin/terraform"
    : `registry.opentofu.org/-/${type.name}`;
  const address: ProviderConfigAddress = { module, provider };
  if (alias !== undefined) {
    if (alias.kind !== "name") fail(text, "expected a configuration alias", alias.at);
    address.alias = alias.name;
  }
  return address;
}

/** AbsProviderConfig.String(), to compare two provider addresses as OpenTofu does. */
export function formatProviderConfig(address: ProviderConfigAddress): string {
  const module = address.module.map((name) => `module.${name}.`).join("");
  const alias = address.alias === undefined ? "" : `.${address.alias}`;
  return `${module}provider[${JSON.stringify(address.provider)}]${alias}`;
}

/** The kinds of objects `check_results` can record (decodeCheckableObjectKindV4). */
export type CheckableKind = "resource" | "output" | "check" | "var";

/**
 * ParseCheckableStr (checkable.go), plus the check decodeCheckResultsV4 makes of a
 * configuration address: it has no instance keys.
 *
 * @param config whether this is a `config_addr` (no instance keys allowed)
 * @throws {AddressSyntaxError} when it is malformed
 */
export function checkCheckable(kind: CheckableKind, text: string, config: boolean): void {
  const { module, rest } = modulePrefix(text, parseTraversal(text));
  if (rest.length === 0 || rest[0].kind !== "name") {
    fail(text, "expected a resource, output, check or variable after the module path", end(text));
  }
  let keyed = module.some((s) => s.key !== undefined);
  if (kind === "resource") {
    keyed ||= resourceUnder(text, module, rest, true).key !== undefined;
  } else {
    const keyword = { output: "output", check: "check", var: "var" }[kind];
    if (rest.length !== 2 || rest[0].name !== keyword || rest[1].kind !== "name") {
      fail(text, `expected "${keyword}.NAME" after the module path`, rest[0].at);
    }
  }
  if (config && keyed) fail(text, "a configuration address must not have instance keys", 0);
}
