/**
 * State encryption (issue 12): OpenTofu's own pbkdf2 test vectors, the real OpenTofu envelopes
 * of the shared corpus, and every rule of `withEncryption` on the local backend (the S3 runs
 * are in `encryption_s3_test.ts`, the whole backend contract in `encryption_contract_test.ts`,
 * the Python cross-check in `encryption_interop_test.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  BackendConfigError,
  StateFormatError,
  StateLineageError,
  StateLockError,
  StateSerialError,
} from "../src/errors.ts";
import { createEmptyState, serializeState } from "../src/state.ts";
import type { GaibState } from "../src/types.ts";
import { LocalBackend } from "../src/backends/local.ts";
import { type EncryptionConfig, StateEncryptionError, withEncryption } from "../src/encryption.ts";
import { ENVELOPE_DOCUMENTS, STATE_DOCUMENTS } from "../src/_stored_document.ts";
import { pbkdf2Bytes } from "../src/_encryption_pbkdf2.ts";
import { fromBase64 } from "../src/_encryption_envelope.ts";
import { tempDir } from "./_temp.ts";

const CORPUS = new URL("../../shared/fixtures/tfstate/invalid/", import.meta.url).pathname;
const EXTERNAL = new URL("./testdata/external_key_provider.py", import.meta.url).pathname;
const PASSPHRASE = "correct-horse-battery-staple";

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

/** A config with one pbkdf2 key (200,000 iterations, OpenTofu's minimum, to keep tests quick). */
function config(overrides: {
  passphrase?: string;
  name?: string;
  fallback?: EncryptionConfig["state"];
  aad?: number[];
  hash?: "sha256" | "sha512";
  keyLength?: number;
} = {}): EncryptionConfig {
  const name = overrides.name ?? "mykey";
  return {
    key_provider: {
      pbkdf2: {
        [name]: {
          passphrase: overrides.passphrase ?? PASSPHRASE,
          iterations: 200_000,
          hash_function: overrides.hash,
          key_length: overrides.keyLength,
        },
      },
    },
    method: {
      aes_gcm: { secure: { keys: `key_provider.pbkdf2.${name}`, aad: overrides.aad } },
      unencrypted: { migrate: {} },
    },
    state: { method: "method.aes_gcm.secure", fallback: overrides.fallback },
  };
}

function stateWith(serial: number, lineage = "5f0c1d2e-aaaa-bbbb-cccc-000000000001"): GaibState {
  return {
    ...createEmptyState(),
    serial,
    lineage,
    outputs: { bot_token: { value: "xoxb-SECRET-TOKEN", type: "string", sensitive: true } },
  };
}

async function fileTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (path: string) => {
    for await (const entry of Deno.readDir(path)) {
      const full = `${path}/${entry.name}`;
      if (entry.isDirectory) await walk(full);
      else if (entry.name !== ".guard") out[full] = hex(await Deno.readFile(full));
    }
  };
  await walk(dir);
  return out;
}

Deno.test("pbkdf2 reproduces OpenTofu's Example_decrypt test vector", async () => {
  // internal/encryption/keyprovider/pbkdf2/example_decrypt_test.go:17-61
  const salt = new Uint8Array([
    0x10,
    0xec,
    0x3d,
    0x3f,
    0xe0,
    0x2a,
    0xd2,
    0xbe,
    0xe6,
    0xf1,
    0xf5,
    0x54,
    0xf,
    0x8e,
    0x6b,
    0xbe,
    0x3b,
    0x8b,
    0x29,
    0x44,
    0x5c,
    0xf5,
    0x2,
    0xd2,
    0x7d,
    0x47,
    0xad,
    0x55,
    0x4a,
    0xa8,
    0x97,
    0x1f,
  ]);
  const key = await pbkdf2Bytes(new TextEncoder().encode(PASSPHRASE), salt, 600000, "sha512", 32);
  assert.equal(hex(key), "225872367198760137e0a18580433447bbf578fbe2b87ff36aef3c175fe5709c");
});

