/**
 * The S3 backend's doctor checks (and, from `_s3_bootstrap.ts`, its bootstrap). Each check is
 * a named function; the list at the end is the order they run in. Probes that write use
 * temporary keys under `.gaib-doctor/` (and items `<bucket>/.gaib-doctor/…` in the lock
 * table) and remove them again; the state and lock keys themselves are only read.
 *
 * @module
 */

import {
  DeleteItemCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import {
  GetBucketEncryptionCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
} from "@aws-sdk/client-s3";
import type { S3BackendConfig } from "../config.ts";
import {
  type BackendDoctor,
  type CheckOutcome,
  type DoctorCheckDefinition,
  type DoctorContext,
  result,
} from "../_doctor_types.ts";
import { describeError, errorName, httpStatus, isNetworkError } from "./_aws_clients.ts";
import { S3KeyLayout } from "./_s3_keys.ts";
import {
  type ConditionalBehaviour,
  lockMode,
  probeConditionals,
  probeKey,
  putProbe,
  readProbe,
  removeProbe,
  s3EndpointOf,
  s3Tools,
} from "./_s3_probe.ts";
import { bootstrapS3 } from "./_s3_bootstrap.ts";
import { judgeClockSkew } from "../_doctor_clock.ts";
import { plainHttp } from "../_url.ts";

type Ctx = DoctorContext<S3BackendConfig>;
type Check = DoctorCheckDefinition<S3BackendConfig>;

const ACCESS_NAMES = new Set([
  "AccessDenied",
  "AccessDeniedException",
  "Forbidden",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "UnrecognizedClientException",
  "ExpiredToken",
  "ExpiredTokenException",
  "InvalidClientTokenId",
  "InvalidToken",
]);

/** Whether an SDK error is a refusal of access (bad credentials or a missing permission). */
export function isAccessError(error: unknown): boolean {
  return ACCESS_NAMES.has(errorName(error)) || httpStatus(error) === 403;
}

function unsupported(error: unknown): boolean {
  const status = httpStatus(error);
  return status === 501 || status === 405 || errorName(error) === "NotImplemented" ||
    errorName(error) === "MethodNotAllowed";
}

/** The endpoint a service's requests go to, for messages (no user info). */
function endpointOf(ctx: Ctx, service: "s3" | "dynamodb"): string {
  const clients = s3Tools(ctx).clients;
  return service === "s3" ? clients.s3Endpoint : clients.dynamodbEndpoint;
}

/** A failure to reach a service or to be let in, as a check result. */
function accessProblem(ctx: Ctx, service: "s3" | "dynamodb", error: unknown): CheckOutcome {
  const name = service === "s3" ? "S3" : "DynamoDB";
  const endpoint = endpointOf(ctx, service);
  if (isNetworkError(error)) {
    return result(
      "fail",
      `cannot reach ${name} at ${endpoint} (${errorName(error)})`,
      `check that the service is up and that backend.endpoints.${service} (or ` +
        "backend.endpoint) names it",
    );
  }
  const code = errorName(error);
  if (code === "InvalidAccessKeyId" || code === "UnrecognizedClientException") {
    return result(
      "fail",
      `${name} at ${endpoint} does not know the access key (${describeError(error)})`,
      "check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or " +
        "backend.profile)",
    );
  }
  if (code === "SignatureDoesNotMatch" || code === "InvalidSignatureException") {
    return result(
      "fail",
      `${name} at ${endpoint} refused the request's signature (${describeError(error)}): ` +
        "the secret key is wrong",
      "check AWS_SECRET_ACCESS_KEY (or the profile's aws_secret_access_key)",
    );
  }
  if (isAccessError(error)) {
    return result(
      "fail",
      `${name} at ${endpoint} denied access (${describeError(error)})`,
      "check the credentials and that their IAM policy allows what the README's minimal " +
        "policy lists",
    );
  }
  return result("fail", `${name} at ${endpoint} failed (${describeError(error)})`);
}

/** `config.credentials`: the AWS SDK finds credentials (they are never shown). */
const credentialsCheck: Check = {
  name: "config.credentials",
  async run(ctx) {
    const provider = s3Tools(ctx).clients.s3.config.credentials;
    try {
      const credentials = await provider();
      const from: string[] = [];
      const env = (name: string) => {
        try {
          return Deno.env.get(name);
        } catch {
          return undefined;
        }
      };
      if (ctx.config.profile) from.push(`profile "${ctx.config.profile}" (backend.profile)`);
      else if (env("AWS_PROFILE")) from.push(`profile "${env("AWS_PROFILE")}" (AWS_PROFILE)`);
      else if (env("AWS_ACCESS_KEY_ID")) from.push("the environment (AWS_ACCESS_KEY_ID)");
      const expires = credentials.expiration
        ? `, expiring ${credentials.expiration.toISOString()}`
        : "";
      const session = credentials.sessionToken ? " with a session token" : "";
      return result(
        "ok",
        `found${session}, from ${from[0] ?? "the AWS SDK's default chain"}${expires} ` +
          "(values never shown)",
      );
    } catch (error) {
      return result(
        "fail",
        `no AWS credentials found (${errorName(error)})`,
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or backend.profile, or " +
          "run where an instance role or SSO session provides them",
      );
    }
  },
};

/** `s3.bucket`: the bucket exists and the credentials may use it. */
const bucketCheck: Check = {
  name: "s3.bucket",
  requires: ["config.credentials"],
  async run(ctx) {
    const tools = s3Tools(ctx);
    try {
      await tools.clients.s3.send(new HeadBucketCommand({ Bucket: tools.bucket }));
      return result("ok", `bucket "${tools.bucket}" answers at ${tools.clients.s3Endpoint}`);
    } catch (error) {
      const status = httpStatus(error);
      if (status === 404 || errorName(error) === "NoSuchBucket") {
        return result(
          "fail",
          `bucket "${tools.bucket}" does not exist at ${tools.clients.s3Endpoint}`,
          'create it with "gaib-state bootstrap", or correct backend.bucket',
        );
      }
      if (status === 301 || errorName(error) === "PermanentRedirect") {
        return result(
          "fail",
          `bucket "${tools.bucket}" is in another region than ${ctx.config.region ?? "the SDK's"}`,
          "set backend.region to the bucket's region",
        );
      }
      if (status === 403) {
        // HEAD answers carry no error code: ask again with a request whose answer has one.
        try {
          await tools.clients.s3.send(
            new ListObjectsV2Command({ Bucket: tools.bucket, MaxKeys: 1 }),
          );
        } catch (again) {
          return accessProblem(ctx, "s3", again);
        }
      }
      return accessProblem(ctx, "s3", error);
    }
  },
};

/** `s3.permissions`: every S3 call the backend makes, probed. */
const permissionsCheck: Check = {
  name: "s3.permissions",
  requires: ["s3.bucket"],
  async run(ctx) {
    const tools = s3Tools(ctx);
    const layout = new S3KeyLayout(
      ctx.config.bucket,
      ctx.config.key,
      ctx.config.workspace_key_prefix,
    );
    const stateKey = layout.stateKey(ctx.workspace);
    const denied: string[] = [];
    const other: string[] = [];
    const attempt = async (action: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
        return true;
      } catch (error) {
        // A missing object (404) or an empty one (416 for its first byte) was still readable.
        const status = httpStatus(error);
        if ((status === 404 || status === 416) && action.startsWith("s3:GetObject")) return true;
        (isAccessError(error) ? denied : other).push(`${action} (${describeError(error)})`);
        return false;
      }
    };
    const key = probeKey("permissions");
    const written = await attempt(
      `s3:PutObject on ${key}`,
      () => putProbe(tools, ctx.config, key, "{}"),
    );
    if (written) {
      await attempt(`s3:GetObject on ${key}`, async () => {
        if (await readProbe(tools, key) !== "{}") throw new Error("read back other bytes");
      });
    }
    await attempt(
      `s3:ListBucket (prefix ${layout.listing().prefix || "(none)"})`,
      () =>
        tools.clients.s3.send(
          new ListObjectsV2Command({
            Bucket: tools.bucket,
            Prefix: layout.listing().prefix,
            MaxKeys: 1,
          }),
        ),
    );
    const readKeys = [stateKey, ...ctx.config.use_lockfile ? [layout.lockfileKey(stateKey)] : []];
    for (const read of readKeys) {
      await attempt(
        `s3:GetObject on ${read}`,
        () =>
          tools.clients.s3.send(
            new GetObjectCommand({ Bucket: tools.bucket, Key: read, Range: "bytes=0-0" }),
          ).then(async (out) => await out.Body?.transformToByteArray()),
      );
    }
    let leftover: string | undefined;
    if (written) leftover = await removeProbe(tools, key);
    if (leftover && !leftover.startsWith("old versions")) {
      denied.push(`s3:DeleteObject: ${leftover}`);
    }
    const problems = [...denied, ...other];
    if (problems.length) {
      return result(
        "fail",
        `refused: ${problems.join("; ")}`,
        denied.length
          ? "allow these actions to the credentials (see the README's minimal IAM policy; " +
            'the doctor writes only under ".gaib-doctor/")'
          : undefined,
      );
    }
    const works = `PutObject, GetObject, ListObjectsV2 and DeleteObject work (probed on ` +
      `${PROBE_TEXT}, removed); ${readKeys.join(" and ")} readable`;
    if (leftover) return result("warn", `${works}; but ${leftover}`, "remove them by hand");
    return result("ok", works);
  },
};

