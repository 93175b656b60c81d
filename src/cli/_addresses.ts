/**
 * Addresses in `state list`, `state show` and `state rm`: which instances an address names,
 * and the pure state transformation of `rm` (`state mv` is `../_state_move.ts`). Works on
 * copies; the caller writes the result.
 *
 * @module
 */

import {
  formatInstanceAddress,
  type InstanceAddress,
  instanceKey,
  resourceAddress,
} from "../address.ts";
import type { GaibState, StateResource, StateResourceInstance } from "../types.ts";
import { gaibCommand } from "../_command_line.ts";
import { printable } from "../_printable.ts";
import { CliError, UsageError } from "./_errors.ts";
import { moduleStartsWith, parseTarget, resourceIs, sameModule, type Target } from "../_targets.ts";

export { parseTarget, type Target };

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
