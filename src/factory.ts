/**
 * Builds backends from config objects, `gaib.yaml` files or the environment. The YAML parser
 * and zod are loaded only when a config file or variable is actually read, and the AWS SDK
 * only for an S3 backend, so local-only use starts fast.
 *
 * @module
 */

import { readCachedConfig, writeCachedConfig } from "./_config_cache.ts";
import { dirname, join } from "./_path.ts";
import type { BackendConfig, GaibConfig, S3BackendConfig } from "./config.ts";
import { BackendConfigError } from "./errors.ts";
import type { StateBackend } from "./types.ts";
import { LocalBackend } from "./backends/local.ts";

/** Config file names looked for, in order, in each directory from `cwd` up. */
export const CONFIG_FILE_NAMES: readonly string[] = [
  "gaib.yaml",
  "gaib.yml",
  ".gaib.yaml",
  ".gaib.yml",
];

/** Where a resolved backend config came from. */
export type ConfigSource = "environment" | "file" | "default";

/** A backend config with its origin, before any backend is created. */
export interface ResolvedBackendConfig {
  /** The config, with a local `path` made absolute or relative to `cwd`. */
  config: BackendConfig;
  /** Where it came from. */
  source: ConfigSource;
  /** The config file, when `source` is `"file"` (also when found but the env won). */
  file?: string;
  /**
   * The state root: a local backend's `path`, else `.gaib` next to the config file (or in
   * `cwd`). It holds `.current-workspace` for every backend type.
   */
  stateRoot: string;
  /** For each config field, where its value came from (an env var name or the file). */
  origins: Record<string, string>;
}

/** Options for {@linkcode BackendFactory.resolve} and {@linkcode BackendFactory.auto}. */
export interface ResolveOptions {
  /**
   * Directory to start looking for a config file in.
   * @default {Deno.cwd()}
   */
  cwd?: string;
  /**
   * Environment to read `GAIB_*` variables from.
   * @default {Deno.env}
   */
  env?: { get(name: string): string | undefined };
  /**
   * Use this config file instead of looking for one (as `--config` does).
   * @default {undefined}
   */
  configFile?: string;
}

/** Environment variables read by {@linkcode BackendFactory.fromEnvironment}. */
export const ENVIRONMENT_VARIABLES: Readonly<Record<string, string>> = {
  GAIB_BACKEND: "type",
  GAIB_STATE_PATH: "path",
  GAIB_S3_BUCKET: "bucket",
  GAIB_S3_KEY: "key",
  GAIB_S3_REGION: "region",
  GAIB_DYNAMODB_TABLE: "dynamodb_table",
  GAIB_S3_USE_LOCKFILE: "use_lockfile",
  GAIB_S3_WORKSPACE_KEY_PREFIX: "workspace_key_prefix",
  GAIB_S3_ENCRYPT: "encrypt",
  GAIB_S3_KMS_KEY_ID: "kms_key_id",
  GAIB_S3_PROFILE: "profile",
  GAIB_S3_ENDPOINT: "endpoint",
  GAIB_DYNAMODB_ENDPOINT: "endpoints.dynamodb",
  GAIB_S3_FORCE_PATH_STYLE: "force_path_style",
  GAIB_S3_MAX_RETRIES: "max_retries",
};
const BOOLEAN_FIELDS = new Set(["use_lockfile", "encrypt", "force_path_style"]);

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw error;
  }
}

/**
 * Reads and checks a config file; an unchanged file comes from the cache without loading the
 * YAML parser and zod. Other encodings than UTF-8 are refused, not silently replaced.
 */
async function readConfigFile(file: string): Promise<GaibConfig> {
  const bytes = await Deno.readFile(file);
  const cached = await readCachedConfig(file, bytes);
  if (cached) return cached;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new BackendConfigError(
      `${file} is not UTF-8 text, so its values cannot be read reliably. Save it as UTF-8.`,
      { file, cause: error },
    );
  }
  const { parseGaibConfig } = await import("./schema.ts");
  const config = parseGaibConfig(text, file);
  await writeCachedConfig(file, bytes, config);
  return config;
}

/**
 * Creates backends from configuration.
 *
 * @example Picking the backend the way the CLI does
 * ```ts ignore
 * import { BackendFactory, withBackend } from "@gaib/state";
 *
 * await withBackend(await BackendFactory.auto(), async (backend) => {
 *   console.log(await backend.listWorkspaces());
 * });
 * ```
 */
