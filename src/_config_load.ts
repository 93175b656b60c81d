/**
 * Reading a config: the file's text (fast reader first, the full YAML parser when needed),
 * the `GAIB_*` variables over it, the rules, and errors that point at the file's line and
 * column or name the variable.
 *
 * There is no cache: every run reads the file itself, so nothing but the file can say what the
 * config is. The usual `gaib.yaml` is read by `_simple_yaml.ts` and checked by
 * `_config_rules.ts`, which need neither the YAML parser nor zod; the full parser reads the
 * rest, and reads again any file with a problem, to report where it is.
 *
 * @module
 */

import type { GaibConfig } from "./config.ts";
import {
  composeBackend,
  type Environment,
  isVariableOrigin,
  readEnvironment,
  variableFor,
} from "./_config_env.ts";
import {
  type CheckContext,
  type ConfigIssue,
  discordRule,
  issueField,
  literal,
  object,
  outputRule,
  record,
  type Rule,
} from "./_config_rules.ts";
import { backendRule } from "./backends/_registry.ts";
import { encryptionRule } from "./_encryption_config.ts";
import type { YamlConfig } from "./_config_yaml.ts";
import { parseSimpleYaml } from "./_simple_yaml.ts";
import { BackendConfigError } from "./errors.ts";

/** A config file larger than this is refused before it is parsed. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** What to read. */
export interface ConfigInput {
  /** The config file's text, or `undefined` when there is no file. */
  text?: string;
  /** The file's name, for errors and origins. */
  file?: string;
  /**
   * Put the `GAIB_*` variables over the file's backend (see `_config_env.ts`). Without it the
   * file is taken as it is.
   */
  env?: Environment;
}

/** A checked config and how it was put together. */
export interface LoadedConfig {
  /** The checked config. With `env`, `backend` is always set. */
  config: GaibConfig;
  /** For each backend field: a variable's name, the file, or "default" (with `env` only). */
  origins: Record<string, string>;
  /** Remarks on how the config was put together. */
  notes: string[];
  /** Whether the file's backend section is used. */
  fileBackendUsed: boolean;
  /** Where `encryption` came from: the file, `GAIB_ENCRYPTION`, or nowhere. */
  encryptionFrom?: "file" | "environment";
}

/** The rule of a whole {@linkcode GaibConfig}. */
export const gaibConfigRule: Rule<GaibConfig> = object({
  version: { rule: literal(["1"], 'version must be "1"'), required: true, show: "plain" },
  backend: { rule: backendRule, show: "plain" },
  discord: { rule: discordRule },
  outputs: {
    rule: record(
      /^[A-Za-z_][A-Za-z0-9_-]*$/,
      "output names must be identifiers (letters, digits, '_', '-'; not __proto__)",
      outputRule,
    ),
  },
  // Shown field by field as its rule says: a passphrase is a secret, names and references not.
  encryption: { rule: encryptionRule, show: "plain" },
}, { expected: "version, backend, discord, outputs, encryption" });

/**
 * The variable that holds the whole `encryption` block as JSON (OpenTofu's `TF_ENCRYPTION`); it
 * replaces the file's block.
 */
export const ENCRYPTION_VARIABLE = "GAIB_ENCRYPTION";

/** The full YAML reader, passed in so that only its callers load the YAML parser. */
export type YamlReader = (text: string, file: string) => YamlConfig;

type Attempt = { ok: true; loaded: LoadedConfig } | {
  ok: false;
  issue: ConfigIssue;
  origins: Record<string, string>;
  fileBackendUsed: boolean;
  /** The backend's type as composed (to name its variables). */
  backendType: unknown;
  encryptionFrom?: "file" | "environment";
};

/**
 * Refuses a config text over {@linkcode MAX_CONFIG_BYTES}.
 *
 * @param size the size in bytes
 * @param file names the file
 */
export function checkConfigSize(size: number, file: string): void {
  if (size > MAX_CONFIG_BYTES) {
    throw new BackendConfigError(
      `${file} is ${(size / 1024 / 1024).toFixed(1)} MB; a gaib config is at most ` +
        `${MAX_CONFIG_BYTES / 1024 / 1024} MB. Is this the right file?`,
      { file },
    );
  }
}

/** `GAIB_ENCRYPTION`'s JSON; the error never quotes it (it may hold a passphrase). */
function parseEncryptionVariable(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BackendConfigError(
      `Environment variable ${ENCRYPTION_VARIABLE} is not valid JSON. Set it to the encryption ` +
        'block as JSON (such as {"key_provider": {...}, "method": {...}, "state": {...}}), or ' +
        `unset ${ENCRYPTION_VARIABLE}.`,
      { path: ENCRYPTION_VARIABLE, cause: new Error((error as Error).name) },
    );
  }
}

