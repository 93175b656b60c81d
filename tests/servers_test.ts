/**
 * The test-server harness against the real servers: the properties the S3 backend's locking
 * relies on, checked on the servers themselves, and the fault-test controls of private servers.
 *
 * @module
 */

import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import {
  dynamoClientConfig,
  httpStatus,
  serversDisabled,
  serverTest,
  startDynamoServer,
  startS3Server,
  tempBucket,
  tempLockTable,
} from "./_server_env.ts";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

const WRITERS = 20;

serverTest(
  `DynamoDB attribute_not_exists(LockID) lets exactly 1 of ${WRITERS} concurrent puts win`,
  { dynamodb: true },
  async (_t, { dynamodb }) => {
    await using table = await tempLockTable(dynamodb);
    const lockId = "gaib-test-bucket/env:/prod/terraform.tfstate";
    const results = await Promise.allSettled(
      Array.from({ length: WRITERS }, (_, i) =>
        table.client.send(
          new PutItemCommand({
            TableName: table.name,
            Item: { LockID: { S: lockId }, Info: { S: JSON.stringify({ ID: `writer-${i}` }) } },
            ConditionExpression: "attribute_not_exists(LockID)",
          }),
        )),
    );
    const winners = results.flatMap((r, i) => r.status === "fulfilled" ? [i] : []);
    assertEquals(winners.length, 1, "number of winners");
    for (const r of results) {
      if (r.status === "rejected") {
        assertEquals(
          (r.reason as Error).name,
          "ConditionalCheckFailedException",
          "error of a losing put",
        );
      }
    }
    const { Item } = await table.client.send(
      new GetItemCommand({ TableName: table.name, Key: { LockID: { S: lockId } } }),
    );
    assertEquals(Item?.Info?.S, JSON.stringify({ ID: `writer-${winners[0]}` }), "stored lock");
  },
);

serverTest(
  "S3 PutObject, GetObject and ListObjectsV2 round-trip state objects",
  { s3: true },
  async (_t, { s3 }) => {
    await using bucket = await tempBucket(s3);
    const objects: Record<string, string> = {
      "terraform.tfstate": '{"version":4,"serial":1}',
      "env:/prod/terraform.tfstate": '{"version":4,"serial":7}',
      "env:/staging/terraform.tfstate": '{"version":4,"serial":3,"ünïcode":"✓"}',
    };
    for (const [key, body] of Object.entries(objects)) {
      await bucket.client.send(
        new PutObjectCommand({
          Bucket: bucket.name,
          Key: key,
          Body: body,
          ContentType: "application/json",
        }),
      );
    }
    for (const [key, body] of Object.entries(objects)) {
      const out = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.name, Key: key }));
      assertEquals(await out.Body?.transformToString(), body, `body of ${key}`);
    }
    const list = async (prefix?: string) =>
      ((await bucket.client.send(new ListObjectsV2Command({ Bucket: bucket.name, Prefix: prefix })))
        .Contents ?? []).map((o) => o.Key);
    assertEquals(await list(), Object.keys(objects).sort(), "listed keys");
    assertEquals(
      await list("env:/"),
      ["env:/prod/terraform.tfstate", "env:/staging/terraform.tfstate"],
      "keys under env:/",
    );
    await bucket.client.send(
      new DeleteObjectCommand({ Bucket: bucket.name, Key: "env:/prod/terraform.tfstate" }),
    );
    assertEquals(await list("env:/"), ["env:/staging/terraform.tfstate"], "keys after delete");
    try {
      await bucket.client.send(
        new GetObjectCommand({ Bucket: bucket.name, Key: "env:/prod/terraform.tfstate" }),
      );
      throw new Error("GetObject of a deleted key succeeded");
    } catch (error) {
      assertEquals(httpStatus(error), 404, "status of GetObject of a deleted key");
    }
  },
);

serverTest(
  `S3 If-None-Match: * lets exactly 1 of ${WRITERS} concurrent PutObject calls win ` +
    "in an unversioned bucket",
  { s3: ["conditionalWrites"] },
  async (_t, { s3 }) => {
    await using bucket = await tempBucket(s3);
    const key = "terraform.tfstate.tflock";
    const results = await Promise.allSettled(
      Array.from({ length: WRITERS }, (_, i) =>
        bucket.client.send(
          new PutObjectCommand({
            Bucket: bucket.name,
            Key: key,
            Body: JSON.stringify({ ID: `writer-${i}` }),
            IfNoneMatch: "*",
          }),
        )),
    );
    const winners = results.flatMap((r, i) => r.status === "fulfilled" ? [i] : []);
    assertEquals(winners.length, 1, "number of winners");
    for (const r of results) {
      if (r.status === "rejected") {
        // AWS answers 409 ConditionalRequestConflict to a put racing another one, 412 after
        const status = httpStatus(r.reason);
        assert(status === 412 || status === 409, `a losing put got ${status}: ${r.reason}`);
      }
    }
    const out = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.name, Key: key }));
    assertEquals(
      await out.Body?.transformToString(),
      JSON.stringify({ ID: `writer-${winners[0]}` }),
      "stored lockfile",
    );
  },
);

Deno.test({
  name: "a private DynamoDB server keeps its data across restart, hangs when paused and " +
    "refuses connections after stop",
  ignore: serversDisabled(),
}, async (t) => {
  await using server = await startDynamoServer({ persistent: true });
  const client = new DynamoDBClient(dynamoClientConfig(server.info, { maxAttempts: 1 }));
  try {
    await using table = await tempLockTable(server.info);
    await client.send(
      new PutItemCommand({ TableName: table.name, Item: { LockID: { S: "kept" } } }),
    );

    await t.step("restart keeps the item", async () => {
      await server.restart();
      const { Items } = await client.send(new ScanCommand({ TableName: table.name }));
      assertEquals(Items?.map((i) => i.LockID.S), ["kept"], "items after restart");
    });

    await t.step("pause makes requests hang until resume", async () => {
      server.pause();
      try {
        const hung = await client.send(new ScanCommand({ TableName: table.name }), {
          abortSignal: AbortSignal.timeout(1000),
        }).then(
          () => false,
          (error: Error) => error.name === "AbortError" || /abort/i.test(error.message),
        );
        assert(hung, "a request to a paused server was answered");
      } finally {
        server.resume();
      }
      const { Items } = await client.send(new ScanCommand({ TableName: table.name }));
      assertEquals(Items?.length, 1, "items after resume");
    });

    await t.step("stop closes the port", async () => {
      await server.stop();
      const refused = await client.send(new ScanCommand({ TableName: table.name })).then(
        () => false,
        () => true,
      );
      assert(refused, "a stopped server still answered");
    });
  } finally {
    client.destroy();
  }
});

Deno.test({
  name: "a private fauxqs S3 server keeps its objects across restart",
  ignore: serversDisabled(),
}, async () => {
  await using server = await startS3Server({ kind: "fauxqs", persistent: true });
  await using bucket = await tempBucket(server.info);
  await bucket.client.send(
    new PutObjectCommand({ Bucket: bucket.name, Key: "state", Body: "serial 1" }),
  );
  await server.restart();
  const out = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.name, Key: "state" }));
  assertEquals(await out.Body?.transformToString(), "serial 1", "body after restart");
});
