/**
 * The rules of `gaib.yaml`, written once and used by every reader: the fast path of the CLI,
 * the full YAML path that reports positions, the `GAIB_*` variables and the exported schemas.
 * They need neither zod nor the YAML parser, so checking the usual config costs nothing at
 * start-up.
 *
 * A problem is reported as the first {@linkcode ConfigIssue} found: what type was expected and
 * what was found (`expected a boolean (true or false), found the string "yes"`), and "is
 * required" only when the key is really absent. Found values are quoted only for fields that
 * never hold secrets, and only when short; the others say only what kind of value they hold.
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

/** One problem with a config value. */
export interface ConfigIssue {
  /** Path of the field, such as `["backend", "encrypt"]` (the parent for an unknown key). */
  path: string[];
  /** Such as `"invalid_type"`, `"unrecognized_keys"`, `"invalid_format"`, `"custom"`. */
  code: string;
  /** What is wrong, without the field's path. */
  message: string;
  /** The unknown key, for `"unrecognized_keys"`. */
  key?: string;
  /** The field is absent (the only case that says "is required"). */
  missing?: boolean;
}

/** What a rule returns. */
export type Checked<T> = { ok: true; value: T } | { ok: false; issue: ConfigIssue };

/** How a check may describe values: the YAML source text of a scalar, when it is known. */
export interface CheckContext {
  /** The source text of the scalar at `path` (to quote a number as it was written). */
  sourceOf?: (path: readonly string[]) => string | undefined;
}

/** A check of one value at `path`. */
export type Rule<T> = (value: unknown, path: string[], ctx: CheckContext) => Checked<T>;

const MAX_ECHO = 60;

/** Fields whose values may be quoted in messages: none of them can hold a secret. */
const ECHO_FIELDS = new Set([
  "backend",
  "version",
  "type",
  "path",
  "bucket",
  "key",
  "region",
  "dynamodb_table",
  "use_lockfile",
  "workspace_key_prefix",
  "encrypt",
  "kms_key_id",
  "profile",
  "force_path_style",
  "max_retries",
  "guild_id",
  "application_id",
  "sensitive",
]);

function echoable(path: readonly string[]): boolean {
  if (path[0] === "outputs") return path.length === 3 && path[2] === "sensitive";
  return ECHO_FIELDS.has(path[path.length - 1] ?? "");
}

/**
 * A string quoted for a message: JSON escapes, plus escapes for the characters a terminal or
 * a bidirectional text would act on.
 */
