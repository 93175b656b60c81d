/**
 * `gaib-state migrate` for real: local -> S3 (DynamoDB locks, and lockfiles), S3 -> local,
 * local -> pg, pg -> local and local -> local (another state root), each with 50 workspaces, one of them locked by another
 * process during the run (refused with the holder shown, or waited for, per
 * `--lock-timeout`) and one with another lineage on the target; a dry run that changes no
 * byte; a SIGKILL in the middle of a migration and the re-run that finishes it.
 *
 * S3 buckets are unversioned: Ceph RGW ignores `If-None-Match` in versioned buckets.
 *
 * @module
 */

import assert from "node:assert/strict";
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { type DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import {
  type BackendConfig,
  type GaibState,
  LocalBackend,
  migrateStates,
  MigrationError,
  parseState,
  serializeState,
  type StateBackend,
} from "../mod.ts";
import { S3Backend } from "../src/backends/s3.ts";
import { PgBackend } from "../src/backends/pg.ts";
import type { PgBackendConfig, S3BackendConfig } from "../src/config.ts";
import { type CliProject, cliProject, type CliResult } from "./_cli.ts";
import { spawnLockHolder } from "./_lock_holder.ts";
import { pasteCommand, quotedCommands } from "./_paste.ts";
import {
  type DynamoServerInfo,
  type S3ServerInfo,
  serverTest,
  tempBucket,
  tempLockTable,
  TEST_CREDENTIALS,
} from "./_server_env.ts";
import { snapshotTree } from "./reliability/_util.ts";
import { holdTerraformLock, type PgFixture, pgFixture } from "./_pg_fixture.ts";
import type { PgServerInfo } from "./_pg_server.ts";

const OPTIONS = { sanitizeOps: false, sanitizeResources: false } as const;
const CREDENTIALS = {
  AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
  AWS_REGION: TEST_CREDENTIALS.region,
};
// The test's own S3 backends and the lock holder use the SDK's default credential chain.
for (const [name, value] of Object.entries(CREDENTIALS)) Deno.env.set(name, value);

/** `default` and ws-01..ws-49: 50 workspaces. */
const WORKSPACES = ["default", ...Array.from({ length: 49 }, (_, i) => `ws-${pad(i + 1)}`)];
const LOCKED = "ws-13";
const CONFLICT = "ws-07";

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** A workspace's state: its own lineage and serial, unknown fields, numbers beyond 2^53. */
function stateFor(ws: string, i: number): GaibState {
  return parseState(`{
  "version": 4,
  "terraform_version": "1.9.8",
  "serial": ${i + 1},
  "lineage": "lineage-${ws}",
  "outputs": { "guild": { "value": 12345678901234567890123${i}, "type": "number" } },
  "resources": [],
  "check_results": null,
  "gaib_future_field": { "ratio": 1.0, "huge": 1e400 }
}
`)!;
}

/** Where states are, as the CLI (a config file) and the test (a backend) see it. */
interface Store {
  /** The gaib.yaml text naming it. */
  yaml: string;
  /** A backend on it, for the test to seed and read. */
  open(): StateBackend;
  /** The config, for a lock holder process. */
  config: BackendConfig;
}

function yamlOf(backend: Record<string, unknown>): string {
  const lines = ['version: "1"', "backend:"];
  for (const [key, value] of Object.entries(backend)) {
    if (value === undefined) continue;
    if (typeof value === "object") {
      lines.push(`  ${key}:`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v !== undefined) lines.push(`    ${k}: ${JSON.stringify(v)}`);
      }
    } else lines.push(`  ${key}: ${JSON.stringify(value)}`);
  }
  return lines.join("\n") + "\n";
}

function localStore(project: CliProject, root: string): Store {
  const config = { type: "local" as const, path: `${project.path}/${root}` };
  return {
    yaml: yamlOf({ type: "local", path: root }),
    open: () => new LocalBackend({ path: config.path }),
    config,
  };
}

interface S3Store extends Store, AsyncDisposable {
  bucket: string;
  s3Client: S3Client;
  dynamoClient?: DynamoDBClient;
  table?: string;
}

