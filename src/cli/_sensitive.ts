/**
 * Masks sensitive values before `state show` prints an instance or an output.
 *
 * `sensitive_attributes` holds attribute paths, each a list of steps as Terraform and OpenTofu
 * write them: `{"type": "get_attr", "value": "password"}` and
 * `{"type": "index", "value": {"value": 0, "type": "number"}}` (older writers put the bare key
 * in `value`). A bare string (`"password"` or `"a.b"`) is read as a dotted attribute path.
 * Anything else fails closed: the whole top-level attribute, or the whole object, is masked.
 *
 * @module
 */

/** Stands in for a masked value. */
export const SENSITIVE: unique symbol = Symbol("sensitive value");

/** The text shown for a masked value. */
export const SENSITIVE_TEXT = "(sensitive value)";

type Step = { attr: string } | { index: number | string } | { unknown: true };

function decodeStep(step: unknown): Step {
  if (typeof step !== "object" || step === null) return { unknown: true };
  const { type, value } = step as { type?: unknown; value?: unknown };
  if (type === "get_attr" && typeof value === "string") return { attr: value };
  if (type === "index") {
    let key: unknown = value;
    if (typeof value === "object" && value !== null && "value" in value) {
      key = (value as { value: unknown }).value;
    }
    if (typeof key === "number" || typeof key === "string") return { index: key };
  }
  return { unknown: true };
}

/** Decodes one path; `null` when it is not understood. */
function decodePath(path: unknown): Step[] | null {
  if (typeof path === "string") return path === "" ? [] : path.split(".").map((attr) => ({ attr }));
  if (!Array.isArray(path)) return null;
  const steps = path.map(decodeStep);
  return steps.some((s) => "unknown" in s) ? null : steps;
}

function clone(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clone);
  if (typeof value === "object" && value !== null && !isRawJson(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = clone(v);
    return out;
  }
  return value;
}

/** Whether a value is a `JSON.rawJSON` number kept for precision. */
export function isRawJson(value: unknown): boolean {
  return typeof value === "object" && value !== null && "rawJSON" in value;
}

/**
 * Replaces the value at `steps` in `root` (a clone) with {@linkcode SENSITIVE}. An index into
 * a JSON array cannot tell a list from a set (whose elements are addressed by value), so when
 * it is the last step, or its key is not a number, the whole array is masked.
 */
function maskAt(root: Record<string, unknown>, steps: Step[]): void {
  // `holder[key]` is the current value, so that it can itself be replaced.
  let holder: Record<string | number, unknown> = { root };
  let key: string | number = "root";
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const last = i === steps.length - 1;
    const value = holder[key];
    if (value === null || value === undefined) return; // absent: nothing to hide
    let next: string | number;
    if ("attr" in step) {
      if (typeof value !== "object" || Array.isArray(value) || isRawJson(value)) {
        holder[key] = SENSITIVE; // not the shape the path expects: hide it all
        return;
      }
      next = step.attr;
    } else if ("index" in step) {
      if (Array.isArray(value)) {
        if (last || typeof step.index !== "number") {
          holder[key] = SENSITIVE;
          return;
        }
        next = step.index;
      } else if (typeof value === "object" && !isRawJson(value)) {
        next = String(step.index);
      } else {
        holder[key] = SENSITIVE;
        return;
      }
    } else {
      holder[key] = SENSITIVE;
      return;
    }
    const container = value as Record<string | number, unknown>;
    if (!(next in container)) return;
    if (last) {
      container[next] = SENSITIVE;
      return;
    }
    holder = container;
    key = next;
  }
}

/** The result of {@linkcode maskAttributes}. */
export interface MaskedAttributes {
  /** A copy of the attributes with sensitive values replaced by {@linkcode SENSITIVE}. */
  attributes: Record<string, unknown>;
  /** Whether a path was not understood, so that more than its value was masked. */
  failedClosed: boolean;
}

/**
 * Masks the values at the `sensitive_attributes` paths of an instance.
 *
 * @param attributes the instance's `attributes`
 * @param sensitive its `sensitive_attributes`
 * @returns a masked copy
 */
