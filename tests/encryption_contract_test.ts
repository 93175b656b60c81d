/**
 * The whole `StateBackend` contract (tests/_backend_contract.ts) through `withEncryption`, on
 * the local backend, on S3 (DynamoDB locks) and on PostgreSQL (against the real test servers): every lineage,
 * serial, lock, workspace and lossless rule holds with the states stored encrypted. The config
 * has an `unencrypted` fallback, because the contract plants plain states behind the backend's
 * back as another tool would.
 *
 * @module
 */

import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { LocalBackend } from "../src/backends/local.ts";
import { type EncryptionConfig, withEncryption } from "../src/encryption.ts";
import type { StateBackend } from "../src/types.ts";
import { backendContract } from "./_backend_contract.ts";
import { type S3Fixture, s3Fixture, s3Test } from "./_s3_fixture.ts";
import { tempDir } from "./_temp.ts";
import { snapshotTree } from "./reliability/_util.ts";
import { pgFingerprint, pgFixture, plantTerraformRow } from "./_pg_fixture.ts";
import { serverTest } from "./_server_env.ts";

const ENCRYPTION: EncryptionConfig = {
  key_provider: {
    pbkdf2: { contract: { passphrase: "contract passphrase, 16+", iterations: 200_000 } },
  },
  method: {
    aes_gcm: { secure: { keys: "key_provider.pbkdf2.contract" } },
    unencrypted: { planted: {} },
  },
  state: { method: "method.aes_gcm.secure", fallback: { method: "method.unencrypted.planted" } },
};

backendContract("EncryptedBackend over LocalBackend", {
  decrypts: true,
  async create() {
    const dir = await tempDir();
    const root = `${dir.path}/.gaib`;
    const clients: StateBackend[] = [];
    return {
      open() {
        const backend = withEncryption(new LocalBackend({ path: root }), ENCRYPTION);
        clients.push(backend);
        return backend;
      },
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
        for (const client of clients) await client.close();
        await dir[Symbol.asyncDispose]();
      },
    };
  },
});

backendContract("EncryptedBackend over S3Backend (DynamoDB locks)", {
  decrypts: true,
  test(name, needs, fn) {
    s3Test(
      name,
      needs.includes("racingWriters") ? ["dynamodb", "conditionalWrites"] : ["dynamodb"],
      fn,
    );
  },
  async create() {
    const fx = await s3Fixture();
    const config = { dynamodb_table: fx.table };
    const layout = fx.backend(config);
    return {
      keepsHistory: false, // an unversioned bucket
      open: () => withEncryption(fx.backend(config), ENCRYPTION),
      plant: (workspace, bytes) => fx.plantState(layout.stateKey(workspace), bytes),
      fingerprint: () => fingerprint(fx),
      [Symbol.asyncDispose]: () => fx[Symbol.asyncDispose](),
    };
  },
});

backendContract("EncryptedBackend over PgBackend", {
  decrypts: true,
  test(name, _needs, fn) {
    serverTest(name, { pg: true }, (t) => fn(t));
  },
  async create() {
    const fx = await pgFixture(JSON.parse(Deno.env.get("GAIB_TEST_PG")!));
    return {
      // pg keeps every replaced row in its history table: keepsHistory stays true.
      open: () => withEncryption(fx.backend(), ENCRYPTION),
      plant: (workspace, bytes) => plantTerraformRow(fx, workspace, bytes),
      fingerprint: () => pgFingerprint(fx),
      [Symbol.asyncDispose]: () => fx[Symbol.asyncDispose](),
    };
  },
});

async function fingerprint(fx: S3Fixture): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const page = await fx.s3Client.send(new ListObjectsV2Command({ Bucket: fx.bucket }));
  for (const object of page.Contents ?? []) out[`s3:${object.Key}`] = object.ETag ?? "";
  const items = await fx.dynamoClient!.send(new ScanCommand({ TableName: fx.table }));
  for (const item of items.Items ?? []) {
    out[`dynamodb:${item.LockID?.S}`] = JSON.stringify(item, Object.keys(item).sort());
  }
  return out;
}
