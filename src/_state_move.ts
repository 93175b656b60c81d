/**
 * `state mv` as pure functions on states: move modules, whole resources and single instances
 * within one state or from one state into another (`state mv --to-workspace`), several
 * `SOURCE DEST` pairs at once, following Terraform's `terraform state mv`
 * (hashicorp/terraform `internal/command/state_mv.go`, cited by line below at commit
 * 883c7221ee2e0bc2fad6912fd4b3cc4b53a598a7, and its tests in `state_mv_test.go`):
 *
 * - a resource without `count`/`for_each` (an instance without key) is moved as that one
 *   instance, so `x.a -> x.b[0]` adds `count` and `x.a[0] -> x.b` removes it
 *   (`sourceObjectAddrs`, lines 469-482; `TestStateMv_resourceToInstance`,
 *   `TestStateMv_instanceToResource`);
 * - an instance moves to any key of any resource of the same type, `x[0] -> x["a"]` included:
 *   Terraform does not require the other instances' keys to be of the same kind (lines
 *   291-360; `TestStateMv_instanceToNewResource`), so moving `count` instances to `for_each`
 *   keys one pair at a time works; a resource left with both kinds is reported
 *   (`mixedKeys`), not refused;
 * - a whole resource with keyed instances moves only to a resource address (lines 246-256,
 *   `TestStateMv_resourceToInstanceErr`), a module only to a module (lines 200-211);
 * - the destination must not exist (lines 220, 259, 313) and the mode and type must stay
 *   (`validateResourceMove`, lines 490-525);
 * - the `dependencies` of every object in the destination state that refer to what moved are
 *   dropped, so that the next apply records them anew (lines 369-389).
 *
 * The states given are never changed: the functions work on copies.
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
  resourceAddress,
} from "./address.ts";
import { gaibCommand } from "./_command_line.ts";
import { StateEditError } from "./errors.ts";
import { printable } from "./_printable.ts";
import { moduleStartsWith, resourceIs, sameModule, type Target } from "./_targets.ts";
import type { GaibState, StateResource } from "./types.ts";

/** One `SOURCE DEST` pair of `state mv`. */
export interface MovePair {
  /** What to move. */
  source: Target;
  /** Where to. */
  dest: Target;
}

/** What {@linkcode moveStates} did. */
export interface MoveResult {
  /** The source state after the moves (same serial: the caller raises it). */
  from: GaibState;
  /** The destination state after the moves, or `null` when it is the source state. */
  to: GaibState | null;
  /** `[from, to]` instance addresses, one pair per instance moved. */
  moved: Array<[string, string]>;
  /** `[from, to]` addresses of resources moved that had no instances (not counted). */
  emptyResources: Array<[string, string]>;
  /** Resources left with instances of more than one key kind (`[0]` and `["a"]`). */
  mixedKeys: string[];
  /** Instances whose `dependencies` were dropped because they named something moved. */
  droppedDependencies: string[];
}

/** Options of {@linkcode moveStates}. */
export interface MoveOptions {
  /**
   * The source workspace, for the commands error messages suggest.
   * @default {"default"}
   */
  workspace?: string;
  /**
   * The destination workspace, when it is another one.
   * @default {the source workspace}
   */
  toWorkspace?: string;
}

type Module = Extract<Target, { kind: "module" }>;

function cloneState(state: GaibState): GaibState {
  return {
    ...state,
    resources: (state.resources ?? []).map((r) => ({
      ...r,
      instances: r.instances.map((i) => ({ ...i })),
    })),
  };
}

function moduleOf(resource: StateResource): ModuleStep[] {
  return resourceAddress(resource).module;
}

function withPlace(resource: StateResource, module: ModuleStep[], name: string): StateResource {
  const copy: StateResource = { ...resource, name };
  if (module.length) copy.module = formatModuleAddress(module);
  else delete copy.module;
  return copy;
}

/** The instance moves of a whole resource; one without instances is listed apart. */
function instancePairs(
  resource: StateResource,
  to: InstanceAddress,
  done: Pick<MoveResult, "moved" | "emptyResources">,
): void {
  const from = resourceAddress(resource);
  const keys = [...new Set(resource.instances.map(instanceKey))];
  if (keys.length === 0) {
    done.emptyResources.push([formatInstanceAddress(from), formatInstanceAddress(to)]);
  }
  for (const key of keys) {
    done.moved.push([
      formatInstanceAddress({ ...from, key }),
      formatInstanceAddress({ ...to, key }),
    ]);
  }
}

/** A pair's source, as Terraform's dependency check sees it: a module, or one resource. */
type MovedThing = { module: ModuleStep[] } | { resource: InstanceAddress };

