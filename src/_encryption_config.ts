/**
 * The `encryption` block of `gaib.yaml` (and of `GAIB_ENCRYPTION`): OpenTofu's `encryption`
 * block translated one to one (names of blocks become keys, references stay strings), its rule
 * (built from `_config_rules.ts`, like every other section), and the resolution of its
 * references into the chain of methods a state is encrypted and decrypted with.
 *
 * OpenTofu sources (github.com/opentofu/opentofu at f831fa1a):
 * - internal/encryption/config/config.go:16-117 (the block's structure: key_provider, method,
 *   state with method, fallback, enforced; plan; remote_state_data_sources);
 * - internal/encryption/targets.go:17-87 (method references `method.<type>.<name>`, the
 *   fallback chain, and `enforced` refusing the `unencrypted` method);
 * - internal/encryption/keyprovider/validation.go:11-13 (names `[a-zA-Z_0-9-]+`);
 * - internal/encryption/keyprovider/pbkdf2/config.go:128-161, config_constants.go:13-27,
 *   descriptor.go:15-24 (pbkdf2 defaults and limits);
 * - internal/encryption/method/aesgcm/descriptor.go:28-62 (aes_gcm: `keys`, `aad`);
 * - internal/encryption/keyprovider/external/config.go:12-25 (external: `command`).
 *
 * @module
 */

import {
  boolean,
  type Checked,
  type ConfigIssue,
  describeFound,
  fail,
  integer,
  isMapping,
  literal,
  notMapping,
  object,
  quote,
  type Rule,
  string,
} from "./_config_rules.ts";

/** pbkdf2 defaults (descriptor.go:15-24, config_constants.go:13-27). */
export const PBKDF2_DEFAULTS = {
  key_length: 32,
  iterations: 600_000,
  salt_length: 32,
  hash_function: "sha512",
} as const;
/** Fewer iterations are refused (config_constants.go:25). */
export const PBKDF2_MINIMUM_ITERATIONS = 200_000;
/** A shorter passphrase is refused (config_constants.go:26). */
export const PBKDF2_MINIMUM_PASSPHRASE_LENGTH = 16;

/**
 * A `pbkdf2` key provider: a key derived from a passphrase (OpenTofu's `pbkdf2` key provider,
 * plus `passphrase_env` and `passphrase_file` so that the passphrase need not be in the file).
 */
export interface Pbkdf2KeyProviderConfig {
  /** The passphrase itself (at least 16 characters); prefer `passphrase_env`. */
  passphrase?: string;
  /** Name of the environment variable holding the passphrase. */
  passphrase_env?: string;
  /** File holding the passphrase (one trailing newline is ignored); relative to `gaib.yaml`. */
  passphrase_file?: string;
  /**
   * Length of the derived key in bytes (16, 24 or 32 for `aes_gcm`).
   * @default {32}
   */
  key_length?: number;
  /**
   * PBKDF2 iterations, at least 200,000.
   * @default {600000}
   */
  iterations?: number;
  /**
   * Salt length in bytes.
   * @default {32}
   */
  salt_length?: number;
  /**
   * `sha256` or `sha512`.
   * @default {"sha512"}
   */
  hash_function?: "sha256" | "sha512";
  /**
   * Key of this provider's metadata in the envelope's `meta`, instead of
   * `key_provider.pbkdf2.<name>`.
   * @default {undefined}
   */
  encrypted_metadata_alias?: string;
}

/** An `external` key provider: a command that prints the key (OpenTofu's protocol v1). */
export interface ExternalKeyProviderConfig {
  /** The program and its arguments, run without a shell. */
  command: string[];
  /**
   * Key of this provider's metadata in the envelope's `meta`.
   * @default {undefined}
   */
  encrypted_metadata_alias?: string;
}

/** An `aes_gcm` method. */
export interface AesGcmMethodConfig {
  /** The key provider, as a reference: `key_provider.pbkdf2.<name>`. */
  keys: string;
  /**
   * Additional authenticated data, as a list of bytes: must be the same to decrypt.
   * @default {undefined}
   */
  aad?: number[];
}

