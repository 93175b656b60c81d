/**
 * `gaib-state bootstrap` for S3: the bucket, its versioning, default encryption, public
 * access block and TLS-only policy, and the DynamoDB lock table.
 *
 * Some S3-compatible stores accept a setting and then break writing (measured on Ceph RGW
 * 16.2: after PutPublicAccessBlock every PutObject is denied; with versioning on, If-Match is
 * refused and If-None-Match ignored; PutBucketEncryption is refused). So the write cycle the
 * backend depends on in the configured lock mode is probed on a temporary object before the
 * first change and after each one; a change after which something that worked before fails is
 * undone and reported as a warning with the reason. A bucket is never left unwritable, and
 * objects are never touched. Versioning on a store that then refuses If-Match stays on with
 * DynamoDB locks (the backend writes there under the lock alone), with a warning saying so.
 *
 * @module
 */

import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteBucketEncryptionCommand,
  DeleteBucketPolicyCommand,
  DeletePublicAccessBlockCommand,
  GetBucketEncryptionCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  type PublicAccessBlockConfiguration,
  PutBucketEncryptionCommand,
  PutBucketPolicyCommand,
  PutBucketVersioningCommand,
  PutPublicAccessBlockCommand,
} from "@aws-sdk/client-s3";
import type { S3BackendConfig } from "../config.ts";
import type { BootstrapContext, BootstrapStep } from "../_doctor_types.ts";
import { describeError, errorName, httpStatus } from "./_aws_clients.ts";
import { probeWrites, s3EndpointOf, type S3Tools, s3Tools, type WriteProbe } from "./_s3_probe.ts";
import { plainHttp } from "../_url.ts";

type Ctx = BootstrapContext<S3BackendConfig>;

const FIX = 'run "gaib-state bootstrap --fix" to change it';
const ALL_BLOCKED: PublicAccessBlockConfiguration = {
  BlockPublicAcls: true,
  IgnorePublicAcls: true,
  BlockPublicPolicy: true,
  RestrictPublicBuckets: true,
};

function unsupported(error: unknown): boolean {
  const status = httpStatus(error);
  return status === 501 || status === 405 || errorName(error) === "NotImplemented";
}

/** A bucket setting: how to read it, set it and undo it. */
interface Setting {
  /** `versioning of bucket b`. */
  resource: string;
  /** The doctor check that flags it (for `--fix`). */
  check: string;
  /** `null` when it is as wanted; else what it is now (or `unsupported: why`). */
  read(): Promise<
    { wanted: true; now: string } | { wanted: false; now: string; unsupported?: boolean }
  >;
  /** What setting it does, for messages. */
  change: string;
  apply(): Promise<unknown>;
  undo(): Promise<unknown>;
  /**
   * How to undo it on a bucket this run created, when `undo` cannot bring back what was
   * there before; resolves to what was done, for the message.
   */
  undoCreated?(): Promise<string>;
  /** What to do when the store refuses it. */
  refusedFix?: string;
}

