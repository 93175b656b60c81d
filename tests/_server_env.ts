/**
 * What a test file imports to use the real S3 and DynamoDB servers that `deno task test`
 * (`tests/run.ts`) starts once per run and describes in `GAIB_TEST_S3` / `GAIB_TEST_DYNAMODB`.
 *
 * - {@link serverTest} / {@link serverStep} declare which servers and capabilities a test needs.
 *   When one is missing the test is skipped with the reason (which server, which capability, how
 *   to get it), and under `CI=true` it fails with that reason instead.
 * - {@link tempBucket} and {@link tempLockTable} make a fresh, uniquely named bucket or
 *   Terraform-style lock table with a client, removed again by `await using`.
 * - {@link s3ClientConfig} and {@link dynamoClientConfig} configure SDK clients for the servers.
 * - Fault tests (a server that stops, restarts or hangs) must not disturb the shared servers:
 *   they start a private one with {@link startS3Server} / {@link startDynamoServer} and call its
 *   `stop()`, `restart()` (same port; data kept with `persistent: true`, always on Ceph, whose
 *   gateway alone restarts), `pause()` (SIGSTOP: requests hang) and `resume()`.
 *
 * Tests run with `--allow-all`.
 *
 * @example A test that needs S3 with conditional writes
 * ```ts ignore
 * import { PutObjectCommand } from "@aws-sdk/client-s3";
 * import { serverTest, tempBucket } from "./_server_env.ts";
 *
 * serverTest("S3Locker takes a free lock", { s3: ["conditionalWrites"] }, async (_t, { s3 }) => {
 *   await using bucket = await tempBucket(s3);
 *   await bucket.client.send(
 *     new PutObjectCommand({ Bucket: bucket.name, Key: "a.tflock", Body: "{}", IfNoneMatch: "*" }),
 *   );
 * });
 * ```
 *
 * @module
 */

import { CreateBucketCommand, PutBucketVersioningCommand, S3Client } from "@aws-sdk/client-s3";
import { DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  createLockTable,
  type DynamoCapabilities,
  dynamoClientConfig,
  DYNAMODB_ENV,
  DYNAMODB_UNAVAILABLE_ENV,
  type DynamoServerInfo,
  emptyAndDeleteBucket,
  S3_ENV,
  S3_UNAVAILABLE_ENV,
  type S3Capabilities,
  s3ClientConfig,
  type S3ServerInfo,
  uniqueName,
} from "./_servers.ts";
import { PG_UNAVAILABLE_ENV, pgServer, type PgServerInfo } from "./_pg_server.ts";

export {
  dynamoClientConfig,
  type DynamoServerInfo,
  httpStatus,
  s3ClientConfig,
  type S3ServerInfo,
  startDynamoServer,
  startS3Server,
  type StartServerOptions,
  TEST_CREDENTIALS,
  type TestServer,
  uniqueName,
} from "./_servers.ts";

/** A capability an S3 test server may lack (see {@link S3Capabilities}). */
export type S3Capability = keyof S3Capabilities;
/** A capability a DynamoDB test server may lack (see {@link DynamoCapabilities}). */
export type DynamoCapability = keyof DynamoCapabilities;

/** The servers a test needs: `true` for any, or the capabilities it relies on. */
export interface ServerNeeds {
  /**
   * An S3 server, with these capabilities.
   * @default {undefined}
   */
  s3?: true | readonly S3Capability[];
  /**
   * A DynamoDB server, with these capabilities.
   * @default {undefined}
   */
  dynamodb?: true | readonly DynamoCapability[];
  /**
   * A PostgreSQL server (`tests/_pg_server.ts`).
   * @default {undefined}
   */
  pg?: true;
}

/** Options of {@link serverTest}: the servers needed, plus `Deno.test` options. */
export interface ServerTestOptions extends ServerNeeds {
  /**
   * Passed to `Deno.test`.
   * @default {true}
   */
  sanitizeResources?: boolean;
  /**
   * Passed to `Deno.test`.
   * @default {true}
   */
  sanitizeOps?: boolean;
  /**
   * Passed to `Deno.test`.
   * @default {false}
   */
  only?: boolean;
}

/** The descriptions of the servers that `N` asks for. */
export type ServersFor<N extends ServerNeeds> = {
  readonly [K in keyof N & keyof AllServers]: AllServers[K];
};

/** Every server a test can ask for. */
interface AllServers {
  s3: S3ServerInfo;
  dynamodb: DynamoServerInfo;
  pg: PgServerInfo;
}

const S3_CAPABILITY_TEXT: Record<S3Capability, string> = {
  conditionalWrites: "PutObject with If-None-Match: *",
  versioning: "bucket versioning",
  md5Check: "Content-MD5 checking",
  sse: "SSE-S3 (AES256) reported by HeadObject",
  kms: "SSE-KMS",
};

const DYNAMO_CAPABILITY_TEXT: Record<DynamoCapability, string> = {
  ttl: "the TTL API",
  returnValuesOnConditionCheckFailure: "ReturnValuesOnConditionCheckFailure",
};

