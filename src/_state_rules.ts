/**
 * The rules a decoded document must follow to be a Terraform v4 state, after OpenTofu's reader
 * (`internal/states/statefile`: `read.go` readState and sniffJSONStateVersion, `version4.go`
 * readStateV4, prepareStateV4, unmarshalPaths, decodeCheckResultsV4, and the field types of
 * stateV4 and its parts, which encoding/json enforces): the same files are accepted and
 * refused. Where Terraform's reader differs, the difference is named where it is decided.
 * Checks run once over the document and never copy it.
 *
 * @module
 */

import {
  type CheckableKind,
  checkCheckable,
  formatProviderConfig,
  parseLegacyProviderConfig,
  parseModuleInstance,
  parseProviderConfig,
  parseResource,
  parseResourceInstance,
  type ProviderConfigAddress,
} from "./_address_rules.ts";
import { checkCtyValue, CtyJsonError, type CtyType, parseCtyType } from "./_cty_json.ts";
import { isRawNumber, numberText } from "./_json.ts";
import { formatInstanceAddress, type InstanceAddress, type ModuleStep } from "./address.ts";
import { StateFormatError } from "./errors.ts";
import type { GaibState } from "./types.ts";

// hashicorp/go-version's pattern (version.go VersionRegexpRaw), which Terraform and OpenTofu
// use for terraform_version.
const VERSION_PATTERN =
  /^v?([0-9]+(\.[0-9]+)*?)(-([0-9]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)|(-?([A-Za-z\-~]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)))?(\+([0-9A-Za-z\-~]+(\.[0-9A-Za-z\-~]+)*))?$/;
const UPGRADE_HINT = "Upgrade it by running any Terraform 0.12 or later against it " +
  '(for example "terraform state pull" with that version), then use the upgraded file.';
const UINT64_MAX = 2n ** 64n - 1n;
const INT64_MAX = 2n ** 63n - 1n;
// encoding/json decodes []byte from standard base64 with padding, ignoring \r and \n.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DYNAMIC: CtyType = { kind: "dynamic", key: "dynamic" };

// The JSON fields of each struct of version4.go (OpenTofu's, which has a few more than
// Terraform's: deprecated, instance provider, depends_on, skip_destroy).
const STATE_FIELDS = [
  "version",
  "terraform_version",
  "serial",
  "lineage",
  "outputs",
  "resources",
  "check_results",
];
const OUTPUT_FIELDS = ["value", "type", "sensitive", "deprecated"];
const RESOURCE_FIELDS = ["module", "mode", "type", "name", "each", "provider", "instances"];
const INSTANCE_FIELDS = [
  "index_key",
  "status",
  "deposed",
  "provider",
  "schema_version",
  "attributes",
  "attributes_flat",
  "sensitive_attributes",
  "private",
  "dependencies",
  "depends_on",
  "create_before_destroy",
  "skip_destroy",
  "identity",
  "identity_schema_version",
];
const PATH_STEP_FIELDS = ["type", "value"];
const CHECK_FIELDS = ["object_kind", "config_addr", "status", "objects"];
const CHECK_OBJECT_FIELDS = ["object_addr", "status", "failure_messages"];
const CHECKABLE_KINDS = new Set(["resource", "output", "check", "var"]);

type Json = Record<string, unknown>;
type Fail = (what: string) => never;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !isRawNumber(value);
}

function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (isRawNumber(value)) return "number";
  return typeof value;
}

/** How encoding/json matches a key to a field when no field has the exact name. */
function fold(key: string): string {
  return key.replace(/\u017f/g, "s").replace(/\u212a/g, "k").toLowerCase();
}

/**
 * encoding/json also fills a field from a key that differs only in letter case ("Serial"), so
 * Terraform would read such a key as the field while this library would keep it as an extra
 * one: refused, so the two never read the same file differently.
 */