/** Applies a setting when allowed, probing writes after it and undoing it if it broke them. */
async function applySetting(
  ctx: Ctx,
  tools: S3Tools,
  setting: Setting,
  created: boolean,
  baseline: WriteProbe,
): Promise<void> {
  const { resource } = setting;
  const step = (s: Omit<BootstrapStep, "resource">) => ctx.step({ resource, ...s });
  let current;
  try {
    current = await setting.read();
  } catch (error) {
    step({
      action: "failed",
      status: "warn",
      message: `cannot read it (${describeError(error)})`,
      fix: "check that the credentials may read and change the bucket's settings",
    });
    return;
  }
  if (current.wanted) return step({ action: "unchanged", status: "ok", message: current.now });
  if (current.unsupported) {
    return step({ action: "skipped", status: "warn", message: current.now });
  }
  if (!created && !ctx.flagged(setting.check)) {
    return step({
      action: "unchanged",
      status: "ok",
      message: `${current.now}; doctor does not flag it (${setting.check})`,
    });
  }
  if (!created && !ctx.fix) {
    return step({
      action: "needs-fix",
      status: "warn",
      message: `${current.now}; an existing bucket's settings are changed only with --fix`,
      fix: FIX,
    });
  }
  if (ctx.dryRun) {
    return step({ action: "would-change", status: "ok", message: `would set ${setting.change}` });
  }
  try {
    await setting.apply();
  } catch (error) {
    return step({
      action: "refused",
      status: "warn",
      message: `the store refused ${setting.change} (${describeError(error)}); left ${current.now}`,
      fix: setting.refusedFix,
    });
  }
  const newFailures = (probe: WriteProbe) =>
    probe.failures.filter((f) => !baseline.failures.some((b) => f.startsWith(b.split(" (")[0])));
  const after = await probeWrites(tools, ctx.config);
  const broken = newFailures(after);
  const nowRefused = after.conditionalWrites === "refused" &&
    baseline.conditionalWrites !== "refused";
  if (broken.length === 0 && nowRefused) {
    return step({
      action: "changed",
      status: "warn",
      message: `set ${setting.change}; since then this store refuses every If-Match in the ` +
        "bucket (Ceph RGW does so in a versioned bucket), so gaib-state writes it only under " +
        "the DynamoDB lock, without a condition: writes without the lock are refused, and " +
        "the lock alone keeps writers apart",
      fix: "none needed with DynamoDB locks: keep every writer on the lock (never " +
        "-lock=false), and never set use_lockfile for this bucket",
    });
  }
  if (broken.length === 0) {
    return step({ action: "changed", status: "ok", message: `set ${setting.change}` });
  }
  let how = "";
  try {
    if (created && setting.undoCreated) how = await setting.undoCreated();
    else await setting.undo();
  } catch (error) {
    return step({
      action: "failed",
      status: "fail",
      message: `after ${setting.change} the store broke writing (${broken.join("; ")}), and ` +
        `undoing it failed (${describeError(error)})`,
      fix: `undo ${setting.change} on bucket "${tools.bucket}" by hand`,
    });
  }
  const still = newFailures(await probeWrites(tools, ctx.config));
  step({
    action: "undone",
    status: still.length ? "fail" : "warn",
    message: `after ${setting.change} this store broke writing (${broken.join("; ")}), so it ` +
      `was undone${how}${still.length ? `, but writing still fails: ${still.join("; ")}` : ""}`,
    fix: still.length
      ? `check bucket "${tools.bucket}" by hand`
      : "none: this store cannot keep this setting without breaking writes (on AWS S3 it " +
        "works)",
  });
}

async function createBucket(ctx: Ctx, tools: S3Tools): Promise<boolean> {
  const region = ctx.config.region ?? await tools.clients.s3.config.region();
  // us-east-1 is the one region that takes no location constraint (and refuses it).
  const where = region && region !== "us-east-1"
    ? { CreateBucketConfiguration: { LocationConstraint: region as never } }
    : {};
  await tools.clients.s3.send(new CreateBucketCommand({ Bucket: tools.bucket, ...where }));
  return true;
}

/** Whether the bucket exists; `undefined` (after recording a failed step) when unknown. */
async function bucketExists(ctx: Ctx, tools: S3Tools, resource: string) {
  try {
    await tools.clients.s3.send(new HeadBucketCommand({ Bucket: tools.bucket }));
    return true;
  } catch (error) {
    if (httpStatus(error) === 404 || errorName(error) === "NoSuchBucket") return false;
    ctx.step({
      resource,
      action: "failed",
      status: "fail",
      message: `cannot reach the bucket at ${tools.clients.s3Endpoint} (${describeError(error)})`,
      fix: 'see "gaib-state doctor" for the cause',
    });
    return undefined;
  }
}

