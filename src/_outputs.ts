/**
 * `gaib-state output` as a pure function on a state: which root outputs to show, and which
 * values may be shown. Stricter than `terraform output -json`, which prints every value: a
 * sensitive value is only given when its output is asked for by name.
 *
 * @module
 */

import { StateEditError } from "./errors.ts";
import { printable } from "./_printable.ts";
import type { GaibState } from "./types.ts";

/** One root output as `output` shows it. */
export interface OutputView {
  /** The output's name. */
  name: string;
  /** Whether it is marked sensitive. */
  sensitive: boolean;
  /** Its type, as JSON in Terraform's type syntax. */
  type: unknown;
  /** Whether {@linkcode OutputView.value} holds the value (`false`: withheld). */
  shown: boolean;
  /** The value, or `undefined` when withheld. */
  value: unknown;
}

/**
 * The outputs to show: all of them (sensitive values withheld) or, with `name`, that one
 * output with its value, sensitive or not.
 *
 * @param state the state
 * @param name the output asked for by name
 * @returns the outputs, sorted by name
 * @throws {StateEditError} (`NoMatch`) when `name` is not an output of the state
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createEmptyState } from "./state.ts";
 * import { viewOutputs } from "./_outputs.ts";
 *
 * const state = {
 *   ...createEmptyState(),
 *   outputs: { token: { value: "s3cret", type: "string", sensitive: true } },
 * };
 * assert.equal(viewOutputs(state)[0].value, undefined);
 * assert.equal(viewOutputs(state, "token")[0].value, "s3cret");
 * ```
 */
export function viewOutputs(state: GaibState | null, name?: string): OutputView[] {
  const outputs = state?.outputs ?? {};
  if (name !== undefined) {
    if (!Object.hasOwn(outputs, name)) {
      const names = Object.keys(outputs).sort().map(printable).join(", ") || "none";
      throw new StateEditError(
        `The state has no output "${printable(name)}". Outputs: ${names}.`,
        "NoMatch",
        name,
      );
    }
    const output = outputs[name];
    return [{
      name,
      sensitive: output.sensitive === true,
      type: output.type,
      shown: true,
      value: output.value,
    }];
  }
  return Object.keys(outputs).sort().map((key) => {
    const output = outputs[key];
    const sensitive = output.sensitive === true;
    return {
      name: key,
      sensitive,
      type: output.type,
      shown: !sensitive,
      value: sensitive ? undefined : output.value,
    };
  });
}
