/**
 * State encryption through the CLI, with the compiled binary's permissions: push encrypts,
 * pull and list decrypt, every backup is encrypted, `state rewrite` rotates the key,
 * `GAIB_ENCRYPTION` replaces the file's block, `config show` never shows a passphrase, and
 * config errors name the file, line and field.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runCli } from "./_cli.ts";
import { tempDir } from "./_temp.ts";

const SMALL = new URL("./testdata/cli_small.tfstate", import.meta.url).pathname;
const PASSPHRASE = "cli passphrase, long enough";
const NEW_PASSPHRASE = "the rotated cli passphrase";

const CONFIG = `version: "1"
encryption:
  key_provider:
    pbkdf2:
      mykey:
        passphrase_env: GAIB_STATE_PASSPHRASE
        iterations: 200000
  method:
    aes_gcm:
      secure:
        keys: key_provider.pbkdf2.mykey
  state:
    method: method.aes_gcm.secure
`;

const ROTATION = `version: "1"
encryption:
  key_provider:
    pbkdf2:
      mykey:
        passphrase_env: GAIB_STATE_PASSPHRASE
        iterations: 200000
      newkey:
        passphrase_env: GAIB_STATE_NEW_PASSPHRASE
        iterations: 200000
  method:
    aes_gcm:
      secure:
        keys: key_provider.pbkdf2.mykey
      rotated:
        keys: key_provider.pbkdf2.newkey
  state:
    method: method.aes_gcm.rotated
    fallback:
      method: method.aes_gcm.secure
`;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...await filesUnder(path));
    else out.push(path);
  }
  return out;
}

Deno.test("CLI: push encrypts, pull and list decrypt, every copy on disk is encrypted", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/gaib.yaml`, CONFIG);
  const env = { GAIB_STATE_PASSPHRASE: PASSPHRASE };
  const plain = await Deno.readTextFile(SMALL);
  const secret = JSON.parse(plain).lineage as string;
  await Deno.copyFile(SMALL, `${dir.path}/in.tfstate`);
  const push = await runCli(["state", "push", "in.tfstate"], { cwd: dir.path, env });
  assert.equal(push.code, 0, push.stderr);
  const next = { ...JSON.parse(plain), serial: JSON.parse(plain).serial + 1 };
  await Deno.writeTextFile(`${dir.path}/in2.tfstate`, JSON.stringify(next));
  const push2 = await runCli(["state", "push", "in2.tfstate"], { cwd: dir.path, env });
  assert.equal(push2.code, 0, push2.stderr);
  const rm = await runCli(["state", "rm", "discord_role.admin"], { cwd: dir.path, env });
  assert.equal(rm.code, 0, rm.stderr);
  // Everything gaib-state wrote under .gaib that holds a state is an envelope.
  const stored = (await filesUnder(`${dir.path}/.gaib`)).filter((f) => /tfstate/.test(f));
  assert.ok(stored.some((f) => f.endsWith(".backup") && f.includes("/backups/")), stored.join());
  assert.ok(stored.some((f) => f.endsWith("terraform.tfstate.backup")), stored.join());
  for (const file of stored) {
    const text = await Deno.readTextFile(file);
    assert.equal(JSON.parse(text).encryption_version, "v0", file);
    assert.ok(!text.includes("discord_role"), `${file} holds no plain state`);
  }
  const pull = await runCli(["state", "pull"], { cwd: dir.path, env });
  assert.equal(pull.code, 0, pull.stderr);
  assert.equal(JSON.parse(pull.stdout).lineage, secret);
  assert.equal(JSON.parse(pull.stdout).version, 4);
  const list = await runCli(["state", "list"], { cwd: dir.path, env });
  assert.equal(list.code, 0, list.stderr);
  assert.ok(!list.stdout.includes("discord_role.admin"));
  assert.ok(list.stdout.includes("discord_channel.general[0]"));
  // An encrypted file (as OpenTofu or gaib-state wrote it) is pushed with the configured key.
  await Deno.copyFile(
    `${dir.path}/.gaib/workspaces/default/terraform.tfstate`,
    `${dir.path}/encrypted.tfstate`,
  );
  const pushEnvelope = await runCli(
    ["state", "push", "--create", "-w", "copy", "encrypted.tfstate"],
    { cwd: dir.path, env },
  );
  assert.equal(pushEnvelope.code, 0, pushEnvelope.stderr);
  const copied = await runCli(["state", "list", "-w", "copy"], { cwd: dir.path, env });
  assert.equal(copied.stdout, list.stdout);
  const wrongKey = await runCli(["state", "push", "--create", "-w", "c2", "encrypted.tfstate"], {
    cwd: dir.path,
    env: { GAIB_STATE_PASSPHRASE: "another passphrase, long" },
  });
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.stderr, /authentication failed/);
});

Deno.test("CLI: a wrong passphrase fails with exit 1, names the method, never the passphrase", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/gaib.yaml`, CONFIG);
  const push = await runCli(["state", "push", SMALL], {
    cwd: dir.path,
    env: { GAIB_STATE_PASSPHRASE: PASSPHRASE },
  });
  assert.equal(push.code, 0, push.stderr);
  const wrong = "a wrong passphrase, but long";
  for (const args of [["state", "list"], ["state", "pull"], ["--json", "state", "list"]]) {
    const run = await runCli(args, { cwd: dir.path, env: { GAIB_STATE_PASSPHRASE: wrong } });
    assert.equal(run.code, 1);
    const all = run.stdout + run.stderr;
    assert.match(all, /authentication failed/);
    assert.match(all, /StateEncryptionError|Cannot decrypt/);
    assert.ok(!all.includes(wrong) && !all.includes(PASSPHRASE));
  }
  const unset = await runCli(["state", "list"], { cwd: dir.path });
  assert.equal(unset.code, 1);
  assert.match(unset.stderr, /GAIB_STATE_PASSPHRASE .* is not set/);
});

Deno.test("CLI: state rewrite rotates the key of every workspace under its lock", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/gaib.yaml`, CONFIG);
  const env = { GAIB_STATE_PASSPHRASE: PASSPHRASE, GAIB_STATE_NEW_PASSPHRASE: NEW_PASSPHRASE };
  for (const ws of ["default", "staging"]) {
    const push = await runCli(["state", "push", "--create", "-w", ws, SMALL], {
      cwd: dir.path,
      env,
    });
    assert.equal(push.code, 0, push.stderr);
  }
  await Deno.writeTextFile(`${dir.path}/gaib.yaml`, ROTATION);
  const rewrite = await runCli(["--json", "state", "rewrite", "--all"], { cwd: dir.path, env });
  assert.equal(rewrite.code, 0, rewrite.stderr);
  assert.deepEqual(
    JSON.parse(rewrite.stdout).rewritten.map((r: { workspace: string }) => r.workspace),
    ["default", "staging"],
  );
  for (const ws of ["default", "staging"]) {
    const text = await Deno.readTextFile(`${dir.path}/.gaib/workspaces/${ws}/terraform.tfstate`);
    assert.deepEqual(Object.keys(JSON.parse(text).meta), ["key_provider.pbkdf2.newkey"]);
  }
  // The old key alone can no longer read them; the new key alone can.
  const onlyNew = ROTATION.replace("\n    fallback:\n      method: method.aes_gcm.secure\n", "\n");
  await Deno.writeTextFile(`${dir.path}/gaib.yaml`, onlyNew);
  const list = await runCli(["state", "list", "-w", "staging"], { cwd: dir.path, env });
  assert.equal(list.code, 0, list.stderr);
  await Deno.writeTextFile(`${dir.path}/gaib.yaml`, CONFIG);
  const old = await runCli(["state", "list"], { cwd: dir.path, env });
  assert.equal(old.code, 1);
  assert.match(old.stderr, /no metadata for this key provider/);
});

Deno.test("CLI: GAIB_ENCRYPTION supplies the block as JSON, and config show masks a passphrase", async () => {
  await using dir = await tempDir();
  const block = {
    key_provider: { pbkdf2: { k: { passphrase: PASSPHRASE, iterations: 200000 } } },
    method: { aes_gcm: { m: { keys: "key_provider.pbkdf2.k" } } },
    state: { method: "method.aes_gcm.m" },
  };
  const env = { GAIB_ENCRYPTION: JSON.stringify(block) };
  const push = await runCli(["state", "push", SMALL], { cwd: dir.path, env });
  assert.equal(push.code, 0, push.stderr);
  const text = await Deno.readTextFile(`${dir.path}/.gaib/workspaces/default/terraform.tfstate`);
  assert.equal(JSON.parse(text).encryption_version, "v0");
  for (const args of [["config", "show"], ["--json", "config", "show"]]) {
    const show = await runCli(args, { cwd: dir.path, env });
    assert.equal(show.code, 0, show.stderr);
    assert.ok(!show.stdout.includes(PASSPHRASE), show.stdout);
    assert.match(show.stdout, /GAIB_ENCRYPTION/);
    assert.match(show.stdout, /method\.aes_gcm\.m/);
  }
  const bad = await runCli(["state", "list"], {
    cwd: dir.path,
    env: { GAIB_ENCRYPTION: JSON.stringify({ ...block, state: { method: "method.aes_gcm.x" } }) },
  });
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /Environment variable GAIB_ENCRYPTION \(encryption\.state\.method\): "method\.aes_gcm\.x" names no method/,
  );
  const notJson = await runCli(["state", "list"], {
    cwd: dir.path,
    env: { GAIB_ENCRYPTION: `{"passphrase": "${PASSPHRASE}"` },
  });
  assert.equal(notJson.code, 1);
  assert.match(notJson.stderr, /GAIB_ENCRYPTION is not valid JSON/);
  assert.ok(!notJson.stderr.includes(PASSPHRASE));
});

Deno.test("CLI: an encryption config error names the file, line and field", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(
    `${dir.path}/gaib.yaml`,
    CONFIG.replace("keys: key_provider.pbkdf2.mykey", "keys: key_provider.pbkdf2.typo")
      .replace("passphrase_env: GAIB_STATE_PASSPHRASE", "passphrase: do-not-print-me-1234"),
  );
  const run = await runCli(["state", "list"], { cwd: dir.path });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /gaib\.yaml:\d+:\d+: encryption\.method\.aes_gcm\.secure\.keys/);
  assert.match(run.stderr, /names no key provider/);
  assert.ok(!run.stderr.includes("do-not-print-me-1234"));
  await Deno.writeTextFile(
    `${dir.path}/gaib.yaml`,
    CONFIG.replace("pbkdf2:", "aws_kms:\n      k: {}\n    pbkdf2:"),
  );
  const kms = await runCli(["state", "list"], { cwd: dir.path });
  assert.equal(kms.code, 1);
  assert.match(kms.stderr, /"aws_kms" key provider \(AWS KMS\) is not supported by gaib-state yet/);
});
