/**
 * The hostile and malformed input corpus, with the expected outcome of every case. Each case
 * is run through the library (tests/reliability_corpus_test.ts) and, where the CLI reaches
 * it, through the CLI (tests/reliability_cli_test.ts). Big files are generated at test
 * time into a temp directory, never committed.
 *
 * @module
 */

import { PACKAGE_FIXTURES } from "./fixtures.ts";

const FIXTURES = `${PACKAGE_FIXTURES}/`;
const encoder = new TextEncoder();

/** The error classes a case may expect. */
export type ErrorName =
  | "StateFormatError"
  | "StateLineageError"
  | "StateLockError"
  | "BackendConfigError"
  | "BackendError";

/** An expected error: its class and a fragment of its message. */
export interface Expected {
  /** The error class (`error.name`). */
  error: ErrorName;
  /** A fragment the message must contain (case-insensitive). */
  message: string;
}

/** A stored state file and what reading it (and writing over it) must do. */
export interface StateCase {
  /** Case name. */
  name: string;
  /** What the case exercises. */
  about: string;
  /** Writes the file's bytes to `path`. */
  make(path: string): Promise<void>;
  /**
   * What `getState` does: an error, `"none"` (no state yet) or `"state"` (it reads).
   */
  read: Expected | "none" | "state";
  /**
   * What a write does next: when the read failed, writing a state of another lineage with a
   * higher serial; when it succeeded, writing back what was read with the serial raised.
   * `"ok"`: the write must succeed and read back. Omitted: no write is tried.
   */
  write?: Expected | "ok";
  /** Too big to run more than once per suite (the CLI suite skips it). */
  huge?: boolean;
}

/** A config file and the error resolving it must give. */
export interface ConfigCase {
  /** Case name. */
  name: string;
  /** What the case exercises. */
  about: string;
  /** The file's content (text or bytes), or a generator. */
  content: string | Uint8Array | (() => Uint8Array);
  /** The expected error. */
  expected: Expected;
}

/** A hostile workspace name or lock ID. */
export interface NameCase {
  /** Case name. */
  name: string;
  /** The value. */
  value: string;
}

function fixture(relative: string): (path: string) => Promise<void> {
  return (path) => Deno.copyFile(`${FIXTURES}${relative}`, path);
}

function bytes(data: Uint8Array | string): (path: string) => Promise<void> {
  return (path) => Deno.writeFile(path, typeof data === "string" ? encoder.encode(data) : data);
}

function join(...parts: (Uint8Array | string)[]): Uint8Array {
  const chunks = parts.map((p) => typeof p === "string" ? encoder.encode(p) : p);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function truncated(relative: string, cut: (length: number) => number) {
  return async (path: string) => {
    const data = await Deno.readFile(`${FIXTURES}${relative}`);
    await Deno.writeFile(path, data.subarray(0, cut(data.length)));
  };
}

const HEAD = '{"version":4,"terraform_version":"1.9.0","serial":7,' +
  '"lineage":"c0ffee00-0000-4000-8000-000000000001",';

function minimal(outputValue: string): string {
  return `${HEAD}"outputs":{"o":{"value":${outputValue},"type":"string"}},"resources":[]}`;
}

/** A state whose one instance has the attribute `v` (attributes may hold any JSON). */
function withAttribute(value: string): string {
  return `${HEAD}"outputs":{},"resources":[{"mode":"managed","type":"t","name":"n",` +
    `"provider":"provider[\\"registry.terraform.io/hashicorp/null\\"]",` +
    `"instances":[{"schema_version":0,"attributes":{"v":${value}}}]}]}`;
}

/** Writes a state of about `megabytes` MB in chunks (never holding it all as one string). */
async function hugeState(path: string, megabytes: number, tail: string): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    await file.write(encoder.encode(`${HEAD}"outputs":{},"resources":[`));
    const topic = "t".repeat(900);
    let written = 0;
    for (let r = 0; written < megabytes * 1024 * 1024; r++) {
      const instances = [];
      for (let i = 0; i < 100; i++) {
        instances.push(
          `{"index_key":${i},"schema_version":0,"attributes":{"id":"${r}-${i}","topic":"${topic}"}}`,
        );
      }
      const chunk = encoder.encode(
        `${r ? "," : ""}{"mode":"managed","type":"discord_text_channel","name":"c${r}",` +
          `"provider":"provider[\\"registry.terraform.io/gaib/discord\\"]",` +
          `"instances":[${instances.join(",")}]}`,
      );
      await file.write(chunk);
      written += chunk.length;
    }
    await file.write(encoder.encode(tail));
  } finally {
    file.close();
  }
}