const PROBE_TEXT = "a temporary object under .gaib-doctor/";

/** `s3.versioning`: without it an overwritten or deleted state is gone for good. */
const versioningCheck: Check = {
  name: "s3.versioning",
  requires: ["s3.bucket"],
  async run(ctx) {
    const tools = s3Tools(ctx);
    try {
      const out = await tools.clients.s3.send(
        new GetBucketVersioningCommand({ Bucket: tools.bucket }),
      );
      if (out.Status === "Enabled") return result("ok", "versioning is on");
      return result(
        "warn",
        `versioning is ${
          out.Status === "Suspended" ? "suspended" : "off"
        }: an overwritten or deleted state cannot be recovered (no history)`,
        'turn it on with "gaib-state bootstrap --fix" (on stores that refuse conditional ' +
          "writes in versioned buckets, such as Ceph RGW 16.2, it stays off unless locks use " +
          "DynamoDB)",
      );
    } catch (error) {
      if (unsupported(error)) return result("skipped", "the store has no versioning API");
      return result(
        "warn",
        `cannot read the versioning status (${describeError(error)})`,
        "allow s3:GetBucketVersioning to check it",
      );
    }
  },
};

/** `s3.encryption`: states hold secrets; they should be encrypted at rest. */
const encryptionCheck: Check = {
  name: "s3.encryption",
  requires: ["s3.bucket"],
  async run(ctx) {
    const tools = s3Tools(ctx);
    const perRequest = ctx.config.kms_key_id !== undefined
      ? `SSE-KMS with key ${ctx.config.kms_key_id} (backend.kms_key_id)`
      : ctx.config.encrypt
      ? "SSE-S3 (backend.encrypt)"
      : undefined;
    let rules: string[] = [];
    let problem: string | undefined;
    try {
      const out = await tools.clients.s3.send(
        new GetBucketEncryptionCommand({ Bucket: tools.bucket }),
      );
      rules = (out.ServerSideEncryptionConfiguration?.Rules ?? [])
        .map((rule) => rule.ApplyServerSideEncryptionByDefault)
        .filter((d) => d?.SSEAlgorithm)
        .map((d) => `${d!.SSEAlgorithm}${d!.KMSMasterKeyID ? ` (key ${d!.KMSMasterKeyID})` : ""}`);
    } catch (error) {
      if (unsupported(error)) problem = "the store has no default-encryption API";
      else if (errorName(error) !== "ServerSideEncryptionConfigurationNotFoundError") {
        problem = `cannot read the default encryption (${describeError(error)})`;
      }
    }
    if (rules.length) return result("ok", `default encryption: ${rules.join(", ")}`);
    if (perRequest) {
      return result(
        "ok",
        `no default encryption on the bucket${problem ? ` (${problem})` : ""}, but every ` +
          `write asks for ${perRequest}`,
      );
    }
    return result(
      "warn",
      `${problem ?? "no default encryption"}, and backend.encrypt and backend.kms_key_id are ` +
        "not set: states (which hold secrets) may be stored unencrypted",
      'set backend.encrypt: true (or kms_key_id), or run "gaib-state bootstrap --fix" to give ' +
        "the bucket a default",
    );
  },
};

