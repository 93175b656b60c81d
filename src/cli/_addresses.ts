/**
 * Addresses in `state list`, `state show`, `state rm` and `state mv`: which instances an
 * address names, and the pure state transformations of `rm` and `mv`. Works on copies; the
 * caller writes the result.
 *
 * @module
 */

import {
  formatInstanceAddress,
  formatModuleAddress,
  type InstanceAddress,
  instanceKey,
  type ModuleStep,
  parseInstanceAddress,
  parseModuleAddress,
  resourceAddress,
} from "../address.ts";
import type { GaibState, StateResource, StateResourceInstance } from "../types.ts";
import { gaibCommand } from "../_command_line.ts";
import { printable } from "../_printable.ts";
import { CliError, UsageError } from "./_errors.ts";

/** What an address on the command line names. */
export type Target =
  | { kind: "module"; module: ModuleStep[]; text: string }
  | { kind: "resource"; address: InstanceAddress; text: string }
  | { kind: "instance"; address: InstanceAddress; text: string };

/**
 * Parses an address argument: a module (`module.app["web"]`), a resource
 * (`discord_role.admin`) or an instance (`discord_channel.general[0]`).
 *
 * @param text the argument
 * @returns what it names
 * @throws {UsageError} when it is not an address
 */
export function parseTarget(text: string): Target {
  try {
    const address = parseInstanceAddress(text);
    return address.key === undefined
      ? { kind: "resource", address, text }
      : { kind: "instance", address, text };
  } catch (error) {
    try {
      const module = parseModuleAddress(text);
      if (module.length > 0) return { kind: "module", module, text };
    } catch {
      // report the resource address error, which is the likelier intent
    }
    throw new UsageError(
      `${(error as Error).message}. Addresses look like discord_role.admin, ` +
        `discord_channel.general[0], module.app["web"].discord_channel.general or module.app.`,
      { cause: error },
    );
  }
}

function sameModule(a: readonly ModuleStep[], b: readonly ModuleStep[]): boolean {
  return a.length === b.length &&
    a.every((s, i) => s.name === b[i].name && s.key === b[i].key);
}

/**
 * `prefix` is `module` or one of its ancestors. With `anyKey`, a keyless last step of `prefix`
 * matches every instance of that module, as Terraform's targets do (`module.app` contains
 * `module.app["web"]`).
 */
function moduleStartsWith(
  module: readonly ModuleStep[],
  prefix: readonly ModuleStep[],
  anyKey: boolean,
): boolean {
  return prefix.length <= module.length &&
    prefix.every((s, i) =>
      s.name === module[i].name &&
      (s.key === module[i].key ||
        (anyKey && s.key === undefined && i === prefix.length - 1))
    );
}

function resourceIs(resource: StateResource, address: InstanceAddress) {
  return resource.mode === address.mode && resource.type === address.type &&
    resource.name === address.name && sameModule(resourceAddress(resource).module, address.module);
}

/** One instance of a resource as `state list` shows it (current and deposed objects). */
export interface ListedInstance {
  /** Its address, such as `module.app["web"].discord_channel.general[0]`. */
  address: string;
  /** The resource block. */
  resource: StateResource;
  /** The parsed address. */
  parsed: InstanceAddress;
  /** Its objects: the current one (if any) first, then deposed ones. */
  objects: StateResourceInstance[];
}

/**
 * Lists the resource instances of a state in file order, one entry per instance address.
 *
 * @param state the state
 * @returns the instances
 */
export function listInstances(state: GaibState): ListedInstance[] {
  const out: ListedInstance[] = [];
  for (const resource of state.resources ?? []) {
    const base = resourceAddress(resource);
    const byKey = new Map<string, ListedInstance>();
    for (const instance of resource.instances) {
      const parsed: InstanceAddress = { ...base };
      const key = instanceKey(instance);
      if (key !== undefined) parsed.key = key;
      const address = formatInstanceAddress(parsed);
      let entry = byKey.get(address);
      if (!entry) {
        entry = { address, resource, parsed, objects: [] };
        byKey.set(address, entry);
        out.push(entry);
      }
      if (instance.deposed === undefined) entry.objects.unshift(instance);
      else entry.objects.push(instance);
    }
  }
  return out;
}

