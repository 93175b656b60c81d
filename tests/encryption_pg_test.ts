/**
 * State encryption on PostgreSQL (real server): the states row and every history row hold
 * OpenTofu's envelope, never the plaintext, read back by direct SQL behind the backend's back;
 * the versions still decrypt through the wrapper.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type EncryptionConfig, withEncryption } from "../src/encryption.ts";
import { createEmptyState } from "../src/state.ts";
import type { GaibState } from "../src/types.ts";
import { pgTest } from "./_pg_fixture.ts";

const ENCRYPTION: EncryptionConfig = {
  key_provider: {
    pbkdf2: { pgkey: { passphrase: "pg passphrase, long enough", iterations: 200_000 } },
  },
  method: { aes_gcm: { secure: { keys: "key_provider.pbkdf2.pgkey" } } },
  state: { method: "method.aes_gcm.secure" },
};

const state = (serial: number): GaibState => ({
  ...createEmptyState(),
  serial,
  lineage: "0b7c8d9e-1111-4222-8333-444455556666",
  outputs: { webhook: { value: `https://discord.example/hook/SECRET-${serial}`, type: "string" } },
});

pgTest(
  "pg: the states row and every history row hold the envelope, never plaintext",
  async (fx) => {
    const backend = withEncryption(fx.backend(), ENCRYPTION);
    for (const serial of [1, 2, 3]) await backend.setState("default", state(serial));
    const rows = await fx.admin.unsafe(
      `SELECT 'state' AS kind, data FROM terraform_remote_state.states WHERE name = 'default'
     UNION ALL
     SELECT 'history', data FROM terraform_remote_state.gaib_state_history
     WHERE workspace = 'default'`,
    );
    assert.equal(rows.filter((r) => r.kind === "state").length, 1);
    assert.ok(rows.filter((r) => r.kind === "history").length >= 2, "replaced rows were kept");
    for (const row of rows) {
      assert.ok(!row.data.includes("SECRET"), `${row.kind} row holds plaintext`);
      // OpenTofu's envelope (encryption/enc.go): serial, lineage, meta, encrypted_data.
      const envelope = JSON.parse(row.data);
      assert.deepEqual(Object.keys(envelope).sort(), [
        "encrypted_data",
        "encryption_version",
        "lineage",
        "meta",
        "serial",
      ]);
    }
    // The versions decrypt back through the wrapper.
    const versions = await backend.listVersions("default");
    const older = versions.find((v) => v.serial === 2)!;
    assert.deepEqual(await backend.getStateVersion("default", older.versionId), state(2));
  },
);