/** `s3.public-access`: a block on public ACLs and policies. */
const publicAccessCheck: Check = {
  name: "s3.public-access",
  requires: ["s3.bucket"],
  async run(ctx) {
    const tools = s3Tools(ctx);
    try {
      const out = await tools.clients.s3.send(
        new GetPublicAccessBlockCommand({ Bucket: tools.bucket }),
      );
      const c = out.PublicAccessBlockConfiguration ?? {};
      const off = ([
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
      ] as const)
        .filter((k) => c[k] !== true);
      if (off.length === 0) return result("ok", "public access is blocked (all four settings)");
      return result(
        "warn",
        `public access is not fully blocked (${off.join(", ")} off): an ACL or a bucket policy ` +
          "could make states public",
        'run "gaib-state bootstrap --fix" (it is left off on stores that then deny every ' +
          "write, such as Ceph RGW 16.2)",
      );
    } catch (error) {
      if (unsupported(error)) return result("skipped", "the store has no public access block API");
      if (errorName(error) === "NoSuchPublicAccessBlockConfiguration") {
        return result(
          "warn",
          "no public access block: an ACL or a bucket policy could make states public",
          'run "gaib-state bootstrap --fix"',
        );
      }
      return result(
        "warn",
        `cannot read the public access block (${describeError(error)})`,
        "allow s3:GetBucketPublicAccessBlock to check it",
      );
    }
  },
};

