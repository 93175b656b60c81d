/**
 * What an address on a command line names in a state: a module instance
 * (`module.app["web"]`), a resource (`discord_role.admin`) or one instance
 * (`discord_channel.general[0]`), and the comparisons the state edits share.
 *
 * @module
 */

import {
  type InstanceAddress,
  type ModuleStep,
  parseInstanceAddress,
  parseModuleAddress,
  resourceAddress,
} from "./address.ts";
import { StateEditError } from "./errors.ts";
import type { StateResource } from "./types.ts";

/** What an address names. `text` is the address as given, for messages. */
export type Target =
  | { kind: "module"; module: ModuleStep[]; text: string }
  | { kind: "resource"; address: InstanceAddress; text: string }
  | { kind: "instance"; address: InstanceAddress; text: string };

/**
 * Parses an address argument: a module, a resource or an instance.
 *
 * @param text the argument
 * @returns what it names
 * @throws {StateEditError} (`InvalidAddress`) when it is not an address
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTarget } from "./_targets.ts";
 *
 * assert.equal(parseTarget('x.y["a"]').kind, "instance");
 * assert.equal(parseTarget("module.app").kind, "module");
 * ```
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
    const reason = error instanceof Error ? error.message : String(error);
    throw new StateEditError(
      `${reason}. Addresses look like discord_role.admin, discord_channel.general[0], ` +
        `module.app["web"].discord_channel.general or module.app.`,
      "InvalidAddress",
      text,
    );
  }
}

/** Whether two module paths are the same module instance. */
export function sameModule(a: readonly ModuleStep[], b: readonly ModuleStep[]): boolean {
  return a.length === b.length && a.every((s, i) => s.name === b[i].name && s.key === b[i].key);
}

/**
 * Whether `prefix` is `module` or one of its ancestors. With `anyKey`, a keyless last step of
 * `prefix` matches every instance of that module, as Terraform's targets do (`module.app`
 * contains `module.app["web"]`).
 */
export function moduleStartsWith(
  module: readonly ModuleStep[],
  prefix: readonly ModuleStep[],
  anyKey: boolean,
): boolean {
  return prefix.length <= module.length &&
    prefix.every((s, i) =>
      s.name === module[i].name &&
      (s.key === module[i].key || (anyKey && s.key === undefined && i === prefix.length - 1))
    );
}

/** Whether a resource block is the resource an address names (its key aside). */
export function resourceIs(resource: StateResource, address: InstanceAddress): boolean {
  return resource.mode === address.mode && resource.type === address.type &&
    resource.name === address.name && sameModule(resourceAddress(resource).module, address.module);
}
