/**
 * `doctor` and `bootstrap` through the library, against the real test servers (Ceph RGW and
 * DynamoDB Local, started by `deno task test`), a private fauxqs server, and real file
 * systems (tmpfs mounts, read-only remounts).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  GetBucketEncryptionCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { bootstrap, type BootstrapStep, doctor } from "../src/doctor.ts";
import { createEmptyState } from "../src/state.ts";
import { S3Backend } from "../src/backends/s3.ts";
import type { S3BackendConfig } from "../src/config.ts";
import { s3Fixture, s3Test } from "./_s3_fixture.ts";
import {
  dynamoClientConfig,
  dynamoServer,
  s3ClientConfig,
  s3Server,
  startS3Server,
  tempBucket,
  tempLockTable,
  TEST_CREDENTIALS,
  uniqueName,
} from "./_server_env.ts";
import { emptyAndDeleteBucket, freePort } from "./_servers.ts";
import { tempDir } from "./_temp.ts";
import { check, table } from "./_doctor_checks.ts";
import { canMount, mountTmpfs } from "./reliability/_util.ts";

/**
 * What Ceph RGW 16.2 lacks, as measured (see the README's "Setting up S3 from scratch"): with
 * versioning on (kept with DynamoDB locks) RGW refuses If-Match, so writes rely on the lock
 * alone; the public access block is left off (with it, RGW denies every PutObject), and the
 * TLS-only policy is skipped on a plain-http endpoint. Nothing else may warn after bootstrap.
 */
const DOCUMENTED_CEPH_WARNINGS = new Set(["s3.conditional-writes", "s3.public-access"]);

/** A bucket and table name nobody has created, and the config that names them. */
function freshConfig(overrides: Partial<S3BackendConfig> = {}): S3BackendConfig {
  const s3 = s3Server()!;
  const dynamo = dynamoServer();
  const name = uniqueName("gaib-boot");
  return {
    type: "s3",
    bucket: name,
    key: "servers/terraform.tfstate",
    region: TEST_CREDENTIALS.region,
    dynamodb_table: dynamo ? name : undefined,
    endpoints: { s3: s3.endpoint, dynamodb: dynamo?.endpoint },
    force_path_style: true,
    max_retries: 1,
    ...(s3.kms && s3.kmsKeyId ? { kms_key_id: s3.kmsKeyId } : {}),
    ...overrides,
  };
}

/** Removes what a bootstrap created. */
async function removeCreated(config: S3BackendConfig): Promise<void> {
  const s3 = new S3Client(s3ClientConfig(config.endpoints!.s3!));
  await emptyAndDeleteBucket(s3, config.bucket).catch(() => {});
  s3.destroy();
  if (config.dynamodb_table && config.endpoints?.dynamodb) {
    const ddb = new DynamoDBClient(dynamoClientConfig(config.endpoints.dynamodb));
    await ddb.send(new DeleteTableCommand({ TableName: config.dynamodb_table })).catch(() => {});
    ddb.destroy();
  }
}

/** Every setting of a bucket and the lock table, as the servers report them. */
async function snapshot(config: S3BackendConfig): Promise<string> {
  const s3 = new S3Client(s3ClientConfig(config.endpoints!.s3!));
  const ddb = new DynamoDBClient(dynamoClientConfig(config.endpoints!.dynamodb!));
  const settle = <T>(p: Promise<T>) =>
    p.then((v) => JSON.stringify(v, (k, x) => k === "$metadata" ? undefined : x))
      .catch((e) => `error ${e.name}`);
  try {
    const Bucket = config.bucket;
    const table = await ddb.send(new DescribeTableCommand({ TableName: config.dynamodb_table }));
    return [
      await settle(s3.send(new GetBucketVersioningCommand({ Bucket }))),
      await settle(s3.send(new GetBucketEncryptionCommand({ Bucket }))),
      await settle(s3.send(new GetPublicAccessBlockCommand({ Bucket }))),
      await settle(s3.send(new GetBucketPolicyCommand({ Bucket }))),
      JSON.stringify([
        table.Table?.KeySchema,
        table.Table?.AttributeDefinitions,
        table.Table?.TableStatus,
        table.Table?.CreationDateTime,
      ]),
    ].join("\n");
  } finally {
    s3.destroy();
    ddb.destroy();
  }
}

