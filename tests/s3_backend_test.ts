/**
 * S3Backend: the `StateBackend` contract (tests/_backend_contract.ts) in each lock mode, then
 * what only S3 does: key layouts, Terraform's digest, Content-MD5, ETag quoting, encryption,
 * errors and request counts, against real servers.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { GetItemCommand, PutItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { createHash } from "node:crypto";
import { BackendConfigError, BackendError, WorkspaceNotEmptyError } from "../src/errors.ts";
import { createEmptyState, serializeState } from "../src/state.ts";
import type { GaibState } from "../src/types.ts";
import type { S3BackendConfig } from "../src/config.ts";
import { S3Objects } from "../src/backends/_s3_objects.ts";
import { S3KeyLayout } from "../src/backends/_s3_keys.ts";
import { S3Backend } from "../src/backends/s3.ts";
import { BackendFactory } from "../src/factory.ts";
import { backendContract, type ContractStore } from "./_backend_contract.ts";
import { RequestLog } from "./_aws_requests.ts";
import { type Need, type S3Fixture, s3Fixture, s3Test } from "./_s3_fixture.ts";

/** The lock modes, each run through the whole contract. */
const MODES: { name: string; needs: Need[]; config(fx: S3Fixture): Partial<S3BackendConfig> }[] = [
  { name: "DynamoDB locks", needs: ["dynamodb"], config: (fx) => ({ dynamodb_table: fx.table }) },
  { name: "lockfile", needs: ["conditionalWrites"], config: () => ({ use_lockfile: true }) },
  {
    name: "lockfile and DynamoDB",
    needs: ["dynamodb", "conditionalWrites"],
    config: (fx) => ({ dynamodb_table: fx.table, use_lockfile: true }),
  },
];

for (const mode of MODES) {
  backendContract(`S3Backend (${mode.name})`, {
    test(name, needs, fn) {
      // Writers racing without a lock rely on conditional writes in every mode.
      const extra: Need[] = needs.includes("racingWriters") ? ["conditionalWrites"] : [];
      s3Test(name, [...new Set([...mode.needs, ...extra])], fn);
    },
    async create(): Promise<ContractStore> {
      const fx = await s3Fixture();
      const config = mode.config(fx);
      const layout = fx.backend(config);
      return {
        open: () => fx.backend(config),
        // As Terraform writes a state: the object, then the digest item (with a lock table).
        plant: (workspace, bytes) =>
          fx.plantState(layout.stateKey(workspace), bytes, { digest: !!config.dynamodb_table }),
        fingerprint: () => storeFingerprint(fx),
        // A bucket without versioning: S3 keeps only the current object.
        keepsHistory: false,
        [Symbol.asyncDispose]: () => fx[Symbol.asyncDispose](),
      };
    },
  });
}

