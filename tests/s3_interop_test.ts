/**
 * S3Backend with the outside world: Debian's AWS CLI reads what gaib-state wrote, Terraform's
 * locks (put by the AWS CLI in Terraform's exact format) block gaib-state and gaib-state's
 * block Terraform's requests, and servers stopped in the middle of an operation give a clear
 * error and leave the state intact.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { BackendError, StateLockError } from "../src/errors.ts";
import { createEmptyState, serializeState } from "../src/state.ts";
import { S3Backend } from "../src/backends/s3.ts";
import type { S3BackendConfig } from "../src/config.ts";
import { testClients } from "./_aws_requests.ts";
import { AWS_CLI, s3Fixture, s3Test } from "./_s3_fixture.ts";
import {
  httpStatus,
  startDynamoServer,
  startS3Server,
  tempBucket,
  tempLockTable,
  TEST_CREDENTIALS,
} from "./_server_env.ts";

async function aws(endpoint: string, ...args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(AWS_CLI, {
    args: ["--endpoint-url", endpoint, "--no-cli-pager", ...args],
    env: {
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_REGION: TEST_CREDENTIALS.region,
      AWS_CONFIG_FILE: "/dev/null",
      AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
}

/**
 * Restarts `server` and resolves once its port refuses connections, so the next request
 * meets a stopped server; `restarted` resolves when it serves again.
 */
async function takeDown(server: { info: { endpoint: string }; restart(): Promise<void> }) {
  const restarted = server.restart();
  const port = Number(new URL(server.info.endpoint).port);
  for (let i = 0; i < 500; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    } catch {
      return { restarted }; // refused: the server is down
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await restarted;
  throw new Error("the test server did not go down");
}

function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

const TERRAFORM_LOCK = {
  ID: "5e0a9d7c-7a8b-4bd0-8f0e-2c7d1f0a0c11",
  Operation: "OperationTypeApply",
  Info: "",
  Who: "runner@terraform-ci",
  Version: "1.10.5",
  Created: "2026-11-26T09:15:03.123456789Z",
  Path: "",
};

s3Test(
  "Debian's AWS CLI reads the state object gaib-state wrote, byte for byte",
  ["awscli"],
  async () => {
    await using fx = await s3Fixture();
    const state = { ...createEmptyState(), serial: 5 };
    await fx.backend({ key: "app/terraform.tfstate" }).setState("prod", state);
    const out = await aws(
      fx.s3.endpoint,
      "s3",
      "cp",
      `s3://${fx.bucket}/env:/prod/app/terraform.tfstate`,
      "-",
    );
    assert.equal(out.code, 0, text(out.stderr));
    assert.equal(text(out.stdout), serializeState(state));
    const head = await aws(
      fx.s3.endpoint,
      "s3api",
      "head-object",
      "--bucket",
      fx.bucket,
      "--key",
      "env:/prod/app/terraform.tfstate",
    );
    assert.equal(JSON.parse(text(head.stdout)).ContentType, "application/json");
  },
);

s3Test(
  "A lock item put by the AWS CLI in Terraform's format blocks gaib-state, which shows its holder",
  ["dynamodb", "awscli"],
  async () => {
    await using fx = await s3Fixture();
    const info = { ...TERRAFORM_LOCK, Path: `${fx.bucket}/terraform.tfstate` };
    const put = await aws(
      fx.dynamo!.endpoint,
      "dynamodb",
      "put-item",
      "--table-name",
      fx.table,
      "--item",
      JSON.stringify({ LockID: { S: info.Path }, Info: { S: JSON.stringify(info) } }),
      "--condition-expression",
      "attribute_not_exists(LockID)",
    );
    assert.equal(put.code, 0, text(put.stderr));
    const backend = fx.backend({ dynamodb_table: fx.table });
    await assert.rejects(backend.lock("default"), (error: Error) => {
      assert.ok(error instanceof StateLockError);
      assert.deepEqual(error.lockInfo, info);
      assert.match(
        error.message,
        /held by runner@terraform-ci \(OperationTypeApply, since 2026-11-26T09:15:03\.123456789Z, lock ID 5e0a9d7c/,
      );
      return true;
    });
    assert.deepEqual(await backend.getLockInfo("default"), info);
    await assert.rejects(backend.setState("default", createEmptyState()), StateLockError);
  },
);

s3Test(
  "A lockfile written in Terraform's format blocks gaib-state, which shows its holder",
  ["awscli", "conditionalWrites"],
  async () => {
    await using fx = await s3Fixture();
    const info = { ...TERRAFORM_LOCK, Path: `${fx.bucket}/terraform.tfstate` };
    const file = await Deno.makeTempFile();
    try {
      await Deno.writeTextFile(file, JSON.stringify(info));
      const put = await aws(
        fx.s3.endpoint,
        "s3",
        "cp",
        file,
        `s3://${fx.bucket}/terraform.tfstate.tflock`,
      );
      assert.equal(put.code, 0, text(put.stderr));
    } finally {
      await Deno.remove(file);
    }
    const backend = fx.backend({ use_lockfile: true });
    await assert.rejects(backend.lock("default"), (error: Error) => {
      assert.ok(error instanceof StateLockError);
      assert.deepEqual(error.lockInfo, info);
      assert.match(error.message, /held by runner@terraform-ci \(OperationTypeApply/);
      return true;
    });
  },
);

s3Test(
  "A lock taken by gaib-state fails Terraform's own lock requests (DynamoDB put and If-None-Match lockfile)",
  ["dynamodb", "awscli", "conditionalWrites"],
  async () => {
    await using fx = await s3Fixture();
    const backend = fx.backend({ dynamodb_table: fx.table, use_lockfile: true });
    const { lockId } = await backend.lock("default", { who: "gaib@ci" });
    const path = `${fx.bucket}/terraform.tfstate`;
    const put = await aws(
      fx.dynamo!.endpoint,
      "dynamodb",
      "put-item",
      "--table-name",
      fx.table,
      "--item",
      JSON.stringify({ LockID: { S: path }, Info: { S: JSON.stringify(TERRAFORM_LOCK) } }),
      "--condition-expression",
      "attribute_not_exists(LockID)",
    );
    assert.notEqual(put.code, 0);
    assert.match(text(put.stderr), /ConditionalCheckFailedException/);
    // The AWS CLI has no --if-none-match: send Terraform's lockfile request with the SDK.
    const error = await fx.s3Client.send(
      new PutObjectCommand({
        Bucket: fx.bucket,
        Key: "terraform.tfstate.tflock",
        Body: JSON.stringify(TERRAFORM_LOCK),
        IfNoneMatch: "*",
      }),
    ).then(() => null, (e) => e);
    assert.equal(httpStatus(error), 412);
    // What Terraform would show: gaib-state's holder, in Terraform's fields.
    const got = await aws(
      fx.dynamo!.endpoint,
      "dynamodb",
      "get-item",
      "--table-name",
      fx.table,
      "--key",
      JSON.stringify({ LockID: { S: path } }),
    );
    const shown = JSON.parse(JSON.parse(text(got.stdout)).Item.Info.S);
    assert.equal(shown.ID, lockId);
    assert.equal(shown.Who, "gaib@ci");
    await backend.unlock("default", lockId);
  },
);

s3Test(
  "A DynamoDB server stopped mid-write gives a clear error and leaves the state and the lock intact",
  ["dynamodb", "privateServers"],
  async () => {
    await using server = await startDynamoServer({ persistent: true });
    await using fx = await s3Fixture();
    await using table = await tempLockTable(server.info);
    const config = fx.config({
      dynamodb_table: table.name,
      endpoints: { s3: fx.s3.endpoint, dynamodb: server.info.endpoint },
      max_retries: 0,
    });
    const clients = testClients(config, { requestTimeoutMs: 5000 });
    const backend = new S3Backend(config, { requestTimeoutMs: 5000, clients });
    try {
      const state = createEmptyState();
      await backend.setState("default", state);
      const { lockId } = await backend.lock("default");
      let stopAt = "";
      let restarted: Promise<void> | undefined;
      clients.dynamodb!.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === stopAt) {
            stopAt = "";
            restarted = (await takeDown(server)).restarted;
          }
          return next(args);
        },
        { step: "build", name: "stopServer" },
      );
      stopAt = "GetItemCommand"; // the lock check of setState
      await assert.rejects(
        backend.setState("default", { ...state, serial: 1 }, { lockId }),
        (error: Error) => {
          assert.ok(error instanceof BackendError);
          assert.match(
            error.message,
            new RegExp(
              `Cannot reach DynamoDB at ${server.info.endpoint} .*The state was not changed`,
            ),
          );
          return true;
        },
      );
      await restarted;
      const reader = new S3Backend(fx.config({
        dynamodb_table: table.name,
        endpoints: { s3: fx.s3.endpoint, dynamodb: server.info.endpoint },
      }));
      try {
        assert.equal((await reader.getState("default"))?.serial, 0);
        assert.equal((await reader.getLockInfo("default"))?.ID, lockId);
      } finally {
        await reader.close();
      }
      await backend.setState("default", { ...state, serial: 1 }, { lockId });
      await backend.unlock("default", lockId);
    } finally {
      await backend.close();
      clients.destroy();
    }
  },
);