/**
 * Whether an instance falls under a filter of `state list`. A module address whose last step
 * has no key matches every instance of that module.
 *
 * @param instance the instance
 * @param target the filter
 * @returns whether it matches
 */
export function listFilterMatches(instance: ListedInstance, target: Target): boolean {
  const { parsed } = instance;
  if (target.kind === "module") return moduleStartsWith(parsed.module, target.module, true);
  const a = target.address;
  if (a.mode !== parsed.mode || a.type !== parsed.type || a.name !== parsed.name) return false;
  if (!sameModule(parsed.module, a.module)) return false;
  return target.kind === "resource" || a.key === parsed.key;
}

/**
 * Finds the one instance `state show` shows.
 *
 * @param state the state
 * @param text the address argument
 * @returns the instance
 * @throws {UsageError} for a module address or a malformed one
 * @throws {CliError} when nothing or more than one instance matches
 */
export function findInstance(state: GaibState, text: string, workspace: string): ListedInstance {
  const target = parseTarget(text);
  if (target.kind === "module") {
    throw new UsageError(
      `"${text}" is a module; state show shows one resource instance. Run ` +
        `"${gaibCommand(workspace, "state list", text)}" to see its instances.`,
    );
  }
  const a = target.address;
  const matches = listInstances(state).filter((i) =>
    i.parsed.mode === a.mode && i.parsed.type === a.type && i.parsed.name === a.name &&
    sameModule(i.parsed.module, a.module) &&
    (target.kind === "resource" || i.parsed.key === a.key)
  );
  if (matches.length === 0) throw noMatch(text, workspace);
  if (matches.length > 1 || (target.kind === "resource" && matches[0].parsed.key !== undefined)) {
    throw new CliError(
      `"${text}" has ${matches.length} instance(s): ${
        matches.slice(0, 5).map((m) => printable(m.address)).join(", ")
      }${matches.length > 5 ? ", ..." : ""}. Name one of them.`,
      "AmbiguousAddress",
    );
  }
  return matches[0];
}

function noMatch(text: string, workspace: string): CliError {
  return new CliError(
    `No resource instance in the state matches "${text}". Run ` +
      `"${gaibCommand(workspace, "state list")}" to see the addresses.`,
    "NoMatch",
    { address: text },
  );
}

function cloneState(state: GaibState): GaibState {
  return {
    ...state,
    resources: (state.resources ?? []).map((r) => ({ ...r, instances: [...r.instances] })),
  };
}

/** The result of {@linkcode removeTargets}. */
export interface RemoveResult {
  /** The new state (same serial: the caller raises it). */
  state: GaibState;
  /** Addresses of the removed instances. */
  removed: string[];
  /** Addresses of removed resources that had no instances (not counted as instances). */
  emptyResources: string[];
}

/**
 * Removes what the addresses name: an instance, all instances of a resource, or everything in
 * a module instance (and the modules inside it). Resource blocks left without instances go.
 *
 * @param state the state (not changed)
 * @param targets the addresses
 * @returns the new state and what was removed
 * @throws {CliError} when an address matches nothing (nothing is removed then)
 */
export function removeTargets(
  state: GaibState,
  targets: Target[],
  workspace: string,
): RemoveResult {
  const next = cloneState(state);
  const removed: string[] = [];
  const emptyResources: string[] = [];
  for (const target of targets) {
    let matched = false;
    const kept: StateResource[] = [];
    for (const resource of next.resources!) {
      const base = resourceAddress(resource);
      let whole = false;
      if (target.kind === "module") whole = moduleStartsWith(base.module, target.module, true);
      else if (target.kind === "resource") whole = resourceIs(resource, target.address);
      if (whole) {
        matched = true;
        const addresses = new Set(
          resource.instances.map((i) => formatInstanceAddress({ ...base, key: instanceKey(i) })),
        );
        if (addresses.size === 0) emptyResources.push(formatInstanceAddress(base));
        removed.push(...addresses);
        continue;
      }
      if (target.kind === "instance" && resourceIs(resource, target.address)) {
        const before = resource.instances.length;
        resource.instances = resource.instances.filter((i) =>
          instanceKey(i) !== target.address.key
        );
        if (resource.instances.length !== before) {
          matched = true;
          removed.push(formatInstanceAddress(target.address));
          if (resource.instances.length === 0) continue;
        }
      }
      kept.push(resource);
    }
    if (!matched) throw noMatch(target.text, workspace);
    next.resources = kept;
  }
  return { state: next, removed, emptyResources };
}