function checkKeys(object: Json, fields: readonly string[], at: string, fail: Fail): void {
  for (const key in object) {
    if (fields.includes(key)) continue;
    const folded = fold(key);
    const field = fields.find((f) => f === folded);
    if (field) {
      fail(
        `${at} has the key ${JSON.stringify(key)}, which Terraform reads as ` +
          `${JSON.stringify(field)} (it ignores letter case). Rename it to ${
            JSON.stringify(field)
          } or remove it.`,
      );
    }
  }
}

/** A whole number of at least 0 that fits uint64, written without fraction or exponent. */
function uint64(value: unknown): bigint | null {
  if (typeof value !== "number" && !isRawNumber(value)) return null;
  const text = numberText(value);
  if (!/^(0|[1-9]\d*)$/.test(text)) return null;
  const n = BigInt(text);
  return n <= UINT64_MAX ? n : null;
}

/** Checks an optional uint64 field (null and absent decode as 0). */
function checkUint(value: unknown, what: string, fail: Fail): void {
  if (value === undefined || value === null) return;
  if (uint64(value) === null) {
    fail(
      `${what} must be a whole number of at least 0 written without a fraction or exponent, ` +
        `found ${describe(value)}.`,
    );
  }
}

function describe(value: unknown): string {
  if (typeof value === "number" || isRawNumber(value)) return numberText(value);
  return jsonType(value);
}

/** Checks an optional field of a Go type (null and absent decode as the zero value). */
function checkType(value: unknown, type: "string" | "boolean", what: string, fail: Fail): void {
  if (value === undefined || value === null || typeof value === type) return;
  fail(
    `${what} must be ${type === "string" ? "a string" : "true or false"}, found ${
      jsonType(value)
    }.`,
  );
}

/** Checks an optional array of strings (a null element decodes as ""). */
function stringList(value: unknown, what: string, fail: Fail): (string | null)[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => v !== null && typeof v !== "string")) {
    fail(`${what} must be an array of strings.`);
  }
  return value as (string | null)[];
}

/** Remembers each distinct address's verdict: big states repeat the same few thousand. */
class Verdicts {
  readonly #seen = new Map<string, unknown>();

  get<T>(text: string, parse: (text: string) => T): T {
    if (!this.#seen.has(text)) {
      try {
        this.#seen.set(text, parse(text));
      } catch (error) {
        if (!(error instanceof SyntaxError)) throw error;
        this.#seen.set(text, error);
      }
    }
    const verdict = this.#seen.get(text);
    if (verdict instanceof Error) throw verdict;
    return verdict as T;
  }
}

/**
 * Checks a decoded document and returns it as a state. Missing or null `serial`, `lineage`
 * and `instances` (which Go decodes as zero values) are filled in; nothing else is changed.
 *
 * @param doc the decoded JSON
 * @param source names the state in messages, such as `state file "x.tfstate"`
 * @throws {StateFormatError} naming what is wrong and where
 */
export function validateState(doc: unknown, source: string): GaibState {
  const fail: Fail = (what) => {
    throw new StateFormatError(`Invalid ${source}: ${what}`);
  };
  if (!isObject(doc)) return fail(`expected a JSON object, found ${jsonType(doc)}.`);
  if (
    (doc.version === undefined || doc.version === null) && "encrypted_data" in doc &&
    "encryption_version" in doc
  ) {
    fail(
      "the state is encrypted (OpenTofu state encryption) and cannot be read without an " +
        "encryption configuration. Configure the key in gaib.yaml (an encryption block: " +
        'key_provider, method and state, as in OpenTofu) or in GAIB_ENCRYPTION; see "State ' +
        'encryption" in the README.',
    );
  }
  checkKeys(doc, STATE_FIELDS, "the state", fail);
  checkVersion(doc, fail);

  if (doc.serial === undefined || doc.serial === null) doc.serial = 0;
  else {
    const serial = uint64(doc.serial);
    if (serial === null) {
      fail(
        `"serial" must be a whole number of at least 0 written without a fraction or ` +
          `exponent, found ${describe(doc.serial)}.`,
      );
    }
    // Intentionally narrower than Terraform (uint64): a JavaScript number holds serials up to
    // 2^53 - 1 exactly, and no state gets near that.
    if (serial > BigInt(Number.MAX_SAFE_INTEGER)) {
      fail(`"serial" is ${serial}, larger than gaib-state can count (2^53 - 1).`);
    }
  }
  if (doc.lineage === undefined || doc.lineage === null) doc.lineage = "";
  else if (typeof doc.lineage !== "string") {
    fail(`"lineage" must be a string, found ${jsonType(doc.lineage)}.`);
  }
  checkTerraformVersion(doc.terraform_version, fail);
  checkOutputs(doc.outputs, fail);
  checkResources(doc.resources, fail);
  checkCheckResults(doc.check_results, fail);
  return doc as GaibState;
}