/** A target (the state, or a fallback): the method, and what decrypts what it cannot. */
export interface EncryptionTargetConfig {
  /** The method, as a reference: `method.aes_gcm.<name>` or `method.unencrypted.<name>`. */
  method: string;
  /**
   * The method tried when this one cannot decrypt (migration, key rotation).
   * @default {undefined}
   */
  fallback?: EncryptionTargetConfig;
}

/** The `state` target. */
export interface StateEncryptionConfig extends EncryptionTargetConfig {
  /**
   * Refuse to read or write an unencrypted state (no `unencrypted` method allowed).
   * @default {false}
   */
  enforced?: boolean;
}

/**
 * OpenTofu's `encryption` block as an object: in `gaib.yaml` under `encryption`, in
 * `GAIB_ENCRYPTION` as JSON, or passed to `withEncryption`.
 */
export interface EncryptionConfig {
  /** Key providers by type, then name. */
  key_provider?: {
    pbkdf2?: Record<string, Pbkdf2KeyProviderConfig>;
    external?: Record<string, ExternalKeyProviderConfig>;
  };
  /** Methods by type, then name. */
  method?: {
    aes_gcm?: Record<string, AesGcmMethodConfig>;
    unencrypted?: Record<string, Record<string, never>>;
  };
  /** How states are encrypted; without it states are not encrypted. */
  state?: StateEncryptionConfig;
  /** OpenTofu's plan encryption: accepted so that a block can be copied, not used. */
  plan?: unknown;
  /** OpenTofu's remote state data sources: accepted, not used. */
  remote_state_data_sources?: unknown;
}

const NAME = /^[a-zA-Z_0-9-]+$/;
const NAME_MESSAGE = "names must be letters, digits, '_' or '-' (as in OpenTofu)";

/** Key provider types OpenTofu has that gaib-state does not (yet): refused by name. */
const UNSUPPORTED_PROVIDERS: Record<string, string> = {
  aws_kms: "AWS KMS",
  gcp_kms: "Google Cloud KMS",
  openbao: "OpenBao",
  azure_vault: "Azure Key Vault",
  static: "static keys",
  xor: "xor chaining",
};

function names<T>(valueRule: Rule<T>): Rule<Record<string, T>> {
  return (value, path, ctx) => {
    if (!isMapping(value)) return notMapping(value, path, ctx, "of names");
    const out: Record<string, T> = {};
    for (const key of Object.keys(value)) {
      if (!NAME.test(key)) {
        return {
          ok: false,
          issue: { path, code: "invalid_key", message: `${quote(key)}: ${NAME_MESSAGE}`, key },
        };
      }
      const checked = valueRule(value[key], [...path, key], ctx);
      if (!checked.ok) return checked;
      out[key] = checked.value;
    }
    return { ok: true, value: out };
  };
}

function listOf<T>(item: Rule<T>, expected: string, minimum = 0): Rule<T[]> {
  return (value, path, ctx) => {
    if (!Array.isArray(value)) {
      return fail(
        path,
        "invalid_type",
        `expected ${expected}, found ${describeFound(value, path, ctx)}`,
      );
    }
    if (value.length < minimum) {
      return fail(path, "too_small", `expected ${expected}, found an empty list`);
    }
    const out: T[] = [];
    for (let i = 0; i < value.length; i++) {
      const checked = item(value[i], [...path, String(i)], ctx);
      if (!checked.ok) return checked;
      out.push(checked.value);
    }
    return { ok: true, value: out };
  };
}

const reference = (kind: "key_provider" | "method"): Rule<string> =>
  string({
    expected: `a reference such as "${kind}.${kind === "method" ? "aes_gcm" : "pbkdf2"}.NAME"`,
    pattern: new RegExp(`^${kind}\\.[a-zA-Z_0-9-]+\\.[a-zA-Z_0-9-]+$`),
    patternMessage: `expected a reference of the form ${kind}.TYPE.NAME`,
  });

const variableName = string({
  pattern: /^[A-Za-z_][A-Za-z0-9_]*$/,
  patternMessage: "passphrase_env must be the NAME of an environment variable, such as " +
    "GAIB_STATE_PASSPHRASE, never the passphrase itself",
});