s3Test(
  "An S3 server stopped mid-write gives a clear error and leaves the state intact",
  ["privateServers"],
  async () => {
    await using server = await startS3Server({ persistent: true });
    await using bucket = await tempBucket(server.info);
    const config: S3BackendConfig = {
      type: "s3",
      bucket: bucket.name,
      key: "terraform.tfstate",
      region: TEST_CREDENTIALS.region,
      endpoint: server.info.endpoint,
      force_path_style: true,
      max_retries: 0,
    };
    const clients = testClients(config, { requestTimeoutMs: 5000 });
    const backend = new S3Backend(config, { requestTimeoutMs: 5000, clients });
    try {
      const state = createEmptyState();
      await backend.setState("default", state);
      let restarting: Promise<void> | undefined;
      clients.s3.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === "PutObjectCommand" && !restarting) {
            // Stop the server (it comes back by itself) and send the write while it is down.
            restarting = (await takeDown(server)).restarted;
          }
          return next(args);
        },
        { step: "build", name: "stopServer" },
      );
      await assert.rejects(backend.setState("default", { ...state, serial: 1 }), (error: Error) => {
        assert.ok(error instanceof BackendError);
        assert.match(
          error.message,
          new RegExp(`Cannot reach S3 at ${server.info.endpoint} .*The state was not changed`),
        );
        return true;
      });
      await restarting;
      const reader = new S3Backend({
        type: "s3",
        bucket: bucket.name,
        key: "terraform.tfstate",
        region: TEST_CREDENTIALS.region,
        endpoint: server.info.endpoint,
        force_path_style: true,
      });
      try {
        assert.deepEqual(await reader.getState("default"), state);
      } finally {
        await reader.close();
      }
    } finally {
      await backend.close();
      clients.destroy();
    }
  },
);
