/**
 * The package as users see it: name, version, entry points, and the full list of what each
 * entry point exports (types included, from `deno doc`). An export added or removed anywhere
 * fails here until this snapshot is updated on purpose.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as mod from "../mod.ts";
import { VERSION } from "../src/version.ts";

const ROOT = new URL("..", import.meta.url);

/** Every export of each entry point of deno.json, as `name: kind`, sorted. */
const EXPORTS: Record<string, string[]> = {
  ".": [
    "AesGcmMethodConfig: interface",
    "BackendConfig: typeAlias",
    "BackendConfigError: class",
    "BackendConfigErrorOptions: interface",
    "BackendError: class",
    "BackendFactory: class",
    "BackendSchema: variable",
    "BootstrapAction: typeAlias",
    "BootstrapOptions: interface",
    "BootstrapReport: interface",
    "BootstrapStep: interface",
    "CONFIG_FILE_NAMES: variable",
    "ConfigSchema: interface",
    "ConfigSchemaIssue: interface",
    "ConfigSchemaResult: typeAlias",
    "ConfigSource: typeAlias",
    "DEFAULT_WORKSPACE: variable",
    "DeleteStateOptions: interface",
    "DiscordConfig: interface",
    "DiscordConfigSchema: variable",
    "DoctorCheck: interface",
    "DoctorOptions: interface",
    "DoctorStatus: typeAlias",
    "ENVIRONMENT_VARIABLES: variable",
    "EncryptedBackend: class",
    "EncryptionConfig: interface",
    "EncryptionTargetConfig: interface",
    "ExternalKeyProviderConfig: interface",
    "GaibConfig: interface",
    "GaibConfigSchema: variable",
    "GaibState: interface",
    "GetStateOptions: interface",
    "HttpBackendConfig: interface",
    "InstanceAddress: interface",
    "ListVersionsOptions: interface",
    "LocalBackend: class",
    "LocalBackendConfig: interface",
    "LocalBackendOptions: interface",
    "LocalBackendSchema: variable",
    "LockDetails: interface",
    "LockInfo: interface",
    "LockInspector: interface",
    "LockOptions: interface",
    "LockResult: interface",
    "MigrateOptions: interface",
    "MigrationAction: typeAlias",
    "MigrationEntry: interface",
    "MigrationError: class",
    "MigrationProgress: interface",
    "ModuleStep: interface",
    "OutputConfig: interface",
    "OutputSchema: variable",
    "Pbkdf2KeyProviderConfig: interface",
    "PgBackendConfig: interface",
    "ResolveOptions: interface",
    "ResolvedBackendConfig: interface",
    "RollbackOptions: interface",
    "RollbackResult: interface",
    "S3BackendConfig: interface",
    "S3BackendEndpoints: interface",
    "S3BackendSchema: variable",
    "SafeParseGaibConfigResult: typeAlias",
    "SelectedWorkspace: interface",
    "SelectedWorkspaceOptions: interface",
    "SetStateOptions: interface",
    "StateBackend: interface",
    "StateEditError: class",
    "StateEditProblem: typeAlias",
    "StateEncryptionConfig: interface",
    "StateEncryptionError: class",
    "StateEnvelope: interface",
    "StateFormatError: class",
    "StateHistory: interface",
    "StateLineageError: class",
    "StateLockError: class",
    "StateOutput: interface",
    "StateResource: interface",
    "StateResourceInstance: interface",
    "StateSerialError: class",
    "StateVersion: interface",
    "StateVersionNotFoundError: class",
    "UnsupportedOperationError: class",
    "VERSION: variable",
    "WithEncryptionOptions: interface",
    "WithLockOptions: interface",
    "WorkspaceNotEmptyError: class",
    "assertValidState: function",
    "bootstrap: function",
    "createEmptyState: function",
    "describeHolder: function",
    "doctor: function",
    "formatInstanceAddress: function",
    "formatKey: function",
    "formatModuleAddress: function",
    "generateLineage: function",
    "generateLockId: function",
    "instanceKey: function",
    "isProviderAddress: function",
    "isValidBackendConfig: function",
    "isValidState: function",
    "migrateStates: function",
    "parseBackendConfig: function",
    "parseGaibConfig: function",
    "parseInstanceAddress: function",
    "parseModuleAddress: function",
    "parseState: function",
    "parseStateBytes: function",
    "readSelectedWorkspace: function",
    "resolveSelectedWorkspace: function",
    "resourceAddress: function",
    "rollbackState: function",
    "safeParseGaibConfig: function",
    "serializeState: function",
    "validateWorkspaceName: function",
    "withBackend: function",
    "withEncryption: function",
    "withLock: function",
    "writeSelectedWorkspace: function",
  ],
  "./s3": [
    "AwsSdkClient: interface",
    "ConditionalWrites: typeAlias",
    "DeleteStateOptions: interface",
    "GaibState: interface",
    "GetStateOptions: interface",
    "ListVersionsOptions: interface",
    "LockDetails: interface",
    "LockInfo: interface",
    "LockInspector: interface",
    "LockOptions: interface",
    "LockResult: interface",
    "S3Backend: class",
    "S3BackendClients: interface",
    "S3BackendConfig: interface",
    "S3BackendEndpoints: interface",
    "S3BackendOptions: interface",
    "SetStateOptions: interface",
    "StateBackend: interface",
    "StateHistory: interface",
    "StateOutput: interface",
    "StateResource: interface",
    "StateResourceInstance: interface",
    "StateVersion: interface",
  ],
  "./http": [
    "DeleteStateOptions: interface",
    "GaibState: interface",
    "GetStateOptions: interface",
    "HttpBackend: class",
    "HttpBackendConfig: interface",
    "HttpBackendOptions: interface",
    "ListVersionsOptions: interface",
    "LockInfo: interface",
    "LockOptions: interface",
    "LockResult: interface",
    "SetStateOptions: interface",
    "StateBackend: interface",
    "StateHistory: interface",
    "StateVersion: interface",
  ],
  "./pg": [
    "DeleteStateOptions: interface",
    "GaibState: interface",
    "GetStateOptions: interface",
    "ListVersionsOptions: interface",
    "LockInfo: interface",
    "LockOptions: interface",
    "LockResult: interface",
    "PgBackend: class",
    "PgBackendConfig: interface",
    "PgBackendOptions: interface",
    "SetStateOptions: interface",
    "StateBackend: interface",
    "StateHistory: interface",
    "StateOutput: interface",
    "StateResource: interface",
    "StateResourceInstance: interface",
    "StateVersion: interface",
  ],
  "./cli": [
    "main: function",
  ],
};

