/**
 * The S3 objects gaib-state writes carry the configured server-side encryption: the state of
 * every workspace and the lockfile, checked with HeadObject behind the backend's back.
 *
 * SSE-KMS is checked against Ceph RGW's test KMS (key `testkey-1`). SSE-S3 (AES256) cannot be
 * checked here: the RGW build reports no encryption for it (capability `sse`), see
 * RELIABILITY.md.
 *
 * @module
 */

import assert from "node:assert/strict";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { createEmptyState } from "../mod.ts";
import { s3Fixture, s3Test } from "./_s3_fixture.ts";

s3Test(
  "S3Backend writes every state object and lockfile with the configured SSE-KMS key",
  ["kms", "conditionalWrites"],
  async () => {
    await using fixture = await s3Fixture();
    const kmsKeyId = fixture.s3.kmsKeyId!;
    const backend = fixture.backend({ encrypt: true, kms_key_id: kmsKeyId, use_lockfile: true });
    const head = async (key: string) =>
      await fixture.s3Client.send(new HeadObjectCommand({ Bucket: fixture.bucket, Key: key }));
    for (const workspace of ["default", "staging"]) {
      const { lockId } = await backend.lock(workspace);
      const key = backend.stateKey(workspace);
      const lockfile = await head(`${key}.tflock`);
      assert.equal(lockfile.ServerSideEncryption, "aws:kms", `${key}.tflock is not encrypted`);
      assert.ok(lockfile.SSEKMSKeyId?.includes(kmsKeyId), `${key}.tflock: ${lockfile.SSEKMSKeyId}`);
      const state = createEmptyState();
      await backend.setState(workspace, { ...state, serial: 1 }, { lockId });
      await backend.setState(workspace, { ...state, serial: 2 }, { lockId });
      await backend.unlock(workspace, lockId);
      const object = await head(key);
      assert.equal(object.ServerSideEncryption, "aws:kms", `${key} is not encrypted`);
      assert.ok(object.SSEKMSKeyId?.includes(kmsKeyId), `${key}: ${object.SSEKMSKeyId}`);
    }
  },
);