const pbkdf2Rule = object<Pbkdf2KeyProviderConfig>({
  passphrase: { rule: string() },
  passphrase_env: { rule: variableName, show: "plain" },
  passphrase_file: {
    rule: string({ refine: [{ test: (v) => v !== "", message: "must not be empty" }] }),
    show: "plain",
  },
  key_length: { rule: integer(1, 1024), show: "plain" },
  iterations: { rule: integer(PBKDF2_MINIMUM_ITERATIONS, 100_000_000), show: "plain" },
  salt_length: { rule: integer(1, 1024), show: "plain" },
  hash_function: {
    rule: literal(["sha256", "sha512"], "hash_function must be sha256 or sha512"),
    show: "plain",
  },
  encrypted_metadata_alias: { rule: string(), show: "plain" },
}, {
  expected: "passphrase_env, passphrase_file or passphrase, key_length, iterations, ...",
  unknownKey: (key) =>
    key === "chain"
      ? 'key_provider.pbkdf2: "chain" (a passphrase from another key provider) is not ' +
        "supported by gaib-state yet; use passphrase_env, passphrase_file or passphrase"
      : undefined,
  refine: (value, path) => {
    const given = ["passphrase", "passphrase_env", "passphrase_file"].filter((k) =>
      value[k] !== undefined
    );
    if (given.length === 1) return undefined;
    return {
      path,
      code: "custom",
      message: given.length === 0
        ? "set one of passphrase_env (the name of a variable holding the passphrase), " +
          "passphrase_file or passphrase"
        : `set only one of ${given.join(", ")}`,
    };
  },
});

const externalRule = object<ExternalKeyProviderConfig>({
  command: {
    rule: listOf(string(), "a list of strings: the program and its arguments", 1),
    required: true,
    show: "plain",
  },
  encrypted_metadata_alias: { rule: string(), show: "plain" },
}, { expected: "command" });

const aesGcmRule = object<AesGcmMethodConfig>({
  keys: { rule: reference("key_provider"), required: true, show: "plain" },
  aad: { rule: listOf(integer(0, 255), "a list of bytes (whole numbers from 0 to 255)") },
}, { expected: "keys, aad" });

const unencryptedRule = object<Record<string, never>>({}, { expected: "no keys: {}" });

const keyProviderRule = object<NonNullable<EncryptionConfig["key_provider"]>>({
  pbkdf2: { rule: names(pbkdf2Rule), show: "plain" },
  external: { rule: names(externalRule), show: "plain" },
}, {
  expected: "pbkdf2, external",
  unknownKey: (key) =>
    Object.hasOwn(UNSUPPORTED_PROVIDERS, key)
      ? `the ${quote(key)} key provider (${UNSUPPORTED_PROVIDERS[key]}) is not supported by ` +
        "gaib-state yet: use pbkdf2 or external (a command that prints the key)"
      : `unknown key provider type ${quote(key)}: gaib-state supports pbkdf2 and external`,
});

const methodRule = object<NonNullable<EncryptionConfig["method"]>>({
  aes_gcm: { rule: names(aesGcmRule), show: "plain" },
  unencrypted: { rule: names(unencryptedRule), show: "plain" },
}, {
  expected: "aes_gcm, unencrypted",
  unknownKey: (key) =>
    `unknown method type ${quote(key)}: gaib-state supports aes_gcm and unencrypted`,
});

const targetRule: Rule<EncryptionTargetConfig> = (value, path, ctx) =>
  object<EncryptionTargetConfig>({
    method: { rule: reference("method"), required: true, show: "plain" },
    fallback: { rule: targetRule, show: "plain" },
  }, { expected: "method, fallback" })(value, path, ctx);

const stateRule = object<StateEncryptionConfig>({
  method: { rule: reference("method"), required: true, show: "plain" },
  fallback: { rule: targetRule, show: "plain" },
  enforced: { rule: boolean, show: "plain" },
}, { expected: "method, fallback, enforced" });

const accepted: Rule<unknown> = (value) => ({ ok: true, value });