async function s3Store(
  mode: "dynamodb" | "lockfile",
  s3: S3ServerInfo,
  dynamodb?: DynamoServerInfo,
): Promise<S3Store> {
  const bucket = await tempBucket(s3, { prefix: "gaib-migrate" }); // unversioned
  const table = mode === "dynamodb" ? await tempLockTable(dynamodb!) : undefined;
  const config: S3BackendConfig = {
    type: "s3",
    bucket: bucket.name,
    key: "discord/terraform.tfstate",
    region: TEST_CREDENTIALS.region,
    endpoints: { s3: s3.endpoint, dynamodb: table ? dynamodb!.endpoint : undefined },
    force_path_style: true,
    max_retries: 1,
    ...(table ? { dynamodb_table: table.name } : { use_lockfile: true }),
  };
  return {
    yaml: yamlOf({ ...config }),
    open: () => new S3Backend(config),
    config,
    bucket: bucket.name,
    s3Client: bucket.client,
    dynamoClient: table?.client,
    table: table?.name,
    async [Symbol.asyncDispose]() {
      await table?.[Symbol.asyncDispose]();
      await bucket[Symbol.asyncDispose]();
    },
  };
}

interface PgStore extends Store, AsyncDisposable {
  fx: PgFixture;
}

/** A fresh database on the run's PostgreSQL server (its conn_str holds the role's password). */
async function pgStore(server: PgServerInfo): Promise<PgStore> {
  const fx = await pgFixture(server);
  const config: PgBackendConfig = { type: "pg", conn_str: fx.connStr };
  return {
    yaml: yamlOf({ ...config }),
    open: () => new PgBackend(config),
    config,
    fx,
    [Symbol.asyncDispose]: () => fx[Symbol.asyncDispose](),
  };
}

async function withBackend<T>(store: Store, fn: (b: StateBackend) => Promise<T>): Promise<T> {
  const backend = store.open();
  try {
    return await fn(backend);
  } finally {
    await backend.close();
  }
}

/** Writes every workspace's state into `source`. */
async function seed(source: Store): Promise<void> {
  await withBackend(source, async (backend) => {
    for (const [i, ws] of WORKSPACES.entries()) await backend.setState(ws, stateFor(ws, i));
  });
}

/** Each workspace's state in a store, serialized (`null` when it has none). */
async function contents(store: Store): Promise<Record<string, string | null>> {
  return await withBackend(store, async (backend) => {
    const result: Record<string, string | null> = {};
    for (const ws of WORKSPACES) {
      const state = await backend.getState(ws);
      result[ws] = state && serializeState(state);
    }
    return result;
  });
}

async function noLocks(store: Store): Promise<void> {
  await withBackend(store, async (backend) => {
    for (const ws of WORKSPACES) {
      assert.equal(await backend.getLockInfo(ws), null, `a lock was left on "${ws}"`);
    }
  });
}

/** The summary table's rows: workspace -> action. */
function tableActions(stdout: string): Record<string, string> {
  const rows = stdout.trimEnd().split("\n");
  assert.match(rows[0], /^WORKSPACE +(ACTION|WOULD BE) +SERIAL +LINEAGE +TARGET HAD$/);
  return Object.fromEntries(rows.slice(1).map((row) => row.split(/ +/).slice(0, 2)));
}

function expectOk(result: CliResult, code = 0): void {
  assert.equal(result.code, code, `exit ${result.code}\n${result.stdout}\n${result.stderr}`);
}

/**
 * The whole story of one migration: 50 workspaces, one locked by another process, one with
 * another lineage on the target; then the re-run and `--force`.
 */