/**
 * Moves what each pair's source names to its destination, pair after pair, as
 * `terraform state mv` does (see the module doc). Either every pair is applied or, when one
 * is refused, none: the states given are not changed.
 *
 * @param from the state to move from
 * @param to the state to move into, or `null` to move within `from`
 * @param pairs the moves, applied in order (a later pair sees the earlier ones' result)
 * @param options the workspace, for messages
 * @returns the new state(s) and what moved
 * @throws {StateEditError} `NoMatch` for a source that matches nothing, `DestinationExists`,
 *   `InvalidMove` for a move Terraform refuses (another type or mode, a whole resource to an
 *   instance, a module to a resource, a source equal to its destination)
 *
 * @example Moving a count instance to a for_each key
 * ```ts
 * import assert from "node:assert/strict";
 * import { createEmptyState } from "./state.ts";
 * import { parseTarget } from "./_targets.ts";
 * import { moveStates } from "./_state_move.ts";
 *
 * const state = {
 *   ...createEmptyState(),
 *   resources: [{
 *     mode: "managed" as const, type: "discord_role", name: "r",
 *     instances: [{ index_key: 0, attributes: { id: "1" } }],
 *   }],
 * };
 * const pair = { source: parseTarget("discord_role.r[0]"), dest: parseTarget('discord_role.r["a"]') };
 * const { from, moved } = moveStates(state, null, [pair]);
 * assert.deepEqual(moved, [["discord_role.r[0]", 'discord_role.r["a"]']]);
 * assert.equal(from.resources![0].instances[0].index_key, "a");
 * ```
 */
export function moveStates(
  from: GaibState,
  to: GaibState | null,
  pairs: readonly MovePair[],
  options: MoveOptions = {},
): MoveResult {
  const workspace = options.workspace ?? "default";
  const places = { from: workspace, to: options.toWorkspace ?? workspace };
  const source = cloneState(from);
  const dest = to === null ? source : cloneState(to);
  const done: MoveResult = {
    from: source,
    to: to === null ? null : dest,
    moved: [],
    emptyResources: [],
    mixedKeys: [],
    droppedDependencies: [],
  };
  for (const pair of pairs) {
    const moved = movePair(source, dest, pair, done, places);
    dropDependencies(dest, moved, done);
  }
  for (const state of to === null ? [source] : [source, dest]) {
    for (const resource of state.resources!) {
      const kinds = new Set(resource.instances.map((i) => typeof instanceKey(i)));
      if (kinds.size > 1) done.mixedKeys.push(formatInstanceAddress(resourceAddress(resource)));
    }
  }
  return done;
}

function movePair(
  from: GaibState,
  to: GaibState,
  { source, dest }: MovePair,
  done: MoveResult,
  places: { from: string; to: string },
): MovedThing {
  const workspace = places.from;
  const sameState = from === to;
  if (source.kind === "module") {
    if (dest.kind !== "module") {
      throw invalid(source, dest, "a module moves only to a module address");
    }
    moveModule(from, to, source, dest, done, places);
    return { module: source.module };
  }
  if (dest.kind === "module") {
    throw invalid(source, dest, "a resource moves only to a resource or instance address");
  }
  const a = source.address;
  const d = dest.address;
  if (a.mode !== d.mode || a.type !== d.type) {
    throw invalid(
      source,
      dest,
      `the resource type (and mode) must stay the same (${
        a.mode === "data" ? "data." : ""
      }${a.type})`,
    );
  }
  const resources = from.resources!;
  const index = resources.findIndex((r) => resourceIs(r, a));
  if (index < 0) throw noMatch(source.text, workspace);
  const resource = resources[index];
  const single = resource.instances.some((i) => instanceKey(i) === undefined);
  if (source.kind === "resource" && !single) {
    // The whole resource, all its instances.
    if (dest.kind === "instance") {
      throw invalid(
        source,
        dest,
        "the source is a whole resource (not a resource instance), so the destination must " +
          "also be a whole resource; move its instances one by one",
      );
    }
    if (sameState && resourceIs(resource, d)) throw sameAddress(source, dest);
    if (to.resources!.some((r) => resourceIs(r, d))) throw destExists(dest.text, places.to);
    instancePairs(resource, d, done);
    const moved = withPlace(resource, d.module, d.name);
    if (sameState) resources[index] = moved;
    else {
      resources.splice(index, 1);
      to.resources!.push(moved);
    }
    return { resource: a };
  }
  // One instance (its current and deposed objects); a resource without count or for_each is
  // its one keyless instance.
  const fromKey = source.kind === "instance" ? a.key : undefined;
  const toKey = dest.kind === "instance" ? d.key : undefined;
  const fromText = formatInstanceAddress({ ...a, key: fromKey });
  const toText = formatInstanceAddress({ ...d, key: toKey });
  const objects = resource.instances.filter((i) => instanceKey(i) === fromKey);
  if (objects.length === 0) throw noMatch(source.text, workspace);
  if (sameState && fromText === toText) throw sameAddress(source, dest);
  let target = to.resources!.find((r) => resourceIs(r, d));
  if (target?.instances.some((i) => instanceKey(i) === toKey)) throw destExists(toText, places.to);
  resource.instances = resource.instances.filter((i) => instanceKey(i) !== fromKey);
  for (const object of objects) {
    if (toKey === undefined) delete object.index_key;
    else object.index_key = toKey;
  }
  if (!target) {
    // Terraform brings the resource's provider along (lines 344-357).
    const { each: _each, ...rest } = resource;
    target = withPlace({ ...rest, instances: [] }, d.module, d.name);
    if (sameState) resources.splice(index + 1, 0, target);
    else to.resources!.push(target);
  }
  target.instances.push(...objects);
  if (resource.instances.length === 0 && resource !== target) {
    from.resources = from.resources!.filter((r) => r !== resource);
  }
  done.moved.push([fromText, toText]);
  return { resource: a };
}

