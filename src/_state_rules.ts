/**
 * The rules a decoded document must follow to be a Terraform v4 state, after OpenTofu's
 * `internal/states/statefile` reader (version4.go): the same files are accepted and refused.
 * Checks run once over the document and never copy it, so a 45 MB state costs a few
 * milliseconds here.
 *
 * @module
 */

import {
  formatInstanceAddress,
  type InstanceAddress,
  instanceKey,
  isProviderAddress,
  resourceAddress,
} from "./address.ts";
import { StateFormatError } from "./errors.ts";
import type { GaibState } from "./types.ts";

// hashicorp/go-version's pattern, which Terraform and OpenTofu use for terraform_version.
const VERSION_PATTERN =
  /^v?([0-9]+(\.[0-9]+)*?)(-([0-9]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)|(-?([A-Za-z\-~]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)))?(\+([0-9A-Za-z\-~]+(\.[0-9A-Za-z\-~]+)*))?$/;
const DEPOSED_KEY = /^[0-9a-fA-F]{8}$/;
const UPGRADE_HINT = "Upgrade it by running any Terraform 0.12 or later against it " +
  '(for example "terraform state pull" with that version), then use the upgraded file.';

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isRaw(value: unknown): boolean {
  return typeof value === "object" && value !== null && "rawJSON" in value;
}

function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (isRaw(value)) return "number";
  return typeof value;
}

/**
 * Checks a decoded document and returns it as a state. Missing `serial`, `lineage` and
 * `instances` (which Go decodes as zero values) are filled in; nothing else is changed.
 *
 * @param doc the decoded JSON
 * @param source names the state in messages, such as `state file "x.tfstate"`
 * @throws {StateFormatError} naming what is wrong and where
 */
export function validateState(doc: unknown, source: string): GaibState {
  const fail = (what: string): never => {
    throw new StateFormatError(`Invalid ${source}: ${what}`);
  };
  if (!isObject(doc)) return fail(`expected a JSON object, found ${jsonType(doc)}.`);
  if ("encrypted_data" in doc && "encryption_version" in doc) {
    fail(
      "the state is encrypted (OpenTofu state encryption) and cannot be read without an " +
        "encryption configuration. gaib-state does not decrypt states: decrypt it with OpenTofu " +
        '("tofu state pull" with the encryption configured) and use the plain state.',
    );
  }
  checkVersion(doc, fail);

  if (doc.serial === undefined) doc.serial = 0;
  else if (!Number.isSafeInteger(doc.serial) || (doc.serial as number) < 0) {
    fail(`"serial" must be a whole number of at least 0, found ${JSON.stringify(doc.serial)}.`);
  }
  if (doc.lineage === undefined) doc.lineage = "";
  else if (typeof doc.lineage !== "string") {
    fail(`"lineage" must be a string, found ${jsonType(doc.lineage)}.`);
  }
  if (doc.terraform_version !== undefined) {
    if (typeof doc.terraform_version !== "string") {
      fail(`"terraform_version" must be a string, found ${jsonType(doc.terraform_version)}.`);
    }
    const v = doc.terraform_version as string;
    if (v !== "" && !VERSION_PATTERN.test(v)) {
      fail(
        `the state claims to have been written by Terraform version "${v}", ` +
          "which is not a valid version string.",
      );
    }
  }
  checkOutputs(doc.outputs, fail);
  checkResources(doc.resources, fail);
  const checks = doc.check_results;
  if (checks !== undefined && checks !== null && !Array.isArray(checks)) {
    fail(`"check_results" must be an array or null, found ${jsonType(checks)}.`);
  }
  return doc as GaibState;
}

function checkVersion(doc: Json, fail: (what: string) => never): void {
  const version = doc.version;
  if (version === undefined) {
    fail(
      'the state has no "version" attribute, which is required to identify the format ' +
        "version. Is this a Terraform state file?",
    );
  }
  if (typeof version !== "number" && !isRaw(version)) {
    fail(
      `the version in the state is ${jsonType(version)}. A positive whole number is required.`,
    );
  }
  if (!Number.isInteger(version)) {
    fail(`the version in the state is ${JSON.stringify(version)}, not a whole number.`);
  }
  if (version === 0) {
    fail(
      "the state has a version number of zero. There was never a JSON-based state format " +
        "zero, so the file is damaged or is not a state.",
    );
  }
  if ((version as number) >= 1 && (version as number) <= 3) {
    fail(
      `the state uses the legacy format version ${version}, which gaib-state does not read. ` +
        UPGRADE_HINT,
    );
  }
  if (version !== 4) {
    const by = typeof doc.terraform_version === "string"
      ? ` It was created by Terraform ${doc.terraform_version}.`
      : "";
    fail(
      `the state uses format version ${version}, which this version of gaib-state does not ` +
        `support (it reads version 4).${by} Upgrade gaib-state to read it.`,
    );
  }
}

function checkOutputs(outputs: unknown, fail: (what: string) => never): void {
  if (outputs === undefined || outputs === null) return;
  if (!isObject(outputs)) fail(`"outputs" must be an object, found ${jsonType(outputs)}.`);
  for (const [name, output] of Object.entries(outputs as Json)) {
    const at = `output "${name}"`;
    if (!isObject(output)) fail(`${at} must be an object, found ${jsonType(output)}.`);
    if (!("value" in output)) fail(`${at} has no "value".`);
    if (!("type" in output)) fail(`${at} has no "type", so its value cannot be decoded.`);
    if (output.sensitive !== undefined && typeof output.sensitive !== "boolean") {
      fail(`${at}: "sensitive" must be true or false.`);
    }
  }
}

