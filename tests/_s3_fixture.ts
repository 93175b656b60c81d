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

import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { type DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { S3Backend, type S3BackendOptions } from "../src/backends/s3.ts";
import type { S3BackendConfig } from "../src/config.ts";
import {
  dynamoServer,
  type DynamoServerInfo,
  isCi,
  type S3Capability,
  s3Server,
  type S3ServerInfo,
  serversDisabled,
  serverTest,
  tempBucket,
  tempLockTable,
  TEST_CREDENTIALS,
} from "./_server_env.ts";
import {
  type AwsRequest,
  observedS3Backend,
  type TestClients,
  testClients,
} from "./_aws_requests.ts";

// The backend uses the SDK's default credential chain: give it the test servers' keys.
Deno.env.set("AWS_ACCESS_KEY_ID", TEST_CREDENTIALS.accessKeyId);
Deno.env.set("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIALS.secretAccessKey);
Deno.env.set("AWS_REGION", TEST_CREDENTIALS.region);
Deno.env.delete("AWS_PROFILE");

/**
 * What a test can need beside S3: S3 capabilities, DynamoDB, Debian's AWS CLI, or servers of
 * its own (fault tests stop and restart them; `GAIB_TEST_SERVERS=none` asks for none).
 */
export type Need =
  | S3Capability
  | "dynamodb"
  | "returnValuesOnConditionCheckFailure"
  | "awscli"
  | "privateServers";

/** Debian's AWS CLI (another `aws` may come first on PATH). */
export const AWS_CLI = "/usr/bin/aws";

function awsCliProblem(): string | undefined {
  try {
    if (Deno.statSync(AWS_CLI).isFile) return undefined;
  } catch {
    // missing
  }
  return `needs Debian's AWS CLI at ${AWS_CLI}: apt-get install -y awscli (or run .ci/run)`;
}

/**
 * Declares a test that needs real servers (always S3, plus `needs`), through the harness's
 * `serverTest`: when a server or capability is missing the test is skipped with the reason
 * printed, and under `CI=true` it fails instead.
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
  const s3 = needs.filter((n): n is S3Capability =>
    ["conditionalWrites", "versioning", "md5Check", "sse", "kms"].includes(n)
  );
  const dynamo = needs.includes("returnValuesOnConditionCheckFailure")
    ? ["returnValuesOnConditionCheckFailure" as const]
    : needs.includes("dynamodb")
    ? true as const
    : undefined;
  const cli = needs.includes("awscli") ? awsCliProblem() : undefined;
  const own = needs.includes("privateServers") && serversDisabled()
    ? "starts servers of its own, and GAIB_TEST_SERVERS=none asks for none"
    : undefined;
  const problem = cli ?? own;
  if (problem !== undefined) {
    if (isCi()) {
      Deno.test(name, () => {
        throw new Error(`"${name}" ${problem}. Under CI=true a test that would skip fails`);
      });
    } else {
      console.warn(`skip "${name}": ${problem}`);
      Deno.test({ name, ignore: true, fn: () => {} });
    }
    return;
  }
  serverTest(
    name,
    {
      s3: s3.length > 0 ? s3 : true,
      dynamodb: dynamo,
      sanitizeOps: false,
      sanitizeResources: false,
    },
    (t) => fn(t),
  );
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
  /**
   * A backend on this bucket, closed when the fixture is disposed. With `onRequest`, its
   * clients are the test's own and report every request (see `tests/_aws_requests.ts`).
   */
  backend(overrides?: Partial<S3BackendConfig>, options?: FixtureBackendOptions): S3Backend;
  /**
   * SDK clients for this bucket's config with `overrides`, built as the backend builds them,
   * destroyed when the fixture is disposed: add middleware, then pass them as `clients`.
   */
  clients(overrides?: Partial<S3BackendConfig>): TestClients;
  /**
   * Writes a state as Terraform does, behind the backend: the object at `key`, then (when the
   * fixture has a lock table and `digest` is not false) its `-md5` digest item.
   */
  plantState(key: string, bytes: Uint8Array, options?: { digest?: boolean }): Promise<void>;
}

/** `S3BackendOptions`, and an observer of the backend's requests. */
export interface FixtureBackendOptions extends S3BackendOptions {
  /** Called for every request the backend sends (each retry too). */
  onRequest?: (request: AwsRequest) => void;
}

/** Options of {@linkcode s3Fixture}. */
export interface S3FixtureOptions {
  /**
   * Turn bucket versioning on (the test must need `"versioning"`).
   * @default {false}
   */
  versioned?: boolean;
}

/** Creates a fresh bucket (and, when there is a DynamoDB server, a lock table). */
export async function s3Fixture(options: S3FixtureOptions = {}): Promise<S3Fixture> {
  const s3 = s3Server()!;
  const dynamo = dynamoServer();
  const bucket = await tempBucket(s3, { prefix: "gaib-s3", versioned: options.versioned });
  const table = dynamo ? await tempLockTable(dynamo) : undefined;
  const backends: S3Backend[] = [];
  const clientSets: TestClients[] = [];
  const config = (overrides: Partial<S3BackendConfig> = {}): S3BackendConfig => ({
    type: "s3",
    bucket: bucket.name,
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
    bucket: bucket.name,
    table: table?.name ?? "no-dynamodb-server",
    s3Client: bucket.client,
    dynamoClient: table?.client,
    config,
    backend(overrides = {}, options = {}) {
      const { onRequest, ...backendOptions } = options;
      const backend = onRequest
        ? observedS3Backend(config(overrides), backendOptions, onRequest)
        : new S3Backend(config(overrides), backendOptions);
      backends.push(backend);
      return backend;
    },
    clients(overrides = {}) {
      const clients = testClients(config(overrides));
      clientSets.push(clients);
      return clients;
    },
    async plantState(key, bytes, options = {}) {
      await bucket.client.send(
        new PutObjectCommand({ Bucket: bucket.name, Key: key, Body: bytes }),
      );
      if (!table || options.digest === false) return;
      const digest = createHash("md5").update(bytes).digest("hex");
      await table.client.send(
        new PutItemCommand({
          TableName: table.name,
          Item: { LockID: { S: `${bucket.name}/${key}-md5` }, Digest: { S: digest } },
        }),
      );
    },
    async [Symbol.asyncDispose]() {
      for (const backend of backends) await backend.close().catch(() => {});
      for (const clients of clientSets) clients.destroy();
      await table?.[Symbol.asyncDispose]();
      await bucket[Symbol.asyncDispose]();
    },
  };
}
