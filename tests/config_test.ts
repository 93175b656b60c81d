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
import { parseDocument } from "yaml";
import { parseSimpleYaml } from "../src/_simple_yaml.ts";
import { loadConfigFast, loadConfigFull } from "../src/_config_load.ts";
import { readYamlConfig } from "../src/_config_yaml.ts";
import { CONFIG_CASES } from "./corpus/manifest.ts";

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
  assert.equal(
    error.message,
    "gaib.yaml:6:12: backend.encrypt: expected a boolean (true or false), found the string " +
      '"yes please".',
  );
});

const S3 = 'version: "1"\nbackend:\n  type: s3\n  bucket: bkt\n  key: k\n';

Deno.test("a wrong-typed value says what was expected and what was found, never 'is required'", async (t) => {
  const cases: [string, string, string][] = [
    [
      S3 + '  encrypt: "yes"\n',
      "backend.encrypt",
      "gaib.yaml:6:12: backend.encrypt: expected a boolean (true or false), found the string " +
      '"yes"; write true or false without quotes.',
    ],
    [
      S3 + "  max_retries: five\n",
      "backend.max_retries",
      "gaib.yaml:6:16: backend.max_retries: expected a whole number from 0 to 20, found the " +
      'string "five".',
    ],
    [
      S3 + "  max_retries: 99999999999999999999\n",
      "backend.max_retries",
      "gaib.yaml:6:16: backend.max_retries: expected a whole number from 0 to 20, found the " +
      "number 99999999999999999999.",
    ],
    [
      'version: "1"\nbackend:\n  type: local\n  path: 42\n',
      "backend.path",
      "gaib.yaml:4:9: backend.path: expected a string (a directory), found the number 42; " +
      'write it in quotes if you mean the text: path: "42".',
    ],
    [
      'version: "1"\ndiscord:\n  guild_id: 123456789012345678\n',
      "discord.guild_id",
      "gaib.yaml:3:13: discord.guild_id: a Discord ID must be written in quotes: YAML read " +
      "123456789012345678 as a number, which has already lost precision (it became " +
      '123456789012345680); write guild_id: "123456789012345678".',
    ],
    [
      'version: "1"\ndiscord:\n  application_id: 1234\n',
      "discord.application_id",
      "gaib.yaml:3:19: discord.application_id: a Discord ID must be written in quotes: YAML " +
      'read 1234 as a number; write application_id: "1234".',
    ],
    [
      S3 + "  region:\n",
      "backend.region",
      "gaib.yaml:6:10: backend.region: expected a string, found an empty value (null).",
    ],
    [
      'version: "1"\nbackend: local\n',
      "backend",
      "gaib.yaml:2:10: backend: expected a mapping (type: local, s3, http or pg, and its settings), found " +
      'the string "local".',
    ],
    [
      'version: "1"\noutputs:\n  admin:\n    sensitive: "no"\n',
      "outputs.admin.sensitive",
      "gaib.yaml:4:16: outputs.admin.sensitive: expected a boolean (true or false), found the " +
      'string "no"; write true or false without quotes.',
    ],
  ];
  for (const [text, path, message] of cases) {
    await t.step(message.slice(10, 80), () => {
      const error = configError(text);
      assert.equal(error.path, path);
      assert.equal(error.message, message);
      assert.ok(!error.message.includes("is required"));
    });
  }
});

Deno.test("values of fields that may hold a secret are never quoted in an error", async (t) => {
  const cases: [string, string][] = [
    [S3 + '  endpoint: "https://admin:hunter2hunter2@s3 .test"\n', "hunter2"],
    [S3 + '  endpoint: "ftp://tok3n-abcdef@s3.test"\n', "tok3n"],
    [S3 + "  endpoints:\n    s3: 42.5\n", "42.5"],
    ['version: "1"\ndiscord:\n  token_env: MTIz.abc.def\n', "MTIz"],
    ['version: "1"\noutputs:\n  bot: s3cr3t-value\n', "s3cr3t"],
  ];
  for (const [text, secret] of cases) {
    await t.step(secret, () => {
      const error = configError(text);
      assert.ok(!error.message.includes(secret), error.message);
      assert.match(
        error.message,
        /found (a string \(not shown here, in case it is a secret\)|a number)|value is not shown/,
      );
    });
  }
});

