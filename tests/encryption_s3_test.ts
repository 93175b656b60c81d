/**
 * State encryption on S3 (real servers): the object is OpenTofu's envelope, Terraform's digest
 * item is the envelope's MD5, a plain backend refuses it with the way to configure the key,
 * and a tampered object or a wrong passphrase is refused without changing anything.
 *
 * @module
 */

import assert from "node:assert/strict";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { createHash } from "node:crypto";
import { type EncryptionConfig, StateEncryptionError, withEncryption } from "../src/encryption.ts";
import { StateFormatError } from "../src/errors.ts";
import { createEmptyState } from "../src/state.ts";
import type { GaibState } from "../src/types.ts";
import { s3Fixture, s3Test } from "./_s3_fixture.ts";

const PASSPHRASE = "s3 passphrase, long enough";

function config(passphrase = PASSPHRASE): EncryptionConfig {
  return {
    key_provider: { pbkdf2: { s3key: { passphrase, iterations: 200_000 } } },
    method: { aes_gcm: { secure: { keys: "key_provider.pbkdf2.s3key" } } },
    state: { method: "method.aes_gcm.secure" },
  };
}

const state = (serial: number): GaibState => ({
  ...createEmptyState(),
  serial,
  lineage: "0b7c8d9e-1111-4222-8333-444455556666",
  outputs: { webhook: { value: "https://discord.example/hook/SECRET", type: "string" } },
});

s3Test("S3: the object is the envelope and the digest item is its MD5", ["dynamodb"], async () => {
  await using fx = await s3Fixture();
  const plain = fx.backend({ dynamodb_table: fx.table });
  const backend = withEncryption(fx.backend({ dynamodb_table: fx.table }), config());
  await backend.setState("default", state(1));
  const key = plain.stateKey("default");
  const object = await fx.s3Client.send(new GetObjectCommand({ Bucket: fx.bucket, Key: key }));
  const bytes = await object.Body!.transformToByteArray();
  const text = new TextDecoder().decode(bytes);
  assert.match(text, /^\{"serial":1,"lineage":"0b7c8d9e-1111-4222-8333-444455556666","meta":/);
  assert.ok(!text.includes("SECRET"));
  const item = await fx.dynamoClient!.send(
    new GetItemCommand({ TableName: fx.table, Key: { LockID: { S: `${fx.bucket}/${key}-md5` } } }),
  );
  assert.equal(item.Item?.Digest?.S, createHash("md5").update(bytes).digest("hex"));
  assert.deepEqual(await backend.getState("default"), state(1));
  // Without the configuration, the same object is refused with the way to configure the key.
  const other = fx.backend({ dynamodb_table: fx.table });
  await assert.rejects(() => other.getState("default"), (e: Error) => {
    assert.ok(e instanceof StateFormatError);
    assert.match(e.message, /encryption block/);
    return true;
  });
});

s3Test(
  "S3: a tampered object or a wrong passphrase is refused and nothing changes",
  ["conditionalWrites"],
  async () => {
    await using fx = await s3Fixture();
    const backend = withEncryption(fx.backend({ use_lockfile: true }), config());
    const { lockId } = await backend.lock("default");
    await backend.setState("default", state(1), { lockId });
    await backend.unlock("default", lockId);
    const key = fx.backend({ use_lockfile: true }).stateKey("default");
    const read = async () => {
      const o = await fx.s3Client.send(new GetObjectCommand({ Bucket: fx.bucket, Key: key }));
      return await o.Body!.transformToString();
    };
    const original = await read();
    const wrong = withEncryption(
      fx.backend({ use_lockfile: true }),
      config("not the s3 passphrase!"),
    );
    await assert.rejects(() => wrong.getState("default"), (e: Error) => {
      assert.ok(e instanceof StateEncryptionError);
      assert.equal(e.reason, "authentication");
      assert.ok(!e.message.includes("not the s3 passphrase!") && !e.message.includes(PASSPHRASE));
      return true;
    });
    const envelope = JSON.parse(original);
    const data = envelope.encrypted_data as string;
    const flipped = data[10] === "A" ? "B" : "A";
    const tampered = JSON.stringify({
      ...envelope,
      encrypted_data: data.slice(0, 10) + flipped + data.slice(11),
    });
    await fx.s3Client.send(new PutObjectCommand({ Bucket: fx.bucket, Key: key, Body: tampered }));
    await assert.rejects(() => backend.getState("default"), /authentication failed/);
    assert.equal(await read(), tampered);
    await fx.s3Client.send(new PutObjectCommand({ Bucket: fx.bucket, Key: key, Body: original }));
    // A write with an older serial is refused on the clear serial, before any decryption.
    await assert.rejects(() => backend.setState("default", state(0)), /older than the stored/);
    assert.equal(await read(), original);
    await backend.setState("default", state(2));
    assert.equal((await backend.getState("default"))?.serial, 2);
    await backend.close();
    await wrong.close();
  },
);

s3Test("S3: deleteState looks inside the envelope", ["dynamodb"], async () => {
  await using fx = await s3Fixture();
  const backend = withEncryption(fx.backend({ dynamodb_table: fx.table }), config());
  await backend.setState("pr-9", {
    ...state(1),
    resources: [{
      mode: "managed",
      type: "discord_role",
      name: "r",
      provider: 'provider["registry.terraform.io/x/discord"]',
      instances: [{ attributes: { id: "1" } }],
    }],
  });
  await assert.rejects(() => backend.deleteState("pr-9"), /still tracks 1 managed/);
  await backend.deleteState("pr-9", { force: true });
  assert.deepEqual(await backend.listWorkspaces(), ["default"]);
});
