/**
 * Terraform state format v4: create, parse, check and serialize states.
 *
 * @module
 */

import { JsonSyntaxError, parseJsonLossless } from "./_json.ts";
import { validateState } from "./_state_rules.ts";
import { StateFormatError } from "./errors.ts";
import type { GaibState } from "./types.ts";

/**
 * The `terraform_version` written into new states. Terraform refuses states written by a
 * newer version than itself, so new states claim the oldest release of the stable v4 line:
 * every Terraform 1.x and OpenTofu reads them.
 */
export const NEW_STATE_TERRAFORM_VERSION = "1.0.0";

/**
 * Generates a new lineage: a random UUID (version 4).
 *
 * @returns a lineage such as `"0e1c62f4-1b0e-4c55-9e55-1a2f3c4d5e6f"`
 *
 * @example
 * ```ts
 * import { generateLineage } from "@gaib/state";
 * console.log(generateLineage().length); // 36
 * ```
 */
export function generateLineage(): string {
  return crypto.randomUUID();
}

/**
 * Creates a valid, empty v4 state with a fresh lineage and serial 0.
 *
 * @returns the new state
 *
 * @example
 * ```ts
 * import { createEmptyState } from "@gaib/state";
 * const state = createEmptyState();
 * console.log(state.version, state.serial, state.resources); // 4 0 []
 * ```
 */
export function createEmptyState(): GaibState {
  return {
    version: 4,
    terraform_version: NEW_STATE_TERRAFORM_VERSION,
    serial: 0,
    lineage: generateLineage(),
    outputs: {},
    resources: [],
    check_results: null,
  };
}

/**
 * Parses the text of a state file.
 *
 * Accepts what Terraform and OpenTofu accept for format version 4 and keeps every field,
 * including ones this library does not model, every key whatever its name, and the text of
 * every number. Legacy formats 1 to 3 are refused with a hint to upgrade them with
 * Terraform 0.12 or later.
 *
 * @param text the file's content
 * @param source names the state in error messages
 * @returns the state, or `null` for an empty file ("no state yet"); a file holding only
 *   whitespace is a syntax error, as it is for Terraform
 * @throws {StateFormatError} naming what is wrong and where (a syntax error by line and
 *   column, never quoting the file)
 *
 * @example Parsing a minimal state
 * ```ts
 * import { parseState } from "@gaib/state";
 * const state = parseState('{"version": 4, "serial": 3, "lineage": "abc"}');
 * console.log(state?.serial); // 3
 * console.log(parseState("")); // null
 * ```
 */
export function parseState(text: string, source = "state"): GaibState | null {
  // Only a 0-byte file is "no state" (statefile.Read in Terraform and OpenTofu, read.go).
  if (text === "") return null;
  // Terraform refuses a byte order mark; editors on Windows add one, and it is never written
  // back, so it is tolerated.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let doc: unknown;
  try {
    doc = parseJsonLossless(text);
  } catch (error) {
    if (error instanceof RangeError) {
      // The lossless parse (for numbers a double cannot write back) recurses: a document
      // nested thousands of levels deep exhausts the stack. It is valid JSON, but no Terraform
      // writes it.
      throw new StateFormatError(
        `Invalid ${source}: it is nested too deeply to be read (${error.message}). No ` +
          "Terraform state nests values that deep: check where the file came from.",
        { cause: error },
      );
    }
    if (!(error instanceof JsonSyntaxError)) throw error;
    throw new StateFormatError(
      `Invalid ${source}: it is not valid JSON (${error.message}). ` +
        "If the file was cut short, restore it from its backup (terraform.tfstate.backup).",
      { cause: error },
    );
  }
  return validateState(doc, source);
}

/**
 * Decodes and parses the bytes of a state file.
 *
 * @param bytes the file's content
 * @param source names the state in error messages
 * @returns the state, or `null` for an empty (0-byte) file
 * @throws {StateFormatError} when the bytes are not UTF-8 or not a valid state
 */
export function parseStateBytes(bytes: Uint8Array, source = "state"): GaibState | null {
  let text: string;
  try {
    // ignoreBOM keeps a byte order mark for parseState to see: a file holding only one is
    // not empty.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (error) {
    throw new StateFormatError(
      `Invalid ${source}: it is not UTF-8 text, so it cannot be a JSON state file ` +
        "(is it encrypted or compressed?).",
      { cause: error },
    );
  }
  return parseState(text, source);
}

/**
 * Checks whether a value is a valid v4 state, by the same rules as {@linkcode parseState}.
 *
 * @param value any value
 * @returns whether the value is a valid state
 *
 * @example
 * ```ts
 * import { createEmptyState, isValidState } from "@gaib/state";
 * console.log(isValidState(createEmptyState())); // true
 * console.log(isValidState({ version: 3 })); // false
 * ```
 */
export function isValidState(value: unknown): value is GaibState {
  try {
    assertValidState(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws a {@linkcode StateFormatError} saying what is wrong when `value` is not a valid
 * state.
 *
 * @param value the value to check
 * @param source names the state in the message
 * @throws {StateFormatError} when the value is not a valid v4 state
 */
export function assertValidState(value: unknown, source = "state"): asserts value is GaibState {
  const copy = typeof value === "object" && value !== null && !Array.isArray(value)
    ? { ...value }
    : value;
  validateState(copy, source);
  const doc = value as Record<string, unknown>;
  // Missing or null, Terraform reads them as 0 and "": a state handed to a backend says them.
  if (typeof doc.serial !== "number" || typeof doc.lineage !== "string") {
    throw new StateFormatError(`Invalid ${source}: it needs a "serial" and a "lineage".`);
  }
}

const HEADER_KEYS = ["version", "terraform_version", "serial", "lineage"];

/**
 * Serializes a state in Terraform's layout: JSON indented by two spaces with a trailing
 * newline, `version`, `terraform_version`, `serial` and `lineage` first.
 *
 * @param state the state
 * @returns the file content
 * @throws {StateFormatError} when the state cannot be written as JSON: nested too deeply,
 *   too large for one string, cyclic or holding a BigInt
 *
 * @example
 * ```ts
 * import { createEmptyState, serializeState } from "@gaib/state";
 * const text = serializeState(createEmptyState());
 * console.log(text.startsWith('{\n  "version": 4,')); // true
 * ```
 */
export function serializeState(state: GaibState): string {
  let ordered: Record<string, unknown> = state;
  const keys = Object.keys(state);
  const header = HEADER_KEYS.filter((key) => Object.hasOwn(state, key));
  if (header.some((key, i) => keys[i] !== key)) {
    // No prototype: assigning a key named "__proto__" must add it, not set the prototype.
    ordered = Object.create(null);
    for (const key of header) ordered[key] = state[key];
    for (const key of keys) if (!Object.hasOwn(ordered, key)) ordered[key] = state[key];
  }
  try {
    return JSON.stringify(ordered, null, 2) + "\n";
  } catch (error) {
    // JSON.stringify recurses (a value nested thousands of levels deep exhausts the stack),
    // caps string length, and refuses cycles and BigInts.
    if (!(error instanceof RangeError || error instanceof TypeError)) throw error;
    const reason = error instanceof RangeError && /call stack/i.test(error.message)
      ? "it is nested too deeply"
      : error instanceof RangeError
      ? "it is too large for one JSON text"
      : "it is not plain JSON data";
    throw new StateFormatError(
      `Cannot serialize the state: ${reason} (${error.message}). Nothing was written.`,
      { cause: error },
    );
  }
}