function nested(depth: number, open: string, close: string): string {
  return open.repeat(depth) + "1" + close.repeat(depth);
}

const NOT_JSON: Expected = { error: "StateFormatError", message: "not valid JSON" };
const NOT_UTF8: Expected = { error: "StateFormatError", message: "not UTF-8" };
const FOREIGN: Expected = { error: "StateLineageError", message: "lineage" };
const UNREADABLE_WRITE = (message: string): Expected => ({ error: "StateFormatError", message });
const REALWORLD = "realworld/rw-tf-1.11-crypto-eks-large.tfstate";

/** Stored state files. */
export const STATE_CASES: StateCase[] = [
  // Every file of the shared corpus's invalid/ directory.
  {
    name: "invalid-bad-provider-address",
    about: "provider address that is neither FQN nor legacy",
    make: fixture("invalid/invalid-bad-provider-address.tfstate"),
    read: { error: "StateFormatError", message: "invalid provider address" },
    write: FOREIGN,
  },
  {
    name: "invalid-deposed-key-length",
    about: "deposed key of 3 characters",
    make: fixture("invalid/invalid-deposed-key-length.tfstate"),
    read: { error: "StateFormatError", message: 'deposed key "abc"' },
    write: FOREIGN,
  },
  {
    name: "invalid-duplicate-instance",
    about: "the same instance twice",
    make: fixture("invalid/invalid-duplicate-instance.tfstate"),
    read: { error: "StateFormatError", message: "appears multiple times" },
    write: FOREIGN,
  },
  {
    name: "invalid-missing-provider",
    about: "no provider on the resource nor its instances",
    make: fixture("invalid/invalid-missing-provider.tfstate"),
    read: { error: "StateFormatError", message: "missing a provider address" },
    write: FOREIGN,
  },
  {
    name: "invalid-missing-version",
    about: "no version attribute",
    make: fixture("invalid/invalid-missing-version.tfstate"),
    read: { error: "StateFormatError", message: 'no "version" attribute' },
    write: UNREADABLE_WRITE('no "version" attribute'),
  },
  {
    name: "invalid-serial-negative",
    about: "serial -3",
    make: fixture("invalid/invalid-serial-negative.tfstate"),
    read: { error: "StateFormatError", message: '"serial" must be a whole number' },
    // The header read before a write refuses what the full read refuses.
    write: UNREADABLE_WRITE('"serial" must be a whole number'),
  },
  {
    name: "invalid-terraform-version-string",
    about: 'terraform_version "not-a-version"',
    make: fixture("invalid/invalid-terraform-version-string.tfstate"),
    read: { error: "StateFormatError", message: "not a valid version string" },
    write: FOREIGN,
  },
  {
    name: "invalid-truncated",
    about: "JSON cut in half",
    make: fixture("invalid/invalid-truncated.tfstate"),
    read: NOT_JSON,
    write: FOREIGN,
  },
  {
    name: "invalid-version-0",
    about: "format version 0",
    make: fixture("invalid/invalid-version-0.tfstate"),
    read: { error: "StateFormatError", message: "version number of zero" },
    write: UNREADABLE_WRITE("version number of zero"),
  },
  {
    name: "invalid-version-5-future",
    about: "format version 5",
    make: fixture("invalid/invalid-version-5-future.tfstate"),
    read: { error: "StateFormatError", message: "format version 5" },
    write: UNREADABLE_WRITE("format version 5"),
  },
  {
    name: "invalid-version-string",
    about: 'version "4" as a string',
    make: fixture("invalid/invalid-version-string.tfstate"),
    read: { error: "StateFormatError", message: "version in the state is string" },
    write: UNREADABLE_WRITE("version in the state is string"),
  },
  {
    name: "rw-encrypted-opentofu-home-ops-a",
    about: "real OpenTofu encryption envelope",
    make: fixture("invalid/rw-encrypted-opentofu-home-ops-a.tfstate"),
    read: { error: "StateFormatError", message: "encrypted" },
    write: UNREADABLE_WRITE("encrypted"),
  },
  {
    name: "rw-invalid-age-encrypted",
    about: "age armor instead of JSON",
    make: fixture("invalid/rw-invalid-age-encrypted.tfstate"),
    read: NOT_JSON,
    write: UNREADABLE_WRITE("not valid JSON"),
  },
  {
    name: "tofu-corrupt-not-json",
    about: 'the text "invalid"',
    make: fixture("invalid/tofu-corrupt-not-json.tfstate"),
    read: NOT_JSON,
    write: UNREADABLE_WRITE("not valid JSON"),
  },
  {
    name: "tofu-empty-file",
    about: "0 bytes: no state yet, not an error",
    make: fixture("invalid/tofu-empty-file.tfstate"),
    read: "none",
  },
  {
    name: "tofu-fake-encrypted",
    about: "encryption envelope with a fake payload",
    make: fixture("invalid/tofu-fake-encrypted.tfstate"),
    read: { error: "StateFormatError", message: "encrypted" },
    write: UNREADABLE_WRITE("encrypted"),
  },
  // Legacy formats: refused with the upgrade hint (the library's policy).
  {
    name: "legacy-v1",
    about: "format v1",
    make: fixture("legacy/tofu-hist-v1-state-filter-complete.tfstate"),
    read: { error: "StateFormatError", message: "legacy format version 1" },
    write: UNREADABLE_WRITE("legacy format version 1"),
  },
  {
    name: "legacy-v3",
    about: "format v3",
    make: fixture("legacy/rw-v3-tf-0.12-terraformer-cloudflare.tfstate"),
    read: { error: "StateFormatError", message: "legacy format version 3" },
    write: UNREADABLE_WRITE("legacy format version 3"),
  },
  // Truncated at several points.
  ...[
    ["1-byte", (_n: number) => 1],
    ["10-percent", (n: number) => Math.floor(n / 10)],
    ["half", (n: number) => Math.floor(n / 2)],
    ["90-percent", (n: number) => Math.floor(n * 0.9)],
    ["last-brace", (n: number) => n - 2],
  ].map(([label, cut]): StateCase => ({
    name: `truncated-${label}`,
    about: `a 158 KB real-world state cut at ${label}`,
    make: truncated(REALWORLD, cut as (n: number) => number),
    read: NOT_JSON,
    write: label === "1-byte" ? UNREADABLE_WRITE("not valid JSON") : FOREIGN,
  })),
  // Not an object.
  {
    name: "json-array",
    about: "a JSON array",
    make: bytes("[]"),
    read: { error: "StateFormatError", message: "expected a JSON object, found array" },
    write: UNREADABLE_WRITE("expected a JSON object"),
  },
  {
    name: "json-null",
    about: "the JSON null",
    make: bytes("null"),
    read: { error: "StateFormatError", message: "expected a JSON object, found null" },
    write: UNREADABLE_WRITE("expected a JSON object"),
  },
  {
    name: "json-string",
    about: "a JSON string",
    make: bytes('"terraform"'),
    read: { error: "StateFormatError", message: "expected a JSON object, found string" },
    write: UNREADABLE_WRITE("expected a JSON object"),
  },
  {
    name: "nul-bytes",
    about: "NUL bytes between JSON tokens",
    make: bytes(`{"version":4,\0\0"serial":1}`),
    read: NOT_JSON,
    write: UNREADABLE_WRITE("not valid JSON"),
  },
  {
    name: "proto-key",
    about: 'a top-level "__proto__" member must not touch any prototype',
    make: bytes(`${HEAD}"__proto__":{"polluted":true},"resources":[]}`),
    read: "state",
  },
  // Non-UTF-8.
  {
    name: "latin1-value",
    about: "a Latin-1 byte (0xE9) inside a string",
    make: bytes(join(minimal('"caf'), new Uint8Array([0xe9]), '"').subarray(0)),
    read: NOT_UTF8,
    write: FOREIGN,
  },
  {
    name: "utf16le-bom",
    about: "a valid state encoded as UTF-16LE with a BOM",
    make: bytes(utf16le(minimal('"x"'))),
    read: NOT_UTF8,
    write: UNREADABLE_WRITE("not UTF-8"),
  },
  {
    name: "overlong-slash",
    about: "the overlong encoding C0 AF of '/'",
    make: bytes(join(minimal('"a'), new Uint8Array([0xc0, 0xaf]), '"')),
    read: NOT_UTF8,
    write: FOREIGN,
  },
  {
    name: "encoded-surrogate",
    about: "a UTF-16 surrogate encoded in UTF-8 (ED A0 80)",
    make: bytes(join(minimal('"a'), new Uint8Array([0xed, 0xa0, 0x80]), '"')),
    read: NOT_UTF8,
    write: FOREIGN,
  },
  {
    name: "utf8-bom",
    about: "a valid state behind a UTF-8 BOM reads",
    make: bytes(join(new Uint8Array([0xef, 0xbb, 0xbf]), minimal('"x"'))),
    read: "state",
    write: "ok",
  },
  // Deeply nested.
  {
    name: "deep-arrays-100k",
    about: "an attribute nested 100,000 arrays deep: it reads, but cannot be written back",
    make: bytes(withAttribute(nested(100_000, "[", "]"))),
    read: "state",
    write: UNREADABLE_WRITE("nested too deeply"),
  },
  {
    name: "deep-objects-100k",
    about: "an attribute nested 100,000 objects deep: it reads, but cannot be written back",
    make: bytes(withAttribute(nested(100_000, '{"a":', "}"))),
    read: "state",
    write: UNREADABLE_WRITE("nested too deeply"),
  },
  {
    name: "deep-arrays-with-big-number",
    about: "nested 20,000 deep next to a number beyond 2^53 (the lossless parse path)",
    make: bytes(withAttribute(`[12345678901234567890123,${nested(20_000, "[", "]")}]`)),
    read: { error: "StateFormatError", message: "nested too deeply" },
    write: FOREIGN,
  },
  {
    name: "nested-500",
    about: "nesting 500 deep is fine and round-trips",
    make: bytes(withAttribute(nested(500, "[", "]"))),
    read: "state",
    write: "ok",
  },
  // Huge (over 100 MB), generated at test time.
  {
    name: "huge-valid-110mb",
    about: "a valid 110 MB state reads",
    make: (path) => hugeState(path, 110, "]}\n"),
    read: "state",
    huge: true,
  },
  {
    name: "huge-truncated-110mb",
    about: "a 110 MB state cut short at its end",
    make: (path) => hugeState(path, 110, ""),
    read: NOT_JSON,
    write: FOREIGN,
    huge: true,
  },
  {
    name: "huge-binary-110mb",
    about: "110 MB of random bytes",
    make: async (path) => {
      const file = await Deno.open(path, { write: true, create: true, truncate: true });
      try {
        const chunk = new Uint8Array(1024 * 1024);
        for (let i = 0; i < 110; i++) {
          for (let j = 0; j < chunk.length; j += 65536) {
            crypto.getRandomValues(chunk.subarray(j, j + 65536));
          }
          await file.write(chunk);
        }
      } finally {
        file.close();
      }
    },
    read: NOT_UTF8,
    write: UNREADABLE_WRITE("not UTF-8"),
    huge: true,
  },
];