async function migrationStory(
  t: Deno.TestContext,
  project: CliProject,
  source: Store,
  target: Store,
  args: { from?: string; to: string },
  lockWait: boolean,
): Promise<void> {
  await seed(source);
  const conflicting = { ...stateFor(CONFLICT, 99), lineage: "someone-elses-lineage", serial: 1 };
  await withBackend(target, (b) => b.setState(CONFLICT, conflicting));
  const fromFlag = args.from ? ["--from", args.from] : [];
  const migrate = ["migrate", "--to", args.to, ...fromFlag];
  const sourceBefore = await contents(source);

  await using holder = await spawnLockHolder(
    { backend: source.config, workspace: LOCKED, who: "alice@ci" },
    CREDENTIALS,
  );
  if (lockWait) {
    await t.step("a locked workspace is waited for (--lock-timeout), then copied", async () => {
      await using run = project.spawn([...migrate, "--lock-timeout", "5m"]);
      await run.waitForStderr(
        new RegExp(`Waiting for the lock on workspace "${LOCKED}", held by alice@ci`),
      );
      assert.equal(await holder.release(), "UNLOCKED");
      const result = await run.result();
      expectOk(result, 1); // the conflict is refused
      const actions = tableActions(result.stdout);
      assert.equal(actions[LOCKED], "copied");
      assert.equal(actions[CONFLICT], "refused");
      assert.equal(Object.values(actions).filter((a) => a === "copied").length, 49);
      assert.match(result.stderr, /\[50\/50\] ws-49: copied \(serial 50\)/);
      assert.match(result.stderr, /50 workspace\(s\): 49 copied, 1 refused\./);
    });
  } else {
    await t.step(
      "a locked workspace is refused with its holder shown (--lock-timeout 0s)",
      async () => {
        const result = await project.run(migrate);
        expectOk(result, 1);
        const actions = tableActions(result.stdout);
        assert.equal(actions[LOCKED], "refused");
        assert.equal(actions[CONFLICT], "refused");
        assert.equal(Object.values(actions).filter((a) => a === "copied").length, 48);
        assert.match(
          result.stderr,
          new RegExp(
            `Warning: ${LOCKED}: locked on the source, held by alice@ci \\(apply, since .*lock ` +
              `ID ${holder.lockId}\\).* If that holder is gone, run "gaib-state force-unlock ` +
              `${holder.lockId} -w ${LOCKED}`,
          ),
        );
        assert.match(result.stderr, /50 workspace\(s\): 48 copied, 2 refused\./);
        assert.equal((await contents(target))[LOCKED], null);
        assert.equal(await holder.release(), "UNLOCKED");

        // The printed command, pasted, finishes the job and copies nothing twice.
        const retry = quotedCommands(result.stderr).find((c) => c.startsWith("gaib-state migrate"));
        assert.ok(retry, result.stderr);
        const again = await pasteCommand(retry, { cwd: project.path, env: CREDENTIALS });
        assert.equal(again.code, 1, again.stderr);
        const second = tableActions(again.stdout);
        assert.equal(second[LOCKED], "copied");
        assert.equal(second[CONFLICT], "refused");
        assert.equal(Object.values(second).filter((a) => a === "unchanged").length, 48);
      },
    );
  }

  await t.step(
    "every copy equals its source, the conflict is untouched, no lock is left",
    async () => {
      const copied = await contents(target);
      for (const ws of WORKSPACES) {
        if (ws === CONFLICT) continue;
        assert.equal(copied[ws], sourceBefore[ws], ws);
        assert.ok(
          copied[ws]!.includes(`12345678901234567890123${WORKSPACES.indexOf(ws)}`) &&
            copied[ws]!.includes("1e400"),
        );
      }
      assert.equal(copied[CONFLICT], serializeState(conflicting));
      assert.deepEqual(await contents(source), sourceBefore);
      await noLocks(source);
      await noLocks(target);
    },
  );

  await t.step("the conflict's reason names both lineages; --force copies it", async () => {
    const refused = await project.run([...migrate, "-w", CONFLICT, "--json"]);
    expectOk(refused, 1);
    const [entry] = JSON.parse(refused.stdout).results;
    assert.equal(entry.action, "refused");
    assert.match(
      entry.reason,
      /lineage someone-elses-lineage.*another lineage than the source's lineage-ws-07/,
    );
    const forced = await project.run([...migrate, "-w", CONFLICT, "--force"]);
    expectOk(forced);
    assert.equal(tableActions(forced.stdout)[CONFLICT], "copied");
    // The state --force replaced is kept first, in the target's state root.
    const backup = new RegExp(`${CONFLICT}: the target's state was backed up to (\\S+)\\.\n`)
      .exec(forced.stderr)?.[1];
    assert.ok(backup?.includes(`/backups/${CONFLICT}/terraform.tfstate.`), forced.stderr);
    assert.equal(await Deno.readTextFile(backup!), serializeState(conflicting));
    assert.equal((await contents(target))[CONFLICT], sourceBefore[CONFLICT]);
    await noLocks(target);
  });
}