/** No object of the doctor's is left in the bucket (no version, no delete marker). */
async function assertNoProbeLeft(client: S3Client, bucket: string): Promise<void> {
  const out = await client.send(
    new ListObjectVersionsCommand({ Bucket: bucket, Prefix: ".gaib-doctor/" }),
  );
  const left = [...out.Versions ?? [], ...out.DeleteMarkers ?? []].map((v) => v.Key);
  assert.deepEqual(left, [], "doctor left probe objects behind");
}

/**
 * A state can be created and then replaced in the bucket under the lock, as every gaib-state
 * command writes (what bootstrap must not break); with versioning on, the history lists both.
 *
 * @returns what the backend saw the store do with If-Match
 */
async function assertWritable(config: S3BackendConfig): Promise<string> {
  await using backend = new S3Backend(config);
  const state = createEmptyState();
  const { lockId } = await backend.lock("default", { operation: "apply" });
  try {
    await backend.setState("default", state, { lockId });
    await backend.setState("default", { ...state, serial: state.serial + 1 }, { lockId });
  } finally {
    await backend.unlock("default", lockId);
  }
  assert.equal((await backend.getState("default"))?.serial, state.serial + 1);
  const s3 = new S3Client(s3ClientConfig(config.endpoints!.s3!));
  try {
    const versioning = await s3.send(new GetBucketVersioningCommand({ Bucket: config.bucket }));
    const serials = (await backend.listVersions("default")).map((v) => v.serial);
    assert.deepEqual(
      serials,
      versioning.Status === "Enabled" ? [state.serial + 1, state.serial] : [state.serial + 1],
    );
  } finally {
    s3.destroy();
  }
  return backend.conditionalWrites;
}

function actions(steps: BootstrapStep[]): string {
  return steps.map((s) => `${s.resource}: ${s.action} (${s.status}) ${s.message}`).join("\n");
}

s3Test(
  "bootstrap creates the bucket and lock table from nothing; doctor then passes with only " +
    "the documented warnings, and states can be written",
  ["dynamodb"],
  async () => {
    const config = freshConfig();
    try {
      const report = await bootstrap(config);
      const said = actions(report.steps);
      const step = (prefix: string) => report.steps.find((s) => s.resource.startsWith(prefix));
      assert.equal(step("bucket ")?.action, "created", said);
      assert.equal(step("DynamoDB table ")?.action, "created", said);
      assert.ok(!report.steps.some((s) => s.status === "fail"), said);
      for (const s of report.steps) {
        if (s.status === "warn") assert.ok(s.message.length > 20, `a warning says why: ${said}`);
      }
      const tls = step("TLS-only policy");
      assert.equal(tls?.action, "skipped", said);
      assert.match(tls!.message, /plain HTTP/);
      // With DynamoDB locks versioning stays on, even on a store that then refuses If-Match.
      const versioning = step("versioning of bucket");
      assert.equal(versioning?.action, "changed", said);
      const ceph = s3Server()!.kind === "ceph";
      if (ceph) {
        assert.equal(versioning!.status, "warn", said);
        assert.match(versioning!.message, /only under the DynamoDB lock/);
      }
      const checks = report.checks;
      assert.ok(!checks.some((c) => c.status === "fail"), table(checks));
      for (const c of checks.filter((c) => c.status === "warn")) {
        assert.ok(DOCUMENTED_CEPH_WARNINGS.has(c.name), `undocumented warning:\n${table(checks)}`);
        assert.ok(c.fix, `${c.name} has a fix`);
      }
      assert.equal(check(checks, "s3.versioning").status, "ok", table(checks));
      const conditional = check(checks, "s3.conditional-writes");
      assert.equal(conditional.status, ceph ? "warn" : "ok", table(checks));
      if (ceph) assert.match(conditional.summary, /only under the DynamoDB lock/);
      for (
        const name of [
          "s3.bucket",
          "s3.permissions",
          "dynamodb.table",
          "dynamodb.conditional-put",
          "dynamodb.consistent-read",
          "clock",
        ]
      ) {
        assert.equal(check(checks, name).status, "ok", table(checks));
      }
      const s3 = new S3Client(s3ClientConfig(config.endpoints!.s3!));
      try {
        await s3.send(new HeadBucketCommand({ Bucket: config.bucket }));
        await assertNoProbeLeft(s3, config.bucket);
      } finally {
        s3.destroy();
      }
      // The backend comes to the verdict doctor reported.
      assert.equal(await assertWritable(config), ceph ? "refused" : "honoured");
    } finally {
      await removeCreated(config);
    }
  },
);