Deno.test("pbkdf2 gives OpenTofu's TestKeyLength 128-byte key with sha256", async () => {
  // internal/encryption/keyprovider/pbkdf2/provider_test.go:79-97
  const key = await pbkdf2Bytes(
    new TextEncoder().encode("Hello world!"),
    new TextEncoder().encode("TestKeyLength"),
    200000,
    "sha256",
    128,
  );
  assert.equal(key.length, 128);
});

Deno.test("the real OpenTofu envelope of the corpus is read as an envelope", async () => {
  const bytes = await Deno.readFile(`${CORPUS}rw-encrypted-opentofu-home-ops-a.tfstate`);
  const doc = ENVELOPE_DOCUMENTS.parse(bytes, "corpus") as unknown as Record<string, unknown>;
  assert.equal(doc.serial, 64);
  assert.equal(doc.lineage, "e98abb99-e2a0-9101-2a49-114f24e08477");
  assert.equal(doc.encryption_version, "v0");
  const meta = doc.meta as Record<string, string>;
  assert.deepEqual(Object.keys(meta), ["key_provider.pbkdf2.tofu_state_password"]);
  const pbkdf2 = JSON.parse(
    new TextDecoder().decode(fromBase64(meta["key_provider.pbkdf2.tofu_state_password"])!),
  );
  assert.equal(fromBase64(pbkdf2.salt)!.length, 32);
  assert.deepEqual(
    { iterations: pbkdf2.iterations, hash: pbkdf2.hash_function, length: pbkdf2.key_length },
    { iterations: 600000, hash: "sha512", length: 32 },
  );
  // Its clear identity is read from the first bytes, as every write check needs.
  assert.deepEqual(ENVELOPE_DOCUMENTS.identity(bytes.subarray(0, 4096)), {
    serial: 64,
    lineage: "e98abb99-e2a0-9101-2a49-114f24e08477",
  });
  // Without configuration it is still refused, with how to configure the key.
  assert.throws(
    () => STATE_DOCUMENTS.parse(bytes, "state"),
    (e: Error) => e instanceof StateFormatError && /encryption block/.test(e.message),
  );
});

Deno.test("a wrong passphrase on the real OpenTofu envelope is an authentication error", async () => {
  await using dir = await tempDir();
  const ws = `${dir.path}/workspaces/default`;
  await Deno.mkdir(ws, { recursive: true });
  await Deno.copyFile(
    `${CORPUS}rw-encrypted-opentofu-home-ops-a.tfstate`,
    `${ws}/terraform.tfstate`,
  );
  const wrong = "not-the-passphrase-of-home-ops";
  const backend = withEncryption(new LocalBackend({ path: dir.path }), {
    key_provider: { pbkdf2: { tofu_state_password: { passphrase: wrong } } },
    method: { aes_gcm: { m: { keys: "key_provider.pbkdf2.tofu_state_password" } } },
    state: { method: "method.aes_gcm.m" },
  });
  await assert.rejects(() => backend.getState("default"), (e: Error) => {
    assert.ok(e instanceof StateEncryptionError, e.message);
    assert.equal(e.reason, "authentication");
    assert.match(e.message, /authentication failed/);
    assert.ok(!e.message.includes(wrong));
    return true;
  });
  await backend.close();
});

Deno.test("OpenTofu's fake (alpha, serial-less) envelope is refused as a damaged envelope", async () => {
  // internal/command/testdata/init-encryption-with-state: no serial, meta values that are
  // objects. OpenTofu refuses it too (base.go:156-172: not a payload, and not a state).
  await using dir = await tempDir();
  const ws = `${dir.path}/workspaces/default`;
  await Deno.mkdir(ws, { recursive: true });
  await Deno.copyFile(`${CORPUS}tofu-fake-encrypted.tfstate`, `${ws}/terraform.tfstate`);
  const backend = withEncryption(new LocalBackend({ path: dir.path }), config({ name: "main" }));
  await assert.rejects(() => backend.getState("default"), (e: Error) => {
    assert.ok(e instanceof StateFormatError, e.message);
    assert.match(e.message, /OpenTofu encrypted state .* "serial" is missing/);
    return true;
  });
  await backend.close();
});

