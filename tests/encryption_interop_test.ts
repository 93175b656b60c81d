/**
 * Interop, proved against an independent implementation: `tests/testdata/opentofu_crypto.py`
 * (Python's hashlib.pbkdf2_hmac and the `cryptography` package's AESGCM, written from
 * OpenTofu's source) decrypts what gaib-state encrypts, and gaib-state decrypts what it
 * encrypts, byte for byte in OpenTofu's envelope layout, for every hash function and AES key
 * length, with and without AAD.
 *
 * Needs python3 with the `cryptography` package (Debian: python3-cryptography; `.ci/run`
 * installs it). Without it the test skips, saying why (and fails under CI=true).
 *
 * @module
 */

import assert from "node:assert/strict";
import { LocalBackend } from "../src/backends/local.ts";
import { type EncryptionConfig, withEncryption } from "../src/encryption.ts";
import { serializeEnvelope } from "../src/_encryption_envelope.ts";
import { ENVELOPE_DOCUMENTS } from "../src/_stored_document.ts";
import { createEmptyState, serializeState } from "../src/state.ts";
import type { GaibState } from "../src/types.ts";
import { tempDir } from "./_temp.ts";

const SCRIPT = new URL("./testdata/opentofu_crypto.py", import.meta.url).pathname;
const PASSPHRASE = "interop passphrase <&> ünïcode";

const problem = await new Deno.Command("python3", { args: ["-c", "import cryptography"] })
  .output()
  .then(
    (o) =>
      o.success
        ? undefined
        : "python3 has no cryptography package (apt-get install python3-cryptography)",
    () => "python3 is not installed",
  );

async function python(request: Record<string, unknown>): Promise<Record<string, string>> {
  const child = new Deno.Command("python3", {
    args: [SCRIPT],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(request)));
  await writer.close();
  const out = await child.output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

function config(hash: "sha256" | "sha512", keyLength: number, aad?: number[]): EncryptionConfig {
  return {
    key_provider: {
      pbkdf2: {
        interop: {
          passphrase: PASSPHRASE,
          hash_function: hash,
          key_length: keyLength,
          iterations: 200_000,
          salt_length: 16,
        },
      },
    },
    method: { aes_gcm: { m: { keys: "key_provider.pbkdf2.interop", aad } } },
    state: { method: "method.aes_gcm.m" },
  };
}

const b64 = (bytes: Uint8Array) => (bytes as Uint8Array & { toBase64(): string }).toBase64();

Deno.test({
  name: "Python's independent implementation and gaib-state read each other's envelopes",
  ignore: problem !== undefined && Deno.env.get("CI") !== "true",
  async fn(t) {
    if (problem) throw new Error(`${problem}; under CI=true a test that would skip fails`);
    const state: GaibState = {
      ...createEmptyState(),
      serial: 7,
      outputs: { token: { value: "s3cr3t <&>", type: "string", sensitive: true } },
    };
    for (const hash of ["sha256", "sha512"] as const) {
      for (const keyLength of [16, 24, 32]) {
        for (const aad of [undefined, [0, 1, 2, 254, 255]]) {
          await t.step(
            `${hash}, ${keyLength * 8}-bit key, ${aad ? "with" : "without"} AAD`,
            async () => {
              await using dir = await tempDir();
              const backend = withEncryption(
                new LocalBackend({ path: dir.path }),
                config(hash, keyLength, aad),
              );
              // gaib-state encrypts, Python decrypts.
              await backend.setState("default", state);
              const path = `${dir.path}/workspaces/default/terraform.tfstate`;
              const envelope = await Deno.readTextFile(path);
              const decrypted = await python({
                op: "decrypt",
                passphrase: PASSPHRASE,
                aad: aad ?? null,
                meta_key: "key_provider.pbkdf2.interop",
                envelope,
              });
              assert.equal(
                atob(decrypted.plaintext),
                atob(b64(new TextEncoder().encode(serializeState(state)))),
              );
              // Python encrypts, gaib-state decrypts; the layout is the same to the byte.
              const next = { ...state, serial: 8 };
              const { envelope: theirs } = await python({
                op: "encrypt",
                passphrase: PASSPHRASE,
                hash_function: hash,
                key_length: keyLength,
                iterations: 200_000,
                salt_length: 16,
                aad: aad ?? null,
                meta_key: "key_provider.pbkdf2.interop",
                plaintext: b64(new TextEncoder().encode(serializeState(next))),
              });
              const parsed = ENVELOPE_DOCUMENTS.parse(new TextEncoder().encode(theirs), "python's");
              assert.equal(serializeEnvelope(parsed as never), theirs);
              await Deno.writeTextFile(path, theirs);
              assert.deepEqual(await backend.getState("default"), next);
              await backend.close();
            },
          );
        }
      }
    }
  },
});