function moveModule(
  from: GaibState,
  to: GaibState,
  source: Module,
  dest: Module,
  done: MoveResult,
  places: { from: string; to: string },
): void {
  const workspace = places.from;
  const sameState = from === to;
  if (sameState && sameModule(source.module, dest.module)) throw sameAddress(source, dest);
  // Terraform matches the module instance and its children, keys exactly (lines 459-468).
  const matched = from.resources!.filter((r) =>
    moduleStartsWith(moduleOf(r), source.module, false)
  );
  if (matched.length === 0) {
    throw new StateEditError(
      `No resource in the state is in module "${printable(source.text)}". Run ` +
        `"${printable(gaibCommand(workspace, "state list"))}" to see the addresses.`,
      "NoMatch",
      source.text,
    );
  }
  const newModule = (r: StateResource) => [
    ...dest.module,
    ...moduleOf(r).slice(source.module.length),
  ];
  for (const resource of matched) {
    const path = newModule(resource);
    const taken = to.resources!.some((r) => !matched.includes(r) && sameModule(moduleOf(r), path));
    if (taken) throw destExists(formatModuleAddress(path), places.to, "module");
  }
  const movedCopies = new Map<StateResource, StateResource>();
  for (const resource of matched) {
    const path = newModule(resource);
    instancePairs(resource, { ...resourceAddress(resource), module: path }, done);
    movedCopies.set(resource, withPlace(resource, path, resource.name));
  }
  if (sameState) from.resources = from.resources!.map((r) => movedCopies.get(r) ?? r);
  else {
    from.resources = from.resources!.filter((r) => !movedCopies.has(r));
    to.resources!.push(...movedCopies.values());
  }
}

/**
 * Drops the `dependencies` of current objects in `state` that refer to what moved, as
 * Terraform does after each move (state_mv.go lines 369-389): a dependency on the moved
 * resource, or on a resource inside the moved module when that module address has no keys
 * (`ModuleInstance.TargetContains` of a `Module`, internal/addrs/module_instance.go).
 */
function dropDependencies(state: GaibState, moved: MovedThing, done: MoveResult): void {
  const refersToMoved = (dependency: string): boolean => {
    let dep: InstanceAddress;
    try {
      dep = parseInstanceAddress(dependency);
    } catch {
      return false; // not an address we read: Terraform would not have matched it either
    }
    if ("module" in moved) {
      const m = moved.module;
      return m.every((step, i) => step.key === undefined && dep.module[i]?.name === step.name);
    }
    const r = moved.resource;
    return dep.mode === r.mode && dep.type === r.type && dep.name === r.name &&
      dep.module.length === r.module.length &&
      dep.module.every((step, i) => step.name === r.module[i].name);
  };
  for (const resource of state.resources!) {
    for (const instance of resource.instances) {
      if (instance.deposed !== undefined || !Array.isArray(instance.dependencies)) continue;
      if (!instance.dependencies.some((d) => typeof d === "string" && refersToMoved(d))) continue;
      delete instance.dependencies;
      const address = formatInstanceAddress({
        ...resourceAddress(resource),
        key: instanceKey(instance),
      });
      if (!done.droppedDependencies.includes(address)) done.droppedDependencies.push(address);
    }
  }
}

function invalid(source: Target, dest: Target, why: string): StateEditError {
  return new StateEditError(
    `Cannot move "${printable(source.text)}" to "${printable(dest.text)}": ${why}.`,
    "InvalidMove",
    source.text,
  );
}

function noMatch(text: string, workspace: string): StateEditError {
  return new StateEditError(
    `No resource instance in the state matches "${printable(text)}". Run ` +
      `"${printable(gaibCommand(workspace, "state list"))}" to see the addresses.`,
    "NoMatch",
    text,
  );
}

function destExists(text: string, workspace: string, what = "destination"): StateEditError {
  const hint = what === "module"
    ? `Move or remove what is in it first ("${
      printable(gaibCommand(workspace, "state list", text))
    }" lists it)`
    : `Remove it first ("${printable(gaibCommand(workspace, "state rm", text))}")`;
  return new StateEditError(
    `The ${what} "${printable(text)}" already exists in the ${
      what === "module" ? "destination " : ""
    }state. ${hint} or choose another address.`,
    "DestinationExists",
    text,
  );
}

function sameAddress(source: Target, dest: Target): StateEditError {
  return new StateEditError(
    `"${printable(source.text)}" and "${printable(dest.text)}" are the same address: nothing ` +
      "to move.",
    "InvalidMove",
    source.text,
  );
}