/** Every object (key -> ETag) and every item of the lock table (LockID -> item). */
async function storeFingerprint(fx: S3Fixture): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let token: string | undefined;
  do {
    const page = await fx.s3Client.send(
      new ListObjectsV2Command({ Bucket: fx.bucket, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) out[`s3:${object.Key}`] = object.ETag ?? "";
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  if (fx.dynamoClient) {
    const items = await fx.dynamoClient.send(new ScanCommand({ TableName: fx.table }));
    for (const item of items.Items ?? []) {
      out[`dynamodb:${item.LockID?.S}`] = JSON.stringify(item, Object.keys(item).sort());
    }
  }
  return out;
}

async function objectText(
  fx: { s3Client: import("@aws-sdk/client-s3").S3Client; bucket: string },
  key: string,
): Promise<string | null> {
  try {
    const out = await fx.s3Client.send(new GetObjectCommand({ Bucket: fx.bucket, Key: key }));
    return await out.Body!.transformToString();
  } catch (error) {
    if ((error as Error).name === "NoSuchKey") return null;
    throw error;
  }
}

async function keys(
  fx: { s3Client: import("@aws-sdk/client-s3").S3Client; bucket: string },
): Promise<string[]> {
  const out = await fx.s3Client.send(new ListObjectsV2Command({ Bucket: fx.bucket }));
  return (out.Contents ?? []).map((c) => c.Key!).sort();
}

function next(state: GaibState, change: Record<string, unknown> = {}): GaibState {
  return { ...state, serial: state.serial + 1, ...change };
}

/** The next state of `state`, tracking `count` managed resource instances. */
function withResources(state: GaibState, count: number): GaibState {
  return next(state, {
    resources: [{
      mode: "managed",
      type: "discord_role",
      name: "r",
      provider: 'provider["registry.terraform.io/x/discord"]',
      instances: Array.from({ length: count }, (_, i) => ({ index_key: i, attributes: {} })),
    }],
  });
}

s3Test(
  "S3Backend keeps default at key and other workspaces under env:/ in Terraform's layout",
  ["dynamodb"],
  async () => {
    await using fx = await s3Fixture();
    const backend = fx.backend({ key: "app/terraform.tfstate", dynamodb_table: fx.table });
    const state = createEmptyState();
    await backend.setState("default", state);
    await backend.setState("staging", { ...createEmptyState(), serial: 4 });
    assert.deepEqual(await keys(fx), [
      "app/terraform.tfstate",
      "env:/staging/app/terraform.tfstate",
    ]);
    assert.equal((await backend.getState("default"))?.lineage, state.lineage);
    assert.equal((await backend.getState("staging"))?.serial, 4);
    assert.equal(await backend.getState("other"), null);
    assert.equal(backend.stateKey("staging"), "env:/staging/app/terraform.tfstate");
    // The digest item is Terraform's: <bucket>/<key>-md5 with the hex MD5 of the bytes.
    const bytes = await objectText(fx, "app/terraform.tfstate");
    const item = await fx.dynamoClient!.send(
      new GetItemCommand({
        TableName: fx.table,
        Key: { LockID: { S: `${fx.bucket}/app/terraform.tfstate-md5` } },
      }),
    );
    assert.equal(item.Item?.Digest?.S, createHash("md5").update(bytes!).digest("hex"));
  },
);

s3Test(
  "S3Backend substitutes ${workspace} in the key and honours a custom workspace_key_prefix",
  [],
  async () => {
    await using fx = await s3Fixture();
    const templated = fx.backend({ key: "servers/${workspace}/terraform.tfstate" });
    await templated.setState("default", createEmptyState());
    await templated.setState("prod", createEmptyState());
    const prefixed = fx.backend({ key: "main.tfstate", workspace_key_prefix: "workspaces" });
    await prefixed.setState("dev", createEmptyState());
    assert.deepEqual(await keys(fx), [
      "servers/default/terraform.tfstate",
      "servers/prod/terraform.tfstate",
      "workspaces/dev/main.tfstate",
    ]);
    assert.deepEqual(await templated.listWorkspaces(), ["default", "prod"]);
    assert.deepEqual(await prefixed.listWorkspaces(), ["default", "dev"]);
  },
);

s3Test(
  "S3Backend stores a state as Terraform's serialization of it, with Content-Type application/json",
  [],
  async () => {
    await using fx = await s3Fixture();
    const state: GaibState = {
      ...createEmptyState(),
      serial: 7,
      outputs: { id: { value: "x", type: "string" } },
    };
    await fx.backend().setState("default", state);
    assert.equal(await objectText(fx, "terraform.tfstate"), serializeState(state));
    const head = await fx.s3Client.send(
      new HeadObjectCommand({ Bucket: fx.bucket, Key: "terraform.tfstate" }),
    );
    assert.equal(head.ContentType, "application/json");
  },
);

s3Test(
  "S3Backend.listWorkspaces lists each workspace once, never a lockfile or another key, in one request per 1000 keys",
  ["conditionalWrites"],
  async () => {
    await using fx = await s3Fixture();
    const log = new RequestLog();
    const backend = fx.backend({ use_lockfile: true }, { onRequest: log.record });
    const names = Array.from({ length: 990 }, (_, i) => `ws-${String(i).padStart(4, "0")}`);
    const put = (Key: string) =>
      fx.s3Client.send(new PutObjectCommand({ Bucket: fx.bucket, Key, Body: "{}" }));
    // Every workspace has its state; some are locked (a lockfile beside the state).
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((n) => put(`env:/${n}/terraform.tfstate`)));
    }
    await Promise.all(names.slice(0, 15).map((n) => put(`env:/${n}/terraform.tfstate.tflock`)));
    // Objects that are not workspaces of this key: another project's state in the same
    // prefix, the default workspace's lockfile, a name Terraform would refuse, and a
    // workspace that is locked but has no state (as a failed "-w ghost lock" leaves it).
    await put("env:/other-project-only/another.tfstate");
    await put("terraform.tfstate.tflock");
    await put("env:/not a valid name/terraform.tfstate");
    const ghost = await backend.lock("ghost", { detached: true });
    log.take();
    const listed = await backend.listWorkspaces();
    assert.deepEqual(listed, ["default", ...names]);
    // Under env:/, 990 states + 15 lockfiles + 3 other keys: just over 1000 keys, two pages.
    assert.deepEqual(log.take(), ["s3:ListObjectsV2", "s3:ListObjectsV2"]);
    await backend.unlock("ghost", ghost.lockId);
    assert.equal(await objectText(fx, "env:/ghost/terraform.tfstate.tflock"), null);
  },
);

