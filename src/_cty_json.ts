/**
 * The JSON forms of cty types and values, as far as a state reader checks them: an output's
 * `type` must be a type description and its `value` must decode as that type, and an index
 * step of `sensitive_attributes` must be a dynamically-typed value. Terraform and OpenTofu
 * refuse a state where either fails (`prepareStateV4` and `unmarshalPaths` in
 * `internal/states/statefile/version4.go`), so a state that breaks these rules must never be
 * accepted or stored.
 *
 * After zclconf/go-cty v1.18: `cty/json.go` (Type.UnmarshalJSON), `cty/json/unmarshal.go`
 * (unmarshal, unmarshalPrimitive, unmarshalDynamic), `cty/convert/conversion_primitive.go`
 * (string to bool), `cty/value_init.go` (ParseNumberVal, and ListVal, SetVal and MapVal, which
 * panic on elements of different types) and `cty/object_type.go` (ObjectWithOptionalAttrs).
 *
 * @module
 */

import { isRawNumber } from "./_json.ts";

/** A cty type. */
export type CtyType =
  | { readonly kind: "bool" | "number" | "string" | "dynamic"; readonly key: string }
  | { readonly kind: "list" | "set" | "map"; readonly element: CtyType; readonly key: string }
  | { readonly kind: "tuple"; readonly elements: readonly CtyType[]; readonly key: string }
  | {
    readonly kind: "object";
    readonly attributes: ReadonlyMap<string, CtyType>;
    readonly key: string;
  };

/** A type description or value that cty refuses; the message names where, never the value. */
export class CtyJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CtyJsonError";
  }
}

const PRIMITIVES = new Set(["bool", "number", "string", "dynamic"]);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !isRawNumber(value);
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (isRawNumber(value) || typeof value === "number") return "a number";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

/**
 * Decodes a type description: `"string"`, `["list", T]`, `["object", {…}, [optional…]]`, …
 *
 * @throws {CtyJsonError} when it is not one
 */
export function parseCtyType(json: unknown, at = "type"): CtyType {
  if (typeof json === "string") {
    if (!PRIMITIVES.has(json)) throw new CtyJsonError(`${at}: invalid primitive type name`);
    return { kind: json as "bool", key: json };
  }
  if (!Array.isArray(json)) throw new CtyJsonError(`${at}: invalid type description`);
  const [kind, arg, optional] = json;
  if (typeof kind !== "string") throw new CtyJsonError(`${at}: invalid complex type kind`);
  const expectLength = (n: number) => {
    if (json.length !== n) throw new CtyJsonError(`${at}: unexpected data in type description`);
  };
  switch (kind) {
    case "list":
    case "set":
    case "map": {
      expectLength(2);
      const element = parseCtyType(arg, `${at}[1]`);
      return { kind, element, key: `${kind}(${element.key})` };
    }
    case "tuple": {
      expectLength(2);
      // A null list decodes as an empty one (encoding/json).
      if (arg !== null && !Array.isArray(arg)) {
        throw new CtyJsonError(`${at}[1]: tuple element types must be an array`);
      }
      const elements = (arg ?? []).map((t: unknown, i: number) =>
        parseCtyType(t, `${at}[1][${i}]`)
      );
      return { kind, elements, key: `tuple(${elements.map((e: CtyType) => e.key).join(",")})` };
    }
    case "object": {
      if (json.length !== 2 && json.length !== 3) {
        throw new CtyJsonError(`${at}: unexpected data in type description`);
      }
      if (arg !== null && !isObject(arg)) {
        throw new CtyJsonError(`${at}[1]: object attribute types must be an object`);
      }
      const attributes = new Map<string, CtyType>();
      for (const [name, t] of Object.entries(arg ?? {})) {
        // ObjectWithOptionalAttrs normalizes names (cty.NormalizeString: NFC).
        attributes.set(name.normalize("NFC"), parseCtyType(t, `${at}[1].${JSON.stringify(name)}`));
      }
      if (json.length === 3 && optional !== null) {
        if (!Array.isArray(optional)) {
          throw new CtyJsonError(`${at}[2]: optional attribute names must be an array`);
        }
        for (const name of optional) {
          // A null name decodes as "" (encoding/json); an undeclared one makes cty panic.
          if (name !== null && typeof name !== "string") {
            throw new CtyJsonError(`${at}[2]: optional attribute names must be strings`);
          }
          if (!attributes.has((name ?? "").normalize("NFC"))) {
            throw new CtyJsonError(`${at}[2]: optional attribute is not declared`);
          }
        }
      }
      const names = [...attributes.keys()].sort();
      const key = `object({${names.map((n) => `${JSON.stringify(n)}:${attributes.get(n)!.key}`)}})`;
      return { kind, attributes, key };
    }
    default:
      throw new CtyJsonError(`${at}: invalid complex type kind`);
  }
}

