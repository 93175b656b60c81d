/**
 * Zod schemas of `gaib.yaml` and its parts, and the functions that read and check a config.
 * Every error names the file, the line and column, the field path and the fix.
 *
 * @module
 */

import * as z from "zod";
import { isMap, LineCounter, parseDocument } from "yaml";
import type {
  BackendConfig,
  DiscordConfig,
  GaibConfig,
  LocalBackendConfig,
  OutputConfig,
  S3BackendConfig,
} from "./config.ts";
import { BackendConfigError } from "./errors.ts";

/** One problem found by a {@linkcode ConfigSchema}. */
export interface ConfigSchemaIssue {
  /** Path of the offending field, such as `["backend", "bucket"]`. */
  path: PropertyKey[];
  /** What is wrong. */
  message: string;
  /** Zod's issue code, such as `"invalid_type"` or `"unrecognized_keys"`. */
  code: string;
}

/** What {@linkcode ConfigSchema.safeParse} returns. */
export type ConfigSchemaResult<T> =
  | { success: true; data: T; error?: undefined }
  | { success: false; data?: undefined; error: { issues: ConfigSchemaIssue[]; message: string } };

/**
 * A config schema. The exported schemas are zod schemas; this interface is the part of them
 * gaib-state promises, so the public types do not depend on zod's version.
 */
export interface ConfigSchema<T> {
  /** Checks `input`; returns the data or the issues. */
  safeParse(input: unknown): ConfigSchemaResult<T>;
  /** Checks `input`; returns the data or throws zod's error. */
  parse(input: unknown): T;
}

/** A config file larger than this is refused before it is parsed. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_ALIASES = 100;

const url = z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" });
const noSlashEnds = (what: string) =>
  z.string().min(1, `${what} must not be empty`).refine(
    (v) => !v.startsWith("/") && !v.endsWith("/") && !v.includes("//"),
    `${what} must not start or end with "/" or contain "//"`,
  );

const LocalBackendSchemaZod: z.ZodType<LocalBackendConfig> = z.strictObject({
  type: z.literal("local"),
  path: z.string().min(1, "path must not be empty").refine(
    (path) => !path.includes("\0"),
    "path must not contain a NUL character",
  ).optional(),
});

const S3BackendSchemaZod: z.ZodType<S3BackendConfig> = z.strictObject({
  type: z.literal("s3"),
  bucket: z.string().regex(
    /^[a-z0-9][a-z0-9.\-_]{1,253}[a-z0-9]$/,
    "bucket must be an S3 bucket name (3-255 lowercase letters, digits, '.', '-', '_')",
  ),
  key: noSlashEnds("key").refine(
    (key) => !/\$\{(?!workspace\})/.test(key),
    'key may contain only the placeholder "${workspace}"',
  ),
  region: z.string().regex(/^[a-z0-9-]+$/, "region must be a region name such as eu-west-1")
    .optional(),
  dynamodb_table: z.string().regex(
    /^[A-Za-z0-9_.-]{3,255}$/,
    "dynamodb_table must be a DynamoDB table name (3-255 letters, digits, '_', '-', '.')",
  ).optional(),
  use_lockfile: z.boolean().optional(),
  workspace_key_prefix: noSlashEnds("workspace_key_prefix").optional(),
  encrypt: z.boolean().optional(),
  kms_key_id: z.string().min(1).optional(),
  profile: z.string().min(1).optional(),
  endpoint: url.optional(),
  endpoints: z.strictObject({ s3: url.optional(), dynamodb: url.optional() }).optional(),
  force_path_style: z.boolean().optional(),
  max_retries: z.int().min(0).max(20).optional(),
}).superRefine((config, ctx) => {
  const prefix = config.workspace_key_prefix ?? "env:";
  if (!config.key.includes("${workspace}") && config.key.startsWith(prefix + "/")) {
    ctx.addIssue({
      code: "custom",
      path: ["key"],
      message: `key "${config.key}" lies inside the workspace prefix "${prefix}/", so the ` +
        "default workspace would share its object with another workspace; choose a key " +
        "outside it or another workspace_key_prefix",
    });
  }
  if (config.key.includes("${workspace}") && config.workspace_key_prefix !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["workspace_key_prefix"],
      message: 'workspace_key_prefix is not used when key contains "${workspace}"; remove one',
    });
  }
});

const BackendSchemaZod: z.ZodType<BackendConfig> = z.discriminatedUnion("type", [
  LocalBackendSchemaZod as z.ZodObject<{ type: z.ZodLiteral<"local"> }>,
  S3BackendSchemaZod as unknown as z.ZodObject<{ type: z.ZodLiteral<"s3"> }>,
], { error: 'type must be "local" or "s3"' }) as unknown as z.ZodType<BackendConfig>;

const DiscordConfigSchemaZod: z.ZodType<DiscordConfig> = z.strictObject({
  guild_id: z.string().regex(/^\d{17,20}$/, "guild_id must be a Discord ID (17-20 digits)")
    .optional(),
  application_id: z.string().regex(
    /^\d{17,20}$/,
    "application_id must be a Discord ID (17-20 digits)",
  ).optional(),
  token_env: z.string().regex(
    /^[A-Za-z_][A-Za-z0-9_]*$/,
    "token_env must be the NAME of an environment variable, such as DISCORD_TOKEN",
  ).optional(),
});

const OutputSchemaZod: z.ZodType<OutputConfig> = z.strictObject({
  description: z.string().optional(),
  sensitive: z.boolean().optional(),
  value: z.unknown().optional(),
});

const GaibConfigSchemaZod: z.ZodType<GaibConfig> = z.strictObject({
  version: z.literal("1", 'version must be "1"'),
  backend: BackendSchemaZod.optional(),
  discord: DiscordConfigSchemaZod.optional(),
  outputs: z.record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, "output names must be identifiers"),
    OutputSchemaZod,
  ).optional(),
});

/**
 * Schema of {@linkcode LocalBackendConfig}.
 *
 * @example
 * ```ts
 * import { LocalBackendSchema } from "@gaib/state";
 * console.log(LocalBackendSchema.safeParse({ type: "local", path: ".gaib" }).success); // true
 * ```
 */