function utf16le(text: string): Uint8Array {
  const out = new Uint8Array(2 + text.length * 2);
  out[0] = 0xff;
  out[1] = 0xfe;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    out[2 + i * 2] = code & 0xff;
    out[3 + i * 2] = code >> 8;
  }
  return out;
}

const S3 = 'version: "1"\nbackend:\n  type: s3\n  bucket: gaib-states\n  region: us-east-1\n';
const CONFIG: ErrorName = "BackendConfigError";

/** Config files (`gaib.yaml`). */
export const CONFIG_CASES: ConfigCase[] = [
  {
    name: "yaml-unclosed-flow",
    about: "a flow mapping that never closes",
    content: 'version: "1"\nbackend: {type: local, path: x\n',
    expected: { error: CONFIG, message: "invalid YAML" },
  },
  {
    name: "yaml-tab-indent",
    about: "tabs as indentation",
    content: 'version: "1"\nbackend:\n\ttype: local\n',
    expected: { error: CONFIG, message: "invalid YAML" },
  },
  {
    name: "yaml-duplicate-key",
    about: "the same key twice",
    content: 'version: "1"\nbackend:\n  type: local\n  type: s3\n',
    expected: { error: CONFIG, message: "invalid YAML" },
  },
  {
    name: "yaml-top-level-list",
    about: "a list instead of a mapping",
    content: "- version\n- backend\n",
    expected: { error: CONFIG, message: "top level must be a mapping" },
  },
  {
    name: "yaml-empty",
    about: "an empty file",
    content: "",
    expected: { error: CONFIG, message: "is empty" },
  },
  {
    name: "yaml-nul",
    about: "a NUL byte in the local path",
    content: 'version: "1"\nbackend:\n  type: local\n  path: "a\0b"\n',
    expected: { error: CONFIG, message: "must not contain a NUL character" },
  },
  {
    name: "non-utf8",
    about: "a Latin-1 byte in a path (must not be silently replaced by U+FFFD)",
    content: join(
      'version: "1"\nbackend:\n  type: local\n  path: caf',
      new Uint8Array([0xe9]),
      "\n",
    ),
    expected: { error: CONFIG, message: "not UTF-8" },
  },
  {
    name: "wrong-version",
    about: 'version "2"',
    content: 'version: "2"\n',
    expected: { error: CONFIG, message: 'version must be "1"' },
  },
  {
    name: "wrong-type-backend",
    about: "backend as a string",
    content: 'version: "1"\nbackend: local\n',
    expected: { error: CONFIG, message: "backend" },
  },
  {
    name: "wrong-type-path",
    about: "a number as the local path",
    content: 'version: "1"\nbackend:\n  type: local\n  path: 42\n',
    expected: { error: CONFIG, message: "backend.path" },
  },
  {
    name: "empty-path",
    about: "an empty local path",
    content: 'version: "1"\nbackend:\n  type: local\n  path: ""\n',
    expected: { error: CONFIG, message: "path must not be empty" },
  },
  {
    name: "wrong-type-encrypt",
    about: 'encrypt: "yes" (a string)',
    content: `${S3}  key: terraform.tfstate\n  encrypt: "yes"\n`,
    expected: { error: CONFIG, message: "backend.encrypt" },
  },
  {
    name: "wrong-type-max-retries",
    about: "max_retries out of range",
    content: `${S3}  key: terraform.tfstate\n  max_retries: 1000\n`,
    expected: { error: CONFIG, message: "backend.max_retries" },
  },
  {
    name: "unknown-backend-type",
    about: "type ftp",
    content: 'version: "1"\nbackend:\n  type: ftp\n',
    expected: { error: CONFIG, message: 'type must be "local", "s3"' },
  },
  {
    name: "unknown-top-key",
    about: "a misspelt top-level key",
    content: 'version: "1"\nbakend:\n  type: local\n',
    expected: { error: CONFIG, message: 'unknown key "bakend"' },
  },
  {
    name: "unknown-backend-key",
    about: "a misspelt backend key",
    content: `${S3}  key: terraform.tfstate\n  bukcet: other\n`,
    expected: { error: CONFIG, message: 'unknown key "bukcet"' },
  },
  {
    name: "discord-token-inline",
    about: "a bot token written in the config",
    content: 'version: "1"\ndiscord:\n  token: "abc.def.ghi"\n',
    expected: { error: CONFIG, message: "never write the bot token" },
  },
  {
    name: "s3-missing-bucket",
    about: "an S3 backend without bucket",
    content: 'version: "1"\nbackend:\n  type: s3\n  key: terraform.tfstate\n',
    expected: { error: CONFIG, message: "bucket is required" },
  },
  {
    name: "s3-bucket-traversal",
    about: 'bucket "../etc"',
    content: 'version: "1"\nbackend:\n  type: s3\n  bucket: "../etc"\n  key: a\n',
    expected: { error: CONFIG, message: "bucket must be an S3 bucket name" },
  },
  {
    name: "s3-endpoint-file-url",
    about: "a file:// endpoint",
    content: `${S3}  key: terraform.tfstate\n  endpoint: "file:///etc/passwd"\n`,
    expected: { error: CONFIG, message: "must be an http" },
  },
  {
    name: "key-inside-default-prefix",
    about: "a key without ${workspace} inside env:/, so default and a workspace share an object",
    content: `${S3}  key: "env:/prod/terraform.tfstate"\n`,
    expected: { error: CONFIG, message: "lies inside the workspace prefix" },
  },
  {
    name: "key-inside-custom-prefix",
    about: "a key without ${workspace} inside its own workspace_key_prefix",
    content: `${S3}  key: states/prod/terraform.tfstate\n  workspace_key_prefix: states\n`,
    expected: { error: CONFIG, message: "lies inside the workspace prefix" },
  },
  {
    name: "key-unknown-placeholder",
    about: "a placeholder other than ${workspace}",
    content: `${S3}  key: "\${env}/terraform.tfstate"\n`,
    expected: { error: CONFIG, message: 'only the placeholder "${workspace}"' },
  },
  {
    name: "key-workspace-and-prefix",
    about: "${workspace} in the key and a workspace_key_prefix",
    content: `${S3}  key: "s/\${workspace}/t.tfstate"\n  workspace_key_prefix: env\n`,
    expected: { error: CONFIG, message: "workspace_key_prefix is not used" },
  },
  {
    name: "key-leading-slash",
    about: "a key starting with /",
    content: `${S3}  key: /terraform.tfstate\n`,
    expected: { error: CONFIG, message: 'must not start or end with "/"' },
  },
  {
    name: "yaml-alias-bomb",
    about: "billion laughs: 9 levels of 9 aliases",
    content: aliasBomb(),
    expected: { error: CONFIG, message: "too many aliases" },
  },
  {
    name: "yaml-10mb",
    about: "a 10 MB config",
    content: () => {
      const line = "# " + "x".repeat(1021) + "\n";
      return encoder.encode('version: "1"\n' + line.repeat(10 * 1024));
    },
    expected: { error: CONFIG, message: "at most 1 MB" },
  },
];