function attempt(
  fileValue: Record<string, unknown> | undefined,
  input: ConfigInput,
  ctx: CheckContext,
): Attempt {
  const whole: Record<string, unknown> = fileValue ? { ...fileValue } : { version: "1" };
  // `version: 1` (a number) is what people type; it means "1".
  if (whole.version === 1) whole.version = "1";
  let origins: Record<string, string> = {};
  let notes: string[] = [];
  let fileBackendUsed = fileValue !== undefined && fileValue.backend !== undefined;
  if (input.env) {
    const composed = composeBackend(
      fileValue?.backend,
      fileValue === undefined ? undefined : input.file,
      readEnvironment(input.env),
      input.env,
    );
    whole.backend = composed.backend;
    ({ origins, notes, fileBackendUsed } = composed);
  }
  let encryptionFrom: "file" | "environment" | undefined = whole.encryption === undefined
    ? undefined
    : "file";
  const fromEnv = input.env?.get(ENCRYPTION_VARIABLE);
  if (fromEnv !== undefined && fromEnv.trim() !== "") {
    whole.encryption = parseEncryptionVariable(fromEnv);
    encryptionFrom = "environment";
  }
  const checked = gaibConfigRule(whole, [], ctx);
  if (!checked.ok) {
    const backendType = (whole.backend as { type?: unknown } | undefined)?.type;
    return {
      ok: false,
      issue: checked.issue,
      origins,
      fileBackendUsed,
      backendType,
      encryptionFrom,
    };
  }
  return {
    ok: true,
    loaded: { config: checked.value, origins, notes, fileBackendUsed, encryptionFrom },
  };
}

/**
 * Reads and checks a config with the fast reader only.
 *
 * @param input the text and the environment
 * @returns the config, or `null` when the full YAML parser is needed (to read the text, or to
 * say where a problem is)
 */
export function loadConfigFast(input: ConfigInput): LoadedConfig | null {
  let fileValue: Record<string, unknown> | undefined;
  if (input.text !== undefined) {
    checkConfigSize(new TextEncoder().encode(input.text).length, input.file ?? "gaib.yaml");
    const parsed = parseSimpleYaml(input.text);
    if (parsed === null) return null;
    fileValue = parsed;
  }
  const result = attempt(fileValue, input, {});
  return result.ok ? result.loaded : null;
}

/**
 * Reads and checks a config with the full YAML parser, reporting any problem with its position
 * or the variable that caused it.
 *
 * @param input the text and the environment
 * @param readYaml the full reader (`readYamlConfig` of `_config_yaml.ts`)
 * @returns the config
 * @throws {BackendConfigError} naming the file, line, column and field, or the variable
 */
export function loadConfigFull(input: ConfigInput, readYaml: YamlReader): LoadedConfig {
  const file = input.file ?? "gaib.yaml";
  let yaml: YamlConfig | undefined;
  if (input.text !== undefined) {
    checkConfigSize(new TextEncoder().encode(input.text).length, file);
    yaml = readYaml(input.text, file);
  }
  const result = attempt(yaml?.value, input, { sourceOf: yaml?.sourceOf });
  if (result.ok) return result.loaded;
  throw issueError(result.issue, {
    file: yaml ? file : undefined,
    yaml,
    origins: result.origins,
    fileBackendUsed: result.fileBackendUsed,
    backendType: result.backendType,
    encryptionFrom: result.encryptionFrom,
  });
}

/**
 * The error for an issue: at the file's line and column, or naming the variable that set the
 * field.
 */
function issueError(
  issue: ConfigIssue,
  where: {
    file?: string;
    yaml?: YamlConfig;
    origins: Record<string, string>;
    fileBackendUsed: boolean;
    backendType: unknown;
    encryptionFrom?: "file" | "environment";
  },
): BackendConfigError {
  const fieldPath = issue.key !== undefined && issue.code === "unrecognized_keys"
    ? [...issue.path, issue.key]
    : issue.path;
  const field = issueField(issue);
  const backendField = fieldPath[0] === "backend" ? fieldPath.slice(1).join(".") : undefined;
  const origin = fieldPath[0] === "encryption" && where.encryptionFrom === "environment"
    ? ENCRYPTION_VARIABLE
    : backendField === undefined
    ? undefined
    : where.origins[backendField];
  if (isVariableOrigin(origin) || origin === ENCRYPTION_VARIABLE) {
    return new BackendConfigError(
      `Environment variable ${origin} (${field}): ${issue.message}. Fix or unset ${origin}.`,
      { path: origin },
    );
  }
  const variable = backendField === undefined
    ? undefined
    : variableFor(where.backendType, backendField);
  if (
    backendField !== undefined && issue.missing &&
    (!where.fileBackendUsed || where.file === undefined)
  ) {
    // The backend came from the environment alone: the variable is the way to set the field.
    return new BackendConfigError(
      `${field} is required${variable ? `: set ${variable}` : ""}.`,
      { path: variable ?? field },
    );
  }
  if (where.file === undefined) {
    return new BackendConfigError(`${field}: ${issue.message}.`, { path: field });
  }
  const at = where.yaml?.locate(issue) ?? where.file;
  const alternative = issue.missing && variable ? `; add it to the file or set ${variable}` : "";
  return new BackendConfigError(`${at}: ${field}: ${issue.message}${alternative}.`, {
    file: where.file,
    path: field,
  });
}