export function quote(text: string): string {
  return JSON.stringify(text).replace(
    /[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Describes a found value: quoted only when the field is safe to echo and the value short. */
export function describeFound(value: unknown, path: readonly string[], ctx: CheckContext): string {
  const echo = echoable(path);
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value (null)";
  if (typeof value === "boolean") return `the boolean ${value}`;
  if (typeof value === "number" || typeof value === "bigint") {
    const source = ctx.sourceOf?.(path);
    return echo ? `the number ${source ?? String(value)}` : "a number";
  }
  if (typeof value === "string") {
    if (!echo) return "a string (not shown here, in case it is a secret)";
    return value.length > MAX_ECHO
      ? `the string ${quote(value.slice(0, MAX_ECHO))}... (${value.length} characters)`
      : `the string ${quote(value)}`;
  }
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `a ${typeof value}`;
}

function fail<T>(path: string[], code: string, message: string): Checked<T> {
  return { ok: false, issue: { path, code, message } };
}

function name(path: readonly string[]): string {
  return path[path.length - 1] ?? "value";
}

/** The advice for a number or boolean where text is expected. */
function quoteAdvice(value: unknown, path: string[], ctx: CheckContext): string {
  if (typeof value !== "number" && typeof value !== "boolean") return "";
  if (!echoable(path)) return "; write it in quotes";
  const text = ctx.sourceOf?.(path) ?? String(value);
  return `; write it in quotes if you mean the text: ${name(path)}: ${quote(text)}`;
}

interface StringOptions {
  /** What the string is, after "expected": "a string", "an S3 bucket name"... */
  expected?: string;
  pattern?: RegExp;
  /** The message when `pattern` does not match (without the found value). */
  patternMessage?: string;
  refine?: { test: (value: string) => boolean; message: string }[];
}

function string(options: StringOptions = {}): Rule<string> {
  return (value, path, ctx) => {
    if (typeof value !== "string") {
      return fail(
        path,
        "invalid_type",
        `expected ${options.expected ?? "a string"}, found ${describeFound(value, path, ctx)}` +
          quoteAdvice(value, path, ctx),
      );
    }
    if (options.pattern && !options.pattern.test(value)) {
      const found = describeFound(value, path, ctx);
      return fail(path, "invalid_format", `${options.patternMessage}, found ${found}`);
    }
    for (const rule of options.refine ?? []) {
      if (!rule.test(value)) return fail(path, "custom", rule.message);
    }
    return { ok: true, value };
  };
}

const nonEmpty = (what: string) => ({
  test: (v: string) => v !== "",
  message: `${what} must not be empty`,
});

const boolean: Rule<boolean> = (value, path, ctx) => {
  if (typeof value === "boolean") return { ok: true, value };
  const words = typeof value === "string" && /^(?:true|false|yes|no|on|off)$/i.test(value)
    ? "; write true or false without quotes"
    : "";
  return fail(
    path,
    "invalid_type",
    `expected a boolean (true or false), found ${describeFound(value, path, ctx)}${words}`,
  );
};

function integer(min: number, max: number): Rule<number> {
  return (value, path, ctx) => {
    const expected = `a whole number from ${min} to ${max}`;
    if (typeof value !== "number" || !Number.isInteger(value)) {
      return fail(
        path,
        "invalid_type",
        `expected ${expected}, found ${describeFound(value, path, ctx)}`,
      );
    }
    if (value < min || value > max) {
      return fail(
        path,
        value < min ? "too_small" : "too_big",
        `expected ${expected}, found ${describeFound(value, path, ctx)}`,
      );
    }
    return { ok: true, value };
  };
}

/** A Discord snowflake: digits in quotes (as a YAML number it has lost precision already). */
function discordId(): Rule<string> {
  const pattern = /^\d{17,20}$/;
  return (value, path, ctx) => {
    if (typeof value === "number" || typeof value === "bigint") {
      const source = ctx.sourceOf?.(path);
      const lost = typeof value === "number" && Number.isInteger(value) &&
          Number.isFinite(value) && !Number.isSafeInteger(value)
        ? `, which has already lost precision (it became ${BigInt(value)})`
        : "";
      const advice = source === undefined
        ? "write it in quotes, digit for digit as Discord shows it"
        : `write ${name(path)}: ${quote(source)}`;
      return fail(
        path,
        "invalid_type",
        `a Discord ID must be written in quotes: YAML read ${source ?? "it"} as a number${lost}; ` +
          advice,
      );
    }
    if (typeof value !== "string") {
      return fail(
        path,
        "invalid_type",
        `expected a Discord ID in quotes (17-20 digits), found ${describeFound(value, path, ctx)}`,
      );
    }
    if (!pattern.test(value)) {
      return fail(
        path,
        "invalid_format",
        `${name(path)} must be a Discord ID (17-20 digits), found ${
          describeFound(value, path, ctx)
        }`,
      );
    }
    return { ok: true, value };
  };
}

const URL_MESSAGE = "must be an http:// or https:// URL";

/** An http(s) URL; the value is never quoted (its user info may hold a credential). */
const httpUrl: Rule<string> = (value, path, ctx) => {
  if (typeof value !== "string") {
    return fail(
      path,
      "invalid_type",
      `expected an http:// or https:// URL, found ${describeFound(value, path, ctx)}`,
    );
  }
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") {
    return fail(
      path,
      "invalid_format",
      `${name(path)} ${URL_MESSAGE} (the value is not shown: it may hold a credential)`,
    );
  }
  return { ok: true, value };
};

const anything: Rule<unknown> = (value) => ({ ok: true, value });

function literal<T extends string>(values: readonly T[], message: string): Rule<T> {
  return (value, path, ctx) =>
    values.includes(value as T)
      ? { ok: true, value: value as T }
      : fail(path, "invalid_value", `${message}, found ${describeFound(value, path, ctx)}`);
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

type Shape = Record<string, { rule: Rule<unknown>; required?: boolean }>;

interface ObjectOptions {
  /** What the mapping is for, after "expected a mapping". */
  expected?: string;
  /** A message for a particular unknown key. */
  unknownKey?: (key: string) => string | undefined;
  /** Checks of the whole mapping once every field is valid. */
  refine?: (value: Record<string, unknown>, path: string[]) => ConfigIssue | undefined;
}

function object<T>(shape: Shape, options: ObjectOptions = {}): Rule<T> {
  return (value, path, ctx) => {
    if (!isMapping(value)) {
      return fail(
        path,
        "invalid_type",
        `expected a mapping${options.expected ? ` (${options.expected})` : ""}, found ${
          describeFound(value, path, ctx)
        }`,
      );
    }
    // An unknown key first: a misspelt key is the likely cause of a missing one.
    for (const key of Object.keys(value)) {
      if (Object.hasOwn(shape, key)) continue;
      const shown = quote(key.length > MAX_ECHO ? key.slice(0, MAX_ECHO) + "..." : key);
      const message = options.unknownKey?.(key) ??
        `unknown key ${shown}; check its spelling (see the gaib.yaml reference in the README)`;
      return { ok: false, issue: { path, code: "unrecognized_keys", message, key } };
    }
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(shape)) {
      const fieldPath = [...path, key];
      if (!Object.hasOwn(value, key) || value[key] === undefined) {
        if (field.required) {
          return {
            ok: false,
            issue: {
              path: fieldPath,
              code: "invalid_type",
              message: `${key} is required`,
              missing: true,
            },
          };
        }
        continue;
      }
      const checked = field.rule(value[key], fieldPath, ctx);
      if (!checked.ok) return checked;
      out[key] = checked.value;
    }
    const issue = options.refine?.(out, path);
    return issue ? { ok: false, issue } : { ok: true, value: out as T };
  };
}

function record<T>(
  keyRule: RegExp,
  keyMessage: string,
  valueRule: Rule<T>,
): Rule<Record<string, T>> {
  return (value, path, ctx) => {
    if (!isMapping(value)) {
      return fail(
        path,
        "invalid_type",
        `expected a mapping of names, found ${describeFound(value, path, ctx)}`,
      );
    }
    const out: Record<string, T> = {};
    for (const key of Object.keys(value)) {
      if (!keyRule.test(key) || key === "__proto__") {
        const shown = quote(key.length > MAX_ECHO ? key.slice(0, MAX_ECHO) + "..." : key);
        return {
          ok: false,
          issue: { path, code: "invalid_key", message: `${shown}: ${keyMessage}`, key },
        };
      }
      const checked = valueRule(value[key], [...path, key], ctx);
      if (!checked.ok) return checked;
      out[key] = checked.value;
    }
    return { ok: true, value: out };
  };
}

const noSlashEnds = (what: string) =>
  string({
    refine: [nonEmpty(what), {
      test: (v) => !v.startsWith("/") && !v.endsWith("/") && !v.includes("//"),
      message: `${what} must not start or end with "/" or contain "//"`,
    }],
  });

/** The rule of {@linkcode LocalBackendConfig}. */
export const localBackendRule: Rule<LocalBackendConfig> = object({
  type: { rule: literal(["local"], 'type must be "local"'), required: true },
  path: {
    rule: string({
      expected: "a string (a directory)",
      refine: [nonEmpty("path"), {
        test: (p) => !p.includes("\0"),
        message: "path must not contain a NUL character",
      }],
    }),
  },
}, { expected: "type: local and its settings" });

/** The rule of {@linkcode S3BackendConfig}. */
export const s3BackendRule: Rule<S3BackendConfig> = object({
  type: { rule: literal(["s3"], 'type must be "s3"'), required: true },
  bucket: {
    rule: string({
      pattern: /^[a-z0-9][a-z0-9.\-_]{1,253}[a-z0-9]$/,
      patternMessage:
        "bucket must be an S3 bucket name (3-255 lowercase letters, digits, '.', '-', '_')",
    }),
    required: true,
  },
  key: {
    rule: string({
      refine: [nonEmpty("key"), {
        test: (v) => !v.startsWith("/") && !v.endsWith("/") && !v.includes("//"),
        message: 'key must not start or end with "/" or contain "//"',
      }, {
        test: (key) => !/\$\{(?!workspace\})/.test(key),
        message: 'key may contain only the placeholder "${workspace}"',
      }],
    }),
    required: true,
  },
  region: {
    rule: string({
      pattern: /^[a-z0-9-]+$/,
      patternMessage: "region must be a region name such as eu-west-1",
    }),
  },
  dynamodb_table: {
    rule: string({
      pattern: /^[A-Za-z0-9_.-]{3,255}$/,
      patternMessage:
        "dynamodb_table must be a DynamoDB table name (3-255 letters, digits, '_', '-', '.')",
    }),
  },
  use_lockfile: { rule: boolean },
  workspace_key_prefix: { rule: noSlashEnds("workspace_key_prefix") },
  encrypt: { rule: boolean },
  kms_key_id: { rule: string({ refine: [nonEmpty("kms_key_id")] }) },
  profile: { rule: string({ refine: [nonEmpty("profile")] }) },
  endpoint: { rule: httpUrl },
  endpoints: {
    rule: object({ s3: { rule: httpUrl }, dynamodb: { rule: httpUrl } }, {
      expected: "s3: and dynamodb: URLs",
    }),
  },
  force_path_style: { rule: boolean },
  max_retries: { rule: integer(0, 20) },
}, {
  expected: "type: s3 and its settings",
  refine(config, path) {
    const key = config.key as string;
    const custom = config.workspace_key_prefix as string | undefined;
    const prefix = custom ?? "env:";
    if (!key.includes("${workspace}") && key.startsWith(prefix + "/")) {
      return {
        path: [...path, "key"],
        code: "custom",
        message: `key ${quote(key)} lies inside the workspace prefix ${quote(prefix + "/")}, ` +
          "so the default workspace would share its object with another workspace; choose a " +
          "key outside it or another workspace_key_prefix",
      };
    }
    if (key.includes("${workspace}") && custom !== undefined) {
      return {
        path: [...path, "workspace_key_prefix"],
        code: "custom",
        message: 'workspace_key_prefix is not used when key contains "${workspace}"; remove one',
      };
    }
    return undefined;
  },
});

const TYPE_MESSAGE = 'type must be "local" or "s3"';

/** The rule of {@linkcode BackendConfig}, chosen by `type`. */
export const backendRule: Rule<BackendConfig> = (value, path, ctx) => {
  if (!isMapping(value)) {
    return fail(
      path,
      "invalid_type",
      `expected a mapping (type: local or s3, and its settings), found ${
        describeFound(value, path, ctx)
      }`,
    );
  }
  if (value.type === undefined) {
    return {
      ok: false,
      issue: {
        path: [...path, "type"],
        code: "invalid_type",
        message: `type is required: "local" or "s3"`,
        missing: true,
      },
    };
  }
  if (value.type === "local") return localBackendRule(value, path, ctx);
  if (value.type === "s3") return s3BackendRule(value, path, ctx);
  return fail(
    [...path, "type"],
    "invalid_union",
    `${TYPE_MESSAGE}, found ${describeFound(value.type, [...path, "type"], ctx)}`,
  );
};

/** The rule of {@linkcode DiscordConfig}. */
export const discordRule: Rule<DiscordConfig> = object({
  guild_id: { rule: discordId() },
  application_id: { rule: discordId() },
  token_env: {
    rule: string({
      pattern: /^[A-Za-z_][A-Za-z0-9_]*$/,
      patternMessage: "token_env must be the NAME of an environment variable, such as " +
        "DISCORD_TOKEN, never the token itself",
    }),
  },
}, {
  expected: "guild_id, application_id, token_env",
  unknownKey: (key) =>
    key === "token"
      ? 'unknown key "token": never write the bot token in the config; set token_env to the ' +
        "name of the environment variable that holds it"
      : undefined,
});

/** The rule of {@linkcode OutputConfig}. */
export const outputRule: Rule<OutputConfig> = object({
  description: { rule: string() },
  sensitive: { rule: boolean },
  value: { rule: anything },
}, { expected: "description, sensitive, value" });

/** The rule of a whole {@linkcode GaibConfig}. */
export const gaibConfigRule: Rule<GaibConfig> = object({
  version: { rule: literal(["1"], 'version must be "1"'), required: true },
  backend: { rule: backendRule },
  discord: { rule: discordRule },
  outputs: {
    rule: record(
      /^[A-Za-z_][A-Za-z0-9_-]*$/,
      "output names must be identifiers (letters, digits, '_', '-'; not __proto__)",
      outputRule,
    ),
  },
}, { expected: "version, backend, discord, outputs" });

/**
 * Runs a rule on a value.
 *
 * @param rule one of the rules above
 * @param value the value to check
 * @param path where the value sits (`["backend"]` for a backend section)
 * @param ctx how to describe values
 * @returns the checked value (a fresh object of the known keys) or the first issue
 */
export function check<T>(
  rule: Rule<T>,
  value: unknown,
  path: string[] = [],
  ctx: CheckContext = {},
): Checked<T> {
  return rule(value, path, ctx);
}