/** The result of {@linkcode moveTarget}. */
export interface MoveResult {
  /** The new state (same serial: the caller raises it). */
  state: GaibState;
  /** `[from, to]` instance address pairs. */
  moved: Array<[string, string]>;
  /** `[from, to]` addresses of moved resources that had no instances (not counted). */
  emptyResources: Array<[string, string]>;
}

type KeyKind = "none" | "number" | "string";

function keyKind(key: number | string | undefined): KeyKind {
  return key === undefined ? "none" : typeof key === "number" ? "number" : "string";
}

function withModule(resource: StateResource, module: ModuleStep[]): StateResource {
  const copy: StateResource = { ...resource };
  if (module.length) copy.module = formatModuleAddress(module);
  else delete copy.module;
  return copy;
}

/**
 * Moves a module instance, a whole resource or one instance to a new address, as
 * `terraform state mv` does. The destination must not exist; a resource keeps its type.
 *
 * @param state the state (not changed)
 * @param source what to move
 * @param dest where to
 * @returns the new state and the moves made
 * @throws {UsageError} when the addresses do not fit together
 * @throws {CliError} when the source is missing or the destination exists
 */
export function moveTarget(
  state: GaibState,
  source: Target,
  dest: Target,
  workspace: string,
): MoveResult {
  if (source.kind === "module" || dest.kind === "module") {
    if (source.kind !== "module" || dest.kind !== "module") {
      throw new UsageError(
        `Cannot move "${source.text}" to "${dest.text}": a module moves only to a module ` +
          "address, and a resource only to a resource address.",
      );
    }
    return moveModule(state, source, dest, workspace);
  }
  const next = cloneState(state);
  const resources = next.resources!;
  const srcIndex = resources.findIndex((r) => resourceIs(r, source.address));
  if (srcIndex < 0) throw noMatch(source.text, workspace);
  const src = resources[srcIndex];
  const a = source.address;
  const d = dest.address;
  if (a.mode !== d.mode || a.type !== d.type) {
    throw new UsageError(
      `Cannot move "${source.text}" to "${dest.text}": the resource type (and mode) must stay ` +
        `the same (${a.mode === "data" ? "data." : ""}${a.type}).`,
    );
  }
  const singleUnkeyed = src.instances.length > 0 &&
    src.instances.every((i) => instanceKey(i) === undefined);
  const moveInstance = source.kind === "instance" || (dest.kind === "instance" && singleUnkeyed);
  const destModule = d.module;
  const destIndex = resources.findIndex((r) => resourceIs(r, d));
  if (!moveInstance) {
    // The whole resource, all its instances.
    if (dest.kind === "instance") {
      throw new UsageError(
        `Cannot move all instances of "${source.text}" to the single instance "${dest.text}": ` +
          "move them one by one, or move the resource to a resource address.",
      );
    }
    if (destIndex >= 0 && destIndex !== srcIndex) throw destExists(dest.text, workspace);
    if (destIndex === srcIndex) throw sameAddress(source.text, dest.text);
    const moved = withModule({ ...src, name: d.name }, destModule);
    resources[srcIndex] = moved;
    return { state: next, ...instancePairs(src, a, d) };
  }
  // One instance (its current and deposed objects).
  const fromKey = source.kind === "instance" ? a.key : undefined;
  const toKey = dest.kind === "instance" ? d.key : undefined;
  const objects = src.instances.filter((i) => instanceKey(i) === fromKey);
  if (objects.length === 0) throw noMatch(source.text, workspace);
  const fromText = formatInstanceAddress({ ...a, key: fromKey });
  const toText = formatInstanceAddress({ ...d, key: toKey });
  if (fromText === toText) throw sameAddress(source.text, dest.text);
  let target = destIndex >= 0 ? resources[destIndex] : undefined;
  if (target) {
    if (target.instances.some((i) => instanceKey(i) === toKey)) throw destExists(toText, workspace);
    const others = target.instances.filter((i) => !(target === src && instanceKey(i) === fromKey));
    const kinds = new Set(others.map((i) => keyKind(instanceKey(i))));
    if (kinds.size > 0 && (!kinds.has(keyKind(toKey)) || keyKind(toKey) === "none")) {
      throw new CliError(
        `Cannot move "${fromText}" to "${toText}": the other instances of ${
          formatInstanceAddress({ ...d, key: undefined })
        } are keyed ${[...kinds].join("/")}, so the new key must be of the same kind.`,
        "KeyMismatch",
      );
    }
  }
  src.instances = src.instances.filter((i) => instanceKey(i) !== fromKey);
  const rekeyed = objects.map((o) => {
    const copy = { ...o };
    if (toKey === undefined) delete copy.index_key;
    else copy.index_key = toKey;
    return copy;
  });
  if (!target) {
    const { each: _each, ...rest } = src;
    target = withModule({ ...rest, name: d.name, instances: [] }, destModule);
    resources.splice(srcIndex + 1, 0, target);
  }
  target.instances.push(...rekeyed);
  next.resources = src.instances.length === 0 && src !== target
    ? resources.filter((r) => r !== src)
    : resources;
  return { state: next, moved: [[fromText, toText]], emptyResources: [] };
}