s3Test(
  "bootstrap without a DynamoDB table (lockfile locks) undoes versioning on a store that then " +
    "refuses If-Match, and the bucket stays writable",
  [],
  async () => {
    const config = freshConfig({ dynamodb_table: undefined, use_lockfile: true });
    try {
      const report = await bootstrap(config);
      const said = actions(report.steps);
      const versioning = report.steps.find((s) => s.resource.startsWith("versioning of bucket"));
      if (s3Server()!.kind === "ceph") {
        assert.equal(versioning?.action, "undone", said);
        assert.equal(versioning!.status, "warn", said);
        assert.match(versioning!.message, /replacing it with If-Match on its ETag/);
        // Not merely suspended: there RGW refuses the lockfile's create after an unlock.
        assert.match(versioning!.message, /created again without versioning/);
        const versions = check(report.checks, "s3.versioning");
        assert.equal(versions.status, "warn");
        assert.match(versions.summary, /versioning is off/);
      } else {
        assert.equal(versioning?.action, "changed", said);
      }
      assert.ok(!report.steps.some((s) => s.status === "fail"), said);
      assert.ok(!report.checks.some((c) => c.status === "fail"), table(report.checks));
      assert.equal(await assertWritable(config), "honoured");
    } finally {
      await removeCreated(config);
    }
  },
);

s3Test(
  "bootstrap run a second time changes nothing, and --fix never leaves the bucket unwritable",
  ["dynamodb"],
  async () => {
    const config = freshConfig();
    try {
      await bootstrap(config);
      const before = await snapshot(config);
      const again = await bootstrap(config);
      const said = actions(again.steps);
      for (const s of again.steps) {
        assert.ok(["unchanged", "needs-fix", "skipped"].includes(s.action), said);
      }
      assert.equal(await snapshot(config), before);
      // --fix tries again what doctor flags; on a store that breaks writes with it, it is
      // undone again, and the bucket stays writable.
      const fixed = await bootstrap(config, { fix: true });
      assert.ok(!fixed.steps.some((s) => s.status === "fail"), actions(fixed.steps));
      assert.ok(!fixed.checks.some((c) => c.status === "fail"), table(fixed.checks));
      await assertWritable(config);
    } finally {
      await removeCreated(config);
    }
  },
);

s3Test(
  "bootstrap --dry-run creates nothing and says what it would create",
  ["dynamodb"],
  async () => {
    const config = freshConfig();
    try {
      const report = await bootstrap(config, { dryRun: true });
      const said = actions(report.steps);
      assert.equal(
        report.steps.find((s) => s.resource.startsWith("bucket "))?.action,
        "would-create",
        said,
      );
      assert.equal(
        report.steps.find((s) => s.resource.startsWith("DynamoDB table "))?.action,
        "would-create",
        said,
      );
      assert.equal(check(report.checks, "s3.bucket").status, "fail");
      const s3 = new S3Client(s3ClientConfig(config.endpoints!.s3!));
      try {
        await assert.rejects(s3.send(new HeadBucketCommand({ Bucket: config.bucket })));
      } finally {
        s3.destroy();
      }
      const ddb = new DynamoDBClient(dynamoClientConfig(config.endpoints!.dynamodb!));
      try {
        await assert.rejects(
          ddb.send(new DescribeTableCommand({ TableName: config.dynamodb_table })),
        );
      } finally {
        ddb.destroy();
      }
    } finally {
      await removeCreated(config);
    }
  },
);

s3Test(
  "bootstrap creates the bucket in the configured region: Ceph RGW, which serves only its own " +
    "zonegroup, refuses eu-west-1's location constraint, and nothing is left behind",
  [],
  async () => {
    const config = freshConfig({ region: "eu-west-1", dynamodb_table: undefined });
    try {
      const report = await bootstrap(config);
      const step = report.steps[0];
      if (s3Server()!.kind === "ceph") {
        assert.equal(step.action, "failed", actions(report.steps));
        assert.match(step.message, /InvalidLocationConstraint/);
        assert.match(step.fix!, /backend\.region/);
      } else {
        assert.equal(step.action, "created", actions(report.steps));
      }
    } finally {
      await removeCreated(config);
    }
  },
);