function settings(ctx: Ctx, tools: S3Tools): Setting[] {
  const s3 = tools.clients.s3;
  const Bucket = tools.bucket;
  const kms = ctx.config.kms_key_id;
  let previousBlock: PublicAccessBlockConfiguration | undefined;
  return [
    {
      resource: `versioning of bucket ${Bucket}`,
      check: "s3.versioning",
      async read() {
        const out = await s3.send(new GetBucketVersioningCommand({ Bucket }));
        return out.Status === "Enabled" ? { wanted: true, now: "versioning is on" } : {
          wanted: false,
          now: `versioning is ${out.Status === "Suspended" ? "suspended" : "off"}`,
        };
      },
      change: "versioning on",
      apply: () =>
        s3.send(
          new PutBucketVersioningCommand({
            Bucket,
            VersioningConfiguration: { Status: "Enabled" },
          }),
        ),
      // A bucket cannot go back to unversioned; suspended keeps no new versions.
      undo: () =>
        s3.send(
          new PutBucketVersioningCommand({
            Bucket,
            VersioningConfiguration: { Status: "Suspended" },
          }),
        ),
      // A suspended bucket is no unversioned one: Ceph RGW 16.2 then refuses If-None-Match on
      // a deleted key (the lockfile after every unlock). One this run created is still empty
      // (every probe version is removed), so it is made again instead.
      async undoCreated() {
        try {
          await s3.send(new DeleteBucketCommand({ Bucket }));
        } catch {
          await this.undo();
          return " (versioning suspended: the bucket could not be created again)";
        }
        await createBucket(ctx, tools);
        return " (the bucket, still empty, was created again without versioning)";
      },
    },
    {
      resource: `default encryption of bucket ${Bucket}`,
      check: "s3.encryption",
      async read() {
        try {
          const out = await s3.send(new GetBucketEncryptionCommand({ Bucket }));
          const rules = out.ServerSideEncryptionConfiguration?.Rules ?? [];
          const algorithms = rules.map((r) => r.ApplyServerSideEncryptionByDefault?.SSEAlgorithm)
            .filter(Boolean);
          if (algorithms.length) {
            return { wanted: true, now: `default encryption ${algorithms.join(", ")}` };
          }
        } catch (error) {
          if (unsupported(error)) {
            return {
              wanted: false,
              unsupported: true,
              now: "the store has no default-encryption API",
            };
          }
          if (errorName(error) !== "ServerSideEncryptionConfigurationNotFoundError") throw error;
        }
        return { wanted: false, now: "no default encryption" };
      },
      change: kms ? `default encryption SSE-KMS with key ${kms}` : "default encryption SSE-S3",
      refusedFix: kms || ctx.config.encrypt
        ? "nothing to do: every write asks for encryption itself (backend." +
          `${kms ? "kms_key_id" : "encrypt"})`
        : "set backend.encrypt: true (or kms_key_id), so that every write asks for encryption",
      apply: () =>
        s3.send(
          new PutBucketEncryptionCommand({
            Bucket,
            ServerSideEncryptionConfiguration: {
              Rules: [{
                ApplyServerSideEncryptionByDefault: kms
                  ? { SSEAlgorithm: "aws:kms", KMSMasterKeyID: kms }
                  : { SSEAlgorithm: "AES256" },
              }],
            },
          }),
        ),
      undo: () => s3.send(new DeleteBucketEncryptionCommand({ Bucket })),
    },
    {
      resource: `public access block of bucket ${Bucket}`,
      check: "s3.public-access",
      async read() {
        try {
          const out = await s3.send(new GetPublicAccessBlockCommand({ Bucket }));
          previousBlock = out.PublicAccessBlockConfiguration;
          const c = previousBlock ?? {};
          if (
            c.BlockPublicAcls && c.IgnorePublicAcls && c.BlockPublicPolicy &&
            c.RestrictPublicBuckets
          ) {
            return { wanted: true, now: "public access is blocked" };
          }
          return { wanted: false, now: "public access is not fully blocked" };
        } catch (error) {
          if (unsupported(error)) {
            return {
              wanted: false,
              unsupported: true,
              now: "the store has no public access block API",
            };
          }
          if (errorName(error) !== "NoSuchPublicAccessBlockConfiguration") throw error;
          return { wanted: false, now: "no public access block" };
        }
      },
      change: "a public access block (all four settings)",
      apply: () =>
        s3.send(
          new PutPublicAccessBlockCommand({ Bucket, PublicAccessBlockConfiguration: ALL_BLOCKED }),
        ),
      undo: () => {
        const before = previousBlock ?? {};
        const anyOn = Object.values(before).some((v) => v === true);
        return anyOn
          ? s3.send(
            new PutPublicAccessBlockCommand({ Bucket, PublicAccessBlockConfiguration: before }),
          )
          : s3.send(new DeletePublicAccessBlockCommand({ Bucket }));
      },
    },
  ];
}

