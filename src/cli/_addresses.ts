/**
 * Addresses in `state list` and `state show`: which instances an address names. The edits
 * are library functions: `state rm` is `../_state_remove.ts`, `state mv` `../_state_move.ts`.
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
import { moduleStartsWith, parseTarget, sameModule, type Target } from "../_targets.ts";

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
