/**
 * `taint` and `untaint` as a pure function on a state, following Terraform's
 * `internal/command/taint.go` and `untaint.go` (hashicorp/terraform at 883c7221): only a
 * managed resource instance's current object changes; deposed objects are left alone.
 *
 * @module
 */

import { formatInstanceAddress, instanceKey } from "./address.ts";
import { gaibCommand } from "./_command_line.ts";
import { StateEditError } from "./errors.ts";
import { printable } from "./_printable.ts";
import { resourceIs, type Target } from "./_targets.ts";
import type { GaibState } from "./types.ts";

/** What {@linkcode setTainted} did. */
export interface TaintResult {
  /** The new state (same serial: the caller raises it). */
  state: GaibState;
  /** The instance's address. */
  address: string;
  /** Whether the status changed (tainting a tainted instance changes nothing). */
  changed: boolean;
}

/**
 * Marks a managed resource instance's current object tainted (`status: "tainted"`), so that
 * the next apply replaces it, or clears the mark. A resource address without a key names
 * its one keyless instance, as in Terraform.
 *
 * @param state the state (not changed)
 * @param target the instance
 * @param tainted `true` to taint, `false` to untaint
 * @param workspace the workspace, for the commands error messages suggest
 * @returns the new state and whether it changed
 * @throws {StateEditError} `InvalidAddress` for a module or a data source, `NoMatch` for a
 *   missing instance or one that has only deposed objects, `NotManaged` for untainting an
 *   instance that is not tainted
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createEmptyState } from "./state.ts";
 * import type { GaibState } from "./types.ts";
 * import { parseTarget } from "./_targets.ts";
 * import { setTainted } from "./_taint.ts";
 *
 * const state: GaibState = {
 *   ...createEmptyState(),
 *   resources: [{ mode: "managed" as const, type: "t", name: "n", instances: [{ attributes: {} }] }],
 * };
 * const { state: next } = setTainted(state, parseTarget("t.n"), true);
 * assert.equal(next.resources![0].instances[0].status, "tainted");
 * assert.equal(state.resources![0].instances[0].status, undefined);
 * ```
 */
export function setTainted(
  state: GaibState,
  target: Target,
  tainted: boolean,
  workspace = "default",
): TaintResult {
  const verb = tainted ? "taint" : "untaint";
  if (target.kind === "module") {
    throw new StateEditError(
      `"${printable(target.text)}" is a module; ${verb} takes one resource instance.`,
      "InvalidAddress",
      target.text,
    );
  }
  const a = target.address;
  const address = formatInstanceAddress(a);
  if (a.mode !== "managed") {
    throw new StateEditError(
      `Resource instance ${printable(address)} cannot be ${verb}ed: it is a data source, which ` +
        "is read again on every plan. Only managed resources can be tainted.",
      "InvalidAddress",
      target.text,
    );
  }
  const resources = state.resources ?? [];
  const index = resources.findIndex((r) => resourceIs(r, a));
  const resource = resources[index];
  const matches = (key: unknown) => key === a.key;
  const objects = resource?.instances.filter((i) => matches(instanceKey(i))) ?? [];
  if (objects.length === 0) {
    throw new StateEditError(
      `There is no resource instance in the state with the address ${printable(address)}. Run ` +
        `"${printable(gaibCommand(workspace, "state list"))}" to see the addresses.`,
      "NoMatch",
      target.text,
    );
  }
  const current = objects.find((o) => o.deposed === undefined);
  if (current === undefined) {
    throw new StateEditError(
      `Resource instance ${printable(address)} is part-way through a create_before_destroy ` +
        `replacement (it has only deposed objects). Run the apply that completes it before ` +
        `you ${verb} it.`,
      "NoMatch",
      target.text,
    );
  }
  const isTainted = current.status === "tainted";
  if (!tainted && !isTainted) {
    throw new StateEditError(
      `Resource instance ${printable(address)} is not tainted, so it cannot be untainted.`,
      "NotManaged",
      target.text,
    );
  }
  if (tainted === isTainted) return { state, address, changed: false };
  const next = { ...current };
  if (tainted) next.status = "tainted";
  else delete next.status;
  const instances = resource.instances.map((i) => i === current ? next : i);
  const copy = [...resources];
  copy[index] = { ...resource, instances };
  return { state: { ...state, resources: copy }, address, changed: true };
}
