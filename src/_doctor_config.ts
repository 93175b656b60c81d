/**
 * The checks every backend gets first: the config is valid, and where each of its values came
 * from (the config file, a variable, the default), each shown as its rule allows (a secret
 * only as "set", a URL without its user info).
 *
 * @module
 */

import type { BackendConfig } from "./config.ts";
import { exposureOf } from "./_config_rules.ts";
import { descriptorOf } from "./backends/_registry.ts";
import { type DoctorCheckDefinition, result } from "./_doctor_types.ts";
import { redactUrl } from "./_url.ts";

function flatten(value: unknown, prefix = ""): Array<[string, unknown]> {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, value]];
}

/** A value as its field's rule lets it be shown. */
function shown(config: BackendConfig, field: string, value: unknown): string {
  // The config passed the rule of a registered type.
  const exposure = exposureOf(descriptorOf(config.type)!.rule, field);
  if (exposure === "secret") return "(set)";
  if (typeof value !== "string") return JSON.stringify(value);
  return JSON.stringify(exposure === "url" ? redactUrl(value) : value);
}

/** `config.valid`: reached only with a config that passed its rule (a bad one fails earlier). */
export const configValid: DoctorCheckDefinition = {
  name: "config.valid",
  run(ctx) {
    const resolved = ctx.resolved;
    const from = resolved === undefined
      ? "the config passed in"
      : resolved.source === "file"
      ? resolved.file!
      : resolved.source === "environment"
      ? "the GAIB_* variables"
      : "the default (no config file, no GAIB_BACKEND or GAIB_S3_BUCKET)";
    return Promise.resolve(result("ok", `backend ${ctx.config.type}, from ${from}`));
  },
};

/** `config.sources`: each setting and where it came from. */
export const configSources: DoctorCheckDefinition = {
  name: "config.sources",
  run(ctx) {
    const origins = ctx.resolved?.origins ?? {};
    const fallback = ctx.resolved === undefined
      ? "passed in"
      : ctx.resolved.source === "file"
      ? ctx.resolved.file!
      : ctx.resolved.source;
    const settings = flatten(ctx.config)
      .filter(([key]) => key !== "type")
      .map(([key, value]) =>
        `${key}=${shown(ctx.config, key, value)} (${
          origins[key] ?? origins[key.split(".")[0]] ?? fallback
        })`
      );
    const notes = ctx.resolved?.notes ?? [];
    const skipped = (ctx.resolved?.skipped ?? []).map((s) => `skipped ${s.file}: ${s.reason}`);
    const text = [settings.join(", ") || "all defaults", ...notes, ...skipped].join("; ");
    return Promise.resolve(result("ok", text));
  },
};

/** The checks every backend runs before its own. */
export const CONFIG_CHECKS: readonly DoctorCheckDefinition[] = [configValid, configSources];