for (const mode of ["dynamodb", "lockfile"] as const) {
  serverTest(
    `gaib-state migrate local -> S3 (${mode} locks): 50 workspaces, a locked one ${
      mode === "dynamodb" ? "refused" : "waited for"
    }, a conflict refused then forced`,
    { s3: true, dynamodb: mode === "dynamodb" ? true : undefined, ...OPTIONS },
    async (t, servers) => {
      const s = servers as { s3: S3ServerInfo; dynamodb?: DynamoServerInfo };
      await using project = await cliProject(CREDENTIALS);
      await using target = await s3Store(mode, s.s3, s.dynamodb);
      await Deno.writeTextFile(`${project.path}/s3.yaml`, target.yaml);
      const source = localStore(project, ".gaib");
      await migrationStory(t, project, source, target, { to: "s3.yaml" }, mode === "lockfile");
    },
  );
}

serverTest(
  "gaib-state migrate S3 -> local: 50 workspaces, a locked one waited for, a conflict refused then forced",
  { s3: true, dynamodb: true, ...OPTIONS },
  async (t, servers) => {
    await using project = await cliProject(CREDENTIALS);
    await using source = await s3Store("dynamodb", servers.s3, servers.dynamodb);
    await Deno.writeTextFile(`${project.path}/s3.yaml`, source.yaml);
    const target = localStore(project, "local-states");
    await Deno.writeTextFile(`${project.path}/local.yaml`, target.yaml);
    await migrationStory(t, project, source, target, { from: "s3.yaml", to: "local.yaml" }, true);
  },
);

serverTest(
  "gaib-state migrate local -> pg: 50 workspaces, a locked one waited for, a conflict refused then forced",
  { pg: true, ...OPTIONS },
  async (t, { pg }) => {
    await using project = await cliProject();
    await using target = await pgStore(pg);
    await Deno.writeTextFile(`${project.path}/pg.yaml`, target.yaml);
    const source = localStore(project, ".gaib");
    await migrationStory(t, project, source, target, { to: "pg.yaml" }, true);
  },
);

serverTest(
  "gaib-state migrate pg -> local: 50 workspaces, one locked on pg refused with its holder shown, a conflict refused then forced",
  { pg: true, ...OPTIONS },
  async (t, { pg }) => {
    await using project = await cliProject();
    // pg is the current backend, so the force-unlock command printed for its lock works as is.
    await using source = await pgStore(pg);
    await Deno.writeTextFile(`${project.path}/gaib.yaml`, source.yaml);
    const target = localStore(project, "local-states");
    await Deno.writeTextFile(`${project.path}/local.yaml`, target.yaml);
    await migrationStory(t, project, source, target, { to: "local.yaml" }, false);
  },
);

serverTest(
  "gaib-state migrate local -> pg: a row Terraform holds locked (psql) is refused naming its session; the rerun copies it alone",
  { pg: true, ...OPTIONS },
  async (_t, { pg }) => {
    await using project = await cliProject();
    await using target = await pgStore(pg);
    await Deno.writeTextFile(`${project.path}/pg.yaml`, target.yaml);
    const source = localStore(project, ".gaib");
    const names = ["default", "a", "b"];
    await withBackend(source, async (b) => {
      for (const [i, ws] of names.entries()) await b.setState(ws, stateFor(ws, i));
    });
    await withBackend(target, (b) => b.setState("b", stateFor("b", 0))); // an older serial
    const holder = await holdTerraformLock(target.fx, "b");
    const refused = await project.run(["migrate", "--to", "pg.yaml"]);
    expectOk(refused, 1);
    assert.deepEqual(tableActions(refused.stdout), {
      default: "copied",
      a: "copied",
      b: "refused",
    });
    assert.match(
      refused.stderr,
      /Warning: b: locked on the target, held by \S+@127\.0\.0\.1 \(since \S+, lock ID pg-session-(\d+)\).* If that holder is gone, run "gaib-state force-unlock --config pg\.yaml pg-session-\1 -w b"/,
    );
    assert.ok(!`${refused.stdout}${refused.stderr}`.includes(target.fx.password));
    // The printed force-unlock, pasted, ends Terraform's session (and so its lock).
    const unlock = quotedCommands(refused.stderr).find((c) =>
      c.startsWith("gaib-state force-unlock")
    );
    const pasted = await pasteCommand(`${unlock} --force`, { cwd: project.path });
    assert.equal(pasted.code, 0, pasted.stderr);
    assert.equal(await withBackend(target, (b) => b.getLockInfo("b")), null, "psql still holds it");
    await holder.ended();
    const again = await project.run(["migrate", "--to", "pg.yaml"]);
    expectOk(again);
    assert.deepEqual(tableActions(again.stdout), {
      default: "unchanged",
      a: "unchanged",
      b: "copied",
    });
    const copied = await withBackend(target, (b) => b.getState("b"));
    assert.equal(serializeState(copied!), serializeState(stateFor("b", 2)));
  },
);