s3Test(
  "doctor on a versioned Ceph RGW bucket: the conditional-write check warns with DynamoDB " +
    "locks (writes rely on the lock alone) and fails in lockfile mode and without a lock",
  ["versioning", "conditionalWrites", "dynamodb"],
  async () => {
    await using fx = await s3Fixture();
    await fx.s3Client.send(
      new PutBucketVersioningCommand({
        Bucket: fx.bucket,
        VersioningConfiguration: { Status: "Enabled" },
      }),
    );
    // What the store does, seen with a raw client: If-None-Match: * on an existing key.
    await fx.s3Client.send(new PutObjectCommand({ Bucket: fx.bucket, Key: "raw", Body: "1" }));
    const ignored = await fx.s3Client.send(
      new PutObjectCommand({ Bucket: fx.bucket, Key: "raw", Body: "2", IfNoneMatch: "*" }),
    ).then(() => true, () => false);
    if (fx.s3.kind === "ceph") assert.ok(ignored, "Ceph RGW 16.2 ignores If-None-Match here");
    const checks = await doctor(fx.config({ use_lockfile: true, dynamodb_table: undefined }));
    const conditional = check(checks, "s3.conditional-writes");
    if (fx.s3.kind === "ceph" || ignored) {
      assert.equal(conditional.status, "fail", table(checks));
      assert.match(conditional.fix!, /dynamodb_table/);
      assert.match(conditional.fix!, /without versioning/);
    }
    assert.equal(check(checks, "s3.versioning").status, "ok");
    const unlocked = await doctor(fx.config());
    assert.equal(
      check(unlocked, "s3.conditional-writes").status,
      fx.s3.kind === "ceph" ? "fail" : "ok",
      table(unlocked),
    );
    const withDynamo = await doctor(fx.config({ dynamodb_table: fx.table }));
    const warned = check(withDynamo, "s3.conditional-writes");
    if (fx.s3.kind === "ceph") {
      assert.equal(warned.status, "warn", table(withDynamo));
      assert.match(warned.summary, /If-Match with the right ETag REFUSED in both quotings/);
      assert.match(warned.summary, /only under the DynamoDB lock/);
      assert.match(warned.summary, /without the lock are refused/);
      assert.ok(!withDynamo.some((c) => c.status === "fail"), table(withDynamo));
    }
    // The backend, writing the same bucket under the lock, reaches the verdict doctor reported.
    assert.equal(
      await assertWritable(fx.config({ dynamodb_table: fx.table })),
      /REFUSED in both quotings/.test(warned.summary) ? "refused" : "honoured",
    );
    await assertNoProbeLeft(fx.s3Client, fx.bucket);
  },
);