Deno.test("withEncryption writes OpenTofu's envelope and reads the state back", async () => {
  await using dir = await tempDir();
  const backend = withEncryption(new LocalBackend({ path: dir.path }), config());
  const state = stateWith(1);
  await backend.setState("default", state);
  const stored = await Deno.readTextFile(`${dir.path}/workspaces/default/terraform.tfstate`);
  assert.match(
    stored,
    /^\{"serial":1,"lineage":"5f0c1d2e-aaaa-bbbb-cccc-000000000001","meta":\{"key_provider\.pbkdf2\.mykey":"[A-Za-z0-9+/=]+"\},"encrypted_data":"[A-Za-z0-9+/=]+","encryption_version":"v0"\}$/,
  );
  assert.ok(!stored.includes("xoxb-SECRET-TOKEN"));
  assert.deepEqual(await backend.getState("default"), state);
  const meta = JSON.parse(
    new TextDecoder().decode(fromBase64(JSON.parse(stored).meta["key_provider.pbkdf2.mykey"])!),
  );
  assert.deepEqual(Object.keys(meta), ["salt", "iterations", "hash_function", "key_length"]);
  assert.equal(meta.hash_function, "sha512");
  await backend.close();
});

/** The PBKDF2 derivation requests Web Crypto gets from here on (the library keeps no counter). */
function watchDerivations(): { readonly value: number } & Disposable {
  const subtle = crypto.subtle;
  const original = subtle.deriveBits;
  let value = 0;
  subtle.deriveBits = function (algorithm, key, length) {
    if (typeof algorithm === "object" && algorithm.name === "PBKDF2") value++;
    return original.call(subtle, algorithm, key, length);
  };
  return {
    get value() {
      return value;
    },
    [Symbol.dispose]() {
      subtle.deriveBits = original;
    },
  };
}

Deno.test("a read and a write cost one key derivation, and the .backup is encrypted", async () => {
  await using dir = await tempDir();
  const first = withEncryption(new LocalBackend({ path: dir.path }), config({ name: "once" }));
  await first.setState("default", stateWith(1));
  await first.close();
  const backend = withEncryption(new LocalBackend({ path: dir.path }), config({ name: "once" }));
  // A new process would start from an empty cache: use another passphrase to force that here.
  using derivationCount = watchDerivations();
  const before = derivationCount.value;
  const state = await backend.getState("default");
  await backend.setState("default", { ...state!, serial: 2 });
  await backend.setState("default", { ...state!, serial: 3 });
  assert.equal(derivationCount.value - before, 0, "cached from the first write in this process");
  const fresh = withEncryption(
    new LocalBackend({ path: `${dir.path}` }),
    config({ name: "once", passphrase: "another passphrase, longer" }),
  );
  await assert.rejects(() => fresh.getState("default"), StateEncryptionError);
  const counted = derivationCount.value;
  await fresh.setState("pr-1", stateWith(1));
  await fresh.getState("pr-1");
  await fresh.setState("pr-1", stateWith(2));
  // A salt that did not authenticate is never reused: one derivation for the new salt.
  assert.equal(derivationCount.value - counted, 1);
  const backup = await Deno.readTextFile(`${dir.path}/workspaces/default/terraform.tfstate.backup`);
  assert.equal(JSON.parse(backup).encryption_version, "v0");
  assert.equal(JSON.parse(backup).serial, 2);
  assert.ok(!backup.includes("xoxb-SECRET-TOKEN"));
  await backend.close();
  await fresh.close();
});

Deno.test("one derivation for a read then a write in a fresh process", async () => {
  await using dir = await tempDir();
  const code = `
    import { LocalBackend } from "${new URL("../src/backends/local.ts", import.meta.url)}";
    import { withEncryption } from "${new URL("../src/encryption.ts", import.meta.url)}";
    let derivations = 0;
    const deriveBits = crypto.subtle.deriveBits;
    crypto.subtle.deriveBits = (algorithm, key, length) => {
      if (algorithm.name === "PBKDF2") derivations++;
      return deriveBits.call(crypto.subtle, algorithm, key, length);
    };
    const cfg = JSON.parse(Deno.args[1]);
    const b = withEncryption(new LocalBackend({ path: Deno.args[0] }), cfg);
    const s = await b.getState("default");
    await b.setState("default", { ...s, serial: s.serial + 1 });
    console.log(derivations);
    await b.close();`;
  const setup = withEncryption(new LocalBackend({ path: dir.path }), config());
  await setup.setState("default", stateWith(1));
  await setup.close();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code, dir.path, JSON.stringify(config())],
    stderr: "inherit",
  }).output();
  assert.ok(out.success);
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "1");
});