/** Whether a bucket policy denies requests that are not made over TLS. */
export function deniesPlainHttp(policy: string): boolean {
  try {
    const doc = JSON.parse(policy) as { Statement?: unknown };
    const statements = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
    return statements.some((s) => {
      const st = s as { Effect?: string; Condition?: { Bool?: Record<string, unknown> } };
      const secure = st?.Condition?.Bool?.["aws:SecureTransport"];
      return st?.Effect === "Deny" && (secure === "false" || secure === false);
    });
  } catch {
    return false;
  }
}

/** `s3.tls-only`: a bucket policy that denies plain-HTTP requests. */
const tlsCheck: Check = {
  name: "s3.tls-only",
  requires: ["s3.bucket"],
  async run(ctx) {
    const endpoint = s3EndpointOf(ctx.config);
    const plain = plainHttp(endpoint);
    if (plain === "loopback") {
      return result(
        "skipped",
        "plain-HTTP endpoint on this machine: a TLS-only policy would deny every request",
      );
    }
    if (plain === "remote") {
      return result(
        "warn",
        `the endpoint ${endpointOf(ctx, "s3")} is plain HTTP: states (which hold secrets) cross ` +
          "the network unencrypted",
        "use an https:// endpoint",
      );
    }
    const tools = s3Tools(ctx);
    try {
      const out = await tools.clients.s3.send(new GetBucketPolicyCommand({ Bucket: tools.bucket }));
      if (out.Policy && deniesPlainHttp(out.Policy)) {
        return result("ok", "the bucket policy denies requests without TLS");
      }
      return result(
        "warn",
        "the bucket policy does not deny requests without TLS",
        'add a statement denying "s3:*" when "aws:SecureTransport" is "false" (bootstrap ' +
          "never changes an existing policy)",
      );
    } catch (error) {
      if (unsupported(error)) return result("skipped", "the store has no bucket policy API");
      if (errorName(error) === "NoSuchBucketPolicy") {
        return result(
          "warn",
          "no bucket policy denies requests without TLS",
          'run "gaib-state bootstrap --fix"',
        );
      }
      return result(
        "warn",
        `cannot read the bucket policy (${describeError(error)})`,
        "allow s3:GetBucketPolicy to check it",
      );
    }
  },
};