export class BackendFactory {
  /**
   * Creates a backend from a config object.
   *
   * @param config a local or S3 backend config
   * @returns the backend
   * @throws {BackendConfigError} when the config is invalid
   *
   * @example
   * ```ts
   * import { BackendFactory } from "@gaib/state";
   * const backend = await BackendFactory.create({ type: "local", path: ".gaib" });
   * await backend.close();
   * ```
   */
  static async create(config: BackendConfig): Promise<StateBackend> {
    if (config?.type === "local") {
      if (config.path !== undefined && (typeof config.path !== "string" || !config.path)) {
        throw new BackendConfigError("backend.path must be a non-empty string.", {
          path: "backend.path",
        });
      }
      return new LocalBackend({ path: config.path ?? ".gaib" });
    }
    if (config?.type === "s3") {
      const { parseBackendConfig } = await import("./schema.ts");
      const checked = parseBackendConfig(config) as S3BackendConfig;
      const { S3Backend } = await import("./backends/s3.ts");
      return new S3Backend(checked);
    }
    throw new BackendConfigError(
      `Unknown backend type ${JSON.stringify((config as { type?: unknown })?.type)}: ` +
        'use "local" or "s3".',
      { path: "backend.type" },
    );
  }

  /**
   * Finds the config file: `gaib.yaml`, `gaib.yml`, `.gaib.yaml` or `.gaib.yml`, in `cwd`
   * or the nearest parent directory that has one.
   *
   * @param cwd where to start
   * @returns the file's path, or `null` when there is none
   */
  static async findConfigFile(cwd: string = Deno.cwd()): Promise<string | null> {
    let dir = cwd.replace(/\/+$/, "") || "/";
    for (;;) {
      for (const name of CONFIG_FILE_NAMES) {
        const path = join(dir, name);
        if (await isFile(path)) return path;
      }
      const parent = dirname(dir);
      if (parent === dir || dir === ".") return null;
      dir = parent;
    }
  }

  /**
   * Works out which backend config applies, without creating a backend: the environment
   * (`GAIB_BACKEND` or `GAIB_S3_BUCKET` set), else the config file, else the local default.
   *
   * @param options `cwd`, `env`, `configFile`
   * @returns the config, where it came from, and the state root
   * @throws {BackendConfigError} when the environment or the file is invalid
   */
  static async resolve(options: ResolveOptions = {}): Promise<ResolvedBackendConfig> {
    const cwd = options.cwd ?? Deno.cwd();
    const env = options.env ?? Deno.env;
    const file = options.configFile ?? await BackendFactory.findConfigFile(cwd);
    if (options.configFile !== undefined && !(await isFile(options.configFile))) {
      throw new BackendConfigError(
        `Config file ${options.configFile} does not exist. Check the --config path.`,
        { file: options.configFile },
      );
    }
    const base = file ? dirname(file) : cwd;
    const fromEnv = await readEnvironmentConfig(env);
    if (fromEnv) {
      const local = fromEnv.config.type === "local" ? fromEnv.config : null;
      const stateRoot = join(cwd, local?.path ?? ".gaib");
      if (local) fromEnv.config = { ...local, path: stateRoot };
      return { ...fromEnv, source: "environment", stateRoot, file: file ?? undefined };
    }
    if (file) {
      const parsed = await readConfigFile(file);
      const config: BackendConfig = parsed.backend ?? { type: "local" };
      const origins: Record<string, string> = {};
      for (const key of Object.keys(config)) origins[key] = file;
      if (config.type === "local") {
        const stateRoot = join(base, config.path ?? ".gaib");
        return {
          config: { ...config, path: stateRoot },
          source: "file",
          file,
          stateRoot,
          origins,
        };
      }
      return { config, source: "file", file, stateRoot: join(base, ".gaib"), origins };
    }
    const stateRoot = join(cwd, ".gaib");
    return {
      config: { type: "local", path: stateRoot },
      source: "default",
      stateRoot,
      origins: { type: "default", path: "default" },
    };
  }

  /**
   * Creates the backend the config file describes (a local backend next to the file when it
   * has no `backend` section).
   *
   * @param cwd where to start looking for the file
   * @returns the backend, or `null` when there is no config file
   * @throws {BackendConfigError} when the file is invalid
   */
  static async fromConfig(cwd: string = Deno.cwd()): Promise<StateBackend | null> {
    const file = await BackendFactory.findConfigFile(cwd);
    if (!file) return null;
    const resolved = await BackendFactory.resolve({
      cwd,
      configFile: file,
      env: { get: () => undefined },
    });
    return BackendFactory.create(resolved.config);
  }