/** What `deno doc` says a module exports, as `name: kind`, sorted. */
async function documentedExports(path: string): Promise<string[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", path],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const doc = JSON.parse(text) as {
    nodes: Record<string, { symbols: { name: string; declarations: { kind: string }[] }[] }>;
  };
  const [module] = Object.values(doc.nodes);
  const kinds = (s: { declarations: { kind: string }[] }) =>
    [...new Set(s.declarations.map((d) => d.kind))].sort().join("/");
  return [...new Set(module.symbols.map((s) => `${s.name}: ${kinds(s)}`))].sort();
}

Deno.test("the library version matches deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  assert.equal(VERSION, config.version);
  assert.equal(config.name, "@gaib/state");
  assert.deepStrictEqual(Object.keys(config.exports).sort(), Object.keys(EXPORTS).sort());
});

Deno.test("each entry point exports exactly the listed names, types included", async (t) => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  for (const [entry, expected] of Object.entries(EXPORTS)) {
    await t.step(entry, async () => {
      const path = config.exports[entry] as string;
      const documented = await documentedExports(path);
      assert.deepStrictEqual(documented, expected, `the exports of ${entry} (${path}) changed`);
      // What exists at run time is exactly the documented values (no type-only mistakes).
      const values = expected.filter((e) => /: (class|function|variable|enum)/.test(e))
        .map((e) => e.split(":")[0]).sort();
      const runtime = Object.keys(await import(new URL(path, ROOT).href)).sort();
      assert.deepStrictEqual(runtime, values, `the run-time exports of ${entry}`);
    });
  }
});

Deno.test("every error class extends BackendError and keeps its cause", () => {
  for (
    const error of [
      "StateLockError",
      "StateLineageError",
      "StateSerialError",
      "StateFormatError",
      "BackendConfigError",
    ] as const
  ) {
    const instance = new mod[error]("x");
    assert.ok(instance instanceof mod.BackendError, `${error} extends BackendError`);
    assert.equal(instance.name, error);
  }
  const cause = new Error("root");
  assert.equal(new mod.StateFormatError("x", { cause }).cause, cause);
  const missing = new mod.StateVersionNotFoundError("x", "ws", "v1", { cause });
  assert.ok(missing instanceof mod.BackendError);
  assert.equal(missing.name, "StateVersionNotFoundError");
  assert.equal(missing.cause, cause);
});

Deno.test("the cli task runs cli.ts with exactly the compiled binary's permissions", async () => {
  const { tasks } = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const compileFlags = tasks.compile.replace(
    "deno compile $COMPILE_FLAGS --output gaib-state ",
    "",
  );
  assert.equal(tasks.cli, `deno run ${compileFlags}`);
});