function describeBehaviour(b: ConditionalBehaviour): string[] {
  const right = b.conditionalWrites === "refused"
    ? "REFUSED in both quotings"
    : b.conditionalWrites === "honoured"
    ? "accepted"
    : "not judged (the object changed meanwhile: another writer?)";
  return [
    `If-None-Match: * on an existing key ${b.ifNoneMatchRefused ? "refused" : "IGNORED"}`,
    `If-Match with a wrong ETag ${b.wrongIfMatchRefused ? "refused" : "IGNORED"}`,
    `If-Match with the right ETag ${right}`,
    `DeleteObject with a wrong If-Match ${b.conditionalDeleteRefused ? "refused" : "ignored"}`,
    `If-None-Match: * on a deleted key ${b.recreateRefused ? "REFUSED" : "accepted"}`,
  ];
}

/** `s3.conditional-writes`: the store honours what the configured lock mode needs. */
const conditionalCheck: Check = {
  name: "s3.conditional-writes",
  requires: ["s3.permissions"],
  async run(ctx) {
    const tools = s3Tools(ctx);
    const { behaviour: b, leftover } = await probeConditionals(tools, ctx.config);
    const seen = describeBehaviour(b).join("; ") + (leftover ? `; ${leftover}` : "");
    const mode = lockMode(ctx.config);
    const versioned = ctx.results.get("s3.versioning")?.status === "ok";
    const useDynamo = "lock with DynamoDB instead: set backend.dynamodb_table (created by " +
      '"gaib-state bootstrap") and remove backend.use_lockfile';
    const problems: string[] = [];
    const fixes: string[] = [];
    let status: "ok" | "warn" | "fail" = "ok";
    const unsafe = !b.ifNoneMatchRefused || !b.wrongIfMatchRefused;
    const refusedIfMatch = b.conditionalWrites === "refused";
    if (unsafe && mode !== "dynamodb") {
      status = "fail";
      problems.push(
        (mode === "lockfile"
          ? "Lockfile locking (use_lockfile) needs these refusals: two processes could both " +
            "take the lock"
          : "Without a lock, conditional writes are all that keeps two writers apart") +
          (versioned && !b.ifNoneMatchRefused
            ? " (Ceph RGW 16.2 ignores If-None-Match in versioned buckets)"
            : ""),
      );
      fixes.push(useDynamo);
    } else if (unsafe && !refusedIfMatch) {
      status = "warn";
      problems.push(
        "The DynamoDB lock keeps locked writers apart, but writers that skip the lock can " +
          "overwrite each other's states unnoticed",
      );
      fixes.push(
        "always take the lock (every gaib-state command does), or use a store that honours " +
          "conditional writes",
      );
    }
    const other = versioned
      ? "use a new bucket without versioning on this store (suspending versioning does not " +
        "help: Ceph RGW then refuses to create a deleted key)"
      : "use a store that honours If-Match (AWS S3, MinIO, Ceph RGW without versioning)";
    if (refusedIfMatch && mode === "dynamodb") {
      // The backend's own rule (S3Backend.conditionalWrites): writes go under the lock alone.
      // Terraform sends no If-Match with a state (hashicorp/terraform
      // internal/backend/remote-state/s3/client.go:195-215), so it writes here under the lock.
      status = "warn";
      problems.push(
        "The store refuses If-Match even with the right ETag" +
          (versioned ? " (Ceph RGW 16.2 does this in versioned buckets)" : "") +
          ", so gaib-state writes states here only under the DynamoDB lock, without a " +
          "condition: library writes without the lock are refused, and the lock alone keeps " +
          "writers apart (Terraform, which sends no condition with a state, relies on it too)",
      );
      fixes.push(
        "none needed while every writer takes the lock (never -lock=false); for conditional " +
          `writes as well, ${other}`,
      );
    } else if (refusedIfMatch) {
      status = "fail";
      problems.push(
        "The store refuses If-Match even with the right ETag" +
          (versioned ? " (Ceph RGW 16.2 does this in versioned buckets)" : "") +
          ", so gaib-state refuses to replace a state here " +
          (mode === "lockfile" ? "with lockfile locking" : "without a DynamoDB lock"),
      );
      fixes.push(useDynamo, other);
    }
    if (b.recreateRefused) {
      // The lockfile is created so after every unlock, and a state after its deletion.
      if (mode === "lockfile") status = "fail";
      else if (status === "ok") status = "warn";
      problems.push(
        "The store refuses to create a key that was deleted" +
          (ctx.results.get("s3.versioning")?.summary.includes("suspended")
            ? " (Ceph RGW 16.2 does this in a bucket with versioning suspended)"
            : "") +
          (mode === "lockfile"
            ? ", so the lockfile lock can be taken only until its first release"
            : ", so a deleted workspace's state cannot be written again"),
      );
      fixes.push(
        mode === "dynamodb"
          ? 'turn versioning on with "gaib-state bootstrap --fix" (kept with DynamoDB locks)'
          : `${useDynamo}, then turn versioning on with "gaib-state bootstrap --fix"`,
      );
    }
    if (status !== "ok") {
      return result(status, `${seen}. ${problems.join(". ")}`, [...new Set(fixes)].join("; "));
    }
    if (!b.conditionalDeleteRefused && mode === "lockfile") {
      return result(
        "warn",
        `${seen}. Unlocking reads the lockfile, checks its ID, then deletes it; only a lock ` +
          "taken over (after its lease expired) or force-unlocked between those two requests " +
          "could be removed by mistake",
        `for a strict release, ${useDynamo}`,
      );
    }
    return result("ok", seen);
  },
};