Deno.test("a wrong passphrase is refused as authentication failure, never showing the key", async () => {
  await using dir = await tempDir();
  const right = withEncryption(new LocalBackend({ path: dir.path }), config());
  await right.setState("default", stateWith(1));
  await right.close();
  const wrongPass = "the wrong passphrase, long enough";
  const wrong = withEncryption(
    new LocalBackend({ path: dir.path }),
    config({ passphrase: wrongPass }),
  );
  const before = await fileTree(dir.path);
  await assert.rejects(() => wrong.getState("default"), (e: Error) => {
    assert.ok(e instanceof StateEncryptionError);
    assert.equal(e.reason, "authentication");
    assert.ok(!e.message.includes(wrongPass) && !e.message.includes(PASSPHRASE));
    assert.match(e.message, /method\.aes_gcm\.secure \(key_provider\.pbkdf2\.mykey\)/);
    return true;
  });
  // A write over a state it cannot read is still checked by serial in clear, and refused.
  await assert.rejects(() => wrong.setState("default", stateWith(1)), StateSerialError);
  assert.deepEqual(await fileTree(dir.path), before);
  await wrong.close();
});

Deno.test("a state encrypted with a key provider that is not configured is refused", async () => {
  await using dir = await tempDir();
  const a = withEncryption(new LocalBackend({ path: dir.path }), config({ name: "alpha" }));
  await a.setState("default", stateWith(1));
  await a.close();
  const b = withEncryption(new LocalBackend({ path: dir.path }), config({ name: "beta" }));
  await assert.rejects(() => b.getState("default"), (e: Error) => {
    assert.ok(e instanceof StateEncryptionError);
    assert.equal(e.reason, "configuration");
    assert.match(e.message, /no metadata for this key provider/);
    assert.match(e.message, /key_provider\.pbkdf2\.alpha/);
    return true;
  });
  await b.close();
});

Deno.test("changing any byte of encrypted_data or meta is refused, and nothing is written", async (t) => {
  await using dir = await tempDir();
  const backend = withEncryption(new LocalBackend({ path: dir.path }), config());
  await backend.setState("default", stateWith(1));
  const path = `${dir.path}/workspaces/default/terraform.tfstate`;
  const original = await Deno.readTextFile(path);
  const envelope = JSON.parse(original);
  const data = fromBase64(envelope.encrypted_data)!;
  const metaKey = "key_provider.pbkdf2.mykey";
  const meta = fromBase64(envelope.meta[metaKey])!;
  const b64 = (bytes: Uint8Array) => (bytes as Uint8Array & { toBase64(): string }).toBase64();
  const flip = (bytes: Uint8Array, i: number) => {
    const copy = bytes.slice();
    copy[i] ^= 0x01;
    return copy;
  };
  await t.step("every byte of encrypted_data (nonce, ciphertext, tag)", async () => {
    for (let i = 0; i < data.length; i++) {
      await Deno.writeTextFile(
        path,
        JSON.stringify({ ...envelope, encrypted_data: b64(flip(data, i)) }),
      );
      await assert.rejects(() => backend.getState("default"), StateEncryptionError, `byte ${i}`);
    }
  });
  await t.step("every byte of the key provider's metadata", async () => {
    for (let i = 0; i < meta.length; i++) {
      const changed = { ...envelope, meta: { [metaKey]: b64(flip(meta, i)) } };
      await Deno.writeTextFile(path, JSON.stringify(changed));
      await assert.rejects(
        () => backend.getState("default"),
        (e: Error) => e instanceof StateEncryptionError || e instanceof StateFormatError,
        `meta byte ${i}`,
      );
    }
  });
  await t.step("the serial or lineage in clear", async () => {
    await Deno.writeTextFile(path, JSON.stringify({ ...envelope, serial: 7 }));
    await assert.rejects(() => backend.getState("default"), /envelope was changed/);
    await Deno.writeTextFile(path, JSON.stringify({ ...envelope, lineage: "other" }));
    await assert.rejects(() => backend.getState("default"), /envelope was changed/);
  });
  await t.step("a truncated file", async () => {
    for (
      const length of [1, 10, 60, original.length / 2, original.length - 30, original.length - 1]
    ) {
      await Deno.writeTextFile(path, original.slice(0, Math.floor(length)));
      const before = await fileTree(dir.path);
      await assert.rejects(
        () => backend.getState("default"),
        (e: Error) => e instanceof StateFormatError || e instanceof StateEncryptionError,
        `length ${length}`,
      );
      if (length < 60) {
        // Its identity cannot be read: a write over it is refused (force replaces it).
        await assert.rejects(() => backend.setState("default", stateWith(2)), StateFormatError);
      }
      assert.deepEqual(await fileTree(dir.path), before);
    }
  });
  await backend.close();
});

