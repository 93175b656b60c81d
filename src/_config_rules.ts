/**
 * The building blocks of the `gaib.yaml` rules, and the rules of its non-backend sections.
 * Each backend's rule is built from these in its descriptor (`backends/_<type>_descriptor.ts`);
 * the backend union is derived from the registry (`backends/_registry.ts`); the whole file's
 * rule is in `_config_load.ts`. One set of rules serves every reader: the fast path of the CLI,
 * the full YAML path that reports positions, the `GAIB_*` variables, the exported schemas and
 * the backends' constructors. They need neither zod nor the YAML parser, so checking the usual
 * config costs nothing at start-up.
 *
 * A problem is reported as the first {@linkcode ConfigIssue} found: what type was expected and
 * what was found (`expected a boolean (true or false), found the string "yes"`), and "is
 * required" only when the key is really absent. Found values are quoted only for fields that
 * a rule marks `show: "plain"` (they never hold secrets), and only when short; the others say
 * only what kind of value they hold.
 *
 * @module
 */

import type { DiscordConfig, OutputConfig } from "./config.ts";
import { BackendConfigError } from "./errors.ts";

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

/**
 * How a field's value may be shown, in error messages and by `config show`:
 *
 * - `"plain"`: as it is; the field can never hold a secret (a name, a flag, a number);
 * - `"url"`: a URL, whose user info may hold a credential: `config show` and `--verbose` show it
 *   without the user info, and an error never quotes it;
 * - `"secret"`: never shown, only whether it is set (a password, a connection string).
 *
 * A field that does not say is `"secret"`.
 */
export type Exposure = "plain" | "url" | "secret";

/** How a check may describe values. */
export interface CheckContext {
  /** The source text of the scalar at `path` (to quote a number as it was written). */
  sourceOf?: (path: readonly string[]) => string | undefined;
  /**
   * How the value being checked may be shown: set by {@linkcode object} from each field's
   * `show`. Values are quoted only when it is `"plain"`.
   */
  exposure?: Exposure;
}

/** A check of one value at `path`. */
export type Rule<T> = (value: unknown, path: string[], ctx: CheckContext) => Checked<T>;

const MAX_ECHO = 60;