/** sniffJSONStateVersion and readState (read.go). */
function checkVersion(doc: Json, fail: Fail): void {
  const version = doc.version;
  if (version === undefined || version === null) {
    fail(
      'the state has no "version" attribute, which is required to identify the format ' +
        "version. Is this a Terraform state file?",
    );
  }
  if (typeof version !== "number" && !isRawNumber(version)) {
    fail(
      `the version in the state is ${jsonType(version)}. A positive whole number is required.`,
    );
  }
  const n = uint64(version);
  if (n === null) {
    fail(
      `the version in the state is ${numberText(version)}. A positive whole number written ` +
        "without a fraction or exponent is required.",
    );
  }
  if (n === 0n) {
    fail(
      "the state has a version number of zero. There was never a JSON-based state format " +
        "zero, so the file is damaged or is not a state.",
    );
  }
  if (n <= 3n) {
    // Terraform upgrades formats 1 to 3; OpenTofu refuses them since 2026 (50d94e0).
    fail(
      `the state uses the legacy format version ${n}, which gaib-state does not read. ` +
        UPGRADE_HINT,
    );
  }
  if (n !== 4n) {
    const by = typeof doc.terraform_version === "string"
      ? ` It was created by Terraform ${JSON.stringify(doc.terraform_version)}.`
      : "";
    fail(
      `the state uses format version ${n}, which this version of gaib-state does not ` +
        `support (it reads version 4).${by} Upgrade gaib-state to read it.`,
    );
  }
}

/** prepareStateV4: terraform_version must be "" or a version go-version parses. */
function checkTerraformVersion(value: unknown, fail: Fail): void {
  if (value === undefined || value === null || value === "") return;
  if (typeof value !== "string") {
    fail(`"terraform_version" must be a string, found ${jsonType(value)}.`);
  }
  const match = VERSION_PATTERN.exec(value);
  // newVersion parses each segment with strconv.ParseInt(…, 64).
  if (!match || match[1].split(".").some((s) => BigInt(s) > INT64_MAX)) {
    fail(
      `the state claims to have been written by Terraform version ${JSON.stringify(value)}, ` +
        "which is not a valid version string.",
    );
  }
}

/** Output values: their type must be a cty type and their value must decode as it. */
function checkOutputs(outputs: unknown, fail: Fail): void {
  if (outputs === undefined || outputs === null) return;
  if (!isObject(outputs)) fail(`"outputs" must be an object, found ${jsonType(outputs)}.`);
  for (const [name, output] of Object.entries(outputs as Json)) {
    const at = `output ${JSON.stringify(name)}`;
    if (!isObject(output)) fail(`${at} must be an object, found ${jsonType(output)}.`);
    checkKeys(output, OUTPUT_FIELDS, at, fail);
    if (!("value" in output)) fail(`${at} has no "value".`);
    if (!("type" in output)) fail(`${at} has no "type", so its value cannot be decoded.`);
    checkType(output.sensitive, "boolean", `${at}: "sensitive"`, fail);
    checkType(output.deprecated, "string", `${at}: "deprecated"`, fail);
    cty(fail, `${at} has an invalid type or value`, () => {
      checkCtyValue(output.value, parseCtyType(output.type));
    });
  }
}

