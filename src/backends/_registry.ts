/**
 * The backend registry: one descriptor per backend `type`, and what is derived from the table.
 * Everything outside a backend's own modules that depends on which backends exist reads it:
 *
 * - the config rules: the `backend` union below, and so `gaib.yaml`, the exported schemas and
 *   `BackendFactory.create`;
 * - the `GAIB_*` variables (`../_config_env.ts`), and the public `ENVIRONMENT_VARIABLES`;
 * - `BackendFactory` (`../factory.ts`): which module to load, which fields are paths to
 *   resolve, where the state root is;
 * - `config show` (`../cli/config.ts`): how each field is shown, and which variables of the
 *   backend's SDK to report; the redaction of everything the CLI prints (`../cli/_redact.ts`);
 * - the backends' constructors, which check their options with their descriptor's rule.
 *
 * So a new backend is its module, its descriptor (`_<type>_descriptor.ts`), one line in the
 * table below and its config interface in the `BackendConfig` union of `../config.ts` (which
 * the compiler checks against this table). See CONTRIBUTING.md, "Adding a backend".
 *
 * This module and the descriptors stay light: they hold rules and names, never a backend
 * module. A descriptor's `load` imports its backend when one is created, so a local-only run
 * never loads the AWS SDK.
 *
 * The table is fixed when the package is built. There is no registration at run time: that
 * would be a global that any imported module could change (adding or shadowing a backend that
 * `gaib.yaml` then selects), and the CLI could not use it anyway.
 *
 * @module
 */

import type { BackendConfig } from "../config.ts";
import type { StateBackend } from "../types.ts";
import type { BackendDoctor } from "../_doctor_types.ts";
import {
  checkConfig,
  describeFound,
  fail,
  isMapping,
  notMapping,
  type ObjectRule,
  type Rule,
} from "../_config_rules.ts";
import { localBackend } from "./_local_descriptor.ts";
import { pgBackend } from "./_pg_descriptor.ts";
import { s3Backend } from "./_s3_descriptor.ts";
import { httpBackend } from "./_http_descriptor.ts";

/** An environment variable that sets one field of a backend's config. */
export interface BackendVariable {
  /** The field it sets, dotted for a nested one (`endpoints.dynamodb`). */
  readonly field: string;
  /**
   * How its text becomes the field's value: `"boolean"` takes 1/0, true/false, yes/no, on/off
   * (any case); `"integer"` takes digits. Other text is left as it is, for the rule to refuse
   * with the variable's name.
   * @default {"string"}
   */
  readonly coerce?: "string" | "boolean" | "integer";
  /**
   * Setting it selects this backend when `GAIB_BACKEND` is unset (as `GAIB_S3_BUCKET` selects
   * `s3`). Only one backend may have such variables (the registry test checks it), so that the
   * type never depends on the order of this table.
   * @default {false}
   */
  readonly selects?: boolean;
  /**
   * Applies only when neither the file nor another variable sets the field (`AWS_REGION`). It
   * is read only when this backend is selected.
   * @default {false}
   */
  readonly fallback?: boolean;
  /**
   * A fallback that also stands back when one of these fields is set (by the file or a
   * variable): `AWS_ENDPOINT_URL_S3` gives way to a configured `endpoint`.
   * @default {[]}
   */
  readonly unlessSet?: readonly string[];
}

/** A field that names a directory on this machine. */
export interface PathField {
  /**
   * The value when the config does not set it.
   * @default {undefined}
   */
  readonly default?: string;
  /**
   * It is the state root (which holds `.current-workspace`); without such a field the state
   * root is `.gaib` next to the config file.
   * @default {false}
   */
  readonly stateRoot?: boolean;
}

/** Variables of a backend's SDK that `config show` reports (credentials, region...). */
export interface SdkVariables {
  /** The heading of the section, such as "AWS credentials and region (...)". */
  readonly heading: string;
  /** The line when none is set. */
  readonly none: string;
  /** Shown only as "set": credentials, or where they come from. */
  readonly hidden: readonly string[];
  /** Shown with their values. */
  readonly shown: readonly string[];
}

/** A backend class: constructed from a checked config. */
export type BackendClass<C> = new (config: C) => StateBackend;