function echoable(ctx: CheckContext): boolean {
  return ctx.exposure === "plain";
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
  const echo = echoable(ctx);
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

/** A failed check with one issue. */
export function fail<T>(path: string[], code: string, message: string): Checked<T> {
  return { ok: false, issue: { path, code, message } };
}

function name(path: readonly string[]): string {
  return path[path.length - 1] ?? "value";
}

/** The advice for a number or boolean where text is expected. */
function quoteAdvice(value: unknown, path: string[], ctx: CheckContext): string {
  if (typeof value !== "number" && typeof value !== "boolean") return "";
  if (!echoable(ctx)) return "; write it in quotes";
  const text = ctx.sourceOf?.(path) ?? String(value);
  return `; write it in quotes if you mean the text: ${name(path)}: ${quote(text)}`;
}

/** Options of {@linkcode string}. */
export interface StringOptions {
  /** What the string is, after "expected": "a string", "an S3 bucket name"... */
  expected?: string;
  /** A pattern the string must match. */
  pattern?: RegExp;
  /** The message when `pattern` does not match (without the found value). */
  patternMessage?: string;
  /** Further tests, each with the message when it fails. */
  refine?: { test: (value: string) => boolean; message: string }[];
}

/** A string, optionally matching a pattern and passing further tests. */
export function string(options: StringOptions = {}): Rule<string> {
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

/** A `refine` test of {@linkcode string}: not empty. */
export const nonEmpty = (what: string): { test: (v: string) => boolean; message: string } => ({
  test: (v: string) => v !== "",
  message: `${what} must not be empty`,
});

/** `true` or `false` (with advice for `yes`, `"true"`...). */
export const boolean: Rule<boolean> = (value, path, ctx) => {
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

/** A whole number from `min` to `max`. */
export function integer(min: number, max: number): Rule<number> {
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
export const httpUrl: Rule<string> = (value, path, ctx) => {
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

/** One of `values`; `message` says which, before ", found ...". */
export function literal<T extends string>(values: readonly T[], message: string): Rule<T> {
  return (value, path, ctx) =>
    values.includes(value as T)
      ? { ok: true, value: value as T }
      : fail(path, "invalid_value", `${message}, found ${describeFound(value, path, ctx)}`);
}

/** Whether a value is a mapping (a plain object, not a list or null). */
export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The failure for a value that is not a mapping.
 *
 * @param what what the mapping is for, such as "of names" or "(type: local or s3, ...)"
 */
export function notMapping<T>(
  value: unknown,
  path: string[],
  ctx: CheckContext,
  what?: string,
): Checked<T> {
  return fail(
    path,
    "invalid_type",
    `expected a mapping${what ? ` ${what}` : ""}, found ${describeFound(value, path, ctx)}`,
  );
}

/** One field of a mapping: its rule, whether it is required and how it may be shown. */
export interface Field {
  /** The field's rule. */
  rule: Rule<unknown>;
  /** Whether the key must be there. */
  required?: boolean;
  /** How the value may be shown; a field that does not say is `"secret"`. */
  show?: Exposure;
}

/** The fields of a mapping, by key. */
export type Shape = Readonly<Record<string, Field>>;

/** The rule of a mapping, with its fields (so that `config show` can ask how each is shown). */
export type ObjectRule<T> = Rule<T> & { readonly fields: Shape };

/** Options of {@linkcode object}. */
export interface ObjectOptions {
  /** What the mapping is for, after "expected a mapping". */
  expected?: string;
  /** A message for a particular unknown key. */
  unknownKey?: (key: string) => string | undefined;
  /** Checks of the whole mapping once every field is valid. */
  refine?: (value: Record<string, unknown>, path: string[]) => ConfigIssue | undefined;
}

/** A mapping of known keys, each checked by its field's rule; unknown keys are refused. */
export function object<T>(shape: Shape, options: ObjectOptions = {}): ObjectRule<T> {
  const rule: Rule<T> = (value, path, ctx) => {
    if (!isMapping(value)) {
      return notMapping(value, path, ctx, options.expected && `(${options.expected})`);
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
      const checked = field.rule(value[key], fieldPath, {
        ...ctx,
        exposure: field.show ?? "secret",
      });
      if (!checked.ok) return checked;
      out[key] = checked.value;
    }
    const issue = options.refine?.(out, path);
    return issue ? { ok: false, issue } : { ok: true, value: out as T };
  };
  return Object.assign(rule, { fields: shape });
}

/**
 * How the field at a dotted path of a mapping may be shown (`endpoints.s3` looks into the
 * `endpoints` mapping's fields).
 *
 * @param rule the mapping's rule
 * @param field the dotted path
 * @returns the field's `show`; `"secret"` for a field that does not say or is not known
 */
export function exposureOf(rule: ObjectRule<unknown>, field: string): Exposure {
  let fields: Shape | undefined = rule.fields;
  let found: Field | undefined;
  for (const key of field.split(".")) {
    found = fields !== undefined && Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (found === undefined) return "secret";
    fields = (found.rule as Partial<ObjectRule<unknown>>).fields;
  }
  return found?.show ?? "secret";
}

/** A mapping of names (matching `keyRule`) to values of one rule. */
export function record<T>(
  keyRule: RegExp,
  keyMessage: string,
  valueRule: Rule<T>,
): Rule<Record<string, T>> {
  return (value, path, ctx) => {
    if (!isMapping(value)) return notMapping(value, path, ctx, "of names");
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

/** A string that is not empty and neither starts nor ends with "/" nor contains "//". */
export const noSlashEnds = (what: string): Rule<string> =>
  string({
    refine: [nonEmpty(what), {
      test: (v) => !v.startsWith("/") && !v.endsWith("/") && !v.includes("//"),
      message: `${what} must not start or end with "/" or contain "//"`,
    }],
  });

/** The rule of {@linkcode DiscordConfig}. */
export const discordRule: Rule<DiscordConfig> = object({
  guild_id: { rule: discordId(), show: "plain" },
  application_id: { rule: discordId(), show: "plain" },
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
  sensitive: { rule: boolean, show: "plain" },
  value: { rule: anything },
}, { expected: "description, sensitive, value" });

/** A path for messages: plain keys as they are, others quoted. */
export function displayPath(path: readonly string[]): string {
  return path.map((p) => /^[A-Za-z0-9_$-]+$/.test(p) ? p : quote(p)).join(".");
}

/** The dotted path of an issue's field (with the key, for an unknown key). */
export function issueField(issue: ConfigIssue): string {
  return displayPath(
    issue.key !== undefined && issue.code === "unrecognized_keys"
      ? [...issue.path, issue.key]
      : issue.path,
  );
}

/**
 * Checks a config object (not a file: see `_config_load.ts` for those) and returns it, or
 * throws its first problem naming the field. `BackendFactory.create`, `parseBackendConfig` and
 * the backends' constructors all report a problem this way.
 *
 * @param rule the rule
 * @param value any value
 * @param source names where it came from in the message, such as "backend config"
 * @returns the checked value (a fresh object of the known keys)
 * @throws {BackendConfigError} `source: field: problem.`, with the field as `path`
 */
export function checkConfig<T>(rule: Rule<T>, value: unknown, source: string): T {
  const checked = rule(value, [], {});
  if (checked.ok) return checked.value;
  const field = issueField(checked.issue);
  throw new BackendConfigError(`${source}: ${field ? field + ": " : ""}${checked.issue.message}.`, {
    path: field || undefined,
  });
}