const GET_CEPH = "Ceph RGW has it: apt-get install -y --no-install-recommends ceph-mon ceph-osd " +
  'radosgw (or run .ci/run), then "deno task test"';
const GET_DYNAMODB_LOCAL = "DynamoDB Local has it: install Java 17+ (apt-get install -y " +
  '--no-install-recommends openjdk-17-jre-headless), run "deno install --config tests/servers/deno.json", then "deno task test"';

/** True under `CI=true` (or `CI=1`), where a skip is a failure. */
export function isCi(): boolean {
  const ci = Deno.env.get("CI");
  return ci === "true" || ci === "1";
}

/**
 * True when the run asked for no servers (`GAIB_TEST_SERVERS=none`): tests that start private
 * servers should skip then, to keep such runs quick.
 */
export function serversDisabled(): boolean {
  return Deno.env.get("GAIB_TEST_SERVERS")?.trim().toLowerCase() === "none";
}

function fromEnv<T extends { endpoint: string; kind: string }>(name: string): T | undefined {
  const raw = Deno.env.get(name);
  if (!raw) return undefined;
  let value: T;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw new Error(`${name} is not JSON: ${raw}`, { cause: error });
  }
  if (typeof value?.endpoint !== "string" || typeof value.kind !== "string") {
    throw new Error(`${name} lacks "endpoint" or "kind": ${raw}`);
  }
  return value;
}

/**
 * The shared S3 server of this test run, from `GAIB_TEST_S3`.
 *
 * @returns Its description, or `undefined` when the runner started none.
 * @throws {Error} When `GAIB_TEST_S3` is malformed.
 */
export function s3Server(): S3ServerInfo | undefined {
  return fromEnv<S3ServerInfo>(S3_ENV);
}

/**
 * The shared DynamoDB server of this test run, from `GAIB_TEST_DYNAMODB`.
 *
 * @returns Its description, or `undefined` when the runner started none.
 * @throws {Error} When `GAIB_TEST_DYNAMODB` is malformed.
 */
export function dynamoServer(): DynamoServerInfo | undefined {
  return fromEnv<DynamoServerInfo>(DYNAMODB_ENV);
}

function absent(what: string, unavailableEnv: string): string {
  const why = Deno.env.get(unavailableEnv) ??
    'none is running: run the tests with "deno task test", which starts one unless ' +
      "GAIB_TEST_SERVERS=none";
  return `needs ${what === "S3" ? "an" : "a"} ${what} test server, and there is none (${why})`;
}

/**
 * Says why the servers of this run do not meet `needs`.
 *
 * @param needs The servers and capabilities a test relies on.
 * @returns One reason per missing server or capability; empty when all are there.
 */
export function missingServers(needs: ServerNeeds): string[] {
  const reasons: string[] = [];
  if (needs.s3) {
    const s3 = s3Server();
    if (!s3) reasons.push(absent("S3", S3_UNAVAILABLE_ENV));
    for (const capability of s3 && needs.s3 !== true ? needs.s3 : []) {
      if (s3?.[capability]) continue;
      reasons.push(
        `needs S3 capability "${capability}" (${S3_CAPABILITY_TEXT[capability]}), which ` +
          `${s3?.kind} at ${s3?.endpoint} lacks. ${GET_CEPH}`,
      );
    }
  }
  if (needs.dynamodb) {
    const dynamodb = dynamoServer();
    if (!dynamodb) reasons.push(absent("DynamoDB", DYNAMODB_UNAVAILABLE_ENV));
    for (const capability of dynamodb && needs.dynamodb !== true ? needs.dynamodb : []) {
      if (dynamodb?.[capability]) continue;
      reasons.push(
        `needs DynamoDB capability "${capability}" (${DYNAMO_CAPABILITY_TEXT[capability]}), ` +
          `which ${dynamodb?.kind} at ${dynamodb?.endpoint} lacks. ${GET_DYNAMODB_LOCAL}`,
      );
    }
  }
  if (needs.pg && !pgServer()) {
    reasons.push(
      absent("PostgreSQL", PG_UNAVAILABLE_ENV) +
        ". Install it with: apt-get install -y --no-install-recommends postgresql",
    );
  }
  return reasons;
}

function serversFor<N extends ServerNeeds>(needs: N): ServersFor<N> {
  const servers: Partial<AllServers> = {};
  if (needs.s3) servers.s3 = s3Server();
  if (needs.dynamodb) servers.dynamodb = dynamoServer();
  if (needs.pg) servers.pg = pgServer();
  return servers as ServersFor<N>;
}

/** What to do with a test whose servers are missing: run it, skip it, or fail it (CI). */
function decide(name: string, needs: ServerNeeds): "run" | "skip" | Error {
  const reasons = missingServers(needs);
  if (reasons.length === 0) return "run";
  const reason = reasons.join("; ");
  if (isCi()) {
    return new Error(`"${name}" ${reason}. Under CI=true a missing test server fails the test`);
  }
  console.warn(`skip "${name}": ${reason}`);
  return "skip";
}

