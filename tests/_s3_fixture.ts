/**
 * What the S3 backend tests share: the servers `tests/run.ts` started (read from the
 * environment), a test wrapper that declares what a test needs and skips with a printed
 * reason when the server lacks it (a skip fails under `CI=true`), and a fresh bucket and lock
 * table per test, deleted afterwards.
 *
 * Run a file alone against servers started by hand with `GAIB_TEST_S3` and
 * `GAIB_TEST_DYNAMODB` set to the servers' info JSON (see `tests/_servers.ts`).
 *
 * @module
 */

import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Backend, type S3BackendOptions, type S3BackendRequest } from "../src/backends/s3.ts";
import type { S3BackendConfig } from "../src/config.ts";
import {
  createLockTable,
  dynamoClientConfig,
  DYNAMODB_ENV,
  DYNAMODB_UNAVAILABLE_ENV,
  type DynamoServerInfo,
  emptyAndDeleteBucket,
  S3_ENV,
  S3_UNAVAILABLE_ENV,
  s3ClientConfig,
  type S3ServerInfo,
  TEST_CREDENTIALS,
  uniqueName,
} from "./_servers.ts";

// The backend uses the SDK's default credential chain: give it the test servers' keys.
Deno.env.set("AWS_ACCESS_KEY_ID", TEST_CREDENTIALS.accessKeyId);
Deno.env.set("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIALS.secretAccessKey);
Deno.env.set("AWS_REGION", TEST_CREDENTIALS.region);
Deno.env.delete("AWS_PROFILE");

/** What a test can need. */
export type Need =
  | "s3"
  | "dynamodb"
  | "conditionalWrites"
  | "md5Check"
  | "sse"
  | "kms"
  | "returnValuesOnConditionCheckFailure"
  | "awscli";

function readInfo<T>(name: string): T | undefined {
  const raw = Deno.env.get(name);
  if (!raw) return undefined;
  return JSON.parse(raw) as T;
}

/** The shared S3 server, when the runner started one. */
export const S3_SERVER: S3ServerInfo | undefined = readInfo<S3ServerInfo>(S3_ENV);
/** The shared DynamoDB server, when the runner started one. */
export const DYNAMO_SERVER: DynamoServerInfo | undefined = readInfo<DynamoServerInfo>(
  DYNAMODB_ENV,
);
/** Debian's AWS CLI (another `aws` may come first on PATH). */
export const AWS_CLI = "/usr/bin/aws";

function awsCliPresent(): boolean {
  try {
    return Deno.statSync(AWS_CLI).isFile;
  } catch {
    return false;
  }
}

/** Why the servers cannot serve a test that needs `needs`, or `undefined` when they can. */
export function missing(needs: readonly Need[]): string | undefined {
  const all = new Set<Need>(needs);
  if (!all.has("s3")) all.add("s3");
  for (const need of all) {
    switch (need) {
      case "s3":
        if (!S3_SERVER) {
          return `no S3 test server (${
            Deno.env.get(S3_UNAVAILABLE_ENV) ?? `${S3_ENV} is not set: run "deno task test"`
          })`;
        }
        break;
      case "dynamodb":
        if (!DYNAMO_SERVER) {
          return `no DynamoDB test server (${
            Deno.env.get(DYNAMODB_UNAVAILABLE_ENV) ??
              `${DYNAMODB_ENV} is not set: run "deno task test"`
          })`;
        }
        break;
      case "returnValuesOnConditionCheckFailure":
        if (!DYNAMO_SERVER?.returnValuesOnConditionCheckFailure) {
          return `the DynamoDB server (${DYNAMO_SERVER?.kind}) lacks ` +
            "ReturnValuesOnConditionCheckFailure";
        }
        break;
      case "awscli":
        if (!awsCliPresent()) return `${AWS_CLI} is missing: apt-get install -y awscli`;
        break;
      default:
        if (!S3_SERVER?.[need]) {
          return `the S3 server (${S3_SERVER?.kind}) lacks ${need}`;
        }
    }
  }
  return undefined;
}

/**
 * Declares a test that needs real servers. When they lack something it needs, the test is
 * ignored with the reason printed, and under `CI=true` it fails instead.
 *
 * @param name the test's name, a sentence
 * @param needs what the test needs
 * @param fn the test
 */
export function s3Test(
  name: string,
  needs: readonly Need[],
  fn: (t: Deno.TestContext) => Promise<void>,
): void {
  const reason = missing(needs);
  if (reason === undefined) {
    Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
    return;
  }
  if (Deno.env.get("CI") === "true") {
    Deno.test(name, () => {
      throw new Error(`This test would be skipped, which CI does not allow: ${reason}`);
    });
    return;
  }
  console.log(`SKIP ${name}: ${reason}`);
  Deno.test({ name, ignore: true, fn });
}

/** A bucket and a lock table for one test, and the backends made on them. */
export interface S3Fixture extends AsyncDisposable {
  readonly s3: S3ServerInfo;
  readonly dynamo: DynamoServerInfo | undefined;
  readonly bucket: string;
  /** The lock table (created only when the test needs DynamoDB). */
  readonly table: string;
  /** A raw S3 client of the server, for looking behind the backend. */
  readonly s3Client: S3Client;
  /** A raw DynamoDB client of the server (when there is one). */
  readonly dynamoClient: DynamoDBClient | undefined;
  /** A config for this bucket and table, with `overrides`. */
  config(overrides?: Partial<S3BackendConfig>): S3BackendConfig;
  /** A backend on this bucket, closed when the fixture is disposed. */
  backend(overrides?: Partial<S3BackendConfig>, options?: S3BackendOptions): S3Backend;
}

/**
 * Creates a fresh bucket (and, when the DynamoDB server is there, a lock table).
 *
 * @param options `versioned`: enable bucket versioning
 */
export async function s3Fixture(): Promise<S3Fixture> {
  const s3 = S3_SERVER!;
  const dynamo = DYNAMO_SERVER;
  const s3Client = new S3Client(s3ClientConfig(s3));
  const dynamoClient = dynamo ? new DynamoDBClient(dynamoClientConfig(dynamo)) : undefined;
  const bucket = uniqueName("gaib-s3");
  const table = uniqueName("gaib-locks");
  await s3Client.send(new CreateBucketCommand({ Bucket: bucket }));
  if (dynamoClient) await createLockTable(dynamoClient, table);
  const backends: S3Backend[] = [];
  const config = (overrides: Partial<S3BackendConfig> = {}): S3BackendConfig => ({
    type: "s3",
    bucket,
    key: "terraform.tfstate",
    region: TEST_CREDENTIALS.region,
    endpoints: { s3: s3.endpoint, dynamodb: dynamo?.endpoint },
    force_path_style: true,
    max_retries: 1,
    ...overrides,
  });
  return {
    s3,
    dynamo,
    bucket,
    table,
    s3Client,
    dynamoClient,
    config,
    backend(overrides = {}, options = {}) {
      const backend = new S3Backend(config(overrides), options);
      backends.push(backend);
      return backend;
    },
    async [Symbol.asyncDispose]() {
      for (const backend of backends) await backend.close().catch(() => {});
      await emptyAndDeleteBucket(s3Client, bucket).catch(() => {});
      await dynamoClient?.send(new DeleteTableCommand({ TableName: table })).catch(() => {});
      s3Client.destroy();
      dynamoClient?.destroy();
    },
  };
}

/** Collects the requests a backend sends, by operation. */
export class RequestLog {
  readonly requests: S3BackendRequest[] = [];
  /** Pass as `onRequest`. */
  readonly record = (request: S3BackendRequest): void => {
    this.requests.push(request);
  };

  /** The requests since the last call, as `service:Operation` strings, and forgets them. */
  take(): string[] {
    return this.requests.splice(0).map((r) => `${r.service}:${r.operation}`);
  }
}
