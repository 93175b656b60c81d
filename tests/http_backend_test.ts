/**
 * HttpBackend against `gaib-state serve`'s handler on 127.0.0.1: the `StateBackend` contract
 * (tests/_backend_contract.ts) over a local backend and over S3 (Ceph RGW + DynamoDB Local),
 * then what only the HTTP client does.
 *
 * @module
 */

import { LocalBackend } from "../src/backends/local.ts";
import { backendContract, type ContractNeed, type ContractStore } from "./_backend_contract.ts";
import { serveBackend } from "./_http_serve.ts";
import { tempDir } from "./_temp.ts";
import { snapshotTree } from "./reliability/_util.ts";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { type S3Fixture, s3Fixture, s3Test } from "./_s3_fixture.ts";

/**
 * Rules Terraform's protocol cannot keep, declared as ignored with the reason in their name:
 * a server cannot tell whether the client holding a lock still runs (no renewal in the
 * protocol), and a lock request carries no TTL.
 */
const NOT_OVER_HTTP: Record<string, string> = {
  "unlock refuses another live client's lock; forceUnlock with its ID releases it":
    "the protocol cannot tell whether a lock's holder still runs",
  "of 20 clients waiting on a detached lock whose TTL ends exactly one takes it over":
    "a lock request carries no TTL (serve --lock-ttl sets one for all)",
  "a detached lock holds until its TTL ends": "a lock request carries no TTL",
};

function declare(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  run: (name: string, fn: (t: Deno.TestContext) => Promise<void>) => void,
): void {
  const rule = name.slice(name.indexOf(": ") + 2);
  const reason = NOT_OVER_HTTP[rule];
  if (reason !== undefined) {
    Deno.test({ name: `${name} (not over HTTP: ${reason})`, ignore: true, fn });
  } else run(name, fn);
}

backendContract("HttpBackend (serve over local)", {
  test(name, _needs: readonly ContractNeed[], fn) {
    declare(name, fn, (n, f) => Deno.test(n, f));
  },
  async create(): Promise<ContractStore> {
    const dir = await tempDir();
    const root = `${dir.path}/.gaib`;
    const server = serveBackend(new LocalBackend({ path: root }));
    return {
      keepsHistory: false,
      open: () => server.client(),
      async plant(workspace, bytes) {
        const ws = `${root}/workspaces/${workspace}`;
        await Deno.mkdir(ws, { recursive: true, mode: 0o700 });
        await Deno.writeFile(`${ws}/terraform.tfstate`, bytes, { mode: 0o600 });
      },
      async fingerprint() {
        const tree = await snapshotTree(dir.path);
        return Object.fromEntries(Object.entries(tree).filter(([n]) => !n.endsWith("/.guard")));
      },
      async [Symbol.asyncDispose]() {
        await server[Symbol.asyncDispose]();
        await dir[Symbol.asyncDispose]();
      },
    };
  },
});

/** Every object (key -> ETag) and every item of the lock table. */
async function storeFingerprint(fx: S3Fixture): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const page = await fx.s3Client.send(new ListObjectsV2Command({ Bucket: fx.bucket }));
  for (const object of page.Contents ?? []) out[`s3:${object.Key}`] = object.ETag ?? "";
  const items = await fx.dynamoClient!.send(new ScanCommand({ TableName: fx.table }));
  for (const item of items.Items ?? []) {
    out[`dynamodb:${item.LockID?.S}`] = JSON.stringify(item, Object.keys(item).sort());
  }
  return out;
}

backendContract("HttpBackend (serve over S3 + DynamoDB)", {
  test(name, needs, fn) {
    const extra = needs.includes("racingWriters") ? ["conditionalWrites" as const] : [];
    declare(name, fn, (n, f) => s3Test(n, ["dynamodb", ...extra], f));
  },
  async create(): Promise<ContractStore> {
    const fx = await s3Fixture();
    const config = { dynamodb_table: fx.table };
    const layout = fx.backend(config);
    const server = serveBackend(fx.backend(config));
    return {
      keepsHistory: false,
      open: () => server.client(),
      plant: (workspace, bytes) => fx.plantState(layout.stateKey(workspace), bytes),
      fingerprint: () => storeFingerprint(fx),
      async [Symbol.asyncDispose]() {
        await server[Symbol.asyncDispose]();
        await layout.close();
        await fx[Symbol.asyncDispose]();
      },
    };
  },
});