Deno.test("S3KeyLayout refuses every workspace name whose state key is another workspace's lockfile or digest item, in every layout", async (t) => {
  const bucket = "b";
  const layouts: Array<{ key: string; prefix?: string }> = [
    { key: "terraform.tfstate" },
    { key: "app/terraform.tfstate", prefix: "workspaces" },
    { key: "states/${workspace}" },
    { key: "states/${workspace}.tfstate" },
    { key: "${workspace}" },
    { key: "${workspace}/x/${workspace}" },
    { key: "states/${workspace}-md5" },
    { key: "states/${workspace}.tflock" },
    { key: "a.tflock" },
    { key: "x-md5" },
  ];
  const suffixes = [".tflock", "-md5"];
  for (const { key, prefix } of layouts) {
    await t.step(`${key}${prefix ? ` (prefix ${prefix})` : ""}`, () => {
      const layout = new S3KeyLayout(bucket, key, prefix);
      // Names built to collide: bases with every suffix stacked, then every name whose state
      // key is a derived key of a name found so far.
      const names = new Set<string>();
      for (const base of ["default", "a", "prod", "x", "a.b", "-md5", ".tflock", "env:"]) {
        for (const tail of ["", ...suffixes, ".tflock-md5", "-md5.tflock", "-md5-md5"]) {
          names.add(base + tail);
        }
      }
      for (let round = 0; round < 3; round++) {
        for (const name of [...names]) {
          const stateKey = (() => {
            try {
              return layout.stateKey(name);
            } catch {
              return null;
            }
          })();
          for (const suffix of suffixes) {
            const other = stateKey === null ? null : layout.workspaceOf(stateKey + suffix);
            if (other !== null) names.add(other);
          }
        }
      }
      const owners = { s3: new Map<string, string>(), dynamodb: new Map<string, string>() };
      const claim = (space: "s3" | "dynamodb", id: string, name: string) => {
        const owner = owners[space].get(id);
        assert.ok(owner === undefined, `${space} "${id}" belongs to "${owner}" and "${name}"`);
        owners[space].set(id, name);
      };
      let accepted = 0;
      let refused = 0;
      for (const name of names) {
        let stateKey: string;
        try {
          stateKey = layout.stateKey(name);
        } catch (error) {
          assert.ok(error instanceof BackendConfigError, String(error));
          refused++;
          continue;
        }
        accepted++;
        assert.equal(layout.workspaceOf(stateKey), name, "the layout is one-to-one");
        assert.equal(layout.listing().nameOf(stateKey), name, "listed by its state");
        assert.equal(layout.listing().nameOf(layout.lockfileKey(stateKey)), null);
        claim("s3", stateKey, name);
        claim("s3", layout.lockfileKey(stateKey), name);
        claim("dynamodb", layout.lockPath(stateKey), name);
        claim("dynamodb", layout.digestId(stateKey), name);
      }
      assert.ok(accepted >= 5, `${accepted} accepted, ${refused} refused`);
    });
  }
  await t.step("with key states/${workspace}, X-md5 and X.tflock are refused and X is not", () => {
    const layout = new S3KeyLayout(bucket, "states/${workspace}");
    assert.equal(layout.stateKey("X"), "states/X");
    assert.throws(() => layout.stateKey("X-md5"), /digest item .* of workspace "X"/);
    assert.throws(() => layout.stateKey("X.tflock"), /lockfile .* of workspace "X"/);
    assert.throws(() => layout.stateKey("default-md5"), /of workspace "default"/);
  });
});