Deno.test("AAD must match: a state sealed with an AAD does not open without it", async () => {
  await using dir = await tempDir();
  const withAad = withEncryption(new LocalBackend({ path: dir.path }), config({ aad: [1, 2, 3] }));
  await withAad.setState("default", stateWith(1));
  assert.equal((await withAad.getState("default"))?.serial, 1);
  await withAad.close();
  const without = withEncryption(new LocalBackend({ path: dir.path }), config());
  await assert.rejects(() => without.getState("default"), /authentication failed/);
  await without.close();
});

Deno.test("lineage and serial rules hold on the envelope in clear", async () => {
  await using dir = await tempDir();
  const backend = withEncryption(new LocalBackend({ path: dir.path }), config());
  await backend.setState("default", stateWith(5));
  await assert.rejects(
    () => backend.setState("default", stateWith(6, "another-lineage")),
    StateLineageError,
  );
  await assert.rejects(() => backend.setState("default", stateWith(4)), StateSerialError);
  // The same serial with the same content is no change (a new envelope never has the same bytes).
  await backend.setState("default", stateWith(5));
  const other = { ...stateWith(5), outputs: {} };
  await assert.rejects(() => backend.setState("default", other), StateSerialError);
  await backend.setState("default", stateWith(4), { force: true });
  assert.equal((await backend.getState("default"))?.serial, 4);
  await backend.close();
});

Deno.test("a locked workspace refuses an encrypted write without the lock ID", async () => {
  await using dir = await tempDir();
  const backend = withEncryption(new LocalBackend({ path: dir.path }), config());
  const { lockId } = await backend.lock("default");
  await assert.rejects(() => backend.setState("default", stateWith(1)), /lock/i);
  await backend.setState("default", stateWith(1), { lockId });
  await backend.unlock("default", lockId);
  await backend.close();
});

Deno.test("fallback: an unencrypted state is read and written encrypted; without it, refused", async () => {
  await using dir = await tempDir();
  const plain = new LocalBackend({ path: dir.path });
  await plain.setState("default", stateWith(1));
  await plain.close();
  const strict = withEncryption(new LocalBackend({ path: dir.path }), config());
  await assert.rejects(() => strict.getState("default"), (e: Error) => {
    assert.ok(e instanceof StateEncryptionError && e.reason === "configuration");
    assert.match(e.message, /not encrypted/);
    assert.match(e.message, /method\.unencrypted/);
    return true;
  });
  await strict.close();
  const migrating = withEncryption(
    new LocalBackend({ path: dir.path }),
    config({ fallback: { method: "method.unencrypted.migrate" } }),
  );
  const state = await migrating.getState("default");
  assert.equal(state?.serial, 1);
  await migrating.setState("default", { ...state!, serial: 2 });
  const stored = await Deno.readTextFile(`${dir.path}/workspaces/default/terraform.tfstate`);
  assert.equal(JSON.parse(stored).encryption_version, "v0");
  await migrating.close();
});

