/**
 * Faults of the S3 backend's servers in the middle of an operation: the S3 or the DynamoDB
 * server is stopped, restarted or frozen (SIGSTOP: requests hang) exactly when the backend
 * sends the k-th request of a lock, a read, a write or an unlock. Every operation must end,
 * within its timeouts, with success or a BackendError that names the workspace; once the
 * server is back the stored object is a complete version, and a lock left behind is reported
 * with the command that clears it (and that command clears it).
 *
 * The faults hit private servers (fauxqs and DynamoDB Local, persistent so that a restart keeps the
 * data), never the shared ones. The quick run takes one operation per service and fault, in
 * turn; `GAIB_RELIABILITY=full` takes every operation, three times with random fault points.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CreateBucketCommand, GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { BackendError, createEmptyState, type GaibState, type S3BackendConfig } from "../mod.ts";
import { S3Backend } from "../src/backends/s3.ts";
import { type AwsRequest, observedS3Backend } from "./_aws_requests.ts";
import {
  dynamoClientConfig,
  s3ClientConfig,
  serversDisabled,
  startDynamoServer,
  startS3Server,
  TEST_CREDENTIALS,
  type TestServer,
} from "./_server_env.ts";
import { createLockTable } from "./_servers.ts";
import { sizes } from "./reliability/_util.ts";

const SIZES = sizes();
const FULL = SIZES.name === "full";
const REQUEST_TIMEOUT_MS = 1500;
/** A hang: an operation still running after this has failed to respect its timeouts. */
const OPERATION_DEADLINE_MS = 30_000;