const shapeRule = object<EncryptionConfig>({
  key_provider: { rule: keyProviderRule, show: "plain" },
  method: { rule: methodRule, show: "plain" },
  state: { rule: stateRule, show: "plain" },
  plan: { rule: accepted, show: "plain" },
  remote_state_data_sources: { rule: accepted, show: "plain" },
}, { expected: "key_provider, method, state" });

/** A reference that names nothing, or an unencrypted method under `enforced`. */
function referenceIssue(config: EncryptionConfig, path: string[]): ConfigIssue | undefined {
  const providers = config.key_provider ?? {};
  const methods = config.method ?? {};
  for (const [name, method] of Object.entries(methods.aes_gcm ?? {})) {
    const [, type, provider] = method.keys.split(".");
    const table = (providers as Record<string, Record<string, unknown> | undefined>)[type];
    if (!table || !Object.hasOwn(table, provider)) {
      return {
        path: [...path, "method", "aes_gcm", name, "keys"],
        code: "custom",
        message: `${quote(method.keys)} names no key provider: declare it under ` +
          `encryption.key_provider.${type}.${provider}`,
      };
    }
  }
  let target: EncryptionTargetConfig | undefined = config.state;
  const targetPath = [...path, "state"];
  while (target) {
    const [, type, name] = target.method.split(".");
    const table = (methods as Record<string, Record<string, unknown> | undefined>)[type];
    if (!table || !Object.hasOwn(table, name)) {
      return {
        path: [...targetPath, "method"],
        code: "custom",
        message: `${quote(target.method)} names no method: declare it under ` +
          `encryption.method.${type}.${name}`,
      };
    }
    if (config.state?.enforced && type === "unencrypted") {
      return {
        path: [...targetPath, "method"],
        code: "custom",
        message: `${quote(target.method)} is the unencrypted method, which enforced: true ` +
          "forbids (OpenTofu refuses it too): remove it or set enforced: false",
      };
    }
    target = target.fallback;
    targetPath.push("fallback");
  }
  return undefined;
}

/** The rule of the `encryption` block: its shape, then its references. */
export const encryptionRule: Rule<EncryptionConfig> = (value, path, ctx): Checked<
  EncryptionConfig
> => {
  const checked = shapeRule(value, path, ctx);
  if (!checked.ok) return checked;
  const issue = referenceIssue(checked.value, path);
  return issue ? { ok: false, issue } : checked;
};

/** One method of the chain, with its address. */
export type MethodPlan =
  | { address: string; type: "unencrypted" }
  | {
    address: string;
    type: "aes_gcm";
    aad?: Uint8Array;
    provider:
      & { address: string; metaKey: string }
      & (
        | { type: "pbkdf2"; config: Pbkdf2KeyProviderConfig }
        | { type: "external"; config: ExternalKeyProviderConfig }
      );
  };

/**
 * The methods of the state target in order: the primary method (which encrypts), then each
 * fallback (targets.go:21-71).
 *
 * @param config a checked config with a `state` target
 */
export function methodChain(config: EncryptionConfig): MethodPlan[] {
  const chain: MethodPlan[] = [];
  for (let target = config.state; target; target = target.fallback) {
    const [, type, name] = target.method.split(".");
    if (type === "unencrypted") {
      chain.push({ address: target.method, type: "unencrypted" });
      continue;
    }
    const method = config.method!.aes_gcm![name];
    const [, providerType, providerName] = method.keys.split(".");
    const providerConfig =
      (config.key_provider as Record<string, Record<string, unknown>>)[providerType][providerName];
    const alias =
      (providerConfig as { encrypted_metadata_alias?: string }).encrypted_metadata_alias;
    chain.push({
      address: target.method,
      type: "aes_gcm",
      aad: method.aad && new Uint8Array(method.aad),
      provider: {
        address: method.keys,
        // keyprovider.go:160-167: the metadata key is the address, or the alias.
        metaKey: alias !== undefined && alias !== "" ? alias : method.keys,
        ...(providerType === "pbkdf2"
          ? { type: "pbkdf2", config: providerConfig as Pbkdf2KeyProviderConfig }
          : { type: "external", config: providerConfig as ExternalKeyProviderConfig }),
      },
    });
  }
  return chain;
}
