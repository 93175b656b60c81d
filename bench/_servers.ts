/**
 * The S3 and DynamoDB servers a benchmark runs against: the ones `GAIB_TEST_S3` /
 * `GAIB_TEST_DYNAMODB` describe (as `tests/run.ts --serve` or `bench/all.ts` export them),
 * else ones started here and stopped when the returned value is disposed. Started servers
 * are exported to the environment too, so child benchmarks reuse them.
 *
 * @module
 */

import {
  DYNAMODB_ENV,
  type DynamoServerInfo,
  S3_ENV,
  type S3ServerInfo,
  startDynamoServer,
  startS3Server,
  type TestServer,
} from "../tests/_servers.ts";

/** The servers of a benchmark run; `await using` stops the ones started here. */
export interface BenchServers extends AsyncDisposable {
  /** The S3 server, unless none could run. */
  s3?: S3ServerInfo;
  /** The DynamoDB server, unless none could run. */
  dynamo?: DynamoServerInfo;
}

async function one<I>(
  variable: string,
  start: () => Promise<TestServer<I>>,
  label: string,
  started: TestServer<unknown>[],
): Promise<I | undefined> {
  const known = Deno.env.get(variable);
  if (known) return JSON.parse(known) as I;
  try {
    const server = await start();
    started.push(server as TestServer<unknown>);
    Deno.env.set(variable, JSON.stringify(server.info));
    return server.info;
  } catch (error) {
    console.error(`no ${label} server: ${(error as Error).message.split("\n")[0]}`);
    return undefined;
  }
}

/** Finds or starts the S3 and DynamoDB servers (a server that cannot run is left out). */
export async function benchServers(): Promise<BenchServers> {
  const started: TestServer<unknown>[] = [];
  const s3 = await one<S3ServerInfo>(S3_ENV, () => startS3Server(), "S3", started);
  const dynamo = await one<DynamoServerInfo>(
    DYNAMODB_ENV,
    () => startDynamoServer(),
    "DynamoDB",
    started,
  );
  return {
    s3,
    dynamo,
    async [Symbol.asyncDispose]() {
      for (const server of started) await server.stop();
    },
  };
}