s3Test(
  "S3Backend.deleteState refuses a state that tracks resources unless forced, and checks the lock like setState",
  ["dynamodb", "conditionalWrites"],
  async () => {
    await using fx = await s3Fixture();
    const backend = fx.backend({ dynamodb_table: fx.table, use_lockfile: true });
    await backend.setState("busy", withResources(createEmptyState(), 2));
    await assert.rejects(backend.deleteState("busy"), (error: Error) => {
      assert.ok(error instanceof WorkspaceNotEmptyError);
      assert.equal(error.instances, 2);
      return true;
    });
    assert.equal((await backend.getState("busy"))?.resources?.[0].instances.length, 2);
    const { lockId } = await backend.lock("busy", { who: "alice@ci" });
    const other = fx.backend({ dynamodb_table: fx.table, use_lockfile: true });
    await assert.rejects(
      other.deleteState("busy", { force: true }),
      /Cannot delete workspace "busy": it is locked, held by alice@ci/,
    );
    await assert.rejects(
      other.deleteState("busy", { force: true, lockId: "not-it" }),
      /lock not-it is not the current lock/,
    );
    await backend.deleteState("busy", { force: true, lockId });
    assert.equal(await backend.getState("busy"), null);
    assert.deepEqual(await backend.listWorkspaces(), ["default"]);
    assert.deepEqual(await keys(fx), ["env:/busy/terraform.tfstate.tflock"], "lock kept");
    await backend.unlock("busy", lockId);
    assert.deepEqual(await keys(fx), []);
  },
);

s3Test(
  "S3Backend.deleteState keeps a state written between its check and its delete",
  ["dynamodb", "conditionalWrites"],
  async () => {
    await using fx = await s3Fixture();
    const clients = fx.clients({ dynamodb_table: fx.table });
    const backend = fx.backend({ dynamodb_table: fx.table }, { clients });
    const writer = fx.backend({ dynamodb_table: fx.table });
    await backend.setState("doomed", createEmptyState());
    const empty = (await writer.getState("doomed"))!;
    // Right before deleteState's first change of the object, another client writes a state
    // with resources (as an unlocked push landing at that moment would).
    let armed = true;
    clients.s3.middlewareStack.add(
      (nextHandler, context) => async (args) => {
        const command = context.commandName;
        if (armed && (command === "PutObjectCommand" || command === "DeleteObjectCommand")) {
          armed = false;
          await writer.setState("doomed", withResources(empty, 1));
        }
        return nextHandler(args);
      },
      { step: "initialize", name: "writeBetweenCheckAndDelete" },
    );
    await assert.rejects(backend.deleteState("doomed"), /changed while it was being deleted/);
    assert.equal(armed, false, "the write happened during deleteState");
    const kept = await fx.backend({ dynamodb_table: fx.table }).getState("doomed");
    assert.equal(kept?.serial, empty.serial + 1, "the state written meanwhile is kept");
    assert.equal(kept?.resources?.length, 1);
    // Nothing left half-done: the same delete, now checked against the new state, is refused
    // for its resources.
    await assert.rejects(backend.deleteState("doomed"), WorkspaceNotEmptyError);
  },
);

s3Test(
  "S3Backend.deleteState removes the state object and its digest item, and nothing else",
  ["dynamodb"],
  async () => {
    await using fx = await s3Fixture();
    const backend = fx.backend({ dynamodb_table: fx.table, use_lockfile: true });
    await backend.setState("gone", createEmptyState());
    await backend.setState("kept", createEmptyState());
    await backend.deleteState("gone");
    assert.deepEqual(await keys(fx), ["env:/kept/terraform.tfstate"]);
    const digest = (ws: string) =>
      fx.dynamoClient!.send(
        new GetItemCommand({
          TableName: fx.table,
          Key: { LockID: { S: `${fx.bucket}/env:/${ws}/terraform.tfstate-md5` } },
        }),
      );
    assert.equal((await digest("gone")).Item, undefined);
    assert.ok((await digest("kept")).Item?.Digest?.S, "the other workspace's digest is kept");
  },
);

