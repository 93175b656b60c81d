/**
 * `gaib-state config show | validate`.
 *
 * @module
 */

import { BackendFactory, CONFIG_FILE_NAMES } from "../factory.ts";
import { type CommandRun, type GlobalFlags, handler } from "./_context.ts";
import { CliError } from "./_errors.ts";
import { envGet } from "./_output.ts";
import { redactSecrets } from "./_redact.ts";
import { REDACTED, redactUrl } from "../_url.ts";
import { type Exposure, exposureOf } from "../_config_rules.ts";
import { descriptorOf } from "../backends/_registry.ts";
import { printable } from "../lock.ts";
import { resolveConfig, selectedWorkspace } from "./_session.ts";

/** Where the backend type came from; each setting names its own origin. */
const SOURCES: Record<string, string> = {
  environment: "the GAIB_* environment variables",
  file: "the config file",
  default: "the default (no config file, no GAIB_BACKEND or GAIB_S3_BUCKET)",
};

function flatten(value: unknown, prefix = ""): Array<[string, unknown]> {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, value]];
}

/**
 * A setting as `config show` prints it, as its backend's rule says it may be shown (see the
 * registry): a URL without its user info, a secret not at all, and credentials from the
 * environment redacted in any of them.
 *
 * @param exposure how the field may be shown
 * @param value its value
 * @returns what to print
 */
export function shownSetting(exposure: Exposure, value: unknown): unknown {
  if (exposure === "secret") return REDACTED;
  if (typeof value !== "string") return value;
  return redactSecrets(exposure === "url" ? redactUrl(value) : value);
}

/** `config show`: the effective backend, each value's origin, secrets redacted. */
export const show = handler(async ({ out }: CommandRun, flags: GlobalFlags) => {
  const resolved = await resolveConfig(flags);
  const workspace = await selectedWorkspace(flags, resolved.stateRoot);
  // The config is checked, so its type is registered.
  const descriptor = descriptorOf(resolved.config.type)!;
  const settings = flatten(resolved.config).map(([key, value]) => ({
    key,
    value: shownSetting(exposureOf(descriptor.rule, key), value),
    origin: resolved.origins[key] ?? resolved.origins[key.split(".")[0]] ??
      (resolved.source === "file" ? resolved.file : resolved.source),
  }));
  const sdk = descriptor.sdkVariables;
  const credentials: Record<string, string> = {};
  for (const name of sdk?.hidden ?? []) {
    if (envGet(name)) credentials[name] = "set (value hidden)";
  }
  for (const name of sdk?.shown ?? []) {
    const value = envGet(name);
    if (value) credentials[name] = redactSecrets(value);
  }
  const skipped = resolved.skipped.map((s) => ({ file: s.file, reason: redactSecrets(s.reason) }));
  const notes = resolved.notes.map(redactSecrets);
  // Every field of the encryption block is a name, a number or a reference, except a
  // passphrase written in it, which is never shown.
  const encryption = resolved.encryption === undefined
    ? null
    : flatten(resolved.encryption).map(([key, value]) => ({
      key,
      value: shownSetting(/(^|\.)passphrase$/.test(key) ? "secret" : "plain", value),
    }));
  const encryptionFrom = resolved.encryptionSource === "environment"
    ? "GAIB_ENCRYPTION"
    : resolved.file;
  if (out.json) {
    return out.jsonDocument({
      backend: {
        type: resolved.config.type,
        source: resolved.source,
        file: resolved.file ?? null,
        stateRoot: resolved.stateRoot,
        settings: Object.fromEntries(
          settings.map((s) => [s.key, { value: s.value, origin: s.origin }]),
        ),
        skipped,
        notes,
      },
      workspace: { name: workspace.name, source: workspace.source },
      credentials: sdk ? credentials : null,
      ...(encryption
        ? {
          encryption: {
            source: encryptionFrom ?? null,
            settings: Object.fromEntries(encryption.map((s) => [s.key, s.value])),
          },
        }
        : {}),
    });
  }
  const width = Math.max(...settings.map((s) => s.key.length));
  const lines = [
    `Backend:     ${resolved.config.type} (from ${SOURCES[resolved.source] ?? resolved.source})`,
    `Config file: ${resolved.file ? printable(resolved.file) : "none found"}`,
    ...skipped.map((s) => `Skipped:     ${printable(s.file)}: ${printable(s.reason)}`),
    `State root:  ${printable(resolved.stateRoot)}`,
    `Workspace:   ${printable(workspace.name)} (from ${workspace.source})`,
    "",
    "Settings:",
    ...settings.map((s) =>
      `  ${s.key.padEnd(width)} = ${printable(JSON.stringify(s.value))}  (from ${
        printable(s.origin ?? "")
      })`
    ),
  ];
  if (encryption) {
    lines.push("", `State encryption (from ${printable(encryptionFrom ?? "")}):`);
    for (const s of encryption) lines.push(`  ${s.key} = ${printable(JSON.stringify(s.value))}`);
  }
  if (notes.length) lines.push("", "Notes:", ...notes.map((n) => `  ${printable(n)}`));
  if (sdk) {
    lines.push("", sdk.heading);
    const names = Object.keys(credentials);
    if (names.length === 0) lines.push(`  ${sdk.none}`);
    for (const name of names) lines.push(`  ${name}: ${printable(credentials[name])}`);
  }
  out.data(lines.join("\n") + "\n");
});

/** `config validate [FILE]`: check a gaib.yaml. */
export const validate = handler(
  async ({ out }: CommandRun, flags: GlobalFlags, fileArg?: string) => {
    const named = fileArg ?? flags.config;
    const file = named ?? await BackendFactory.findConfigFile();
    if (!file) {
      throw new CliError(
        `No config file found (looked for ${CONFIG_FILE_NAMES.join(", ")} in ${Deno.cwd()} ` +
          "and its parents). Name one: gaib-state config validate path/to/gaib.yaml",
        "NoConfigFile",
      );
    }
    // Reads and checks the whole file as every command would, ignoring the environment: a file
    // that was found (not named) is found again, so its owner is checked on the file it opens.
    const resolved = await BackendFactory.resolve({
      configFile: named,
      env: { get: () => undefined },
    });
    const type = resolved.config.type;
    if (out.json) return out.jsonDocument({ file, valid: true, backend: type });
    out.line(`${file} is valid (backend: ${type}).`);
  },
);