Deno.test("gaib-state migrate local -> local (another root): 50 workspaces, a locked one refused, a conflict refused then forced", async (t) => {
  await using project = await cliProject();
  const target = localStore(project, "other-root");
  await Deno.writeTextFile(`${project.path}/other.yaml`, target.yaml);
  await migrationStory(
    t,
    project,
    localStore(project, ".gaib"),
    target,
    { to: "other.yaml" },
    false,
  );
});

Deno.test("gaib-state migrate refuses a target that is the source, and a missing -w, changing nothing", async () => {
  await using project = await cliProject();
  const source = localStore(project, ".gaib");
  await withBackend(source, (b) => b.setState("a", stateFor("a", 0)));
  await Deno.symlink(`${project.path}/.gaib`, `${project.path}/alias`);
  await Deno.writeTextFile(`${project.path}/same.yaml`, yamlOf({ type: "local", path: "alias" }));
  const before = await snapshotTree(project.path);
  const same = await project.run(["migrate", "--to", "same.yaml"]);
  expectOk(same, 1);
  assert.match(
    same.stderr,
    /^Error: The source \(the current backend\) and the target \(--to same\.yaml\) are the same store: local \S+\/\.gaib\. Nothing was copied/,
  );
  // Two S3 configs of one bucket and key are one store, whatever their locks (refused before
  // any request: no server is needed).
  const s3 = { type: "s3", bucket: "states", key: "k/terraform.tfstate", region: "us-east-1" };
  await Deno.writeTextFile(`${project.path}/a.yaml`, yamlOf({ ...s3, dynamodb_table: "locks" }));
  await Deno.writeTextFile(`${project.path}/b.yaml`, yamlOf({ ...s3, use_lockfile: true }));
  const sameS3 = await project.run(["migrate", "--from", "a.yaml", "--to", "b.yaml", "--json"]);
  expectOk(sameS3, 1);
  const error = JSON.parse(sameS3.stdout).error;
  assert.equal(error.type, "SameBackend");
  assert.match(
    error.message,
    /The source \(--from a\.yaml\) and the target \(--to b\.yaml\) are the same store: s3 AWS bucket states key k\/terraform\.tfstate/,
  );
  await Deno.remove(`${project.path}/a.yaml`);
  await Deno.remove(`${project.path}/b.yaml`);
  await Deno.writeTextFile(`${project.path}/other.yaml`, yamlOf({ type: "local", path: "o" }));
  const missing = await project.run(["migrate", "--to", "other.yaml", "-w", "a", "-w", "nope"]);
  expectOk(missing, 1);
  assert.match(
    missing.stderr,
    /The source has no workspace "nope" \(it has "a", "default"\)\. Nothing was migrated/,
  );
  const noFile = await project.run(["migrate", "--to", "absent.yaml"]);
  expectOk(noFile, 1);
  assert.match(noFile.stderr, /--to absent\.yaml: Config file \S+absent\.yaml does not exist/);
  const after = await snapshotTree(project.path);
  delete after["other.yaml"];
  assert.deepEqual(after, before);
});

/** Every object of a bucket with its bytes, and every item of a lock table. */
async function storeSnapshot(store: S3Store): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  const listed = await store.s3Client.send(new ListObjectsV2Command({ Bucket: store.bucket }));
  for (const { Key } of listed.Contents ?? []) {
    const object = await store.s3Client.send(new GetObjectCommand({ Bucket: store.bucket, Key }));
    result[`s3:${Key}`] = await object.Body!.transformToString();
  }
  if (store.dynamoClient) {
    const scan = await store.dynamoClient.send(new ScanCommand({ TableName: store.table }));
    for (const item of scan.Items ?? []) result[`dynamodb:${item.LockID.S}`] = JSON.stringify(item);
  }
  return result;
}

