/**
 * Schemas of `gaib.yaml` and its parts, and the functions that read and check a config. Every
 * error names the file, the line and column, the field path, what was expected and what was
 * found. The rules are gaib-state's own (`_config_rules.ts`, no zod), shared by every reader.
 *
 * @module
 */

import type {
  BackendConfig,
  DiscordConfig,
  GaibConfig,
  LocalBackendConfig,
  OutputConfig,
  S3BackendConfig,
} from "./config.ts";
import { checkConfig, discordRule, issueField, outputRule, type Rule } from "./_config_rules.ts";
import { gaibConfigRule, loadConfigFast, loadConfigFull } from "./_config_load.ts";
import { backendRule } from "./backends/_registry.ts";
import { localBackendRule } from "./backends/_local_descriptor.ts";
import { s3BackendRule } from "./backends/_s3_descriptor.ts";
import { readYamlConfig } from "./_config_yaml.ts";
import { BackendConfigError } from "./errors.ts";

/** One problem found by a {@linkcode ConfigSchema}. */
export interface ConfigSchemaIssue {
  /** Path of the offending field, such as `["backend", "bucket"]`. */
  path: PropertyKey[];
  /** What is wrong: what was expected and what was found. */
  message: string;
  /** The kind of problem, such as `"invalid_type"` or `"unrecognized_keys"`. */
  code: string;
}

/** What {@linkcode ConfigSchema.safeParse} returns. */
export type ConfigSchemaResult<T> =
  | { success: true; data: T; error?: undefined }
  | { success: false; data?: undefined; error: { issues: ConfigSchemaIssue[]; message: string } };

/** A config schema: checks a value against the rules of one part of `gaib.yaml`. */
export interface ConfigSchema<T> {
  /** Checks `input`; returns the data or the first problem. */
  safeParse(input: unknown): ConfigSchemaResult<T>;
  /** Checks `input`; returns the data or throws a `BackendConfigError`. */
  parse(input: unknown): T;
}

function schema<T>(rule: Rule<T>): ConfigSchema<T> {
  const safeParse = (input: unknown): ConfigSchemaResult<T> => {
    const checked = rule(input, [], {});
    if (checked.ok) return { success: true, data: checked.value };
    const { issue } = checked;
    const field = issueField(issue);
    return {
      success: false,
      error: {
        issues: [{
          path: issue.key !== undefined && issue.code === "unrecognized_keys"
            ? [...issue.path, issue.key]
            : issue.path,
          message: issue.message,
          code: issue.code,
        }],
        message: `${field ? field + ": " : ""}${issue.message}`,
      },
    };
  };
  return {
    safeParse,
    parse(input) {
      const result = safeParse(input);
      if (result.success) return result.data;
      throw new BackendConfigError(`${result.error.message}.`, {
        path: result.error.issues[0].path.join(".") || undefined,
      });
    },
  };
}

/**
 * Schema of {@linkcode LocalBackendConfig}.
 *
 * @example
 * ```ts
 * import { LocalBackendSchema } from "@gaib/state";
 * console.log(LocalBackendSchema.safeParse({ type: "local", path: ".gaib" }).success); // true
 * ```
 */
export const LocalBackendSchema: ConfigSchema<LocalBackendConfig> = schema(localBackendRule);

/**
 * Schema of {@linkcode S3BackendConfig}. A `key` with `${workspace}` maps each workspace to
 * its own object; without it Terraform's layout applies, and the key must not lie inside
 * the workspace prefix (or `default` would share an object with a workspace).
 *
 * @example
 * ```ts
 * import { S3BackendSchema } from "@gaib/state";
 * const result = S3BackendSchema.safeParse({
 *   type: "s3", bucket: "my-states", key: "servers/${workspace}/terraform.tfstate",
 *   region: "eu-west-1", dynamodb_table: "locks",
 * });
 * console.log(result.success); // true
 * ```
 */
export const S3BackendSchema: ConfigSchema<S3BackendConfig> = schema(s3BackendRule);

/**
 * Schema of {@linkcode BackendConfig}, chosen by `type` (any registered backend).
 *
 * @example
 * ```ts
 * import { BackendSchema } from "@gaib/state";
 * console.log(BackendSchema.safeParse({ type: "ftp" }).success); // false
 * ```
 */