function aliasBomb(): string {
  const lines = ['version: "1"', 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i <= 9; i++) {
    const refs = Array.from({ length: 9 }, () => `*a${i - 1}`).join(",");
    lines.push(`a${i}: &a${i} [${refs}]`);
  }
  return lines.join("\n") + "\n";
}

/** Workspace names that every operation must refuse with BackendConfigError. */
export const BAD_WORKSPACE_NAMES: NameCase[] = [
  { name: "empty", value: "" },
  { name: "dot", value: "." },
  { name: "dot-dot", value: ".." },
  { name: "parent-traversal", value: "../x" },
  { name: "deep-traversal", value: "../../../../etc/passwd" },
  { name: "slash", value: "a/b" },
  { name: "backslash", value: "a\\b" },
  { name: "absolute", value: "/etc" },
  { name: "nul", value: "a\0b" },
  { name: "newline", value: "a\nb" },
  { name: "1000-chars", value: "w".repeat(1000) },
  { name: "unicode", value: "prödüction" },
  { name: "emoji", value: "🚀" },
  { name: "rtl-override", value: "a\u202eb" },
  { name: "space", value: "a b" },
  { name: "command-substitution", value: "$(touch pwned)" },
  { name: "backticks", value: "`id`" },
  { name: "semicolon", value: "a;rm -rf ~" },
  { name: "pipe", value: "a|b" },
  { name: "glob", value: "*" },
  { name: "percent-encoded-dots", value: "%2e%2e" },
  { name: "quote", value: "a'b\"c" },
  { name: "leading-dash", value: "-x" },
];

/** Lock IDs that match no lock: unlock and forceUnlock must refuse them. */
export const BAD_LOCK_IDS: NameCase[] = [
  { name: "empty", value: "" },
  { name: "dot-dot", value: ".." },
  { name: "parent-traversal", value: "../x" },
  { name: "slash", value: "a/b" },
  { name: "nul", value: "a\0b" },
  { name: "1000-chars", value: "f".repeat(1000) },
  { name: "unicode", value: "ïd-ünïcødé" },
  { name: "command-substitution", value: "$(touch pwned)" },
  { name: "backticks", value: "`id`" },
  { name: "semicolon", value: "x; rm -rf ~" },
  { name: "newline", value: "a\nb" },
];