/** The policy that denies every request made without TLS. */
function tlsPolicy(bucket: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{
      Sid: "DenyInsecureTransport",
      Effect: "Deny",
      Principal: "*",
      Action: "s3:*",
      Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`],
      Condition: { Bool: { "aws:SecureTransport": "false" } },
    }],
  });
}

function tlsSetting(tools: S3Tools): Setting {
  const s3 = tools.clients.s3;
  const Bucket = tools.bucket;
  return {
    resource: `TLS-only policy of bucket ${Bucket}`,
    check: "s3.tls-only",
    async read() {
      try {
        await s3.send(new GetBucketPolicyCommand({ Bucket }));
        // An existing policy is never changed: merging statements is the owner's call.
        return {
          wanted: false,
          unsupported: true,
          now: "the bucket has a policy, left as it is; add a statement denying s3:* when " +
            "aws:SecureTransport is false if it has none",
        };
      } catch (error) {
        if (unsupported(error)) {
          return { wanted: false, unsupported: true, now: "the store has no bucket policy API" };
        }
        if (errorName(error) !== "NoSuchBucketPolicy") throw error;
        return { wanted: false, now: "no bucket policy" };
      }
    },
    change: "a policy denying requests without TLS",
    apply: () => s3.send(new PutBucketPolicyCommand({ Bucket, Policy: tlsPolicy(Bucket) })),
    undo: () => s3.send(new DeleteBucketPolicyCommand({ Bucket })),
  };
}

async function bootstrapTable(ctx: Ctx, ddb: DynamoDBClient, table: string): Promise<void> {
  const resource = `DynamoDB table ${table}`;
  try {
    const out = await ddb.send(new DescribeTableCommand({ TableName: table }));
    const keys = (out.Table?.KeySchema ?? []).map((k) => `${k.AttributeName} ${k.KeyType}`);
    const type = out.Table?.AttributeDefinitions?.find((a) => a.AttributeName === "LockID")
      ?.AttributeType;
    if (keys.length === 1 && keys[0] === "LockID HASH" && type === "S") {
      return ctx.step({
        resource,
        action: "unchanged",
        status: "ok",
        message: "exists, key LockID (String)",
      });
    }
    return ctx.step({
      resource,
      action: "failed",
      status: "fail",
      message: `exists with the key schema ${keys.join(", ") || "(none)"}, not LockID (String)`,
      fix: "a table's key cannot be changed (and bootstrap never deletes): set " +
        'backend.dynamodb_table to a new name and run "gaib-state bootstrap" again',
    });
  } catch (error) {
    if (errorName(error) !== "ResourceNotFoundException") {
      return ctx.step({
        resource,
        action: "failed",
        status: "fail",
        message: `cannot read it (${describeError(error)})`,
        fix: 'see "gaib-state doctor" for the cause',
      });
    }
  }
  if (ctx.dryRun) {
    return ctx.step({
      resource,
      action: "would-create",
      status: "ok",
      message: "partition key LockID (String), on-demand billing",
    });
  }
  try {
    await ddb.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [{ AttributeName: "LockID", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "LockID", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    // A new table takes seconds to a minute on AWS; it takes no lock before it is ACTIVE.
    const deadline = Date.now() + 300_000;
    for (;;) {
      const out = await ddb.send(new DescribeTableCommand({ TableName: table }));
      if (out.Table?.TableStatus === "ACTIVE") break;
      if (Date.now() > deadline) throw new Error("not ACTIVE after 5 minutes");
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    ctx.step({
      resource,
      action: "created",
      status: "ok",
      message: "partition key LockID (String), on-demand billing; ACTIVE",
    });
  } catch (error) {
    ctx.step({
      resource,
      action: "failed",
      status: "fail",
      message: `could not create it (${describeError(error)})`,
      fix: "check that the credentials may create tables (dynamodb:CreateTable), or create it " +
        'by hand with the partition key "LockID" (String)',
    });
  }
}

/** Creates the bucket, its settings and the lock table. */
export async function bootstrapS3(ctx: Ctx): Promise<void> {
  const tools = s3Tools(ctx);
  const resource = `bucket ${tools.bucket}`;
  const exists = await bucketExists(ctx, tools, resource);
  if (exists === undefined) return;
  let created = false;
  const plain = plainHttp(s3EndpointOf(ctx.config));
  const all = [...settings(ctx, tools), ...(plain === "no" ? [tlsSetting(tools)] : [])];
  if (!exists) {
    if (ctx.dryRun) {
      ctx.step({
        resource,
        action: "would-create",
        status: "ok",
        message: `at ${tools.clients.s3Endpoint}`,
      });
      for (const setting of all) {
        ctx.step({
          resource: setting.resource,
          action: "would-change",
          status: "ok",
          message: `would set ${setting.change}`,
        });
      }
    } else {
      try {
        created = await createBucket(ctx, tools);
      } catch (error) {
        ctx.step({
          resource,
          action: "failed",
          status: "fail",
          message: `could not create it (${describeError(error)})`,
          fix: errorName(error) === "BucketAlreadyExists"
            ? "bucket names are global: choose another backend.bucket"
            : errorName(error) === "InvalidLocationConstraint"
            ? "the store does not serve that region: set backend.region to one it does (Ceph " +
              "RGW: its zonegroup's name)"
            : "check that the credentials may create buckets (s3:CreateBucket) and backend.region",
        });
        return;
      }
    }
  }
  if (exists || created) {
    const baseline = await probeWrites(tools, ctx.config);
    const failing = baseline.failures;
    if (created && failing.length) {
      // A bucket nobody can write is no use: remove it again (it is empty).
      await tools.clients.s3.send(new DeleteBucketCommand({ Bucket: tools.bucket })).catch(
        () => {},
      );
      ctx.step({
        resource,
        action: "undone",
        status: "fail",
        message: `created, but writing to it failed (${failing.join("; ")}), so it was removed`,
        fix: 'see "gaib-state doctor" for the cause',
      });
      return;
    }
    ctx.step({
      resource,
      action: created ? "created" : "unchanged",
      status: failing.length ? "warn" : "ok",
      message: (created ? `created at ${tools.clients.s3Endpoint}` : "exists") +
        (failing.length ? `; writing already fails before any change: ${failing.join("; ")}` : ""),
      ...(failing.length ? { fix: 'see "gaib-state doctor" for the cause' } : {}),
    });
    for (const setting of all) await applySetting(ctx, tools, setting, created, baseline);
  }
  if (plain !== "no") {
    ctx.step({
      resource: `TLS-only policy of bucket ${tools.bucket}`,
      action: "skipped",
      status: plain === "loopback" ? "ok" : "warn",
      message:
        `the endpoint ${tools.clients.s3Endpoint} is plain HTTP: a policy denying requests ` +
        "without TLS would deny every request",
      ...(plain === "remote" ? { fix: "use an https:// endpoint" } : {}),
    });
  }
  const ddb = tools.clients.dynamodb;
  if (ddb && ctx.config.dynamodb_table) await bootstrapTable(ctx, ddb, ctx.config.dynamodb_table);
}