/** `dynamodb.table`: the lock table exists with Terraform's key (`LockID`, String). */
const tableCheck: Check = {
  name: "dynamodb.table",
  requires: ["config.credentials"],
  async run(ctx) {
    const table = ctx.config.dynamodb_table;
    const ddb = s3Tools(ctx).clients.dynamodb;
    if (table === undefined || ddb === null) {
      return result("skipped", "no dynamodb_table configured (locks use the S3 lockfile)");
    }
    try {
      const out = await ddb.send(new DescribeTableCommand({ TableName: table }));
      const t = out.Table;
      const keys = (t?.KeySchema ?? []).map((k) => `${k.AttributeName} ${k.KeyType}`);
      const type = t?.AttributeDefinitions?.find((a) => a.AttributeName === "LockID")
        ?.AttributeType;
      if (keys.length !== 1 || keys[0] !== "LockID HASH" || type !== "S") {
        return result(
          "fail",
          `table "${table}" has the key schema ${keys.join(", ") || "(none)"}` +
            `${type ? ` (LockID of type ${type})` : ""}: gaib-state and Terraform need the ` +
            'partition key "LockID" of type String and no sort key',
          "a table's key cannot be changed: set backend.dynamodb_table to a new name and run " +
            '"gaib-state bootstrap" to create it',
        );
      }
      if (t?.TableStatus !== "ACTIVE") {
        return result("warn", `table "${table}" is ${t?.TableStatus}`, "wait until it is ACTIVE");
      }
      return result("ok", `table "${table}" is ACTIVE with partition key LockID (String)`);
    } catch (error) {
      if (errorName(error) === "ResourceNotFoundException") {
        return result(
          "fail",
          `table "${table}" does not exist at ${endpointOf(ctx, "dynamodb")}`,
          'create it with "gaib-state bootstrap", or correct backend.dynamodb_table',
        );
      }
      return accessProblem(ctx, "dynamodb", error);
    }
  },
};

/** A lock-table item ID of the doctor's own. */
function probeItem(ctx: Ctx): string {
  return `${ctx.config.bucket}/${probeKey("lock")}`;
}

/** Runs a DynamoDB probe, turning a refusal into a failed check naming the action. */
async function dynamoProbe(
  ctx: Ctx,
  probe: (table: string, id: string) => Promise<CheckOutcome>,
): Promise<CheckOutcome> {
  const ddb = s3Tools(ctx).clients.dynamodb!;
  const table = ctx.config.dynamodb_table!;
  const id = probeItem(ctx);
  try {
    return await probe(table, id);
  } catch (error) {
    const action = (error as { gaibAction?: string }).gaibAction ?? "a request";
    const outcome = accessProblem(ctx, "dynamodb", error);
    return { ...outcome, summary: `${action}: ${outcome.summary}` };
  } finally {
    await ddb.send(new DeleteItemCommand({ TableName: table, Key: { LockID: { S: id } } }))
      .catch(() => {});
  }
}