Deno.test("key rotation: the old key as fallback decrypts, the new key encrypts", async () => {
  await using dir = await tempDir();
  const old = withEncryption(new LocalBackend({ path: dir.path }), config({ name: "old" }));
  await old.setState("default", stateWith(1));
  await old.close();
  const rotation: EncryptionConfig = {
    key_provider: {
      pbkdf2: {
        old: { passphrase: PASSPHRASE, iterations: 200_000 },
        new: { passphrase: "the new passphrase of 2026", iterations: 200_000 },
      },
    },
    method: {
      aes_gcm: {
        next: { keys: "key_provider.pbkdf2.new" },
        prev: { keys: "key_provider.pbkdf2.old" },
      },
    },
    state: { method: "method.aes_gcm.next", fallback: { method: "method.aes_gcm.prev" } },
  };
  const rotating = withEncryption(new LocalBackend({ path: dir.path }), rotation);
  const state = await rotating.getState("default");
  await rotating.setState("default", { ...state!, serial: 2 });
  const stored = JSON.parse(
    await Deno.readTextFile(`${dir.path}/workspaces/default/terraform.tfstate`),
  );
  assert.deepEqual(Object.keys(stored.meta), ["key_provider.pbkdf2.new"]);
  await rotating.close();
  const oldOnly = withEncryption(new LocalBackend({ path: dir.path }), config({ name: "old" }));
  await assert.rejects(() => oldOnly.getState("default"), StateEncryptionError);
  await oldOnly.close();
});

Deno.test("deleteState looks inside the envelope for managed resources", async () => {
  await using dir = await tempDir();
  const backend = withEncryption(new LocalBackend({ path: dir.path }), config());
  const state: GaibState = {
    ...stateWith(1),
    resources: [{
      mode: "managed",
      type: "discord_role",
      name: "admin",
      provider: 'provider["registry.terraform.io/x/discord"]',
      instances: [{ attributes: { id: "1" } }],
    }],
  };
  await backend.setState("pr-1", state);
  await assert.rejects(() => backend.deleteState("pr-1"), /still tracks 1 managed/);
  await backend.setState("pr-1", { ...state, serial: 2, resources: [] });
  await backend.deleteState("pr-1");
  assert.deepEqual(await backend.listWorkspaces(), ["default"]);
  await backend.close();
});

Deno.test("storedText encrypts a copy like the state", async () => {
  await using dir = await tempDir();
  const backend = withEncryption(new LocalBackend({ path: dir.path }), config());
  const text = await backend.storedText(stateWith(3));
  assert.equal(JSON.parse(text).serial, 3);
  assert.ok(!text.includes("xoxb-SECRET-TOKEN"));
  const doc = ENVELOPE_DOCUMENTS.parse(new TextEncoder().encode(text), "copy");
  assert.deepEqual(await backend.decrypt(doc, "default"), stateWith(3));
  await backend.close();
});