/** Runs a cty check, turning its errors into the state's. */
function cty(fail: Fail, what: string, check: () => void): void {
  try {
    check();
  } catch (error) {
    if (error instanceof CtyJsonError) fail(`${what}: ${error.message}.`);
    // A type or value nested thousands deep exhausts the stack (Go's grows; ours does not).
    if (error instanceof RangeError) fail(`${what}: it is nested too deeply to be checked.`);
    throw error;
  }
}

interface ResourceContext {
  readonly modules: Verdicts;
  readonly resourceProviders: Verdicts;
  readonly instanceProviders: Verdicts;
  readonly dependencies: Verdicts;
  readonly dependsOn: Verdicts;
  readonly seen: Set<string>;
}

/** ParseAbsProviderConfigInstanceStr: instances take no legacy form, but may have a key. */
function instanceProvider(text: string): ProviderConfigAddress {
  return parseProviderConfig(text, true);
}

function checkResources(resources: unknown, fail: Fail): void {
  if (resources === undefined || resources === null) return;
  if (!Array.isArray(resources)) {
    fail(`"resources" must be an array, found ${jsonType(resources)}.`);
  }
  const context: ResourceContext = {
    modules: new Verdicts(),
    resourceProviders: new Verdicts(),
    instanceProviders: new Verdicts(),
    dependencies: new Verdicts(),
    dependsOn: new Verdicts(),
    seen: new Set(),
  };
  for (let i = 0; i < resources.length; i++) checkResource(resources[i], i, context, fail);
}

function checkResource(resource: unknown, i: number, context: ResourceContext, fail: Fail): void {
  const at = `resources[${i}]`;
  if (!isObject(resource)) fail(`${at} must be an object, found ${jsonType(resource)}.`);
  const r = resource as Json;
  checkKeys(r, RESOURCE_FIELDS, at, fail);
  for (const field of ["module", "type", "name", "each", "provider"]) {
    checkType(r[field], "string", `${at}: "${field}"`, fail);
  }
  if (r.mode !== "managed" && r.mode !== "data") {
    fail(`${at} has the invalid mode ${JSON.stringify(r.mode ?? "")}.`);
  }
  let module: ModuleStep[] = [];
  if (typeof r.module === "string" && r.module !== "") {
    try {
      module = context.modules.get(r.module, parseModuleInstance);
    } catch (error) {
      fail(`${at} has an invalid module address: ${(error as Error).message}.`);
    }
  }
  // Terraform and OpenTofu take a missing type or name as "" and read the resource.
  const base: InstanceAddress = {
    module,
    mode: r.mode as "managed" | "data",
    type: (r.type as string | null) ?? "",
    name: (r.name as string | null) ?? "",
  };
  const label = formatInstanceAddress(base);
  if (r.instances === undefined || r.instances === null) r.instances = [];
  if (!Array.isArray(r.instances)) {
    fail(`resource ${label}: "instances" must be an array, found ${jsonType(r.instances)}.`);
  }
  const provider = typeof r.provider === "string" ? r.provider : "";
  if (provider !== "") {
    try {
      context.resourceProviders.get(provider, (text) => {
        try {
          return parseProviderConfig(text, false);
        } catch {
          // ParseAbsProviderConfigStr failed: ParseLegacyAbsProviderConfigStr, for 0.12's form.
          return parseLegacyProviderConfig(text);
        }
      });
    } catch {
      fail(`resource ${label} has an invalid provider address ${JSON.stringify(provider)}.`);
    }
  }
  const instanceProviders = new Set<string>();
  const instances = r.instances as unknown[];
  for (let j = 0; j < instances.length; j++) {
    const instance = instances[j];
    // Intentionally stricter: encoding/json reads a null element as an empty instance, which
    // no Terraform writes.
    if (!isObject(instance)) {
      fail(`resource ${label}: instances[${j}] must be an object, found ${jsonType(instance)}.`);
    }
    const key = checkIndexKey(instance.index_key, `resource ${label}: instances[${j}]`, fail);
    const address = formatInstanceAddress({ ...base, key });
    checkInstance(instance, address, context, fail);
    const own = typeof instance.provider === "string" ? instance.provider : "";
    if (own !== "") {
      instanceProviders.add(
        formatProviderConfig(context.instanceProviders.get(own, instanceProvider)),
      );
    } else if (provider === "") {
      // Terraform requires the resource's provider; OpenTofu (1.9+) takes the instances'.
      fail(
        `resource ${label} is missing a provider address, both on the resource and the ` +
          "resource instances.",
      );
    }
    const deposed = typeof instance.deposed === "string" ? instance.deposed : "";
    const identity = `${address} ${deposed}`;
    if (context.seen.has(identity)) {
      fail(
        deposed
          ? `deposed object ${JSON.stringify(deposed)} of ${address} appears multiple times ` +
            "in the state."
          : `instance ${address} appears multiple times in the state.`,
      );
    }
    context.seen.add(identity);
  }
  if (instanceProviders.size > 1) {
    fail(`resource ${label} has instances with different provider addresses.`);
  }
}