/** Names the action an SDK call failed in (for the permission it needs). */
async function as<T>(action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error && typeof error === "object") (error as { gaibAction?: string }).gaibAction = action;
    throw error;
  }
}

/** `dynamodb.conditional-put`: a put conditional on absence is refused on an existing item. */
const conditionalPutCheck: Check = {
  name: "dynamodb.conditional-put",
  requires: ["dynamodb.table"],
  run(ctx) {
    const ddb = s3Tools(ctx).clients.dynamodb!;
    return dynamoProbe(ctx, async (table, id) => {
      const put = (info: string) =>
        ddb.send(
          new PutItemCommand({
            TableName: table,
            Item: { LockID: { S: id }, Info: { S: info } },
            ConditionExpression: "attribute_not_exists(LockID)",
          }),
        );
      await as("dynamodb:PutItem", () => put("first"));
      let overwrote = false;
      try {
        await as("dynamodb:PutItem", () => put("second"));
        overwrote = true;
      } catch (error) {
        if (errorName(error) !== "ConditionalCheckFailedException") throw error;
      }
      const kept = await as("dynamodb:GetItem", () =>
        ddb.send(
          new GetItemCommand({
            TableName: table,
            Key: { LockID: { S: id } },
            ConsistentRead: true,
          }),
        ));
      await as(
        "dynamodb:DeleteItem",
        () => ddb.send(new DeleteItemCommand({ TableName: table, Key: { LockID: { S: id } } })),
      );
      if (overwrote || kept.Item?.Info?.S !== "first") {
        return result(
          "fail",
          "a PutItem with attribute_not_exists(LockID) replaced an existing item: two " +
            "processes could both take a lock",
          "use AWS DynamoDB or a store that honours condition expressions",
        );
      }
      return result(
        "ok",
        "PutItem, GetItem and DeleteItem work; a conditional PutItem on an existing item is " +
          "refused (probed on a temporary item, removed)",
      );
    });
  },
};

/** `dynamodb.consistent-read`: a strongly consistent read sees the write just made. */
const consistentReadCheck: Check = {
  name: "dynamodb.consistent-read",
  requires: ["dynamodb.table"],
  run(ctx) {
    const ddb = s3Tools(ctx).clients.dynamodb!;
    return dynamoProbe(ctx, async (table, id) => {
      const stale: string[] = [];
      for (let round = 0; round < 5; round++) {
        const value = crypto.randomUUID();
        await as(
          "dynamodb:PutItem",
          () =>
            ddb.send(
              new PutItemCommand({
                TableName: table,
                Item: { LockID: { S: id }, Info: { S: value } },
              }),
            ),
        );
        const out = await as("dynamodb:GetItem", () =>
          ddb.send(
            new GetItemCommand({
              TableName: table,
              Key: { LockID: { S: id } },
              ConsistentRead: true,
            }),
          ));
        if (out.Item?.Info?.S !== value) stale.push(`round ${round + 1}`);
      }
      if (stale.length) {
        return result(
          "fail",
          `a strongly consistent GetItem returned an older value (${stale.join(", ")}): a lock ` +
            "could be judged on a stale record",
          "use AWS DynamoDB or a store with strongly consistent reads",
        );
      }
      return result("ok", "5 of 5 strongly consistent reads saw the write just made");
    });
  },
};

/** `clock`: this machine's clock against the servers' `Date` headers. */
const clockCheck: Check = {
  name: "clock",
  requires: ["s3.bucket"],
  async run(ctx) {
    const tools = s3Tools(ctx);
    if (tools.dates.length === 0) {
      await tools.clients.s3.send(new HeadBucketCommand({ Bucket: tools.bucket }));
    }
    return judgeClockSkew(tools.dates, ctx.leaseMs);
  },
};

/** The S3 backend's doctor: its checks in order, and its bootstrap. */
export const s3Doctor: BackendDoctor<S3BackendConfig> = {
  checks: [
    credentialsCheck,
    bucketCheck,
    permissionsCheck,
    versioningCheck,
    encryptionCheck,
    publicAccessCheck,
    tlsCheck,
    conditionalCheck,
    tableCheck,
    conditionalPutCheck,
    consistentReadCheck,
    clockCheck,
  ],
  bootstrap: bootstrapS3,
};