s3Test(
  "S3Backend.getState fails clearly when the state does not match Terraform's digest, after retrying",
  ["dynamodb"],
  async () => {
    await using fx = await s3Fixture();
    await fx.backend({ dynamodb_table: fx.table }).setState("default", createEmptyState());
    const digestKey = { LockID: { S: `${fx.bucket}/terraform.tfstate-md5` } };
    const good = (await fx.dynamoClient!.send(
      new GetItemCommand({ TableName: fx.table, Key: digestKey }),
    )).Item!.Digest.S!;
    const putDigest = (digest: string) =>
      fx.dynamoClient!.send(
        new PutItemCommand({ TableName: fx.table, Item: { ...digestKey, Digest: { S: digest } } }),
      );
    await putDigest("0".repeat(32));
    const log = new RequestLog();
    const backend = fx.backend({ dynamodb_table: fx.table }, {
      consistencyTimeoutMs: 1200,
      onRequest: log.record,
    });
    await assert.rejects(backend.getState("default"), (error: Error) => {
      assert.ok(error instanceof BackendError);
      assert.match(error.message, /does not match its digest/);
      assert.ok(error.message.includes(`item "${fx.bucket}/terraform.tfstate-md5"`));
      // The ways out, each a command that writes the digest anew (see cli_s3_test.ts).
      assert.ok(
        error.message.includes(
          '"gaib-state state pull --ignore-digest -w default | ' +
            'gaib-state state push --force - -w default"',
        ),
        error.message,
      );
      assert.ok(error.message.includes('"gaib-state state push --force FILE -w default"'));
      return true;
    });
    const digestReads = log.take().filter((r) => r === "dynamodb:GetItem").length;
    assert.ok(digestReads >= 2, `it read the digest again before failing (${digestReads} reads)`);

    // Read as it is stored, it is there.
    assert.ok(await backend.getState("default", { verifyDigest: false }));
    // A digest that catches up while the reader retries is accepted. The good digest is put
    // after the reader's first digest read has answered (with the wrong one), before the
    // reader sees that answer: so the reader must retry to succeed.
    const clients = fx.clients({ dynamodb_table: fx.table });
    let reads = 0;
    clients.dynamodb!.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === "GetItemCommand" && ++reads === 1) await putDigest(good);
        return result;
      },
      { step: "initialize", name: "digestCatchesUp" },
    );
    const reader = fx.backend({ dynamodb_table: fx.table }, {
      consistencyTimeoutMs: 60_000,
      clients,
    });
    assert.ok(await reader.getState("default"));
    assert.equal(reads, 2, "one read of the wrong digest, one of the good one");
  },
);

s3Test(
  "S3Backend.getState accepts a newer state whose digest update was lost (writer killed) and repairs the digest",
  ["dynamodb"],
  async () => {
    await using fx = await s3Fixture();
    const backend = fx.backend({ dynamodb_table: fx.table }, { consistencyTimeoutMs: 60_000 });
    const first = { ...createEmptyState(), serial: 1 };
    await backend.setState("default", first);
    const digestKey = { LockID: { S: `${fx.bucket}/terraform.tfstate-md5` } };
    const readDigest = async () =>
      (await fx.dynamoClient!.send(new GetItemCommand({ TableName: fx.table, Key: digestKey })))
        .Item!;
    const before = await readDigest();
    assert.equal(before.GaibSerial?.N, "1");
    // As if the writer died after uploading serial 2 and before updating the digest.
    const newer = serializeState({ ...first, serial: 2 });
    await fx.s3Client.send(
      new PutObjectCommand({ Bucket: fx.bucket, Key: "terraform.tfstate", Body: newer }),
    );
    const log = new RequestLog();
    const reader = fx.backend({ dynamodb_table: fx.table }, {
      consistencyTimeoutMs: 60_000,
      onRequest: log.record,
    });
    assert.equal((await reader.getState("default"))?.serial, 2);
    // Accepted at the first look (no retry while the timeout runs), and the digest repaired.
    assert.deepEqual(log.take().sort(), ["dynamodb:GetItem", "dynamodb:PutItem", "s3:GetObject"]);
    const after = await readDigest();
    assert.equal(after.Digest.S, createHash("md5").update(newer).digest("hex"));
    assert.equal(after.GaibSerial?.N, "2");
    // An object OLDER than its digest is what the digest catches: still refused.
    const older = serializeState({
      ...first,
      serial: 1,
      outputs: { x: { value: 1, type: "number" } },
    });
    await fx.s3Client.send(
      new PutObjectCommand({ Bucket: fx.bucket, Key: "terraform.tfstate", Body: older }),
    );
    const strict = fx.backend({ dynamodb_table: fx.table }, { consistencyTimeoutMs: 600 });
    await assert.rejects(strict.getState("default"), /does not match its digest/);
  },
);

