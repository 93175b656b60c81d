/**
 * Builds backends from config objects, `gaib.yaml` files or the environment. Which backends
 * exist, and how each is loaded, comes from the registry (`backends/_registry.ts`). The usual
 * `gaib.yaml` is read without the YAML parser (see `_config_load.ts`), and a backend's module
 * is loaded only when one is created (the AWS SDK only for an S3 backend), so local-only use
 * starts fast. Nothing is cached: every run reads the config file itself.
 *
 * @module
 */

import { dirname, join } from "./_path.ts";
import type { BackendConfig } from "./config.ts";
import type { EncryptionConfig } from "./_encryption_config.ts";
import { BackendConfigError } from "./errors.ts";
import type { StateBackend } from "./types.ts";
import { describesBackend, isVariableOrigin, readEnvironment } from "./_config_env.ts";
import { loadConfigFast, loadConfigFull, type LoadedConfig } from "./_config_load.ts";
import { checkConfig } from "./_config_rules.ts";
import { isFile, readConfigFile, searchConfigFile } from "./_config_search.ts";
import { checkStateRoot } from "./_state_root.ts";
import { type BackendClass, backendRule, descriptorOf } from "./backends/_registry.ts";

export { CONFIG_FILE_NAMES } from "./_config_search.ts";
export { ENVIRONMENT_VARIABLES } from "./_config_env.ts";

/** The state root when the backend has no directory of its own: `.gaib` next to the file. */
const DEFAULT_STATE_ROOT = ".gaib";

/** Where a resolved backend config's type came from. */
export type ConfigSource = "environment" | "file" | "default";

/** A backend config with its origin, before any backend is created. */
export interface ResolvedBackendConfig {
  /**
   * The config, with its directory fields (a local backend's `path`) resolved: relative to the
   * config file's directory, or to `cwd` when a variable set them.
   */
  config: BackendConfig;
  /**
   * Where the backend type came from: a `GAIB_*` variable, the config file, or the default.
   * Each field's own origin is in `origins`.
   */
  source: ConfigSource;
  /**
   * The config file that was read, if any (also when `GAIB_BACKEND` selects another backend
   * type, so that only the file's other sections apply).
   */
  file?: string;
  /**
   * The state root: a local backend's `path`, else `.gaib` next to the config file (or in
   * `cwd`). It holds `.current-workspace` for every backend type.
   */
  stateRoot: string;
  /**
   * For each backend field (dotted, such as `endpoints.dynamodb`): the config file's path, the
   * environment variable that set it, or `"default"`.
   */
  origins: Record<string, string>;
  /**
   * Config files found but not used, and why: a file in a shared directory such as `/tmp`,
   * which any user could have put there.
   */
  skipped: { file: string; reason: string }[];
  /** Remarks on how the config was put together, such as a variable that does not apply. */
  notes: string[];
  /**
   * State encryption (`encryption` of the config file, or `GAIB_ENCRYPTION`), with each
   * `passphrase_file` made absolute (relative to the file's directory, or `cwd` for the
   * variable); `undefined` when states are not encrypted.
   */
  encryption?: EncryptionConfig;
  /** Where {@linkcode ResolvedBackendConfig.encryption} came from. */
  encryptionSource?: "file" | "environment";
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
   * Use this config file instead of looking for one (as `--config` does). It is used whoever
   * owns it: you named it.
   * @default {undefined}
   */
  configFile?: string;
}

/** The file's text; other encodings than UTF-8 are refused, not silently replaced. */
function decode(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new BackendConfigError(
      `${file} is not UTF-8 text, so its values cannot be read reliably. Save it as UTF-8.`,
      { file, cause: error },
    );
  }
}

