/**
 * `state rm` as a pure function on a state: forget instances, whole resources or everything in
 * a module instance, as `terraform state rm` does. Works on a copy; the caller writes it.
 *
 * @module
 */

import { formatInstanceAddress, instanceKey, resourceAddress } from "./address.ts";
import { gaibCommand } from "./_command_line.ts";
import { StateEditError } from "./errors.ts";
import { printable } from "./_printable.ts";
import { moduleStartsWith, resourceIs, type Target } from "./_targets.ts";
import type { GaibState, StateResource } from "./types.ts";

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
 * @param workspace the workspace, for the command the error suggests
 * @throws {StateEditError} (`NoMatch`) when an address matches nothing (nothing is removed
 *   then)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createEmptyState } from "./state.ts";
 * import { parseTarget } from "./_targets.ts";
 * import { removeTargets } from "./_state_remove.ts";
 *
 * const state = {
 *   ...createEmptyState(),
 *   resources: [{ mode: "managed" as const, type: "t", name: "n", instances: [{ index_key: 0 }] }],
 * };
 * const { state: next, removed } = removeTargets(state, [parseTarget("t.n")], "default");
 * assert.deepEqual(removed, ["t.n[0]"]);
 * assert.deepEqual(next.resources, []);
 * ```
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
    if (!matched) {
      throw new StateEditError(
        `No resource instance in the state matches "${printable(target.text)}". Run ` +
          `"${printable(gaibCommand(workspace, "state list"))}" to see the addresses.`,
        "NoMatch",
        target.text,
      );
    }
    next.resources = kept;
  }
  return { state: next, removed, emptyResources };
}