// big.ParseFloat(s, 10, …): a decimal with an optional exponent ("p" for a binary one is
// accepted too), or ±Inf.
const NUMBER_STRING = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eEpP][+-]?\d+)?|[Ii]nf)$/;
const DYNAMIC = { kind: "dynamic", key: "dynamic" } as const;

/**
 * Checks that a value decodes as the type (ctyjson.Unmarshal).
 *
 * @returns the key of the decoded value's type (its elements' actual types)
 * @throws {CtyJsonError} when it does not
 */
export function checkCtyValue(value: unknown, type: CtyType, at = "value"): string {
  if (value === null) return type.key; // cty.NullVal of the type
  switch (type.kind) {
    case "dynamic": {
      if (!isObject(value)) throw new CtyJsonError(`${at}: a {"value", "type"} object is required`);
      for (const key of Object.keys(value)) {
        if (key !== "type" && key !== "value") {
          throw new CtyJsonError(`${at}: invalid key ${JSON.stringify(key)} in a typed value`);
        }
      }
      if (!("type" in value)) throw new CtyJsonError(`${at}: missing "type" in a typed value`);
      if (!("value" in value)) throw new CtyJsonError(`${at}: missing "value" in a typed value`);
      return checkCtyValue(value.value, parseCtyType(value.type, `${at}.type`), `${at}.value`);
    }
    case "bool":
      if (typeof value === "boolean") return type.key;
      if (typeof value === "string" && ["true", "false", "1", "0"].includes(value)) {
        return type.key;
      }
      throw new CtyJsonError(`${at}: a bool is required, found ${kindOf(value)}`);
    case "number":
      if (typeof value === "number" || isRawNumber(value)) return type.key;
      if (typeof value === "string" && NUMBER_STRING.test(value)) return type.key;
      throw new CtyJsonError(`${at}: a number is required, found ${kindOf(value)}`);
    case "string":
      if (["string", "number", "boolean"].includes(typeof value) || isRawNumber(value)) {
        return type.key;
      }
      throw new CtyJsonError(`${at}: a string is required, found ${kindOf(value)}`);
    case "list":
    case "set": {
      if (!Array.isArray(value)) {
        throw new CtyJsonError(`${at}: an array is required for a ${type.kind}`);
      }
      const keys = value.map((v, i) => checkCtyValue(v, type.element, `${at}[${i}]`));
      return `${type.kind}(${commonType(keys, type.element, at)})`;
    }
    case "map": {
      if (!isObject(value)) throw new CtyJsonError(`${at}: an object is required for a map`);
      const keys = Object.entries(value).map(([k, v]) =>
        checkCtyValue(v, type.element, `${at}[${JSON.stringify(k)}]`)
      );
      return `map(${commonType(keys, type.element, at)})`;
    }
    case "tuple": {
      if (!Array.isArray(value)) throw new CtyJsonError(`${at}: an array is required for a tuple`);
      if (value.length !== type.elements.length) {
        throw new CtyJsonError(`${at}: a tuple of ${type.elements.length} elements is required`);
      }
      const keys = value.map((v, i) => checkCtyValue(v, type.elements[i], `${at}[${i}]`));
      return `tuple(${keys.join(",")})`;
    }
    case "object": {
      if (!isObject(value)) throw new CtyJsonError(`${at}: an object is required`);
      const actual = new Map<string, string>();
      for (const [name, v] of Object.entries(value)) {
        const attribute = type.attributes.get(name);
        if (!attribute) {
          throw new CtyJsonError(`${at}: unsupported attribute ${JSON.stringify(name)}`);
        }
        actual.set(name, checkCtyValue(v, attribute, `${at}.${JSON.stringify(name)}`));
      }
      const names = [...type.attributes.keys()].sort();
      const parts = names.map((n) =>
        `${JSON.stringify(n)}:${actual.get(n) ?? type.attributes.get(n)!.key}`
      );
      return `object({${parts}})`;
    }
  }
}

/** The element type ListVal, SetVal and MapVal settle on; they panic on a mix. */
function commonType(keys: string[], declared: CtyType, at: string): string {
  if (keys.length === 0) return declared.key;
  let common = DYNAMIC.key as string;
  for (const key of keys) {
    if (common === DYNAMIC.key) common = key;
    else if (key !== DYNAMIC.key && key !== common) {
      throw new CtyJsonError(`${at}: elements of different types`);
    }
  }
  return common;
}