Deno.test("configuration errors name the field, and never show a passphrase", async (t) => {
  const cases: [string, unknown, RegExp][] = [
    [
      "a dangling key provider reference",
      { ...config(), method: { aes_gcm: { secure: { keys: "key_provider.pbkdf2.nope" } } } },
      /method\.aes_gcm\.secure\.keys: "key_provider\.pbkdf2\.nope" names no key provider/,
    ],
    [
      "a dangling method reference",
      { ...config(), state: { method: "method.aes_gcm.nope" } },
      /state\.method: "method\.aes_gcm\.nope" names no method/,
    ],
    [
      "a dangling fallback",
      {
        ...config(),
        state: { method: "method.aes_gcm.secure", fallback: { method: "method.unencrypted.x" } },
      },
      /state\.fallback\.method: "method\.unencrypted\.x" names no method/,
    ],
    [
      "enforced with an unencrypted fallback",
      {
        ...config(),
        state: {
          method: "method.aes_gcm.secure",
          enforced: true,
          fallback: { method: "method.unencrypted.migrate" },
        },
      },
      /enforced: true/,
    ],
    [
      "aws_kms",
      { ...config(), key_provider: { aws_kms: { k: {} } } },
      /key_provider\.aws_kms: the "aws_kms" key provider \(AWS KMS\) is not supported by gaib-state yet/,
    ],
    ["gcp_kms", { ...config(), key_provider: { gcp_kms: { k: {} } } }, /Google Cloud KMS/],
    ["openbao", { ...config(), key_provider: { openbao: { k: {} } } }, /OpenBao/],
    [
      "iterations below OpenTofu's minimum",
      {
        ...config(),
        key_provider: { pbkdf2: { mykey: { passphrase: PASSPHRASE, iterations: 1000 } } },
      },
      /key_provider\.pbkdf2\.mykey\.iterations: expected a whole number from 200000/,
    ],
    [
      "two passphrase sources",
      {
        ...config(),
        key_provider: { pbkdf2: { mykey: { passphrase: "p".repeat(20), passphrase_env: "X" } } },
      },
      /set only one of passphrase, passphrase_env/,
    ],
    [
      "an unknown hash",
      {
        ...config(),
        key_provider: { pbkdf2: { mykey: { passphrase: PASSPHRASE, hash_function: "md5" } } },
      },
      /hash_function must be sha256 or sha512/,
    ],
    ["no state target", { ...config(), state: undefined }, /state is required/],
  ];
  for (const [name, value, expected] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => withEncryption(new LocalBackend({ path: "/nonexistent" }), value as EncryptionConfig),
        (e: Error) => {
          assert.ok(e instanceof BackendConfigError, e.message);
          assert.match(e.message, expected);
          assert.ok(!e.message.includes(PASSPHRASE) && !e.message.includes("p".repeat(20)));
          return true;
        },
      );
    });
  }
  await t.step("a short passphrase, a missing variable, a missing file", async () => {
    const short = withEncryption(
      new LocalBackend({ path: "/nonexistent" }),
      config({ passphrase: "short-secret" }),
    );
    await assert.rejects(() => short.setState("default", stateWith(1)), (e: Error) => {
      assert.match(e.message, /too short: OpenTofu and gaib-state require at least 16/);
      assert.ok(!e.message.includes("short-secret"));
      return true;
    });
    const fromEnv = withEncryption(new LocalBackend({ path: "/nonexistent" }), {
      ...config(),
      key_provider: { pbkdf2: { mykey: { passphrase_env: "GAIB_TEST_NO_SUCH_PASSPHRASE" } } },
    }, { env: { get: () => undefined } });
    await assert.rejects(
      () => fromEnv.setState("default", stateWith(1)),
      /environment variable GAIB_TEST_NO_SUCH_PASSPHRASE .* is not set/,
    );
    const fromFile = withEncryption(new LocalBackend({ path: "/nonexistent" }), {
      ...config(),
      key_provider: { pbkdf2: { mykey: { passphrase_file: "no-such-file" } } },
    }, { baseDir: "/nonexistent-dir" });
    await assert.rejects(() => fromFile.setState("default", stateWith(1)), /no-such-file/);
  });
});