export function maskAttributes(
  attributes: Record<string, unknown>,
  sensitive: unknown,
): MaskedAttributes {
  const copy = clone(attributes) as Record<string, unknown>;
  if (sensitive === undefined || sensitive === null) {
    return { attributes: copy, failedClosed: false };
  }
  if (!Array.isArray(sensitive)) return { attributes: maskAll(copy), failedClosed: true };
  let failedClosed = false;
  for (const raw of sensitive) {
    const steps = decodePath(raw);
    if (steps === null) {
      failedClosed = true;
      // Hide the whole top-level attribute the path starts at, or everything.
      const first = Array.isArray(raw) ? decodeStep(raw[0]) : { unknown: true as const };
      if ("attr" in first) {
        if (first.attr in copy) copy[first.attr] = SENSITIVE;
      } else return { attributes: maskAll(copy), failedClosed };
      continue;
    }
    if (steps.length === 0) return { attributes: maskAll(copy), failedClosed };
    maskAt(copy, steps);
  }
  return { attributes: copy, failedClosed };
}

function maskAll(attributes: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(attributes)) out[key] = attributes[key] === null ? null : SENSITIVE;
  return out;
}

/**
 * Masks the legacy flatmap attributes (`attributes_flat`) of an instance: a path
 * `password` hides `password` and every `password.*` key.
 *
 * @param flat the instance's `attributes_flat`
 * @param sensitive its `sensitive_attributes`
 * @returns a masked copy
 */
export function maskFlatAttributes(
  flat: Record<string, string>,
  sensitive: unknown,
): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...flat };
  if (sensitive === undefined || sensitive === null) return copy;
  const all = () => Object.fromEntries(Object.keys(flat).map((k) => [k, SENSITIVE]));
  if (!Array.isArray(sensitive)) return all();
  for (const raw of sensitive) {
    const steps = decodePath(raw);
    if (steps === null || steps.length === 0) return all();
    const prefix = steps.map((s) => "attr" in s ? s.attr : String((s as { index: unknown }).index))
      .join(".");
    for (const key of Object.keys(copy)) {
      if (key === prefix || key.startsWith(prefix + ".")) copy[key] = SENSITIVE;
    }
  }
  return copy;
}

/**
 * Replaces {@linkcode SENSITIVE} with `{"sensitive": true}` for JSON output: an object where a
 * string, a number or a list was, so that a masked value is not mistaken for a value whose
 * text is `(sensitive value)`. Which positions are masked is told without doubt by
 * {@linkcode sensitiveValues}.
 *
 * @param value a masked value
 * @returns a value `JSON.stringify` can write
 */
export function forJson(value: unknown): unknown {
  if (value === SENSITIVE) return { sensitive: true };
  if (Array.isArray(value)) return value.map(forJson);
  if (typeof value === "object" && value !== null && !isRawJson(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = forJson(v);
    return out;
  }
  return value;
}

/**
 * Where a masked value has its masked parts, in the shape of Terraform's JSON
 * `sensitive_values`: `true` for a masked value, an object with the keys that hold masked
 * parts (others left out), a list with an entry per element (`false` for one without).
 *
 * @param value a masked value
 * @returns `true`, `false`, or the object or list described
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { forJson, SENSITIVE, sensitiveValues } from "./_sensitive.ts";
 *
 * const masked = { name: "web", settings: { password: SENSITIVE }, tags: ["a", SENSITIVE] };
 * assert.deepEqual(sensitiveValues(masked), { settings: { password: true }, tags: [false, true] });
 * assert.deepEqual(forJson(masked), {
 *   name: "web",
 *   settings: { password: { sensitive: true } },
 *   tags: ["a", { sensitive: true }],
 * });
 * ```
 */
export function sensitiveValues(value: unknown): unknown {
  if (value === SENSITIVE) return true;
  if (Array.isArray(value)) return value.map(sensitiveValues);
  if (typeof value === "object" && value !== null && !isRawJson(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const inner = sensitiveValues(v);
      if (inner !== false) out[k] = inner;
    }
    return out;
  }
  return false;
}