function checkResources(resources: unknown, fail: (what: string) => never): void {
  if (resources === undefined || resources === null) return;
  if (!Array.isArray(resources)) {
    fail(`"resources" must be an array, found ${jsonType(resources)}.`);
  }
  const seen = new Set<string>();
  for (let i = 0; i < resources.length; i++) {
    const resource = resources[i];
    if (!isObject(resource)) fail(`resources[${i}] must be an object.`);
    const r = resource as Json;
    if (r.mode !== "managed" && r.mode !== "data") {
      fail(`resources[${i}] has the invalid mode ${JSON.stringify(r.mode)}.`);
    }
    if (typeof r.type !== "string" || r.type === "") fail(`resources[${i}] has no "type".`);
    if (typeof r.name !== "string" || r.name === "") fail(`resources[${i}] has no "name".`);
    if (r.module !== undefined && typeof r.module !== "string") {
      fail(`resources[${i}]: "module" must be a string.`);
    }
    let base: InstanceAddress;
    try {
      base = resourceAddress(r as { module?: string; mode: "managed"; type: string; name: string });
    } catch (error) {
      return fail(`resources[${i}] has an invalid module address: ${(error as Error).message}.`);
    }
    const label = formatInstanceAddress(base);
    if (r.instances === undefined || r.instances === null) r.instances = [];
    if (!Array.isArray(r.instances)) fail(`resource ${label}: "instances" must be an array.`);
    const hasProvider = typeof r.provider === "string" && r.provider !== "";
    if (hasProvider && !isProviderAddress(r.provider as string)) {
      fail(`resource ${label} has an invalid provider address ${JSON.stringify(r.provider)}.`);
    }
    for (let j = 0; j < (r.instances as unknown[]).length; j++) {
      const instance = (r.instances as unknown[])[j];
      if (!isObject(instance)) fail(`resource ${label}: instances[${j}] must be an object.`);
      const key = instance.index_key;
      if (key !== undefined && key !== null && typeof key !== "string" && !Number.isInteger(key)) {
        fail(`resource ${label}: instances[${j}] has an invalid index_key ${JSON.stringify(key)}.`);
      }
      const address = formatInstanceAddress({ ...base, key: instanceKey(instance) });
      checkInstance(instance, address, fail);
      if (!hasProvider) {
        if (typeof instance.provider !== "string" || instance.provider === "") {
          fail(
            `resource ${label} is missing a provider address, both on the resource and the ` +
              "resource instances.",
          );
        }
      }
      const deposed = typeof instance.deposed === "string" ? instance.deposed : "";
      const identity = `${address} ${deposed}`;
      if (seen.has(identity)) {
        fail(
          deposed
            ? `deposed object ${deposed} of ${address} appears multiple times in the state.`
            : `instance ${address} appears multiple times in the state.`,
        );
      }
      seen.add(identity);
    }
  }
}

function checkInstance(instance: Json, address: string, fail: (what: string) => never): void {
  const at = `instance ${address}`;
  if (instance.deposed !== undefined) {
    if (typeof instance.deposed !== "string" || !DEPOSED_KEY.test(instance.deposed)) {
      fail(
        `${at} has an object with deposed key ${JSON.stringify(instance.deposed)}, which is ` +
          "not correctly formatted (8 hexadecimal characters).",
      );
    }
  }
  if (instance.status !== undefined && instance.status !== "" && instance.status !== "tainted") {
    fail(`${at} has the invalid status ${JSON.stringify(instance.status)}.`);
  }
  const schema = instance.schema_version;
  if (schema !== undefined && (!Number.isSafeInteger(schema) || (schema as number) < 0)) {
    fail(`${at} has an invalid schema_version ${JSON.stringify(schema)}.`);
  }
  const attrs = instance.attributes;
  if (attrs !== undefined && attrs !== null && !isObject(attrs)) {
    fail(`${at}: "attributes" must be an object, found ${jsonType(attrs)}.`);
  }
  const flat = instance.attributes_flat;
  if (flat !== undefined && flat !== null) {
    if (!isObject(flat) || Object.values(flat).some((v) => typeof v !== "string")) {
      fail(`${at}: "attributes_flat" must be an object of strings.`);
    }
  }
  for (const field of ["dependencies", "depends_on"]) {
    const list = instance[field];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list) || list.some((v) => typeof v !== "string")) {
      fail(`${at}: "${field}" must be an array of addresses.`);
    }
  }
  if (instance.provider !== undefined && instance.provider !== "") {
    if (typeof instance.provider !== "string" || !isProviderAddress(instance.provider)) {
      fail(`${at} has an invalid provider address ${JSON.stringify(instance.provider)}.`);
    }
  }
  const cbd = instance.create_before_destroy;
  if (cbd !== undefined && typeof cbd !== "boolean") {
    fail(`${at}: "create_before_destroy" must be true or false.`);
  }
  if (instance.private !== undefined && typeof instance.private !== "string") {
    fail(`${at}: "private" must be a string.`);
  }
  const sensitive = instance.sensitive_attributes;
  if (sensitive !== undefined && sensitive !== null && !Array.isArray(sensitive)) {
    fail(`${at}: "sensitive_attributes" must be an array.`);
  }
}