s3Test(
  "S3 conditional writes adapt to how the server wants the ETag quoted, and still refuse a real conflict",
  ["conditionalWrites"],
  async () => {
    await using fx = await s3Fixture();
    // Start with the quoting this server (Ceph RGW) refuses: the first refusal of an ETag that
    // does match switches the quoting, and the write lands.
    const objects = new S3Objects(fx.s3Client, fx.bucket, { encrypt: false }, true);
    const enc = (text: string) => new TextEncoder().encode(text);
    const first = await objects.put("k", enc("v1"), { ifNoneMatch: true });
    assert.ok(first);
    const second = await objects.put("k", enc("v2"), { ifMatch: first });
    assert.ok(second, "a matching ETag is accepted after the switch");
    assert.equal(await objects.put("k", enc("v3"), { ifMatch: first }), null, "stale ETag refused");
    assert.equal(new TextDecoder().decode((await objects.get("k"))!.bytes), "v2");
  },
);

s3Test(
  "S3Backend writes Content-MD5, so S3 rejects a body corrupted on the way and the state stays intact",
  ["md5Check"],
  async () => {
    await using fx = await s3Fixture();
    const clients = fx.clients();
    const backend = fx.backend({}, { clients });
    const state = createEmptyState();
    await backend.setState("default", state);
    let corrupt = false;
    // Corrupt the body after the backend computed its Content-MD5.
    clients.s3.middlewareStack.add(
      (nextHandler) => (args) => {
        const request = (args as { request: { headers: Record<string, string>; body: unknown } })
          .request;
        if (corrupt && request.body instanceof Uint8Array && request.headers["content-md5"]) {
          const body = request.body.slice();
          body[body.length - 2] ^= 1;
          request.body = body;
        }
        return nextHandler(args);
      },
      // Before signing, so the payload hash matches the corrupted body: only Content-MD5 can
      // tell.
      { step: "build", priority: "low", name: "corrupt" },
    );
    corrupt = true;
    await assert.rejects(backend.setState("default", next(state)), (error: Error) => {
      assert.ok(error instanceof BackendError);
      assert.match(error.message, /Content-MD5/);
      return true;
    });
    assert.equal((await fx.backend().getState("default"))?.serial, 0);
  },
);

s3Test(
  "S3Backend asks for SSE AES256 on the state and the lockfile when encrypt is set",
  [],
  async () => {
    await using fx = await s3Fixture();
    const clients = fx.clients({ encrypt: true, use_lockfile: true });
    // The SSE header of every PUT, by object key (the path's last part after the bucket).
    const sse: Record<string, string | undefined> = {};
    clients.s3.middlewareStack.add(
      (nextHandler) => (args) => {
        const request = (args as {
          request: { method: string; path: string; headers: Record<string, string> };
        }).request;
        if (request.method === "PUT") {
          const key = decodeURIComponent(request.path.split("/").slice(2).join("/"));
          sse[key] = request.headers["x-amz-server-side-encryption"];
        }
        return nextHandler(args);
      },
      { step: "build", priority: "low", name: "watchSse" },
    );
    const backend = fx.backend({ encrypt: true, use_lockfile: true }, { clients });
    const { lockId } = await backend.lock("default");
    await backend.setState("default", createEmptyState(), { lockId });
    assert.deepEqual(sse, {
      "terraform.tfstate": "AES256",
      "terraform.tfstate.tflock": "AES256",
    });
    assert.ok(await fx.backend().getState("default"));
    await backend.unlock("default", lockId);
    if (fx.s3.sse) {
      const head = await fx.s3Client.send(
        new HeadObjectCommand({ Bucket: fx.bucket, Key: "terraform.tfstate" }),
      );
      assert.equal(head.ServerSideEncryption, "AES256");
    } else {
      console.log(`(${fx.s3.kind} does not report SSE-S3: only the request is checked)`);
    }
  },
);