serverTest(
  "gaib-state migrate --dry-run local -> S3 says what would happen and changes no byte on either side",
  { s3: true, dynamodb: true, ...OPTIONS },
  async (_t, servers) => {
    await using project = await cliProject(CREDENTIALS);
    await using target = await s3Store("dynamodb", servers.s3, servers.dynamodb);
    await Deno.writeTextFile(`${project.path}/s3.yaml`, target.yaml);
    const source = localStore(project, ".gaib");
    await seed(source);
    await withBackend(
      target,
      (b) => b.setState(CONFLICT, { ...stateFor(CONFLICT, 0), lineage: "x" }),
    );
    await withBackend(target, (b) => b.setState("ws-02", stateFor("ws-02", 2)));
    const local = await snapshotTree(project.path);
    const remote = await storeSnapshot(target);
    const result = await project.run(["migrate", "--to", "s3.yaml", "--dry-run"]);
    expectOk(result, 1); // as a real run would: a workspace would be refused
    const actions = tableActions(result.stdout);
    assert.equal(actions[CONFLICT], "refused");
    assert.equal(actions["ws-02"], "unchanged");
    assert.equal(Object.values(actions).filter((a) => a === "copied").length, 48);
    assert.match(
      result.stderr,
      /Dry run, nothing was written: 50 workspace\(s\): 48 copied, 1 unchanged, 1 refused\./,
    );
    assert.deepEqual(await snapshotTree(project.path), local);
    assert.deepEqual(await storeSnapshot(target), remote);
  },
);

/**
 * Kills a migration with SIGKILL right after a progress line, checks that nothing is torn,
 * then runs it again: it must finish, copying none of what the first run reported copied.
 */
async function killAndRerun(
  project: CliProject,
  source: Store,
  target: Store,
  migrate: string[],
  recover: () => Promise<void>,
): Promise<void> {
  await seed(source);
  const sourceBefore = await contents(source);
  // --verbose prints when both locks are held: the kill lands inside a copy (or just after).
  const first = project.spawn([...migrate, "--verbose"]);
  const stderr = await first.waitForStderr(/\[21\/50\] \S+: locked on both sides, copying/);
  first.child.kill("SIGKILL");
  const killed = await first.result();
  assert.equal(killed.code, 137, killed.stderr);
  const reported = [...killed.stderr.matchAll(/\] (\S+): copied/g)].map((m) => m[1]);
  assert.ok(reported.length >= 20, stderr);
  // Nothing torn: each target state is absent or exactly its source.
  const midway = await contents(target);
  for (const ws of WORKSPACES) {
    assert.ok(midway[ws] === null || midway[ws] === sourceBefore[ws], ws);
  }
  for (const ws of reported) assert.equal(midway[ws], sourceBefore[ws], ws);

  await recover();
  const again = await project.run([...migrate, "--json"]);
  expectOk(again);
  const results: Array<{ workspace: string; action: string }> = JSON.parse(again.stdout).results;
  const copiedAgain = results.filter((e) => e.action === "copied").map((e) => e.workspace);
  assert.deepEqual(copiedAgain.filter((ws) => reported.includes(ws)), [], "copied twice");
  for (const entry of results) {
    assert.equal(entry.action, reported.includes(entry.workspace) ? "unchanged" : entry.action);
    assert.ok(["copied", "unchanged"].includes(entry.action), JSON.stringify(entry));
  }
  // At most the workspace in flight at the kill had landed without being reported.
  const unreported = results.filter((e) => e.action === "unchanged").length - reported.length;
  assert.ok(unreported === 0 || unreported === 1, String(unreported));
  assert.deepEqual(await contents(target), sourceBefore);
  await noLocks(source);
  await noLocks(target);
}

Deno.test("gaib-state migrate killed with SIGKILL midway (local -> local): the re-run finishes, nothing lost or copied twice", async () => {
  await using project = await cliProject();
  const target = localStore(project, "other-root");
  await Deno.writeTextFile(`${project.path}/other.yaml`, target.yaml);
  // A dead holder's local lock is taken over at once: the re-run needs nothing else.
  await killAndRerun(project, localStore(project, ".gaib"), target, [
    "migrate",
    "--to",
    "other.yaml",
  ], async () => {});
});