s3Test(
  "doctor on a Ceph RGW bucket with versioning suspended: a deleted key cannot be created " +
    "again, so lockfile mode fails; with DynamoDB it warns, and bootstrap --fix turns " +
    "versioning back on, after which a deleted workspace can be written again",
  ["versioning", "dynamodb"],
  async () => {
    await using fx = await s3Fixture({ versioned: true });
    await fx.s3Client.send(
      new PutBucketVersioningCommand({
        Bucket: fx.bucket,
        VersioningConfiguration: { Status: "Suspended" },
      }),
    );
    const ceph = fx.s3.kind === "ceph";
    const lockfile = await doctor(fx.config({ use_lockfile: true }));
    const failed = check(lockfile, "s3.conditional-writes");
    if (ceph) {
      assert.equal(failed.status, "fail", table(lockfile));
      assert.match(failed.summary, /If-None-Match: \* on a deleted key REFUSED/);
      assert.match(failed.summary, /until its first release/);
    }
    const config = fx.config({ dynamodb_table: fx.table });
    const checks = await doctor(config);
    const warned = check(checks, "s3.conditional-writes");
    if (ceph) {
      assert.equal(warned.status, "warn", table(checks));
      assert.match(warned.summary, /deleted workspace's state cannot be written again/);
      assert.match(warned.fix!, /"gaib-state bootstrap --fix"/);
    }
    const fixed = await bootstrap(config, { fix: true });
    const said = actions(fixed.steps);
    const versioning = fixed.steps.find((s) => s.resource.startsWith("versioning of bucket"));
    assert.equal(versioning?.action, "changed", said);
    assert.equal(check(fixed.checks, "s3.versioning").status, "ok", table(fixed.checks));
    assert.match(check(fixed.checks, "s3.conditional-writes").summary, /deleted key accepted/);
    // A workspace written, deleted and written again, under the lock.
    const backend = fx.backend(config);
    const state = createEmptyState();
    const { lockId } = await backend.lock("gone", { operation: "apply" });
    try {
      await backend.setState("gone", state, { lockId });
      await backend.deleteState("gone", { lockId });
      await backend.setState("gone", { ...state, serial: 1 }, { lockId });
    } finally {
      await backend.unlock("gone", lockId);
    }
    assert.equal((await backend.getState("gone"))?.serial, 1);
    await assertNoProbeLeft(fx.s3Client, fx.bucket);
  },
);

s3Test(
  "doctor against a store that ignores conditional requests (fauxqs) fails the " +
    "conditional-write check in lockfile mode and without a lock, and warns with DynamoDB",
  ["privateServers"],
  async () => {
    await using server = await startS3Server({ kind: "fauxqs" });
    await using bucket = await tempBucket(server.info);
    const config: S3BackendConfig = {
      type: "s3",
      bucket: bucket.name,
      key: "terraform.tfstate",
      region: TEST_CREDENTIALS.region,
      endpoint: server.info.endpoint,
      force_path_style: true,
      max_retries: 0,
      use_lockfile: true,
    };
    const lockfile = await doctor(config);
    const conditional = check(lockfile, "s3.conditional-writes");
    assert.equal(conditional.status, "fail", table(lockfile));
    assert.match(conditional.summary, /If-None-Match: \* on an existing key IGNORED/);
    assert.match(conditional.summary, /wrong ETag IGNORED/);
    assert.match(conditional.fix!, /dynamodb_table/);
    const unlocked = await doctor({ ...config, use_lockfile: undefined });
    assert.equal(check(unlocked, "s3.conditional-writes").status, "fail", table(unlocked));
    const dynamo = dynamoServer();
    assert.ok(dynamo, "needs the shared DynamoDB server (deno task test starts it)");
    await using locks = await tempLockTable(dynamo);
    const withDynamo = await doctor({
      ...config,
      use_lockfile: undefined,
      dynamodb_table: locks.name,
      endpoints: { s3: server.info.endpoint, dynamodb: dynamo.endpoint },
      endpoint: undefined,
    });
    const warned = check(withDynamo, "s3.conditional-writes");
    assert.equal(warned.status, "warn", table(withDynamo));
    assert.match(warned.summary, /writers that skip the lock/);
  },
);

s3Test("doctor fails a missing lock table and says how to create it", ["dynamodb"], async () => {
  await using fx = await s3Fixture();
  const checks = await doctor(fx.config({ dynamodb_table: uniqueName("gaib-missing") }));
  const t = check(checks, "dynamodb.table");
  assert.equal(t.status, "fail", table(checks));
  assert.match(t.summary, /does not exist/);
  assert.match(t.fix!, /"gaib-state bootstrap"/);
  assert.equal(check(checks, "dynamodb.conditional-put").status, "skipped");
  assert.equal(check(checks, "s3.bucket").status, "ok");
});

s3Test(
  "doctor fails a lock table with the wrong key schema, and bootstrap leaves it alone",
  ["dynamodb"],
  async () => {
    await using fx = await s3Fixture();
    const name = uniqueName("gaib-wrongkey");
    await fx.dynamoClient!.send(
      new CreateTableCommand({
        TableName: name,
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    try {
      const config = fx.config({ dynamodb_table: name });
      const checks = await doctor(config);
      const t = check(checks, "dynamodb.table");
      assert.equal(t.status, "fail", table(checks));
      assert.match(t.summary, /id HASH/);
      assert.match(t.fix!, /cannot be changed/);
      const report = await bootstrap(config);
      const step = report.steps.find((s) => s.resource === `DynamoDB table ${name}`);
      assert.equal(step?.action, "failed", actions(report.steps));
      const still = await fx.dynamoClient!.send(new DescribeTableCommand({ TableName: name }));
      assert.equal(still.Table?.KeySchema?.[0].AttributeName, "id");
    } finally {
      await fx.dynamoClient!.send(new DeleteTableCommand({ TableName: name })).catch(() => {});
    }
  },
);

Deno.test("doctor fails an unreachable endpoint (a closed loopback port) and skips what needs it", async () => {
  const port = freePort();
  const config: S3BackendConfig = {
    type: "s3",
    bucket: "gaib-nowhere",
    key: "terraform.tfstate",
    region: "us-east-1",
    endpoint: `http://127.0.0.1:${port}`,
    force_path_style: true,
    max_retries: 0,
    dynamodb_table: "gaib-nowhere",
  };
  const env = {
    id: Deno.env.get("AWS_ACCESS_KEY_ID"),
    secret: Deno.env.get("AWS_SECRET_ACCESS_KEY"),
  };
  Deno.env.set("AWS_ACCESS_KEY_ID", "test");
  Deno.env.set("AWS_SECRET_ACCESS_KEY", "test");
  try {
    const checks = await doctor(config);
    const bucket = check(checks, "s3.bucket");
    assert.equal(bucket.status, "fail", table(checks));
    assert.match(bucket.summary, new RegExp(`cannot reach S3 at http://127.0.0.1:${port}`));
    assert.match(bucket.fix!, /endpoint/);
    for (const name of ["s3.permissions", "s3.conditional-writes", "clock"]) {
      assert.equal(check(checks, name).status, "skipped", table(checks));
    }
    assert.equal(check(checks, "dynamodb.table").status, "fail");
    const report = await bootstrap(config);
    assert.equal(report.steps[0].action, "failed", actions(report.steps));
  } finally {
    if (env.id) Deno.env.set("AWS_ACCESS_KEY_ID", env.id);
    if (env.secret) Deno.env.set("AWS_SECRET_ACCESS_KEY", env.secret);
  }
});

s3Test("doctor fails bad credentials without showing them", [], async () => {
  await using fx = await s3Fixture();
  const secret = "doctor-canary-secret-0123456789";
  const id = "AKIADOCTORCANARY0001";
  Deno.env.set("AWS_ACCESS_KEY_ID", id);
  Deno.env.set("AWS_SECRET_ACCESS_KEY", secret);
  try {
    const checks = await doctor(fx.config({ dynamodb_table: undefined, use_lockfile: true }));
    assert.equal(check(checks, "config.credentials").status, "ok");
    const bucket = check(checks, "s3.bucket");
    assert.equal(bucket.status, "fail", table(checks));
    assert.match(bucket.summary, /InvalidAccessKeyId|denied access/);
    assert.match(bucket.fix!, /credentials/);
    const text = JSON.stringify(checks);
    assert.ok(!text.includes(secret) && !text.includes(id), "a credential was shown");
  } finally {
    Deno.env.set("AWS_ACCESS_KEY_ID", TEST_CREDENTIALS.accessKeyId);
    Deno.env.set("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIALS.secretAccessKey);
  }
});

s3Test(
  "doctor judges clock skew against a quarter of the lease, with the clock passed in",
  [],
  async () => {
    await using fx = await s3Fixture();
    const config = fx.config({ dynamodb_table: undefined, use_lockfile: true });
    const ok = await doctor(config, { clock: () => Date.now() });
    assert.equal(check(ok, "clock").status, "ok", table(ok));
    const ahead = await doctor(config, { clock: () => Date.now() + 60_000 });
    const clock = check(ahead, "clock");
    assert.equal(clock.status, "fail", table(ahead));
    assert.match(clock.summary, /ahead of s3's/);
    assert.match(clock.fix!, /NTP/);
    // 5 s is within a quarter of 30 s, not of 10 s.
    const five = () => Date.now() - 5_000;
    assert.equal(check(await doctor(config, { clock: five }), "clock").status, "ok");
    const short = check(await doctor(config, { clock: five, leaseMs: 10_000 }), "clock");
    assert.equal(short.status, "fail");
    assert.match(short.summary, /behind s3's/);
  },
);

Deno.test("doctor refuses an invalid config with one failed config check", async () => {
  const checks = await doctor({ type: "s3", bucket: "UPPER", key: "k" } as S3BackendConfig);
  assert.equal(checks.length, 1);
  assert.equal(checks[0].name, "config.valid");
  assert.equal(checks[0].status, "fail");
  assert.match(checks[0].summary, /bucket/);
});

Deno.test("doctor on a local root: fsync, rename and flock work; modes and leftovers are flagged and bootstrap --fix closes them", async () => {
  await using dir = await tempDir();
  const root = `${dir.path}/.gaib`;
  const missing = await doctor({ type: "local", path: root });
  assert.equal(check(missing, "local.root").status, "warn");
  assert.match(check(missing, "local.root").fix!, /"gaib-state bootstrap"/);
  const created = await bootstrap({ type: "local", path: root });
  assert.equal(created.steps[0].action, "created");
  assert.equal((await Deno.stat(root)).mode! & 0o777, 0o700);
  for (const c of created.checks) assert.notEqual(c.status, "fail", table(created.checks));
  assert.equal(check(created.checks, "local.filesystem").status, "ok");
  await Deno.mkdir(`${root}/workspaces/default`, { recursive: true, mode: 0o755 });
  await Deno.chmod(`${root}/workspaces/default`, 0o755);
  await Deno.writeTextFile(`${root}/workspaces/default/terraform.tfstate`, "{}", { mode: 0o644 });
  await Deno.chmod(`${root}/workspaces/default/terraform.tfstate`, 0o644);
  const temp = `${root}/workspaces/default/.tmp-state-orphan`;
  await Deno.writeTextFile(temp, "x", { mode: 0o600 });
  const old = new Date(Date.now() - 60_000);
  await Deno.utime(temp, old, old);
  const flagged = await doctor({ type: "local", path: root });
  assert.equal(check(flagged, "local.modes").status, "warn", table(flagged));
  assert.match(check(flagged, "local.modes").summary, /terraform\.tfstate \(0644\)/);
  assert.equal(check(flagged, "local.leftovers").status, "warn");
  assert.match(check(flagged, "local.leftovers").fix!, /rm -- /);
  const without = await bootstrap({ type: "local", path: root });
  assert.equal(without.steps[0].action, "needs-fix");
  assert.equal(
    (await Deno.stat(`${root}/workspaces/default/terraform.tfstate`)).mode! & 0o777,
    0o644,
  );
  const fixed = await bootstrap({ type: "local", path: root }, { fix: true });
  assert.equal(fixed.steps[0].action, "changed", actions(fixed.steps));
  assert.equal(check(fixed.checks, "local.modes").status, "ok", table(fixed.checks));
  assert.equal(
    (await Deno.stat(`${root}/workspaces/default/terraform.tfstate`)).mode! & 0o777,
    0o600,
  );
  assert.equal((await Deno.stat(`${root}/workspaces/default`)).mode! & 0o777, 0o700);
  const probes = [...Deno.readDirSync(root)].filter((e) => e.name.startsWith(".gaib-doctor"));
  assert.deepEqual(probes, [], "probe files left behind");
});

const MOUNTABLE = canMount();

Deno.test({
  name: "doctor on tmpfs warns that states are lost at reboot, and on a read-only mount fails",
  ignore: !MOUNTABLE,
  async fn() {
    await using mount = await mountTmpfs(1024);
    const root = `${mount.path}/state`;
    await Deno.mkdir(root, { mode: 0o700 });
    const tmpfs = await doctor({ type: "local", path: root });
    assert.equal(check(tmpfs, "local.filesystem").status, "ok", table(tmpfs));
    const m = check(tmpfs, "local.mount");
    assert.equal(m.status, "warn");
    assert.match(m.summary, /on tmpfs .*lost when the machine restarts/);
    mount.readOnly();
    const ro = await doctor({ type: "local", path: root });
    const fs = check(ro, "local.filesystem");
    assert.equal(fs.status, "fail", table(ro));
    assert.match(fs.summary, /read-only/);
    assert.match(fs.fix!, /writable file system/);
    assert.equal(check(ro, "local.mount").status, "fail");
    assert.match(check(ro, "local.mount").summary, /read-only/);
    const report = await bootstrap({ type: "local", path: `${root}/sub` });
    assert.equal(report.steps[0].action, "failed", actions(report.steps));
  },
});
if (!MOUNTABLE) {
  const why = "needs to mount tmpfs (root): the read-only and tmpfs cases cannot be made otherwise";
  if (Deno.env.get("CI") === "true") {
    Deno.test("doctor on tmpfs and read-only mounts", () => {
      throw new Error(`${why}; under CI=true a skip fails`);
    });
  } else console.warn(`skip "doctor on tmpfs and read-only mounts": ${why}`);
}