export const BackendSchema: ConfigSchema<BackendConfig> = schema(backendRule);

/**
 * Schema of {@linkcode DiscordConfig}. The bot token is never written in the config:
 * `token_env` names the environment variable that holds it.
 *
 * @example
 * ```ts
 * import { DiscordConfigSchema } from "@gaib/state";
 * console.log(DiscordConfigSchema.safeParse({ token_env: "DISCORD_BOT_TOKEN" }).success); // true
 * ```
 */
export const DiscordConfigSchema: ConfigSchema<DiscordConfig> = schema(discordRule);

/**
 * Schema of {@linkcode OutputConfig}.
 *
 * @example
 * ```ts
 * import { OutputSchema } from "@gaib/state";
 * console.log(OutputSchema.safeParse({ sensitive: "yes" }).success); // false
 * ```
 */
export const OutputSchema: ConfigSchema<OutputConfig> = schema(outputRule);

/**
 * Schema of a whole `gaib.yaml` ({@linkcode GaibConfig}).
 *
 * @example
 * ```ts
 * import { GaibConfigSchema } from "@gaib/state";
 * console.log(GaibConfigSchema.safeParse({ version: "1", backend: { type: "local" } }).success); // true
 * ```
 */
export const GaibConfigSchema: ConfigSchema<GaibConfig> = schema(gaibConfigRule);

/** What {@linkcode safeParseGaibConfig} returns. */
export type SafeParseGaibConfigResult =
  | { success: true; data: GaibConfig }
  | { success: false; error: BackendConfigError };

/**
 * Parses and checks the text of a `gaib.yaml`.
 *
 * @param yamlText the file's content
 * @param fileName names the file in errors
 * @returns the config
 * @throws {BackendConfigError} naming the file, line, column, field and fix
 *
 * @example
 * ```ts
 * import { parseGaibConfig } from "@gaib/state";
 * const config = parseGaibConfig('version: "1"\nbackend:\n  type: local\n  path: state\n');
 * console.log(config.backend); // { type: "local", path: "state" }
 * ```
 */
export function parseGaibConfig(yamlText: string, fileName = "gaib.yaml"): GaibConfig {
  const result = safeParseGaibConfig(yamlText, fileName);
  if (!result.success) throw result.error;
  return result.data;
}

/**
 * Like {@linkcode parseGaibConfig}, but returns the error instead of throwing it.
 *
 * @param yamlText the file's content
 * @param fileName names the file in errors
 * @returns `{ success: true, data }` or `{ success: false, error }`
 *
 * @example
 * ```ts
 * import { safeParseGaibConfig } from "@gaib/state";
 * const result = safeParseGaibConfig('version: "1"\nbakend: {}\n');
 * if (!result.success) console.log(result.error.path); // "bakend"
 * ```
 */
export function safeParseGaibConfig(
  yamlText: string,
  fileName = "gaib.yaml",
): SafeParseGaibConfigResult {
  try {
    return { success: true, data: parseConfigText(yamlText, fileName) };
  } catch (error) {
    if (error instanceof BackendConfigError) return { success: false, error };
    throw error;
  }
}

function parseConfigText(text: string, file: string): GaibConfig {
  const input = { text, file };
  return (loadConfigFast(input) ?? loadConfigFull(input, readYamlConfig)).config;
}

/**
 * Checks a backend config object (as from `gaib.yaml`'s `backend` section).
 *
 * @param config any value
 * @returns whether it is a valid {@linkcode BackendConfig}
 *
 * @example
 * ```ts
 * import { isValidBackendConfig } from "@gaib/state";
 * console.log(isValidBackendConfig({ type: "local" })); // true
 * console.log(isValidBackendConfig({ type: "s3" })); // false: bucket and key are required
 * ```
 */
export function isValidBackendConfig(config: unknown): config is BackendConfig {
  return backendRule(config, [], {}).ok;
}

/**
 * Checks a backend config object and returns it, or throws saying what is wrong.
 *
 * @param config any value
 * @param source where it came from (a file name, "the environment")
 * @returns the config
 * @throws {BackendConfigError} naming the field and the problem
 */
export function parseBackendConfig(config: unknown, source = "backend config"): BackendConfig {
  return checkConfig(backendRule, config, source);
}