/** Reads and checks a config: the fast reader, else the full YAML parser (loaded then). */
async function load(
  input: { text?: string; file?: string; env: ResolveOptions["env"] & object },
): Promise<LoadedConfig> {
  const fast = loadConfigFast(input);
  if (fast) return fast;
  const { readYamlConfig } = await import("./_config_yaml.ts");
  return loadConfigFull(input, readYamlConfig);
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
   * @param config a backend config (any registered `type`: `local`, `s3`)
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
    const checked = checkConfig(backendRule, config, "backend config");
    // The rule accepts registered types only, and each class takes its own type's config.
    const Backend = await descriptorOf(checked.type)!.load() as BackendClass<BackendConfig>;
    return new Backend(checked);
  }

  /**
   * Finds the config file that applies: `gaib.yaml`, `gaib.yml`, `.gaib.yaml` or
   * `.gaib.yml`, in `cwd` or the nearest parent directory that has one, provided that no
   * other user could have written it (see "Configuration" in the README: the file and every
   * directory from `cwd` up to it must be yours or root's and not writable by every user).
   *
   * @param cwd where to start
   * @returns the file's path, or `null` when there is none (or only one in a shared
   * directory such as `/tmp`)
   * @throws {BackendConfigError} when the nearest config file may have been written by another
   * user
   */
  static async findConfigFile(cwd: string = Deno.cwd()): Promise<string | null> {
    return (await searchConfigFile(cwd)).file;
  }

  /**
   * Works out which backend config applies, without creating a backend: the config file (see
   * {@linkcode BackendFactory.findConfigFile}), with each `GAIB_*` variable that is set
   * replacing its one field; `GAIB_BACKEND` (or `GAIB_S3_BUCKET` alone) selecting another type
   * than the file's makes a config of the variables alone. Relative paths: `path` from the
   * file is relative to the file's directory, `GAIB_STATE_PATH` to `cwd`.
   *
   * @param options `cwd`, `env`, `configFile`
   * @returns the config, where each field came from, and the state root
   * @throws {BackendConfigError} when the environment or the file is invalid, or the file or
   * the state root may have been written by another user (see `_state_root.ts`)
   */
  static async resolve(options: ResolveOptions = {}): Promise<ResolvedBackendConfig> {
    const cwd = options.cwd ?? Deno.cwd();
    const env = options.env ?? Deno.env;
    let file: string | null;
    let skipped: ResolvedBackendConfig["skipped"] = [];
    if (options.configFile !== undefined) {
      file = options.configFile;
      if (!(await isFile(file))) {
        const what = await Deno.stat(file).then(
          (info) => info.isDirectory ? "is a directory, not a file" : "is not a regular file",
          () => "does not exist",
        );
        throw new BackendConfigError(`Config file ${file} ${what}. Check the --config path.`, {
          file,
        });
      }
    } else {
      ({ file, skipped } = await searchConfigFile(cwd));
    }
    const text = file === null
      ? undefined
      : decode(await readConfigFile(file, options.configFile === undefined), file);
    const loaded = await load({ text, file: file ?? undefined, env });
    const backend = loaded.config.backend!;
    const origins = { ...loaded.origins };
    // Relative paths from the file (and defaults such as .gaib) sit next to the file; a path
    // from a variable (GAIB_STATE_PATH) is relative to where the command runs, like a
    // command-line argument.
    const base = file === null ? cwd : dirname(file);
    const config: Record<string, unknown> = { ...backend };
    let stateRoot = join(base, DEFAULT_STATE_ROOT);
    for (const [field, spec] of Object.entries(descriptorOf(backend.type)!.paths ?? {})) {
      const value = (config[field] as string | undefined) ?? spec.default;
      if (value === undefined) continue;
      config[field] = join(isVariableOrigin(origins[field]) ? cwd : base, value);
      if (spec.stateRoot) stateRoot = config[field] as string;
    }
    // Trusted like the config that names it: a root another user could write is refused here,
    // for the library's auto() as for the CLI.
    await checkStateRoot(stateRoot);
    const source: ConfigSource = origins.type === "default"
      ? "default"
      : origins.type === file
      ? "file"
      : "environment";
    const encryption = loaded.config.encryption && absolutePassphraseFiles(
      loaded.config.encryption,
      loaded.encryptionFrom === "environment" ? cwd : base,
    );
    return {
      config: config as unknown as BackendConfig,
      source,
      file: file ?? undefined,
      stateRoot,
      origins,
      skipped,
      notes: loaded.notes,
      ...(encryption?.state ? { encryption, encryptionSource: loaded.encryptionFrom } : {}),
    };
  }

  /**
   * Creates the backend a resolved config describes, wrapped by `withEncryption` when the config
   * has an `encryption` block with a `state` target.
   *
   * @param resolved what {@linkcode BackendFactory.resolve} returned
   * @returns the backend
   * @throws {BackendConfigError} when the config is invalid
   *
   * @example
   * ```ts
   * import { BackendFactory } from "@gaib/state";
   * const dir = await Deno.makeTempDir();
   * const resolved = await BackendFactory.resolve({ cwd: dir, env: { get: () => undefined } });
   * const backend = await BackendFactory.fromResolved(resolved);
   * console.log(await backend.listWorkspaces()); // ["default"]
   * await backend.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static async fromResolved(resolved: ResolvedBackendConfig): Promise<StateBackend> {
    const backend = await BackendFactory.create(resolved.config);
    if (!resolved.encryption?.state) return backend;
    // Loaded only when states are encrypted, to keep the usual start-up light.
    const { withEncryption } = await import("./encryption.ts");
    try {
      return withEncryption(backend, resolved.encryption);
    } catch (error) {
      await backend.close();
      throw error;
    }
  }

  /**
   * Creates the backend the config file describes (a local backend next to the file when it
   * has no `backend` section), ignoring the environment.
   *
   * @param cwd where to start looking for the file
   * @returns the backend, or `null` when there is no config file
   * @throws {BackendConfigError} when the file is invalid or may have been written by another
   * user
   */
  static async fromConfig(cwd: string = Deno.cwd()): Promise<StateBackend | null> {
    const resolved = await BackendFactory.resolve({ cwd, env: { get: () => undefined } });
    return resolved.file === undefined ? null : BackendFactory.fromResolved(resolved);
  }

  /**
   * Creates the backend the `GAIB_*` environment variables describe, without any config file.
   * A relative `GAIB_STATE_PATH` is relative to the working directory.
   *
   * @param env the environment
   * @returns the backend, or `null` when none of `GAIB_BACKEND`, `GAIB_S3_BUCKET` and
   * `GAIB_STATE_PATH` is set
   * @throws {BackendConfigError} naming the variable that is wrong
   */
  static async fromEnvironment(
    env: { get(name: string): string | undefined } = Deno.env,
  ): Promise<StateBackend | null> {
    if (!describesBackend(readEnvironment(env))) return null;
    const loaded = await load({ env });
    const encryption = loaded.config.encryption &&
      absolutePassphraseFiles(loaded.config.encryption, Deno.cwd());
    return BackendFactory.fromResolved({
      config: loaded.config.backend!,
      source: "environment",
      stateRoot: "",
      origins: loaded.origins,
      skipped: [],
      notes: loaded.notes,
      encryption,
    });
  }

  /**
   * Creates the backend that applies here (see {@linkcode BackendFactory.resolve}): the
   * config file with the `GAIB_*` variables over it, else the local default (`.gaib` in
   * `cwd`).
   *
   * @param options `cwd`, `env`, `configFile`
   * @returns the backend
   * @throws {BackendConfigError} when the environment or the config file is invalid
   */
  static async auto(options: ResolveOptions = {}): Promise<StateBackend> {
    return BackendFactory.fromResolved(await BackendFactory.resolve(options));
  }

  /**
   * The type of the backend that applies here.
   *
   * @param cwd where to start looking for a config file
   * @returns the backend's `type`, such as `"local"` or `"s3"`
   */
  static async getBackendType(cwd: string = Deno.cwd()): Promise<BackendConfig["type"]> {
    return (await BackendFactory.resolve({ cwd })).config.type;
  }
}

/** The encryption block with each `passphrase_file` made absolute against `base`. */
function absolutePassphraseFiles(encryption: EncryptionConfig, base: string): EncryptionConfig {
  const pbkdf2 = encryption.key_provider?.pbkdf2;
  if (!pbkdf2) return encryption;
  const resolved = Object.fromEntries(
    Object.entries(pbkdf2).map(([name, provider]) => [
      name,
      provider.passphrase_file === undefined
        ? provider
        : { ...provider, passphrase_file: join(base, provider.passphrase_file) },
    ]),
  );
  return { ...encryption, key_provider: { ...encryption.key_provider, pbkdf2: resolved } };
}