  /**
   * Creates the backend the `GAIB_*` environment variables describe.
   *
   * @param env the environment
   * @returns the backend, or `null` when neither `GAIB_BACKEND` nor `GAIB_S3_BUCKET` is set
   * @throws {BackendConfigError} naming the variable that is wrong
   */
  static async fromEnvironment(
    env: { get(name: string): string | undefined } = Deno.env,
  ): Promise<StateBackend | null> {
    const found = await readEnvironmentConfig(env);
    return found ? BackendFactory.create(found.config) : null;
  }

  /**
   * Creates the backend that applies here: environment, then config file, then the local
   * default (`.gaib` in `cwd`).
   *
   * @param options `cwd`, `env`, `configFile`
   * @returns the backend
   * @throws {BackendConfigError} when the environment or the config file is invalid
   */
  static async auto(options: ResolveOptions = {}): Promise<StateBackend> {
    return BackendFactory.create((await BackendFactory.resolve(options)).config);
  }

  /**
   * The type of the backend that applies here.
   *
   * @param cwd where to start looking for a config file
   * @returns `"local"` or `"s3"`
   */
  static async getBackendType(cwd: string = Deno.cwd()): Promise<"local" | "s3"> {
    return (await BackendFactory.resolve({ cwd })).config.type;
  }
}

function envGet(env: { get(name: string): string | undefined }, name: string): string | undefined {
  try {
    const value = env.get(name);
    return value === "" ? undefined : value;
  } catch {
    return undefined; // not allowed to read it
  }
}

/** Reads the `GAIB_*` variables into a checked config, or `null` when none selects one. */
async function readEnvironmentConfig(
  env: { get(name: string): string | undefined },
): Promise<{ config: BackendConfig; origins: Record<string, string> } | null> {
  const type = envGet(env, "GAIB_BACKEND") ?? (envGet(env, "GAIB_S3_BUCKET") ? "s3" : undefined);
  if (type === undefined) return null;
  const raw: Record<string, unknown> = { type };
  const origins: Record<string, string> = {
    type: envGet(env, "GAIB_BACKEND") ? "GAIB_BACKEND" : "GAIB_S3_BUCKET",
  };
  for (const [name, field] of Object.entries(ENVIRONMENT_VARIABLES)) {
    if (field === "type") continue;
    const value = envGet(env, name);
    if (value === undefined) continue;
    if (type === "local" ? field !== "path" : field === "path") continue;
    let parsed: unknown = value;
    if (BOOLEAN_FIELDS.has(field)) {
      const lower = value.toLowerCase();
      if (["1", "true", "yes", "on"].includes(lower)) parsed = true;
      else if (["0", "false", "no", "off"].includes(lower)) parsed = false;
      else {
        throw new BackendConfigError(
          `Environment variable ${name}=${JSON.stringify(value)} is not a boolean: use true or ` +
            "false.",
          { path: name },
        );
      }
    } else if (field === "max_retries") {
      parsed = /^\d+$/.test(value) ? Number(value) : value;
    }
    if (field.startsWith("endpoints.")) {
      raw.endpoints = { ...(raw.endpoints as object ?? {}), [field.slice(10)]: parsed };
    } else raw[field] = parsed;
    origins[field] = name;
  }
  if (type === "s3" && raw.region === undefined) {
    const region = envGet(env, "AWS_REGION") ?? envGet(env, "AWS_DEFAULT_REGION");
    if (region) {
      raw.region = region;
      origins.region = envGet(env, "AWS_REGION") ? "AWS_REGION" : "AWS_DEFAULT_REGION";
    }
  }
  const { parseBackendConfig } = await import("./schema.ts");
  try {
    return { config: parseBackendConfig(raw, "the environment"), origins };
  } catch (error) {
    if (!(error instanceof BackendConfigError)) throw error;
    const field = error.path ?? "";
    const variable = Object.entries(ENVIRONMENT_VARIABLES).find(([, f]) => f === field)?.[0];
    throw new BackendConfigError(
      variable
        ? `${error.message} Set ${variable}.`.replace("the environment:", variable + ":")
        : error.message,
      { path: variable ?? field, cause: error },
    );
  }
}
