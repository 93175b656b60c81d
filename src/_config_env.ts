/**
 * How the `GAIB_*` variables and a config file make one backend config. Which variables exist,
 * the field each sets and how its text converts come from the registry
 * (`backends/_registry.ts`). Each variable sets its one field over the file's value (and over
 * the default):
 *
 * - the backend type is `GAIB_BACKEND`, else the backend of a selecting variable that is set
 *   (`GAIB_S3_BUCKET` selects `s3`), else the file's, else the default (`local`);
 * - when that type is the file's, the file's backend fields apply and each variable that is set
 *   replaces one of them;
 * - when it is another type, only the variables apply (the file's fields are for another kind
 *   of backend), and the file's other sections (`discord`, `outputs`) still do;
 * - a fallback variable sets its field only when nothing else did (`region` is
 *   `GAIB_S3_REGION`, else the file's, else `AWS_REGION` or `AWS_DEFAULT_REGION`);
 * - a variable of another backend type is ignored, and said so in `notes`.
 *
 * @module
 */

import { isMapping } from "./_config_rules.ts";
import {
  type AnyBackendDescriptor,
  BACKENDS,
  type BackendVariable,
  DEFAULT_BACKEND,
  descriptorOf,
} from "./backends/_registry.ts";

/** The variable that selects the backend type. */
export const TYPE_VARIABLE = "GAIB_BACKEND";

/** Every backend's variables (from the registry), with the variable's spec and its backend. */
const VARIABLES: ReadonlyArray<readonly [string, BackendVariable, AnyBackendDescriptor]> = BACKENDS
  .flatMap((d) => Object.entries(d.variables).map(([name, v]) => [name, v, d] as const));

/**
 * Environment variables and the backend fields they set: `GAIB_BACKEND` and each backend's
 * own (see the registry, `backends/_registry.ts`).
 */
export const ENVIRONMENT_VARIABLES: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries([
    [TYPE_VARIABLE, "type"],
    ...VARIABLES.filter(([, v]) => !v.fallback).map(([name, v]) => [name, v.field]),
  ]),
);

/** Where the environment is read from. */
export interface Environment {
  /** The value of a variable, or `undefined`. */
  get(name: string): string | undefined;
}

/** A `GAIB_*` variable that is set. */
export interface EnvValue {
  /** Its name. */
  variable: string;
  /** Its text (converted for its field once the backend type is known). */
  text: string;
}

/** The backend fields as the file and the variables make them, before they are checked. */
export interface ComposedBackend {
  /** The backend section to check. */
  backend: Record<string, unknown>;
  /** For each field (dotted, such as `endpoints.dynamodb`): a variable's name, the file, or "default". */
  origins: Record<string, string>;
  /** Remarks, such as a variable that does not apply to this backend type. */
  notes: string[];
  /** Whether the file's backend section is used. */
  fileBackendUsed: boolean;
}

/** Reads a variable; an empty value and a variable we may not read count as unset. */
export function readVariable(env: Environment, name: string): string | undefined {
  try {
    const value = env.get(name);
    return value === "" ? undefined : value;
  } catch {
    return undefined; // not allowed to read it
  }
}

/** The `GAIB_*` variables that are set (fallbacks such as `AWS_REGION` are read later). */
export function readEnvironment(env: Environment): EnvValue[] {
  const values: EnvValue[] = [];
  for (const variable of Object.keys(ENVIRONMENT_VARIABLES)) {
    const text = readVariable(env, variable);
    if (text !== undefined) values.push({ variable, text });
  }
  return values;
}

/**
 * Whether the variables describe a backend by themselves: `GAIB_BACKEND`, a variable that
 * selects a backend (`GAIB_S3_BUCKET`) or one that sets a state root (`GAIB_STATE_PATH`).
 */
export function describesBackend(vars: readonly EnvValue[]): boolean {
  return vars.some(({ variable }) =>
    variable === TYPE_VARIABLE ||
    VARIABLES.some(([name, v, d]) =>
      name === variable && (v.selects === true || d.paths?.[v.field]?.stateRoot === true)
    )
  );
}

/** A variable's text as its field takes it; text that does not convert is left for the rule. */
function convert(spec: BackendVariable, text: string): unknown {
  if (spec.coerce === "boolean") {
    const lower = text.toLowerCase();
    if (["1", "true", "yes", "on"].includes(lower)) return true;
    if (["0", "false", "no", "off"].includes(lower)) return false;
  } else if (spec.coerce === "integer" && /^\d{1,15}$/.test(text)) {
    return Number(text);
  }
  return text;
}

/** Whether an origin names an environment variable (rather than a file or the default). */
export function isVariableOrigin(origin: string | undefined): origin is string {
  return origin !== undefined &&
    (origin === TYPE_VARIABLE || VARIABLES.some(([name]) => name === origin));
}

/**
 * The `GAIB_*` variable that sets a backend field, such as `GAIB_S3_KEY` for `key` of `s3`.
 *
 * @param type the backend type
 * @param field the dotted field
 * @returns the variable, or `undefined` when none sets it
 */
