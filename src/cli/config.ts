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
import { redactUrl } from "../_url.ts";
import { printable } from "../lock.ts";
import { resolveConfig, selectedWorkspace } from "./_session.ts";

/** Where the backend type came from; each setting names its own origin. */
const SOURCES: Record<string, string> = {
  environment: "the GAIB_* environment variables",
  file: "the config file",
  default: "the default (no config file, no GAIB_BACKEND or GAIB_S3_BUCKET)",
};

/** Credential-related variables: only whether they are set is ever shown. */
const CREDENTIAL_VARIABLES = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_ROLE_ARN",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];
/** Variables whose values are not secret. */
const PLAIN_VARIABLES = ["AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"];

function flatten(value: unknown, prefix = ""): Array<[string, unknown]> {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, value]];
}

/** Fields that hold URLs: shown without their user info. */
const URL_FIELDS = new Set(["endpoint", "endpoints.s3", "endpoints.dynamodb"]);

function redactValue(key: string, value: unknown): unknown {
  if (typeof value !== "string") return value;
  return redactSecrets(URL_FIELDS.has(key) ? redactUrl(value) : value);
}

/** `config show`: the effective backend, each value's origin, secrets redacted. */
export const show = handler(async ({ out }: CommandRun, flags: GlobalFlags) => {
  const resolved = await resolveConfig(flags);
  const workspace = await selectedWorkspace(flags, resolved.stateRoot);
  const settings = flatten(resolved.config).map(([key, value]) => ({
    key,
    value: redactValue(key, value),
    origin: resolved.origins[key] ?? resolved.origins[key.split(".")[0]] ??
      (resolved.source === "file" ? resolved.file : resolved.source),
  }));
  const credentials: Record<string, string> = {};
  if (resolved.config.type === "s3") {
    for (const name of CREDENTIAL_VARIABLES) {
      if (envGet(name)) credentials[name] = "set (value hidden)";
    }
    for (const name of PLAIN_VARIABLES) {
      const value = envGet(name);
      if (value) credentials[name] = redactSecrets(value);
    }
  }
  const skipped = resolved.skipped.map((s) => ({ file: s.file, reason: redactSecrets(s.reason) }));
  const notes = resolved.notes.map(redactSecrets);
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
      credentials: resolved.config.type === "s3" ? credentials : null,
    });
  }
  const width = Math.max(...settings.map((s) => s.key.length));
  const lines = [
    `Backend:     ${resolved.config.type} (from ${SOURCES[resolved.source] ?? resolved.source})`,
    `Config file: ${resolved.file ? printable(resolved.file) : "none found"}`,
    ...skipped.map((s) => `Skipped:     ${printable(s.file)}: ${printable(s.reason)}`),
    `State root:  ${printable(resolved.stateRoot)}`,
    `Workspace:   ${workspace.name} (from ${workspace.source})`,
    "",
    "Settings:",
    ...settings.map((s) =>
      `  ${s.key.padEnd(width)} = ${printable(JSON.stringify(s.value))}  (from ${
        printable(s.origin ?? "")
      })`
    ),
  ];
  if (notes.length) lines.push("", "Notes:", ...notes.map((n) => `  ${printable(n)}`));
  if (resolved.config.type === "s3") {
    lines.push("", "AWS credentials and region (values of credentials are never shown):");
    const names = Object.keys(credentials);
    if (names.length === 0) {
      lines.push("  none in the environment (the AWS SDK's default chain applies)");
    }
    for (const name of names) lines.push(`  ${name}: ${credentials[name]}`);
  }
  out.data(lines.join("\n") + "\n");
});

/** `config validate [FILE]`: check a gaib.yaml. */
export const validate = handler(
  async ({ out }: CommandRun, flags: GlobalFlags, fileArg?: string) => {
    const file = fileArg ?? flags.config ?? await BackendFactory.findConfigFile();
    if (!file) {
      throw new CliError(
        `No config file found (looked for ${CONFIG_FILE_NAMES.join(", ")} in ${Deno.cwd()} ` +
          "and its parents). Name one: gaib-state config validate path/to/gaib.yaml",
        "NoConfigFile",
      );
    }
    // Reads and checks the whole file as every command would, ignoring the environment.
    const resolved = await BackendFactory.resolve({
      configFile: file,
      env: { get: () => undefined },
    });
    const type = resolved.config.type;
    if (out.json) return out.jsonDocument({ file, valid: true, backend: type });
    out.line(`${file} is valid (backend: ${type}).`);
  },
);