Deno.test("passphrase_env and passphrase_file read the passphrase", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/pass.txt`, `${PASSPHRASE}\n`);
  const fromFile = withEncryption(new LocalBackend({ path: `${dir.path}/root` }), {
    ...config(),
    key_provider: { pbkdf2: { mykey: { passphrase_file: "pass.txt", iterations: 200_000 } } },
  }, { baseDir: dir.path });
  await fromFile.setState("default", stateWith(1));
  await fromFile.close();
  const fromEnv = withEncryption(new LocalBackend({ path: `${dir.path}/root` }), {
    ...config(),
    key_provider: { pbkdf2: { mykey: { passphrase_env: "PASS", iterations: 200_000 } } },
  }, { env: { get: (name) => name === "PASS" ? PASSPHRASE : undefined } });
  assert.equal((await fromEnv.getState("default"))?.serial, 1);
  await fromEnv.close();
});

const python = await new Deno.Command("python3", { args: ["--version"] }).output().then(
  (o) => o.success,
  () => false,
);

function externalConfig(args: string[] = []): EncryptionConfig {
  return {
    key_provider: { external: { ext: { command: ["python3", EXTERNAL, ...args] } } },
    method: { aes_gcm: { m: { keys: "key_provider.external.ext" } } },
    state: { method: "method.aes_gcm.m" },
  };
}

Deno.test({
  name: "the external key provider protocol: header, null input, stored metadata, decryption key",
  ignore: !python && Deno.env.get("CI") !== "true",
  async fn() {
    await using dir = await tempDir();
    const log = `${dir.path}/runs.log`;
    const backend = withEncryption(
      new LocalBackend({ path: `${dir.path}/root` }),
      externalConfig(["record", log]),
    );
    await backend.setState("default", stateWith(1));
    const stored = JSON.parse(
      await Deno.readTextFile(`${dir.path}/root/workspaces/default/terraform.tfstate`),
    );
    const meta = new TextDecoder().decode(fromBase64(stored.meta["key_provider.external.ext"])!);
    assert.equal(meta, '{"external_data":{"key_id":"k1"}}');
    assert.deepEqual(await backend.getState("default"), stateWith(1));
    await backend.setState("default", stateWith(2));
    await backend.getState("default");
    // One run for encryption (input null), one per stored metadata.
    const runs = (await Deno.readTextFile(log)).trim().split("\n");
    assert.deepEqual(runs, ["null", '{"external_data": {"key_id": "k1"}}']);
    await backend.close();
  },
});

Deno.test({
  name: "a failing or non-conforming external key provider is refused, nothing written",
  ignore: !python && Deno.env.get("CI") !== "true",
  async fn() {
    await using dir = await tempDir();
    for (
      const [args, expected] of [
        [["fail"], /exited with code 3; its stderr: vault is sealed/],
        [["bad-magic"], /without the magic/],
      ] as const
    ) {
      const backend = withEncryption(
        new LocalBackend({ path: `${dir.path}/root` }),
        externalConfig([...args]),
      );
      await assert.rejects(() => backend.setState("default", stateWith(1)), (e: Error) => {
        assert.ok(e instanceof StateEncryptionError, e.message);
        assert.match(e.message, expected);
        return true;
      });
      await backend.close();
    }
    const missing = withEncryption(new LocalBackend({ path: `${dir.path}/root` }), {
      ...externalConfig(),
      key_provider: { external: { ext: { command: ["/nonexistent/provider"] } } },
    });
    await assert.rejects(() => missing.setState("default", stateWith(1)), /was not found/);
    await assert.rejects(() => Deno.stat(`${dir.path}/root/workspaces`), Deno.errors.NotFound);
  },
});

Deno.test("the envelope is written as Go's encoding/json writes it", async () => {
  const { serializeEnvelope } = await import("../src/_encryption_envelope.ts");
  assert.equal(
    serializeEnvelope({
      serial: 3,
      lineage: "a<b>&c\u2028",
      meta: { "z": "AA==", "key_provider.pbkdf2.a": "AQ==" },
      encrypted_data: "AAAA",
      encryption_version: "v0",
    }),
    '{"serial":3,"lineage":"a\\u003cb\\u003e\\u0026c\\u2028","meta":{"key_provider.pbkdf2.a":"AQ==","z":"AA=="},"encrypted_data":"AAAA","encryption_version":"v0"}',
  );
  assert.equal(serializeState(stateWith(1)).includes("xoxb"), true);
});

Deno.test("deleteState holds the lock between its resource check and the delete", async () => {
  await using dir = await tempDir();
  const empty = withEncryption(new LocalBackend({ path: dir.path }), config());
  await empty.setState("pr-1", stateWith(1));
  const writer = withEncryption(new LocalBackend({ path: dir.path }), config());
  let racing: Promise<unknown> | undefined;
  // The wrapped backend's read for the check is where another writer would slip in.
  const inner = new LocalBackend({ path: dir.path });
  const spied = new Proxy(inner, {
    get(target, property) {
      if (property === "getState" && racing === undefined) {
        return async (workspace: string) => {
          racing = writer.setState(workspace, { ...stateWith(2), resources: [managed()] })
            .then(() => "written", (error) => error);
          await racing;
          return await target.getState(workspace);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const deleting = withEncryption(spied, config());
  await deleting.deleteState("pr-1");
  const raced = await racing;
  assert.ok(raced instanceof StateLockError, `the write in between is refused: ${raced}`);
  assert.deepEqual(await empty.listWorkspaces(), ["default"]);
  await Promise.all([empty.close(), writer.close(), deleting.close()]);
});

function managed() {
  return {
    mode: "managed" as const,
    type: "discord_role",
    name: "r",
    provider: 'provider["registry.terraform.io/gaib/discord"]',
    instances: [{ attributes: { id: "1" } }],
  };
}