/** The instance moves of a whole resource; a resource without instances is listed apart. */
function instancePairs(
  resource: StateResource,
  from: InstanceAddress,
  to: InstanceAddress,
): Omit<MoveResult, "state"> {
  const keys = [...new Set(resource.instances.map(instanceKey))];
  if (keys.length === 0) {
    return {
      moved: [],
      emptyResources: [[formatInstanceAddress(from), formatInstanceAddress(to)]],
    };
  }
  return {
    moved: keys.map((key) => [
      formatInstanceAddress({ ...from, key }),
      formatInstanceAddress({ ...to, key }),
    ]),
    emptyResources: [],
  };
}

function moveModule(
  state: GaibState,
  source: Extract<Target, { kind: "module" }>,
  dest: Extract<Target, { kind: "module" }>,
  workspace: string,
): MoveResult {
  if (sameModule(source.module, dest.module)) throw sameAddress(source.text, dest.text);
  const next = cloneState(state);
  const moved: Array<[string, string]> = [];
  const emptyResources: Array<[string, string]> = [];
  const movedResources = new Set<StateResource>();
  const resources = next.resources!.map((resource) => {
    const from = resourceAddress(resource);
    const { module } = from;
    if (!moduleStartsWith(module, source.module, false)) return resource;
    const newModule = [...dest.module, ...module.slice(source.module.length)];
    const pairs = instancePairs(resource, from, { ...from, module: newModule });
    moved.push(...pairs.moved);
    emptyResources.push(...pairs.emptyResources);
    const copy = withModule(resource, newModule);
    movedResources.add(copy);
    return copy;
  });
  if (movedResources.size === 0) {
    throw new CliError(
      `No resource in the state is in module "${source.text}". Run ` +
        `"${gaibCommand(workspace, "state list")}" to see the addresses.`,
      "NoMatch",
      { address: source.text },
    );
  }
  const seen = new Map<string, StateResource>();
  for (const resource of resources) {
    const key = formatInstanceAddress(resourceAddress(resource));
    const other = seen.get(key);
    if (other && (movedResources.has(resource) || movedResources.has(other))) {
      throw destExists(key, workspace);
    }
    seen.set(key, resource);
  }
  next.resources = resources;
  return { state: next, moved, emptyResources };
}

function destExists(text: string, workspace: string): CliError {
  return new CliError(
    `The destination "${printable(text)}" already exists in the state. Remove it first ` +
      `("${printable(gaibCommand(workspace, "state rm", text))}") or choose another address.`,
    "DestinationExists",
    { address: text },
  );
}

function sameAddress(a: string, b: string): UsageError {
  return new UsageError(`"${a}" and "${b}" are the same address: nothing to move.`);
}
