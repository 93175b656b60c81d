import assert from "node:assert/strict";
import {
  BackendConfigError,
  BackendSchema,
  DiscordConfigSchema,
  GaibConfigSchema,
  isValidBackendConfig,
  LocalBackendSchema,
  OutputSchema,
  parseGaibConfig,
  S3BackendSchema,
  safeParseGaibConfig,
} from "../mod.ts";

function configError(text: string, file = "gaib.yaml"): BackendConfigError {
  const result = safeParseGaibConfig(text, file);
  assert.equal(result.success, false, `expected ${JSON.stringify(text.slice(0, 80))} to fail`);
  return (result as { error: BackendConfigError }).error;
}

Deno.test("parseGaibConfig reads a local backend config", () => {
  const config = parseGaibConfig('version: "1"\nbackend:\n  type: local\n  path: state\n');
  assert.deepStrictEqual(config, { version: "1", backend: { type: "local", path: "state" } });
});

Deno.test("parseGaibConfig reads S3 configs for every lock mode", () => {
  const base = 'version: "1"\nbackend:\n  type: s3\n  bucket: my-states\n  region: eu-west-1\n';
  const dynamo = parseGaibConfig(
    base + "  key: servers/${workspace}/terraform.tfstate\n" +
      "  dynamodb_table: locks\n  encrypt: true\n",
  );
  assert.equal(dynamo.backend?.type, "s3");
  const lockfile = parseGaibConfig(base + "  key: gaib/terraform.tfstate\n  use_lockfile: true\n");
  assert.deepStrictEqual((lockfile.backend as { use_lockfile: boolean }).use_lockfile, true);
  const both = parseGaibConfig(
    base + "  key: gaib/terraform.tfstate\n  use_lockfile: true\n  dynamodb_table: locks\n" +
      "  kms_key_id: alias/state\n  endpoints:\n    s3: http://127.0.0.1:9000\n" +
      "    dynamodb: http://127.0.0.1:8000\n  force_path_style: true\n",
  );
  assert.equal(
    (both.backend as { endpoints: { dynamodb: string } }).endpoints.dynamodb,
    "http://127.0.0.1:8000",
  );
});

Deno.test("parseGaibConfig accepts version: 1 written as a number", () => {
  assert.equal(parseGaibConfig("version: 1\n").version, "1");
});

Deno.test("an unknown key is an error naming the key, the file, line and column", () => {
  const error = configError('version: "1"\nbackend:\n  type: local\n  pth: x\n', "conf/gaib.yaml");
  assert.equal(error.file, "conf/gaib.yaml");
  assert.equal(error.path, "backend.pth");
  assert.match(error.message, /^conf\/gaib\.yaml:4:3: backend\.pth: unknown key "pth"/);
});

Deno.test("a wrong type is an error naming the field path", () => {
  const error = configError(
    'version: "1"\nbackend:\n  type: s3\n  bucket: bkt\n  key: k\n' +
      "  encrypt: yes please\n",
  );
  assert.equal(error.path, "backend.encrypt");
  assert.match(error.message, /gaib\.yaml:6:12: backend\.encrypt: /);
});

Deno.test("a missing required field is named", () => {
  const error = configError('version: "1"\nbackend:\n  type: s3\n  bucket: bkt\n');
  assert.equal(error.path, "backend.key");
  assert.match(error.message, /backend\.key: key is required/);
});

Deno.test("YAML syntax errors give the line and column", () => {
  const error = configError('version: "1"\nbackend:\n  type: local\n   path: [x\n');
  assert.match(error.message, /^gaib\.yaml:\d+:\d+: invalid YAML: /);
  const duplicate = configError('version: "1"\nversion: "1"\n');
  assert.match(duplicate.message, /gaib\.yaml:2:1: invalid YAML: Map keys must be unique/);
});

Deno.test("a YAML alias bomb is refused without expanding it", () => {
  let text = 'version: "1"\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
  for (let i = 1; i < 9; i++) {
    text += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]\n`;
  }
  const error = configError(text);
  assert.match(error.message, /too many aliases/);
});

Deno.test("a config file over 1 MB is refused before parsing", () => {
  const error = configError('version: "1"\n# ' + "x".repeat(10 * 1024 * 1024) + "\n");
  assert.match(error.message, /is 10\.0 MB; a gaib config is at most 1 MB/);
});

Deno.test("an empty file or a non-mapping top level is an error", () => {
  assert.match(configError("").message, /is empty/);
  assert.match(configError("- a\n- b\n").message, /top level must be a mapping/);
});

Deno.test("the bot token is never accepted inline", () => {
  const error = configError('version: "1"\ndiscord:\n  token: MTIz.abc.def\n');
  assert.match(error.message, /never write the bot token in the config; set token_env/);
  assert.ok(!error.message.includes("MTIz.abc.def"), "the token is not echoed");
  const ok = parseGaibConfig(
    'version: "1"\ndiscord:\n  token_env: GAIB_DISCORD_TOKEN\n' +
      '  guild_id: "123456789012345678"\n',
  );
  assert.equal(ok.discord?.token_env, "GAIB_DISCORD_TOKEN");
});

Deno.test("an S3 key inside the workspace prefix is refused: two workspaces would share an object", () => {
  const error = configError(
    'version: "1"\nbackend:\n  type: s3\n  bucket: bkt\n' +
      '  key: "env:/staging/terraform.tfstate"\n',
  );
  assert.equal(error.path, "backend.key");
  assert.match(error.message, /default workspace would share its object/);
  const prefixed = configError(
    'version: "1"\nbackend:\n  type: s3\n  bucket: bkt\n' +
      "  key: states/${workspace}/x\n  workspace_key_prefix: envs\n",
  );
  assert.match(prefixed.message, /workspace_key_prefix is not used/);
});

Deno.test("an S3 key with another placeholder or a leading slash is refused", () => {
  const base = 'version: "1"\nbackend:\n  type: s3\n  bucket: bkt\n';
  assert.match(configError(base + "  key: s/${env}/x\n").message, /only the placeholder/);
  assert.match(configError(base + "  key: /x\n").message, /must not start or end with "\/"/);
});

Deno.test("parseGaibConfig throws BackendConfigError; safeParseGaibConfig returns it", () => {
  assert.throws(() => parseGaibConfig("version: 2\n"), BackendConfigError);
  const result = safeParseGaibConfig('version: "1"\n');
  assert.deepStrictEqual(result, { success: true, data: { version: "1" } });
});

Deno.test("the exported schemas check each part on its own", () => {
  assert.ok(LocalBackendSchema.safeParse({ type: "local" }).success);
  assert.ok(!LocalBackendSchema.safeParse({ type: "local", extra: 1 }).success);
  assert.ok(!S3BackendSchema.safeParse({ type: "s3", bucket: "b" }).success);
  assert.ok(BackendSchema.safeParse({ type: "s3", bucket: "bkt", key: "k" }).success);
  assert.ok(!BackendSchema.safeParse({ type: "gcs" }).success);
  assert.ok(!DiscordConfigSchema.safeParse({ guild_id: "abc" }).success);
  assert.ok(OutputSchema.safeParse({ sensitive: true, value: [1] }).success);
  assert.ok(!GaibConfigSchema.safeParse({ version: "2" }).success);
  assert.equal(isValidBackendConfig({ type: "local", path: "x" }), true);
  assert.equal(isValidBackendConfig({ type: "s3", bucket: "bkt" }), false);
  assert.equal(isValidBackendConfig(null), false);
});