serverTest(
  "gaib-state migrate killed with SIGKILL midway (local -> S3, DynamoDB): force-unlock as printed, re-run finishes, nothing lost or copied twice",
  { s3: true, dynamodb: true, ...OPTIONS },
  async (_t, servers) => {
    await using project = await cliProject(CREDENTIALS);
    await using target = await s3Store("dynamodb", servers.s3, servers.dynamodb);
    await Deno.writeTextFile(`${project.path}/s3.yaml`, target.yaml);
    const migrate = ["migrate", "--to", "s3.yaml"];
    const source = localStore(project, ".gaib");
    await killAndRerun(project, source, target, migrate, async () => {
      // The killed run's S3 lock outlives it for a lease: a run now refuses that workspace,
      // naming the lock and the command that clears it.
      const left = await withBackend(target, async (backend) => {
        const locked: string[] = [];
        for (const ws of WORKSPACES) if (await backend.getLockInfo(ws)) locked.push(ws);
        return locked;
      });
      assert.ok(left.length <= 1, left.join());
      if (left.length === 0) return; // the kill landed after the copy's unlock
      const blocked = await project.run([...migrate, "-w", left[0]]);
      expectOk(blocked, 1);
      assert.match(blocked.stderr, /locked on the target, held by \S+ \(migrate, since/);
      const unlock = quotedCommands(blocked.stderr).find((c) =>
        c.startsWith("gaib-state force-unlock")
      );
      assert.ok(unlock?.startsWith("gaib-state force-unlock --config s3.yaml "), blocked.stderr);
      const pasted = await pasteCommand(`${unlock} --force`, {
        cwd: project.path,
        env: CREDENTIALS,
      });
      assert.equal(pasted.code, 0, pasted.stderr);
    });
  },
);

Deno.test("gaib-state migrate takes a --to file as written: the GAIB_* variables apply to the current backend only", async () => {
  await using project = await cliProject();
  const source = localStore(project, "from-env");
  await withBackend(source, (b) => b.setState("a", stateFor("a", 0)));
  await Deno.writeTextFile(`${project.path}/to.yaml`, yamlOf({ type: "local", path: "to-root" }));
  // GAIB_STATE_PATH picks the source; applied to to.yaml too, it would make both the same.
  const result = await project.run(["migrate", "--to", "to.yaml", "-w", "a"], {
    env: { GAIB_BACKEND: "local", GAIB_STATE_PATH: "from-env" },
  });
  expectOk(result);
  assert.match(result.stderr, /Migrating from local \S+\/from-env to local \S+\/to-root\./);
  assert.equal((await contents(localStore(project, "to-root"))).a, (await contents(source)).a);
});

Deno.test("gaib-state migrate interrupted by SIGINT while waiting for a lock releases every lock it holds and lists what it finished", async () => {
  await using project = await cliProject();
  const source = localStore(project, ".gaib");
  const target = localStore(project, "other-root");
  await Deno.writeTextFile(`${project.path}/other.yaml`, target.yaml);
  await withBackend(source, async (b) => {
    for (const ws of ["a", "b", "c"]) await b.setState(ws, stateFor(ws, 1));
  });
  // Held on the target: the run holds the source's lock on "b" while it waits.
  await using holder = await spawnLockHolder({ backend: target.config, workspace: "b" });
  await using run = project.spawn(["migrate", "--to", "other.yaml", "--lock-timeout", "10m"]);
  await run.waitForStderr(/Waiting for the lock on workspace "b", held by holder-\d+/);
  run.child.kill("SIGINT");
  const result = await run.result();
  expectOk(result, 130);
  assert.deepEqual(tableActions(result.stdout), { a: "copied" });
  assert.match(
    result.stderr,
    /Interrupted by SIGINT: 1 workspace\(s\) were finished and every lock taken was released\. Run "gaib-state migrate --to other\.yaml --lock-timeout 10m" to finish the job/,
  );
  await withBackend(source, async (b) => assert.equal(await b.getLockInfo("b"), null));
  await withBackend(
    target,
    async (b) => assert.equal((await b.getLockInfo("b"))?.ID, holder.lockId),
  );
  assert.equal(await withBackend(target, (b) => b.getState("b")), null);
});

serverTest(
  "migrateStates refuses two S3 backends on one bucket and key: the target's lock is the source's own",
  { s3: true, dynamodb: true, ...OPTIONS },
  async (_t, servers) => {
    await using store = await s3Store("dynamodb", servers.s3, servers.dynamodb);
    await withBackend(store, (b) => b.setState("default", stateFor("default", 3)));
    const [from, to] = [store.open(), store.open()];
    try {
      const error = await migrateStates(from, to).then(() => null, (e) => e);
      assert.ok(error instanceof MigrationError, String(error));
      assert.match(error.message, /The source and the target are the same store/);
      assert.equal(await from.getLockInfo("default"), null);
    } finally {
      await from.close();
      await to.close();
    }
    assert.equal((await contents(store)).default, serializeState(stateFor("default", 3)));
  },
);