s3Test("S3Backend encrypts states with SSE-KMS under kms_key_id", ["kms"], async () => {
  await using fx = await s3Fixture();
  const backend = fx.backend({ kms_key_id: fx.s3.kmsKeyId });
  const state = createEmptyState();
  await backend.setState("default", state);
  const head = await fx.s3Client.send(
    new HeadObjectCommand({ Bucket: fx.bucket, Key: "terraform.tfstate" }),
  );
  assert.equal(head.ServerSideEncryption, "aws:kms");
  assert.equal(head.SSEKMSKeyId, fx.s3.kmsKeyId);
  assert.equal((await fx.backend().getState("default"))?.lineage, state.lineage);
});

s3Test(
  "S3Backend names the bucket and endpoint when the bucket does not exist, and isConfigured says false",
  ["dynamodb"],
  async () => {
    await using fx = await s3Fixture();
    const missingBucket = fx.backend({ bucket: "no-such-bucket-gaib", max_retries: 0 });
    await assert.rejects(missingBucket.getState("default"), (error: Error) => {
      assert.match(error.message, /Bucket "no-such-bucket-gaib" does not exist at http:\/\/127/);
      assert.match(error.message, /backend\.bucket/);
      return true;
    });
    assert.equal(await missingBucket.isConfigured(), false);
    const missingTable = fx.backend({ dynamodb_table: "no-such-table-gaib", max_retries: 0 });
    assert.equal(await missingTable.isConfigured(), false);
    await assert.rejects(
      missingTable.lock("default"),
      /table "no-such-table-gaib" does not exist.*LockID/s,
    );
    assert.equal(await fx.backend({ dynamodb_table: fx.table }).isConfigured(), true);
  },
);

s3Test("S3Backend never puts credentials in its error messages", [], async () => {
  await using fx = await s3Fixture();
  const secret = "wrong-secret-key-that-must-not-leak";
  Deno.env.set("AWS_SECRET_ACCESS_KEY", secret);
  try {
    const backend = fx.backend({ max_retries: 0 });
    const error = await backend.getState("default").then(() => null, (e: Error) => e);
    assert.ok(error instanceof BackendError, String(error));
    assert.match(error.message, /denied access|S3 failed/);
    assert.ok(!error.message.includes(secret));
    assert.ok(!error.message.includes("Signature="));
  } finally {
    Deno.env.set("AWS_SECRET_ACCESS_KEY", "test");
  }
});

s3Test("BackendFactory builds an S3Backend for backend.type s3", [], async () => {
  await using fx = await s3Fixture();
  const backend = await BackendFactory.create(fx.config({ use_lockfile: true }));
  try {
    assert.equal(backend.constructor.name, "S3Backend");
    await backend.setState("default", createEmptyState());
    assert.deepEqual(await backend.listWorkspaces(), ["default"]);
  } finally {
    await backend.close();
  }
});

/** Terraform's requests for a locked read-modify-write, per lock mode (from its source). */
const TERRAFORM_REQUESTS = {
  // lock PutItem; get GetObject + digest GetItem; put PutObject + digest PutItem;
  // unlock GetItem + DeleteItem
  dynamodb: 7,
  // lock PutObject; get GetObject; put PutObject; unlock GetObject + DeleteObject
  lockfile: 5,
  // both locks; get + digest; put + digest; unlock GetObject + DeleteObject + GetItem + DeleteItem
  both: 10,
};