export function variableFor(type: unknown, field: string): string | undefined {
  if (field === "type") return TYPE_VARIABLE;
  const descriptor = descriptorOf(type);
  return VARIABLES.find(([, v, d]) => d === descriptor && !v.fallback && v.field === field)?.[0];
}

/** A field of a backend config, dotted for a nested one. */
function getField(backend: Record<string, unknown>, field: string): unknown {
  let value: unknown = backend;
  for (const key of field.split(".")) value = isMapping(value) ? value[key] : undefined;
  return value;
}

/** Sets a field, copying the nested mappings on the way (they may be the file's). */
function setField(backend: Record<string, unknown>, field: string, value: unknown): void {
  const keys = field.split(".");
  let at = backend;
  for (const key of keys.slice(0, -1)) {
    const next: Record<string, unknown> = isMapping(at[key]) ? { ...at[key] } : {};
    at[key] = next;
    at = next;
  }
  at[keys[keys.length - 1]] = value;
}

/**
 * Puts the backend config together from the file's backend section and the variables.
 *
 * @param fileBackend the file's `backend` value (`undefined` when the file has none)
 * @param file the file, or `undefined` when there is none
 * @param vars the variables that are set ({@linkcode readEnvironment})
 * @param env for the AWS region variables
 * @returns the backend to check and where each field came from
 */
export function composeBackend(
  fileBackend: unknown,
  file: string | undefined,
  vars: EnvValue[],
  env: Environment,
): ComposedBackend {
  const notes: string[] = [];
  const origins: Record<string, string> = {};
  // A file without a backend section means the default backend.
  const fromFile = file === undefined
    ? undefined
    : fileBackend === undefined
    ? { type: DEFAULT_BACKEND.type }
    : fileBackend;
  const fileType = isMapping(fromFile) ? descriptorOf(fromFile.type)?.type : undefined;
  const typeVar = selectedType(vars);
  let backend: Record<string, unknown>;
  let fileBackendUsed = false;
  if (
    fromFile !== undefined && (typeVar === undefined || fileType === undefined ||
      typeVar.type === fileType)
  ) {
    if (!isMapping(fromFile)) {
      // Not a mapping: checked as it is, so that the error points at the file.
      return {
        backend: fromFile as Record<string, unknown>,
        origins,
        notes,
        fileBackendUsed: true,
      };
    }
    backend = { ...fromFile };
    fileBackendUsed = true;
    for (const key of Object.keys(backend)) {
      const value = backend[key];
      if (isMapping(value)) {
        for (const sub of Object.keys(value)) origins[`${key}.${sub}`] = file!;
      } else origins[key] = file!;
    }
  } else {
    backend = {};
    origins.type = "default";
    if (fromFile !== undefined && fileType !== undefined) {
      notes.push(
        `${typeVar!.variable} selects the ${typeVar!.type} backend, so the ${fileType} ` +
          `backend of ${file} is not used.`,
      );
    }
  }
  if (typeVar !== undefined) {
    backend.type = typeVar.type;
    origins.type = typeVar.variable;
  }
  backend.type ??= DEFAULT_BACKEND.type;
  const descriptor = descriptorOf(backend.type);
  for (const { variable, text } of vars) {
    if (variable === TYPE_VARIABLE) continue;
    const spec = descriptor && Object.hasOwn(descriptor.variables, variable)
      ? descriptor.variables[variable]
      : undefined;
    if (spec === undefined) {
      if (descriptor) {
        notes.push(
          `${variable} is ignored: it is not a setting of the ${descriptor.type} backend.`,
        );
      }
      continue;
    }
    setField(backend, spec.field, convert(spec, text));
    origins[spec.field] = variable;
  }
  for (const [variable, spec] of Object.entries(descriptor?.variables ?? {})) {
    if (!spec.fallback || getField(backend, spec.field) !== undefined) continue;
    if (spec.unlessSet?.some((field) => getField(backend, field) !== undefined)) continue;
    const text = readVariable(env, variable);
    if (text === undefined) continue;
    setField(backend, spec.field, convert(spec, text));
    origins[spec.field] = variable;
  }
  for (const [field, path] of Object.entries(descriptor?.paths ?? {})) {
    if (path.default !== undefined && getField(backend, field) === undefined) {
      origins[field] = "default";
    }
  }
  return { backend, origins, notes, fileBackendUsed };
}

/** The type the variables select: `GAIB_BACKEND`, else a selecting variable's backend. */
function selectedType(vars: EnvValue[]): { variable: string; type: unknown } | undefined {
  const named = vars.find((v) => v.variable === TYPE_VARIABLE);
  if (named) return { variable: named.variable, type: named.text };
  for (const { variable } of vars) {
    const selecting = VARIABLES.find(([name, v]) => name === variable && v.selects === true);
    if (selecting) return { variable, type: selecting[2].type };
  }
  return undefined;
}