Deno.env.set("AWS_ACCESS_KEY_ID", TEST_CREDENTIALS.accessKeyId);
Deno.env.set("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIALS.secretAccessKey);
Deno.env.set("AWS_REGION", TEST_CREDENTIALS.region);

type Service = "s3" | "dynamodb";
type Fault = "stop" | "restart" | "pause";
type Operation = "lock" | "read" | "write" | "unlock";
const OPERATIONS: Operation[] = ["lock", "read", "write", "unlock"];

interface World {
  s3: TestServer<{ endpoint: string }>;
  dynamodb: TestServer<{ endpoint: string }>;
  config: S3BackendConfig;
  s3Client: S3Client;
  lineage: string;
}

/** One scenario's workspace (each has its own, so a failure cannot spill into the next). */
interface Stage {
  workspace: string;
  key: string;
  /** Every version written so far, by serial: the object must always be one of them. */
  versions: Map<number, string>;
}

function version(world: World, serial: number): GaibState {
  return {
    ...createEmptyState(),
    lineage: world.lineage,
    serial,
    outputs: { at: { value: serial, type: "number" } },
  };
}

/** A client of the world's servers; with `onRequest`, every request it sends is reported. */
function backend(world: World, onRequest?: (r: AwsRequest) => void): S3Backend {
  const options = {
    leaseMs: 3000,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    consistencyTimeoutMs: 2000,
  };
  return onRequest
    ? observedS3Backend(world.config, options, onRequest)
    : new S3Backend(world.config, options);
}

async function rawState(world: World, stage: Stage): Promise<string> {
  const object = await world.s3Client.send(
    new GetObjectCommand({ Bucket: world.config.bucket, Key: stage.key }),
  );
  return await object.Body!.transformToString();
}

/** Runs `fn` and fails the test if it has not ended by the deadline. */
async function bounded<T>(what: string, fn: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} was still running after ${OPERATION_DEADLINE_MS} ms`)),
      OPERATION_DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([fn(), hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** Prepares what the operation needs (a lock for write and unlock) and runs it. */
async function operate(
  world: World,
  stage: Stage,
  client: S3Backend,
  operation: Operation,
  armed: { on: boolean },
  nextSerial: number,
): Promise<void> {
  let lockId: string | undefined;
  if (operation === "write" || operation === "unlock") {
    lockId = (await client.lock(stage.workspace, { operation: "fault-test" })).lockId;
  }
  armed.on = true;
  try {
    if (operation === "lock") {
      const { lockId } = await client.lock(stage.workspace, { operation: "fault-test" });
      armed.on = false;
      await client.unlock(stage.workspace, lockId);
    } else if (operation === "read") {
      await client.getState(stage.workspace);
    } else if (operation === "write") {
      const state = version(world, nextSerial);
      stage.versions.set(nextSerial, JSON.stringify(state));
      await client.setState(stage.workspace, state, { lockId });
      armed.on = false;
      await client.unlock(stage.workspace, lockId!);
    } else {
      await client.unlock(stage.workspace, lockId!);
    }
  } finally {
    armed.on = false;
  }
}

async function heal(
  server: TestServer<{ endpoint: string }>,
  fault: Fault,
  pending: Promise<unknown>,
) {
  await pending.catch(() => {});
  if (fault === "pause") server.resume();
  if (fault === "stop") await server.restart();
  // A server that did not survive SIGSTOP/SIGCONT (dynalite under Deno does not) is started
  // again: the operation under test has ended by now; only the checks below need it.
  if (!(await answers(server.info.endpoint))) await server.restart();
}

async function answers(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(endpoint, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

interface Outcome {
  scenario: string;
  result: "ok" | "error";
  leftLock: boolean;
}

async function scenario(
  world: World,
  index: number,
  service: Service,
  fault: Fault,
  operation: Operation,
): Promise<Outcome> {
  const server = service === "s3" ? world.s3 : world.dynamodb;
  const name = `${fault} ${service} during ${operation}`;
  const seed = backend(world);
  const stage: Stage = {
    workspace: `fault-${index}`,
    key: seed.stateKey(`fault-${index}`),
    versions: new Map([[1, JSON.stringify(version(world, 1))]]),
  };
  try {
    await seed.setState(stage.workspace, version(world, 1));
  } finally {
    await seed.close();
  }
  // A dry run counts the requests of the operation, so the fault can hit any one of them.
  const dryCount = { n: 0 };
  const dryArmed = { on: false };
  const dry = backend(world, () => {
    if (dryArmed.on) dryCount.n++;
  });
  const serial = Math.max(...stage.versions.keys()) + 1;
  try {
    await operate(world, stage, dry, operation, dryArmed, serial);
  } finally {
    await dry.close();
  }
  const at = 1 + Math.floor(Math.random() * Math.max(1, dryCount.n));

  let sent = 0;
  let pending: Promise<unknown> = Promise.resolve();
  const armed = { on: false };
  const client = backend(world, () => {
    if (!armed.on || ++sent !== at) return;
    if (fault === "pause") server.pause();
    else if (fault === "stop") pending = stopServing(server);
    else pending = server.restart();
  });
  let error: unknown;
  try {
    await bounded(name, () => operate(world, stage, client, operation, armed, serial + 1));
  } catch (caught) {
    error = caught;
  } finally {
    await heal(server, fault, pending);
  }
  // Closing releases the client's lock if it still holds one and stops its lease renewals.
  await bounded(`${name}: close`, () => client.close()).catch(() => {});
  if (error !== undefined) {
    assert.ok(
      error instanceof BackendError,
      `${name}: not a BackendError: ${(error as Error)?.name}: ${(error as Error)?.message}`,
    );
    assert.ok(
      error.message.includes(`"${stage.workspace}"`) || error.message.includes(world.config.bucket),
      `${name}: the message does not say what failed: ${error.message}`,
    );
  }

  // The object is a complete version.
  const text = await rawState(world, stage);
  const stored = JSON.parse(text) as GaibState;
  const expected = stage.versions.get(stored.serial);
  assert.ok(expected !== undefined, `${name}: serial ${stored.serial} was never written`);
  assert.deepEqual(stored, JSON.parse(expected), `${name}: the object is not a whole version`);
  for (const serial of stage.versions.keys()) {
    if (serial > stored.serial) stage.versions.delete(serial);
  }

  // A lock left behind is named with the command that clears it, and that clears it.
  const checker = backend(world);
  let leftLock = false;
  try {
    const left = await checker.getLockInfo(stage.workspace);
    if (left) {
      leftLock = true;
      assert.ok(error instanceof BackendError, `${name}: a lock was left behind silently`);
      assert.ok(
        error.message.includes(`force-unlock ${left.ID}`) ||
          error.message.includes(`unlock ${left.ID}`),
        `${name}: lock ${left.ID} left behind, but the error does not name the command: ` +
          error.message,
      );
      await checker.forceUnlock(stage.workspace, left.ID);
    }
    // Reads work again (a digest left stale by a write cut short is repaired by rewriting
    // the state, as that write's error said).
    try {
      await checker.getState(stage.workspace);
    } catch (readError) {
      assert.ok(
        error instanceof BackendError && /digest/i.test(error.message),
        `${name}: reads fail after the fault: ${(readError as Error).message}`,
      );
      const { lockId } = await checker.lock(stage.workspace);
      await checker.setState(stage.workspace, stored, { lockId, force: true });
      await checker.unlock(stage.workspace, lockId);
      assert.equal((await checker.getState(stage.workspace))?.serial, stored.serial);
    }
  } finally {
    await checker.close();
  }
  return { scenario: name, result: error === undefined ? "ok" : "error", leftLock };
}

/**
 * Stops the server for real (SIGKILL to the process listening on its port: connections are
 * refused from then on), keeping its data for the restart that heals it.
 */
function stopServing(server: TestServer<{ endpoint: string }>): Promise<void> {
  const port = new URL(server.info.endpoint).port;
  const output = new Deno.Command("ss", { args: ["-Hltnp", `sport = :${port}`], stdout: "piped" })
    .outputSync();
  const pid = /pid=(\d+)/.exec(new TextDecoder().decode(output.stdout))?.[1];
  if (!pid) throw new Error(`no process listens on port ${port}`);
  Deno.kill(Number(pid), "SIGKILL");
  return Promise.resolve();
}

Deno.test({
  name: "S3Backend ends every lock, read, write and unlock with success or a clear error when " +
    "the S3 or DynamoDB server stops, restarts or hangs mid-operation, and keeps the state whole",
  ignore: serversDisabled(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using s3 = await startS3Server({ kind: "fauxqs", persistent: true });
    await using dynamodb = await startDynamoServer({ kind: "dynamodb-local", persistent: true });
    const bucket = `gaib-faults-${crypto.randomUUID().slice(0, 8)}`;
    const table = "gaib-faults-locks";
    const s3Client = new S3Client(s3ClientConfig(s3.info));
    const dynamoClient = new DynamoDBClient(dynamoClientConfig(dynamodb.info));
    try {
      await s3Client.send(new CreateBucketCommand({ Bucket: bucket }));
      await createLockTable(dynamoClient, table);
      const world: World = {
        s3,
        dynamodb,
        s3Client,
        lineage: crypto.randomUUID(),
        config: {
          type: "s3",
          bucket,
          key: "terraform.tfstate",
          region: TEST_CREDENTIALS.region,
          dynamodb_table: table,
          endpoints: { s3: s3.info.endpoint, dynamodb: dynamodb.info.endpoint },
          force_path_style: true,
          max_retries: 1,
        },
      };
      const outcomes: Outcome[] = [];
      let turn = 0;
      let index = 0;
      for (let round = 0; round < SIZES.faultRounds; round++) {
        for (const service of ["s3", "dynamodb"] as Service[]) {
          for (const fault of ["stop", "restart", "pause"] as Fault[]) {
            const operations = FULL ? OPERATIONS : [OPERATIONS[turn++ % OPERATIONS.length]];
            for (const operation of operations) {
              await t.step(
                `${fault} ${service} during ${operation} (round ${round + 1})`,
                async () => {
                  outcomes.push(await scenario(world, index++, service, fault, operation));
                },
              );
            }
          }
        }
      }
      const errors = outcomes.filter((o) => o.result === "error").length;
      const locks = outcomes.filter((o) => o.leftLock).length;
      console.log(
        `faults s3: ${outcomes.length} injected faults: ${outcomes.length - errors} operations ` +
          `succeeded, ${errors} ended with a clear error, ${locks} left a lock that the named ` +
          "command cleared; the state object was a whole version every time",
      );
    } finally {
      s3Client.destroy();
      dynamoClient.destroy();
    }
  },
});