/** What gaib-state knows of one backend type without loading its module. */
export interface BackendDescriptor<C extends BackendConfig> {
  /** The `type` of its config. */
  readonly type: C["type"];
  /** One line for messages: what and where the state is. */
  readonly summary: string;
  /**
   * The rule of its config. Each field says how it may be shown (`show`): a field that
   * says nothing is never shown.
   */
  readonly rule: ObjectRule<C>;
  /** Its `GAIB_*` variables (and fallbacks such as `AWS_REGION`), by name. */
  readonly variables: Readonly<Record<string, BackendVariable>>;
  /**
   * Fields that name directories: a relative value is resolved against the config file's
   * directory, or the working directory when a variable set it.
   * @default {{}}
   */
  readonly paths?: Readonly<Record<string, PathField>>;
  /** Variables of its SDK that `config show` reports. @default {undefined} */
  readonly sdkVariables?: SdkVariables;
  /**
   * Variables whose values are removed from everything the CLI prints, whichever backend is
   * used (credentials its SDK reads). Variables of its own whose field is `"secret"` are
   * removed too, without being listed here.
   * @default {[]}
   */
  readonly secretVariables?: readonly string[];
  /**
   * Names where a config's states are, without secrets: two configs with the same location
   * address the same states (whatever their locks), so `migrate` refuses to copy between
   * them. Its path fields come already resolved to real paths.
   * @default {undefined}
   */
  location?(config: C): string;
  /** Imports its module and returns the backend class. */
  load(): Promise<BackendClass<C>>;
  /**
   * Imports its doctor module: the named checks `gaib-state doctor` runs for this backend
   * kind, and what `gaib-state bootstrap` creates (see CONTRIBUTING.md, "Doctor checks").
   * Without it, doctor runs only the config checks.
   * @default {undefined}
   */
  doctor?(): Promise<BackendDoctor<C>>;
}

/** The table, by type: the compiler checks that it covers `BackendConfig` exactly. */
type Table = {
  readonly [T in BackendConfig["type"]]: BackendDescriptor<Extract<BackendConfig, { type: T }>>;
};

/** The registered backends. */
const TABLE: Table = {
  local: localBackend,
  s3: s3Backend,
  http: httpBackend,
  pg: pgBackend,
};

/** A descriptor of any registered type. */
export type AnyBackendDescriptor = Table[keyof Table];

/** Every registered backend, in the order messages list them. */
export const BACKENDS: readonly AnyBackendDescriptor[] = Object.values(TABLE);

/** The backend of a config file without a `backend` section, or of no config at all. */
export const DEFAULT_BACKEND: AnyBackendDescriptor = TABLE.local;

/**
 * The descriptor of a type.
 *
 * @param type any value
 * @returns the descriptor, or `undefined` when `type` is not a registered type
 */
export function descriptorOf(type: unknown): AnyBackendDescriptor | undefined {
  return BACKENDS.find((descriptor) => descriptor.type === type);
}

/** `a or b`, `a, b or c`. */
function orList(items: readonly string[]): string {
  return items.length < 2
    ? items.join("")
    : `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`;
}

/** The rule of {@linkcode BackendConfig}: the rule of the descriptor its `type` names. */
export const backendRule: Rule<BackendConfig> = (value, path, ctx) => {
  if (!isMapping(value)) {
    const types = orList(BACKENDS.map((d) => d.type));
    return notMapping(value, path, ctx, `(type: ${types}, and its settings)`);
  }
  const typePath = [...path, "type"];
  if (value.type === undefined) {
    const described = BACKENDS.map((d) => `"${d.type}" (${d.summary})`);
    return {
      ok: false,
      issue: {
        path: typePath,
        code: "invalid_type",
        message: `type is required: ${orList(described)}`,
        missing: true,
      },
    };
  }
  const descriptor = descriptorOf(value.type);
  if (descriptor) return descriptor.rule(value, path, ctx);
  return fail(
    typePath,
    "invalid_union",
    `type must be ${orList(BACKENDS.map((d) => `"${d.type}"`))}, found ${
      describeFound(value.type, typePath, { ...ctx, exposure: "plain" })
    }`,
  );
};

/**
 * Checks a backend's constructor options with its descriptor's rule, the rule the factory
 * uses: `type` may be left out (the class says which backend it is).
 *
 * @param descriptor the backend's descriptor
 * @param options the config part of the options
 * @param source names the options in the message, such as "S3Backend config"
 * @returns the checked config
 * @throws {BackendConfigError} naming the field, as `BackendFactory.create` does
 */
export function checkBackendOptions<C extends BackendConfig>(
  descriptor: BackendDescriptor<C>,
  options: unknown,
  source: string,
): C {
  const value = isMapping(options) && options.type === undefined
    ? { ...options, type: descriptor.type }
    : options;
  return checkConfig(descriptor.rule, value, source);
}