s3Test(
  "A locked read-modify-write makes no more requests than Terraform's, per lock mode",
  ["dynamodb"],
  async (t) => {
    await using fx = await s3Fixture();
    const modes = [
      { mode: "dynamodb", config: { dynamodb_table: fx.table } },
      { mode: "lockfile", config: { use_lockfile: true } },
      { mode: "both", config: { dynamodb_table: fx.table, use_lockfile: true } },
    ] as const;
    const expected: Record<string, Record<string, string[]>> = {
      dynamodb: {
        lock: ["dynamodb:PutItem"],
        get: ["dynamodb:GetItem", "s3:GetObject"],
        set: ["dynamodb:GetItem", "dynamodb:PutItem", "s3:PutObject"],
        unlock: ["dynamodb:DeleteItem"],
      },
      lockfile: {
        lock: ["s3:PutObject"],
        get: ["s3:GetObject"],
        set: ["s3:GetObject", "s3:PutObject"],
        unlock: ["s3:DeleteObject", "s3:GetObject"],
      },
      both: {
        lock: ["dynamodb:PutItem", "s3:PutObject"],
        get: ["dynamodb:GetItem", "s3:GetObject"],
        set: ["dynamodb:GetItem", "dynamodb:PutItem", "s3:PutObject"],
        unlock: ["dynamodb:DeleteItem", "s3:DeleteObject", "s3:GetObject"],
      },
    };
    for (const { mode, config } of modes) {
      await t.step(mode, async () => {
        const log = new RequestLog();
        const backend = fx.backend({ ...config, key: `${mode}.tfstate` }, {
          onRequest: log.record,
        });
        await backend.setState("default", createEmptyState());
        log.take();
        const seen: Record<string, string[]> = {};
        const { lockId } = await backend.lock("default");
        seen.lock = log.take().sort();
        const state = (await backend.getState("default"))!;
        seen.get = log.take().sort();
        await backend.setState("default", next(state), { lockId });
        seen.set = log.take().sort();
        await backend.unlock("default", lockId);
        seen.unlock = log.take().sort();
        assert.deepEqual(seen, expected[mode]);
        const total = Object.values(seen).flat().length;
        // Never more than Terraform's DynamoDB cycle (lock, get, get digest, put, put
        // digest, unlock), and fewer without the digest.
        assert.ok(total <= TERRAFORM_REQUESTS.dynamodb + (mode === "both" ? 3 : 0));
        if (mode === "lockfile") assert.ok(total < TERRAFORM_REQUESTS.dynamodb);
        // Per mode, at most Terraform's own count, plus the lock check Terraform does not make
        // before a write (in the lockfile mode; in the others it is paid for by a one-request
        // unlock).
        const lockCheck = mode === "lockfile" ? 1 : 0;
        assert.ok(
          total <= TERRAFORM_REQUESTS[mode] + lockCheck,
          `${mode}: ${total} > Terraform's ${TERRAFORM_REQUESTS[mode]}`,
        );
      });
    }
  },
);

Deno.test("new S3Backend checks its config with the factory's rule, naming the field", () => {
  const base: S3BackendConfig = { type: "s3", bucket: "states", key: "app.tfstate" };
  // Before, only a missing bucket or key was refused; these reached S3 (or shared an object
  // between the default workspace and "x").
  const cases: [string, Record<string, unknown>, string][] = [
    ["a key inside the workspace prefix", { key: "env:/x/app.tfstate" }, "key"],
    ["a bucket name S3 refuses", { bucket: "Not A Bucket" }, "bucket"],
    ["an endpoint that is not a URL", { endpoint: "s3.example.test" }, "endpoint"],
    ["an unknown key", { dynamo_table: "locks" }, "dynamo_table"],
    ["a missing key", { key: undefined }, "key"],
  ];
  for (const [what, change, field] of cases) {
    assert.throws(
      () => new S3Backend({ ...base, ...change } as S3BackendConfig),
      (e: unknown) =>
        e instanceof BackendConfigError && e.path === field &&
        e.message.startsWith(`S3Backend config: ${field}: `),
      what,
    );
  }
});