/**
 * prepareStateV4: a string key, a number key (encoding/json gives a float64, which becomes an
 * int by truncation), or none.
 */
function checkIndexKey(key: unknown, at: string, fail: Fail): number | string | undefined {
  if (key === undefined || key === null) return undefined;
  if (typeof key === "string") return key;
  if (typeof key === "number" || isRawNumber(key)) {
    const n = Number(numberText(key));
    // encoding/json refuses a number beyond the float64 range.
    if (!Number.isFinite(n)) fail(`${at} has the index_key ${numberText(key)}, beyond a float64.`);
    return Math.trunc(n) + 0; // + 0: -0 becomes 0
  }
  return fail(`${at} has an invalid index_key of type ${jsonType(key)}.`);
}

function checkInstance(
  instance: Json,
  address: string,
  context: ResourceContext,
  fail: Fail,
): void {
  const at = `instance ${address}`;
  checkKeys(instance, INSTANCE_FIELDS, at, fail);
  for (const field of ["status", "deposed", "provider", "private"]) {
    checkType(instance[field], "string", `${at}: "${field}"`, fail);
  }
  for (const field of ["create_before_destroy", "skip_destroy"]) {
    checkType(instance[field], "boolean", `${at}: "${field}"`, fail);
  }
  checkUint(instance.schema_version, `${at}: "schema_version"`, fail);
  checkUint(instance.identity_schema_version, `${at}: "identity_schema_version"`, fail);
  const deposed = instance.deposed;
  // prepareStateV4 checks only the length, in bytes.
  if (typeof deposed === "string" && deposed !== "") {
    if (new TextEncoder().encode(deposed).length !== 8) {
      fail(
        `${at} has an object with deposed key ${JSON.stringify(deposed)}, which is not ` +
          "correctly formatted (8 characters).",
      );
    }
  }
  if (instance.status !== undefined && instance.status !== null && instance.status !== "") {
    if (instance.status !== "tainted") {
      fail(`${at} has the invalid status ${JSON.stringify(instance.status)}.`);
    }
  }
  const provider = instance.provider;
  if (typeof provider === "string" && provider !== "") {
    try {
      context.instanceProviders.get(provider, instanceProvider);
    } catch {
      // ParseAbsProviderConfigInstanceStr only: the legacy form is not read here.
      fail(`${at} has an invalid provider address ${JSON.stringify(provider)}.`);
    }
  }
  // Intentionally stricter: Terraform reads any JSON here (json.RawMessage) and refuses it
  // only at the next plan, when the provider decodes it; no Terraform writes anything else.
  const attrs = instance.attributes;
  if (attrs !== undefined && attrs !== null && !isObject(attrs)) {
    fail(`${at}: "attributes" must be an object, found ${jsonType(attrs)}.`);
  }
  const flat = instance.attributes_flat;
  if (flat !== undefined && flat !== null) {
    if (!isObject(flat) || Object.values(flat).some((v) => v !== null && typeof v !== "string")) {
      fail(`${at}: "attributes_flat" must be an object of strings.`);
    }
  }
  if (typeof instance.private === "string") {
    if (!BASE64.test(instance.private.replace(/[\r\n]/g, ""))) {
      fail(`${at}: "private" must be base64 text.`);
    }
  }
  checkSensitivePaths(instance.sensitive_attributes, at, fail);
  for (const dependency of stringList(instance.dependencies, `${at}: "dependencies"`, fail)) {
    try {
      context.dependencies.get(dependency ?? "", parseResource);
    } catch (error) {
      fail(`${at} has an invalid dependency: ${(error as Error).message}.`);
    }
  }
  for (const dependency of stringList(instance.depends_on, `${at}: "depends_on"`, fail)) {
    try {
      context.dependsOn.get(dependency ?? "", parseResourceInstance);
    } catch (error) {
      fail(`${at} has an invalid depends_on entry: ${(error as Error).message}.`);
    }
  }
}