Deno.test("quoted values have control characters escaped", () => {
  const error = configError(S3 + '  region: "eu\\u001b]0;pwned\\u0007"\n');
  // deno-lint-ignore no-control-regex
  assert.ok(!/[\x00-\x1f]/.test(error.message), JSON.stringify(error.message));
  assert.match(error.message, /found the string "eu\\u001b\]0;pwned\\u0007"/);
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

/** A small deterministic random generator, so that a failure can be reproduced. */
function random(seed: number): () => number {
  // mulberry32
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Keys and values as configs are usually written... */
const KEYS = ["version", "backend", "type", "path", "bucket", "a", "a-b", "_x", "s3"];
const VALUES = [
  "x",
  '"x"',
  "'x'",
  "true",
  "false",
  "0",
  "12",
  ".gaib",
  '"1"',
  "http://127.0.0.1:9000",
  "${workspace}/x",
  "eu-west-1",
  "alias/tf-states",
  "a b",
  "x # c",
  '"a # b"',
  "'#'",
];
/** ...and the ways YAML can surprise. */
const ODD_KEYS = ["true", "Null", "__proto__", '"q"', "a b", "1", "?", "x:y", "- a", "<<"];
const ODD_VALUES = [
  "True",
  "TRUE",
  "null",
  "~",
  "007",
  "-1",
  "+1",
  "1.5",
  ".5",
  ".inf",
  ".NaN",
  "1e3",
  "0x1F",
  "0o7",
  "123456789012345678",
  "999999999999999",
  "9999999999999999",
  "yes",
  "no",
  "on",
  "'a''b'",
  '"a\\"b"',
  "a#c",
  "a: b",
  "a:",
  "a :b",
  "https://u:p@h/x",
  "env:/x",
  "a  b",
  "-x",
  "@x",
  "%x",
  "*x",
  "&x",
  "!x",
  "|",
  ">",
  "[a]",
  "{a: 1}",
  '"unterminated',
  "'x'#c",
  '"x"  # c',
  "x  ",
  "",
  "=x",
  "?x",
  "x?",
  "<<",
  "x,y",
  "x]",
  '"é"',
  "a\tb",
  '""',
  "''",
  "x # c # d",
  "a~",
  "~a",
  "- x",
];

function generated(count: number): string[] {
  const next = random(42);
  const pick = <T>(usual: readonly T[], odd: readonly T[]): T => {
    const list = next() < 0.9 ? usual : odd;
    return list[Math.floor(next() * list.length)];
  };
  const docs: string[] = [];
  for (let n = 0; n < count; n++) {
    const lines: string[] = [];
    const indents = [0];
    const length = 1 + Math.floor(next() * 7);
    for (let i = 0; i < length; i++) {
      const roll = next();
      if (next() < 0.3 && indents.length > 1) indents.pop(); // back to an enclosing mapping
      let indent = indents[indents.length - 1];
      if (next() < 0.03) indent += next() < 0.5 ? 1 : -1; // a stray indentation
      const key = pick(KEYS, ODD_KEYS);
      if (roll < 0.06) lines.push(" ".repeat(Math.max(0, indent)) + "# comment");
      else if (roll < 0.1) lines.push(next() < 0.5 ? "" : "   ");
      else if (roll < 0.35) {
        lines.push(" ".repeat(Math.max(0, indent)) + `${key}:${next() < 0.2 ? "  # c" : ""}`);
        indents.push(indent + (next() < 0.8 ? 2 : 4));
      } else {
        lines.push(" ".repeat(Math.max(0, indent)) + `${key}: ${pick(VALUES, ODD_VALUES)}`);
      }
    }
    const text = lines.join("\n") + (next() < 0.8 ? "\n" : "");
    docs.push(next() < 0.1 ? text.replaceAll("\n", "\r\n") : text);
  }
  return docs;
}

/** Every gaib.yaml of the README, and the config corpus. */
function knownConfigs(): string[] {
  const readme = Deno.readTextFileSync(new URL("../README.md", import.meta.url));
  const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
  const corpus = CONFIG_CASES.map((c) => typeof c.content === "function" ? c.content() : c.content)
    .filter((c): c is string => typeof c === "string");
  return [...blocks, ...corpus];
}

Deno.test("the fast reader reads every text it accepts exactly as the YAML parser does", () => {
  const known = knownConfigs();
  const texts = [...known, ...generated(5000)];
  let accepted = 0;
  for (const text of texts) {
    const fast = parseSimpleYaml(text);
    if (fast === null) continue;
    accepted++;
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
    assert.deepStrictEqual(
      doc.errors,
      [],
      `the fast reader accepted invalid YAML: ${JSON.stringify(text)}`,
    );
    assert.deepStrictEqual(fast, doc.toJS(), `read differently: ${JSON.stringify(text)}`);
  }
  // It has teeth: the usual configs take the fast path, and so does a good share of the rest.
  for (const text of known.filter((t) => t.startsWith('version: "1"\nbackend:\n  type: s3'))) {
    assert.notEqual(parseSimpleYaml(text), null, `not read by the fast reader: ${text}`);
  }
  assert.ok(accepted > texts.length / 10, `only ${accepted} of ${texts.length} accepted`);
});

Deno.test("a config gives the same result through the fast path and the full path", () => {
  for (const text of [...knownConfigs(), ...generated(2000)]) {
    const fast = loadConfigFast({ text, file: "gaib.yaml" });
    if (fast === null) continue;
    const full = loadConfigFull({ text, file: "gaib.yaml" }, readYamlConfig);
    assert.deepStrictEqual(fast, full, JSON.stringify(text));
  }
});