/**
 * Registers a `Deno.test` that gets the servers it needs. When one of them, or one of the
 * capabilities, is missing, the test is skipped with the reason printed; under `CI=true` it
 * fails with that reason instead.
 *
 * @param name The test name, read as a sentence.
 * @param needs The servers and capabilities the test relies on, and `Deno.test` options.
 * @param fn The test; gets the test context and the descriptions of the servers it asked for.
 *
 * @example A DynamoDB test
 * ```ts ignore
 * serverTest("the lock table takes one item", { dynamodb: true }, async (_t, { dynamodb }) => {
 *   await using table = await tempLockTable(dynamodb);
 *   // ... table.client, table.name
 * });
 * ```
 */
export function serverTest<const N extends ServerTestOptions>(
  name: string,
  needs: N,
  fn: (t: Deno.TestContext, servers: ServersFor<N>) => void | Promise<void>,
): void {
  const decision = decide(name, needs);
  Deno.test({
    name,
    ignore: decision === "skip",
    only: needs.only,
    sanitizeResources: needs.sanitizeResources,
    sanitizeOps: needs.sanitizeOps,
    fn: async (t) => {
      if (decision instanceof Error) throw decision;
      await fn(t, serversFor(needs));
    },
  });
}

/**
 * Runs a `t.step` that gets the servers it needs, skipped (or, under `CI=true`, failed) like
 * {@link serverTest} when they are missing.
 *
 * @param t The enclosing test's context.
 * @param name The step name.
 * @param needs The servers and capabilities the step relies on.
 * @param fn The step.
 * @returns Whether the step passed (`false` when skipped).
 */
export function serverStep<const N extends ServerNeeds>(
  t: Deno.TestContext,
  name: string,
  needs: N,
  fn: (t: Deno.TestContext, servers: ServersFor<N>) => void | Promise<void>,
): Promise<boolean> {
  const decision = decide(name, needs);
  return t.step({
    name,
    ignore: decision === "skip",
    fn: async (step) => {
      if (decision instanceof Error) throw decision;
      await fn(step, serversFor(needs));
    },
  });
}

/** Options of {@link tempBucket}. */
export interface TempBucketOptions {
  /**
   * Turn on versioning (check the server's `versioning` capability first).
   * @default {false}
   */
  versioned?: boolean;
  /**
   * Start of the bucket name.
   * @default {"gaib-test"}
   */
  prefix?: string;
}

/** A fresh bucket and a client for it; `await using` empties and deletes it. */
export interface TempBucket extends AsyncDisposable {
  /** The bucket name, unique to this test. */
  readonly name: string;
  /** A client of the bucket's server, destroyed on disposal. */
  readonly client: S3Client;
}

/**
 * Creates a fresh, uniquely named bucket on `server`.
 *
 * @param server The S3 server (from the `serverTest` callback, or a private one's `info`).
 * @param options Versioning and name prefix.
 * @returns The bucket and a client; dispose of it with `await using`.
 * @throws {Error} When the server refuses to create the bucket.
 */
export async function tempBucket(
  server: S3ServerInfo,
  options: TempBucketOptions = {},
): Promise<TempBucket> {
  const client = new S3Client(s3ClientConfig(server));
  const name = uniqueName(options.prefix ?? "gaib-test");
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
    if (options.versioned) {
      await client.send(
        new PutBucketVersioningCommand({
          Bucket: name,
          VersioningConfiguration: { Status: "Enabled" },
        }),
      );
    }
  } catch (error) {
    client.destroy();
    throw error;
  }
  return {
    name,
    client,
    async [Symbol.asyncDispose]() {
      try {
        // a fault test may have stopped the server: cleaning up must not fail the test then
        await emptyAndDeleteBucket(client, name).catch(() => {});
      } finally {
        client.destroy();
      }
    },
  };
}

/** Options of {@link tempLockTable}. */
export interface TempLockTableOptions {
  /**
   * Start of the table name.
   * @default {"gaib-locks"}
   */
  prefix?: string;
}

/** A fresh lock table and a client for it; `await using` deletes it. */
export interface TempLockTable extends AsyncDisposable {
  /** The table name, unique to this test. */
  readonly name: string;
  /** A client of the table's server, destroyed on disposal. */
  readonly client: DynamoDBClient;
}

/**
 * Creates a fresh, uniquely named Terraform-style lock table on `server`: partition key
 * `LockID` (string), on-demand billing, active on return.
 *
 * @param server The DynamoDB server (from the `serverTest` callback, or a private one's `info`).
 * @param options Name prefix.
 * @returns The table and a client; dispose of it with `await using`.
 * @throws {Error} When the server refuses to create the table.
 */
export async function tempLockTable(
  server: DynamoServerInfo,
  options: TempLockTableOptions = {},
): Promise<TempLockTable> {
  const client = new DynamoDBClient(dynamoClientConfig(server));
  const name = uniqueName(options.prefix ?? "gaib-locks");
  try {
    await createLockTable(client, name);
  } catch (error) {
    client.destroy();
    throw error;
  }
  return {
    name,
    client,
    async [Symbol.asyncDispose]() {
      try {
        await client.send(new DeleteTableCommand({ TableName: name })).catch(() => {});
      } finally {
        client.destroy();
      }
    },
  };
}