/** unmarshalPaths: an array of paths, each an array of {"type", "value"} steps. */
function checkSensitivePaths(paths: unknown, at: string, fail: Fail): void {
  if (paths === undefined || paths === null) return;
  const what = `${at}: "sensitive_attributes"`;
  if (!Array.isArray(paths)) fail(`${what} must be an array of paths.`);
  for (const path of paths) {
    if (path === null) continue;
    if (!Array.isArray(path)) fail(`${what} must be an array of paths (arrays of steps).`);
    for (const step of path) {
      if (!isObject(step)) fail(`${what} has a path step that is not an object.`);
      checkKeys(step, PATH_STEP_FIELDS, what, fail);
      if (step.type === "get_attr") {
        if (!("value" in step)) fail(`${what} has a get_attr step without a "value".`);
        if (step.value !== null && typeof step.value !== "string") {
          fail(`${what} has a get_attr step whose value is not a string.`);
        }
      } else if (step.type === "index") {
        if (!("value" in step)) fail(`${what} has an index step without a "value".`);
        cty(fail, `${what} has an invalid index step`, () => checkCtyValue(step.value, DYNAMIC));
      } else {
        fail(`${what} has a path step of the unsupported type ${JSON.stringify(step.type)}.`);
      }
    }
  }
}

/** decodeCheckResultsV4: results of unknown kinds are skipped, the others' addresses parse. */
function checkCheckResults(checks: unknown, fail: Fail): void {
  if (checks === undefined || checks === null) return;
  if (!Array.isArray(checks)) {
    fail(`"check_results" must be an array or null, found ${jsonType(checks)}.`);
  }
  for (let i = 0; i < checks.length; i++) {
    const result = checks[i];
    if (result === null) continue;
    const at = `check_results[${i}]`;
    if (!isObject(result)) fail(`${at} must be an object, found ${jsonType(result)}.`);
    checkKeys(result, CHECK_FIELDS, at, fail);
    for (const field of ["object_kind", "config_addr", "status"]) {
      checkType(result[field], "string", `${at}: "${field}"`, fail);
    }
    const objects = result.objects ?? [];
    if (!Array.isArray(objects)) fail(`${at}: "objects" must be an array.`);
    const kind = result.object_kind;
    const known = typeof kind === "string" && CHECKABLE_KINDS.has(kind);
    const address = (text: unknown, config: boolean, where: string) => {
      if (!known) return;
      try {
        checkCheckable(kind as CheckableKind, (text as string | null) ?? "", config);
      } catch (error) {
        if (!(error instanceof SyntaxError)) throw error;
        fail(`${where} has an invalid address: ${error.message}.`);
      }
    };
    address(result.config_addr, true, at);
    for (let j = 0; j < objects.length; j++) {
      const object = objects[j];
      const where = `${at}.objects[${j}]`;
      if (object !== null && !isObject(object)) {
        fail(`${where} must be an object, found ${jsonType(object)}.`);
      }
      const o = (object ?? {}) as Json;
      checkKeys(o, CHECK_OBJECT_FIELDS, where, fail);
      checkType(o.object_addr, "string", `${where}: "object_addr"`, fail);
      checkType(o.status, "string", `${where}: "status"`, fail);
      stringList(o.failure_messages, `${where}: "failure_messages"`, fail);
      address(o.object_addr, false, where);
    }
  }
}