export const LocalBackendSchema: ConfigSchema<LocalBackendConfig> = LocalBackendSchemaZod;

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
export const S3BackendSchema: ConfigSchema<S3BackendConfig> = S3BackendSchemaZod;

/**
 * Schema of {@linkcode BackendConfig}, chosen by `type`.
 *
 * @example
 * ```ts
 * import { BackendSchema } from "@gaib/state";
 * console.log(BackendSchema.safeParse({ type: "ftp" }).success); // false
 * ```
 */
export const BackendSchema: ConfigSchema<BackendConfig> = BackendSchemaZod;

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
export const DiscordConfigSchema: ConfigSchema<DiscordConfig> = DiscordConfigSchemaZod;

/**
 * Schema of {@linkcode OutputConfig}.
 *
 * @example
 * ```ts
 * import { OutputSchema } from "@gaib/state";
 * console.log(OutputSchema.safeParse({ sensitive: "yes" }).success); // false
 * ```
 */
export const OutputSchema: ConfigSchema<OutputConfig> = OutputSchemaZod;

/**
 * Schema of a whole `gaib.yaml` ({@linkcode GaibConfig}).
 *
 * @example
 * ```ts
 * import { GaibConfigSchema } from "@gaib/state";
 * console.log(GaibConfigSchema.safeParse({ version: "1", backend: { type: "local" } }).success); // true
 * ```
 */
export const GaibConfigSchema: ConfigSchema<GaibConfig> = GaibConfigSchemaZod;

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

function parseConfigText(yamlText: string, file: string): GaibConfig {
  const size = new TextEncoder().encode(yamlText).length;
  if (size > MAX_CONFIG_BYTES) {
    throw new BackendConfigError(
      `${file} is ${(size / 1024 / 1024).toFixed(1)} MB; a gaib config is at most ` +
        `${MAX_CONFIG_BYTES / 1024 / 1024} MB. Is this the right file?`,
      { file },
    );
  }
  const lines = new LineCounter();
  const doc = parseDocument(yamlText, {
    lineCounter: lines,
    uniqueKeys: true,
    prettyErrors: false,
  });
  const syntax = doc.errors[0];
  if (syntax) {
    const at = lines.linePos(syntax.pos[0]);
    const where = at ? `${file}:${at.line}:${at.col}` : file;
    throw new BackendConfigError(
      `${where}: invalid YAML: ${syntax.message.split("\n")[0]}. Fix the syntax at that spot.`,
      { file, cause: syntax },
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (error) {
    throw new BackendConfigError(
      `${file}: the YAML uses too many aliases (${(error as Error).message}); ` +
        "write the values out instead of repeating anchors.",
      { file, cause: error },
    );
  }
  if (value === null || value === undefined) {
    throw new BackendConfigError(
      `${file} is empty. It needs at least: version: "1"`,
      { file },
    );
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new BackendConfigError(
      `${file}: the top level must be a mapping of keys (version, backend, discord, outputs).`,
      { file },
    );
  }
  // `version: 1` (a number) is what people type; it means "1".
  const raw = value as Record<string, unknown>;
  if (raw.version === 1) raw.version = "1";
  const result = GaibConfigSchemaZod.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue.path.map(String);
  let field = path.join(".");
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0];
    field = [...path, key].join(".");
    message = key === "token" && path.join(".") === "discord"
      ? 'unknown key "token": never write the bot token in the config; set token_env to the ' +
        "name of the environment variable that holds it"
      : `unknown key "${key}"; check its spelling (see the gaib.yaml reference in the README)`;
  } else if (issue.code === "invalid_type" && issue.input === undefined) {
    message = `${path[path.length - 1]} is required`;
  }
  const keyNode = issue.code === "unrecognized_keys"
    ? findKeyNode(doc.getIn(path, true), issue.keys[0])
    : nearestNode(doc, path);
  const offset = keyNode?.range?.[0];
  const pos = offset === undefined ? undefined : lines.linePos(offset);
  const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
  return failConfig(`${where}: ${field ? field + ": " : ""}${message}.`, file, field);
}

type Ranged = { range?: [number, number, number] };

/** The node at `path`, or at its nearest existing ancestor (for a missing field). */
function nearestNode(doc: ReturnType<typeof parseDocument>, path: string[]): Ranged | undefined {
  for (let n = path.length; n > 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as Ranged | undefined;
    if (node?.range) return node;
  }
  return undefined;
}

function findKeyNode(
  parent: unknown,
  key: string,
): { range?: [number, number, number] } | undefined {
  if (!isMap(parent)) return undefined;
  for (const pair of parent.items) {
    const k = pair.key as { value?: unknown; range?: [number, number, number] } | null;
    if (k && String(k.value) === key) return k;
  }
  return undefined;
}

function failConfig(message: string, file: string, path: string): never {
  throw new BackendConfigError(message, { file, path: path || undefined });
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
  return BackendSchemaZod.safeParse(config).success;
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
  const result = BackendSchemaZod.safeParse(config);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = [
    ...issue.path.map(String),
    ...(issue.code === "unrecognized_keys" ? [issue.keys[0]] : []),
  ].join(".");
  throw new BackendConfigError(`${source}: ${field ? field + ": " : ""}${issue.message}.`, {
    path: field || undefined,
  });
}
