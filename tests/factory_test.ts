import assert from "node:assert/strict";
import { BackendConfigError, BackendFactory, LocalBackend, VERSION } from "../mod.ts";
import type { S3BackendConfig } from "../src/config.ts";
import { tempDir } from "./_temp.ts";

const DENO_JSON = new URL("../deno.json", import.meta.url).pathname;
const noEnv = { get: (_: string) => undefined };
const envOf = (vars: Record<string, string>) => ({ get: (name: string) => vars[name] });

Deno.test("BackendFactory.create({ type: 'local', path }) gives a LocalBackend rooted there", async () => {
  await using dir = await tempDir();
  const backend = await BackendFactory.create({ type: "local", path: dir.path });
  assert.ok(backend instanceof LocalBackend);
  assert.equal(backend.root, dir.path);
  await backend.close();
});

Deno.test("BackendFactory.create refuses unknown types and invalid S3 configs", async () => {
  await assert.rejects(
    BackendFactory.create({ type: "gcs" } as never),
    /type must be "local", "s3", "http" or "pg", found the string "gcs"/,
  );
  await assert.rejects(
    BackendFactory.create({ type: "s3", bucket: "b", key: "k" }),
    (e: unknown) => e instanceof BackendConfigError && e.path === "bucket",
  );
});

Deno.test("BackendFactory.findConfigFile walks up from cwd and prefers gaib.yaml", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/a/b/c`, { recursive: true });
  assert.equal(await BackendFactory.findConfigFile(`${dir.path}/a/b/c`), null);
  await Deno.writeTextFile(`${dir.path}/a/.gaib.yml`, 'version: "1"\n');
  assert.equal(await BackendFactory.findConfigFile(`${dir.path}/a/b/c`), `${dir.path}/a/.gaib.yml`);
  await Deno.writeTextFile(`${dir.path}/a/gaib.yaml`, 'version: "1"\n');
  assert.equal(await BackendFactory.findConfigFile(`${dir.path}/a/b/c`), `${dir.path}/a/gaib.yaml`);
  await Deno.writeTextFile(`${dir.path}/a/b/gaib.yml`, 'version: "1"\n');
  assert.equal(
    await BackendFactory.findConfigFile(`${dir.path}/a/b/c`),
    `${dir.path}/a/b/gaib.yml`,
  );
});

Deno.test("BackendFactory.resolve falls back to the local default .gaib in cwd", async () => {
  await using dir = await tempDir();
  const resolved = await BackendFactory.resolve({ cwd: dir.path, env: noEnv });
  assert.equal(resolved.source, "default");
  assert.deepStrictEqual(resolved.config, { type: "local", path: `${dir.path}/.gaib` });
  assert.equal(resolved.stateRoot, `${dir.path}/.gaib`);
});

Deno.test("a local path in gaib.yaml is relative to the config file, not to cwd", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/sub`);
  await Deno.writeTextFile(
    `${dir.path}/gaib.yaml`,
    'version: "1"\nbackend:\n  type: local\n  path: states\n',
  );
  const resolved = await BackendFactory.resolve({ cwd: `${dir.path}/sub`, env: noEnv });
  assert.equal(resolved.source, "file");
  assert.equal(resolved.file, `${dir.path}/gaib.yaml`);
  assert.equal(resolved.stateRoot, `${dir.path}/states`);
  assert.deepStrictEqual(resolved.config, { type: "local", path: `${dir.path}/states` });
  const backend = await BackendFactory.fromConfig(`${dir.path}/sub`);
  assert.equal((backend as LocalBackend).root, `${dir.path}/states`);
  await backend?.close();
});

Deno.test("a config file without a backend section means the local backend next to it", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/gaib.yml`, 'version: "1"\n');
  const resolved = await BackendFactory.resolve({ cwd: dir.path, env: noEnv });
  assert.equal(resolved.stateRoot, `${dir.path}/.gaib`);
  assert.equal(await BackendFactory.getBackendType(dir.path), "local");
});

Deno.test("the environment wins over the config file", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/gaib.yaml`, 'version: "1"\n');
  const resolved = await BackendFactory.resolve({
    cwd: dir.path,
    env: envOf({
      GAIB_S3_BUCKET: "team-states",
      GAIB_S3_KEY: "gaib/${workspace}/terraform.tfstate",
      AWS_REGION: "eu-west-1",
      GAIB_DYNAMODB_TABLE: "locks",
      GAIB_S3_USE_LOCKFILE: "true",
      GAIB_S3_ENDPOINT: "http://127.0.0.1:9000",
      GAIB_S3_FORCE_PATH_STYLE: "1",
    }),
  });
  assert.equal(resolved.source, "environment");
  assert.deepStrictEqual(resolved.config, {
    type: "s3",
    bucket: "team-states",
    key: "gaib/${workspace}/terraform.tfstate",
    region: "eu-west-1",
    dynamodb_table: "locks",
    use_lockfile: true,
    endpoint: "http://127.0.0.1:9000",
    force_path_style: true,
  });
  assert.equal(resolved.origins.region, "AWS_REGION");
  assert.equal(resolved.origins.bucket, "GAIB_S3_BUCKET");
  assert.equal(resolved.stateRoot, `${dir.path}/.gaib`);
});

Deno.test("an invalid environment variable is named in the error", async () => {
  await assert.rejects(
    BackendFactory.fromEnvironment(envOf({ GAIB_BACKEND: "s3", GAIB_S3_BUCKET: "bkt" })),
    (e: unknown) =>
      e instanceof BackendConfigError && e.path === "GAIB_S3_KEY" &&
      e.message === "backend.key is required: set GAIB_S3_KEY.",
  );
  await assert.rejects(
    BackendFactory.fromEnvironment(
      envOf({ GAIB_S3_BUCKET: "bkt", GAIB_S3_KEY: "k", GAIB_S3_ENCRYPT: "maybe" }),
    ),
    (e: unknown) =>
      e instanceof BackendConfigError && e.path === "GAIB_S3_ENCRYPT" &&
      e.message === "Environment variable GAIB_S3_ENCRYPT (backend.encrypt): expected a " +
          'boolean (true or false), found the string "maybe". Fix or unset GAIB_S3_ENCRYPT.',
  );
  assert.equal(await BackendFactory.fromEnvironment(noEnv), null);
});

Deno.test("GAIB_BACKEND=local with GAIB_STATE_PATH picks a local root relative to cwd", async () => {
  await using dir = await tempDir();
  const resolved = await BackendFactory.resolve({
    cwd: dir.path,
    env: envOf({ GAIB_BACKEND: "local", GAIB_STATE_PATH: "elsewhere" }),
  });
  assert.deepStrictEqual(resolved.config, { type: "local", path: `${dir.path}/elsewhere` });
});

Deno.test("an explicit config file that does not exist is an error", async () => {
  await assert.rejects(
    BackendFactory.resolve({ configFile: "/nonexistent/gaib.yaml", env: noEnv }),
    /Config file \/nonexistent\/gaib\.yaml does not exist/,
  );
  await using dir = await tempDir();
  await assert.rejects(
    BackendFactory.resolve({ configFile: dir.path, env: noEnv }),
    /Config file .* is a directory, not a file\. Check the --config path\./,
  );
});

Deno.test("an invalid config file fails BackendFactory.auto with the file named", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/gaib.yaml`, 'version: "1"\nbackend:\n  type: nfs\n');
  await assert.rejects(
    BackendFactory.auto({ cwd: dir.path, env: noEnv }),
    (e: unknown) => e instanceof BackendConfigError && e.file === `${dir.path}/gaib.yaml`,
  );
});

/**
 * Writes a script that runs `BackendFactory.auto` (printing the workspaces) or `.resolve`
 * (printing the state root) in the directory given to it, and returns a runner for it that
 * takes extra `deno run` flags such as `--no-npm`.
 */
async function factoryProbe(dir: string, call: "auto" | "resolve") {
  const script = `${dir}/probe.ts`;
  const factory = new URL("../src/factory.ts", import.meta.url).href;
  const body = call === "auto"
    ? `const b = await BackendFactory.auto(opts);
console.log((await b.listWorkspaces()).join(","));
await b.close();`
    : "console.log((await BackendFactory.resolve(opts)).stateRoot);";
  await Deno.writeTextFile(
    script,
    `import { BackendFactory } from "${factory}";
const opts = { cwd: Deno.args[0], env: { get: () => undefined } };
${body}`,
  );
  return async (cwd: string, ...flags: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, "--config", DENO_JSON, "--allow-all", script, cwd],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { ok: out.success, stdout: new TextDecoder().decode(out.stdout).trim() };
  };
}

Deno.test("the usual gaib.yaml is read without any npm package; other YAML loads the parser", async () => {
  await using dir = await tempDir();
  const run = await factoryProbe(dir.path, "resolve");
  assert.deepStrictEqual(await run(dir.path, "--no-npm"), {
    ok: true,
    stdout: `${dir.path}/.gaib`,
  });
  const simple = `${dir.path}/simple`;
  await Deno.mkdir(simple);
  await Deno.writeTextFile(
    `${simple}/gaib.yaml`,
    '# the state\nversion: "1"\nbackend:\n  type: local\n  path: st # next to this file\n',
  );
  assert.deepStrictEqual(await run(simple, "--no-npm"), { ok: true, stdout: `${simple}/st` });
  // The probe has teeth: a flow mapping needs the YAML parser, which --no-npm stops.
  const flow = `${dir.path}/flow`;
  await Deno.mkdir(flow);
  await Deno.writeTextFile(
    `${flow}/gaib.yaml`,
    'version: "1"\nbackend: { type: local, path: st }\n',
  );
  assert.equal((await run(flow, "--no-npm")).ok, false);
  assert.deepStrictEqual(await run(flow), { ok: true, stdout: `${flow}/st` });
});

const S3_FILE =
  'version: "1"\nbackend:\n  type: s3\n  bucket: real-bucket\n  key: gaib/terraform.tfstate\n' +
  "  region: eu-west-1\n  dynamodb_table: file-locks\n  use_lockfile: true\n";
const S3_FILE_CONFIG = {
  type: "s3",
  bucket: "real-bucket",
  key: "gaib/terraform.tfstate",
  region: "eu-west-1",
  dynamodb_table: "file-locks",
  use_lockfile: true,
};

Deno.test("a planted .gaib/.config-cache.json cannot change what gaib.yaml says", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/gaib.yaml`;
  await Deno.writeTextFile(file, S3_FILE);
  // What the removed cache accepted: this file's path, its SHA-256 and the library version.
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(S3_FILE));
  const sha256 = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
  await Deno.mkdir(`${dir.path}/.gaib`);
  const planted = {
    version: VERSION,
    file,
    sha256,
    config: {
      version: "1",
      backend: {
        type: "s3",
        bucket: "attacker-bucket",
        key: "k",
        endpoint: "http://attacker.test",
      },
    },
  };
  await Deno.writeTextFile(`${dir.path}/.gaib/.config-cache.json`, JSON.stringify(planted));
  const resolved = await BackendFactory.resolve({ cwd: dir.path, env: noEnv });
  assert.deepStrictEqual(resolved.config, S3_FILE_CONFIG);
  assert.deepStrictEqual(
    [...Deno.readDirSync(`${dir.path}/.gaib`)].map((e) => e.name),
    [".config-cache.json"],
    "nothing is written beside the config",
  );
});

/** A config that would send the state to another server. */
const PLANTED = 'version: "1"\nbackend:\n  type: s3\n  bucket: planted\n  key: k\n' +
  "  endpoint: http://127.0.0.1:9\n";
const NOBODY = 65534;

async function plant(path: string, text = PLANTED, uid = NOBODY): Promise<void> {
  await Deno.writeTextFile(path, text);
  await Deno.chown(path, uid, uid);
}

function untrusted(file: string, reason: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof BackendConfigError, String(e));
    assert.equal(e.file, file);
    assert.ok(e.message.startsWith(`Not using ${file}: `), e.message);
    assert.match(e.message, reason);
    assert.match(e.message, new RegExp(`pass it explicitly with --config ${file}`));
    return true;
  };
}

Deno.test("a config file owned by another user is refused with its owner; --config still uses it", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/gaib.yaml`;
  await plant(file);
  const me = Deno.uid();
  const reason = new RegExp(`it is owned by uid ${NOBODY}, not by you \\(uid ${me}\\) or root`);
  await assert.rejects(
    BackendFactory.resolve({ cwd: dir.path, env: noEnv }),
    untrusted(file, reason),
  );
  await assert.rejects(BackendFactory.findConfigFile(dir.path), untrusted(file, reason));
  const named = await BackendFactory.resolve({ cwd: dir.path, env: noEnv, configFile: file });
  assert.equal((named.config as { bucket: string }).bucket, "planted");
});

Deno.test("a config in another user's directory is refused, also found from below it", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/theirs/checkout/sub`, { recursive: true });
  await Deno.chown(`${dir.path}/theirs`, NOBODY, NOBODY);
  const file = `${dir.path}/theirs/gaib.yaml`;
  await plant(file, PLANTED, 0); // even a root-owned file: its directory's owner can replace it
  await assert.rejects(
    BackendFactory.resolve({ cwd: `${dir.path}/theirs/checkout/sub`, env: noEnv }),
    untrusted(file, new RegExp(`its directory ${dir.path}/theirs is owned by uid ${NOBODY}`)),
  );
  // A directory of theirs between the working directory and the config.
  await Deno.chown(`${dir.path}/theirs`, 0, 0);
  await Deno.chown(`${dir.path}/theirs/checkout`, NOBODY, NOBODY);
  await assert.rejects(
    BackendFactory.resolve({ cwd: `${dir.path}/theirs/checkout/sub`, env: noEnv }),
    untrusted(
      file,
      new RegExp(`the search for it passed through ${dir.path}/theirs/checkout, which is owned`),
    ),
  );
});

Deno.test("a config writable by every user, or in such a directory without the sticky bit, is refused", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/open/proj`, { recursive: true });
  const file = `${dir.path}/open/gaib.yaml`;
  await plant(file, PLANTED, 0);
  await Deno.chmod(`${dir.path}/open`, 0o777);
  await assert.rejects(
    BackendFactory.resolve({ cwd: `${dir.path}/open/proj`, env: noEnv }),
    untrusted(file, /its directory .*\/open is writable by every user \(mode 0777\).*chmod o-w/),
  );
  await Deno.chmod(`${dir.path}/open`, 0o755);
  await Deno.chmod(file, 0o666);
  await assert.rejects(
    BackendFactory.resolve({ cwd: `${dir.path}/open/proj`, env: noEnv }),
    untrusted(file, /it is writable by every user \(mode 0666\)/),
  );
  // Write access for the group is allowed.
  await Deno.chmod(file, 0o664);
  await Deno.chmod(`${dir.path}/open`, 0o775);
  const resolved = await BackendFactory.resolve({ cwd: `${dir.path}/open/proj`, env: noEnv });
  assert.equal(resolved.file, file);
});

Deno.test("a shared directory such as /tmp ends the search quietly; the planted file is listed as skipped", async () => {
  await using dir = await tempDir();
  const shared = `${dir.path}/shared`;
  await Deno.mkdir(`${shared}/proj`, { recursive: true });
  await Deno.chmod(shared, 0o1777);
  await plant(`${shared}/gaib.yaml`);
  const resolved = await BackendFactory.resolve({ cwd: `${shared}/proj`, env: noEnv });
  assert.equal(resolved.source, "default");
  assert.equal(resolved.file, undefined);
  assert.deepStrictEqual(resolved.config, { type: "local", path: `${shared}/proj/.gaib` });
  assert.equal(resolved.skipped.length, 1);
  assert.equal(resolved.skipped[0].file, `${shared}/gaib.yaml`);
  assert.match(
    resolved.skipped[0].reason,
    /shared directory \(every user may create files in it, mode 1777\)/,
  );
  // A config above the shared directory is not used either.
  await Deno.remove(`${shared}/gaib.yaml`);
  await plant(`${dir.path}/gaib.yaml`, PLANTED, 0);
  const above = await BackendFactory.resolve({ cwd: `${shared}/proj`, env: noEnv });
  assert.equal(above.source, "default");
  assert.match(
    above.skipped[0].reason,
    new RegExp(`the search stops at ${shared}, a shared directory`),
  );
  // One in the project itself, below the shared directory, is used.
  await Deno.writeTextFile(
    `${shared}/proj/gaib.yaml`,
    'version: "1"\nbackend:\n  type: local\n  path: st\n',
  );
  const own = await BackendFactory.resolve({ cwd: `${shared}/proj`, env: noEnv });
  assert.equal(own.file, `${shared}/proj/gaib.yaml`);
  assert.deepStrictEqual(own.skipped, []);
});

Deno.test("a symbolic link to a config is judged by the file it points to", async () => {
  await using dir = await tempDir();
  await plant(`${dir.path}/theirs.yaml`);
  await Deno.symlink(`${dir.path}/theirs.yaml`, `${dir.path}/gaib.yaml`);
  await assert.rejects(
    BackendFactory.resolve({ cwd: dir.path, env: noEnv }),
    untrusted(`${dir.path}/gaib.yaml`, new RegExp(`it is owned by uid ${NOBODY}`)),
  );
  await Deno.chown(`${dir.path}/theirs.yaml`, 0, 0);
  assert.equal(
    (await BackendFactory.resolve({ cwd: dir.path, env: noEnv })).file,
    `${dir.path}/gaib.yaml`,
  );
});

Deno.test("owners are checked only when a config is found, and without --allow-sys=uid the error says so", async () => {
  await using dir = await tempDir();
  const script = `${dir.path}/probe.ts`;
  const factory = new URL("../src/factory.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { BackendFactory } from "${factory}";
try {
  console.log((await BackendFactory.resolve({ cwd: Deno.args[0], env: { get: () => undefined } })).stateRoot);
} catch (error) {
  console.log(String(error));
}`,
  );
  const run = async (cwd: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        DENO_JSON,
        "--no-prompt",
        "--allow-read",
        "--allow-env",
        script,
        cwd,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  };
  await Deno.mkdir(`${dir.path}/none`);
  assert.equal(await run(`${dir.path}/none`), `${dir.path}/none/.gaib`);
  await Deno.mkdir(`${dir.path}/some`);
  await Deno.writeTextFile(`${dir.path}/some/gaib.yaml`, 'version: "1"\n');
  assert.match(
    await run(`${dir.path}/some`),
    /Found .*\/some\/gaib\.yaml, but cannot check who owns it: that needs --allow-sys=uid/,
  );
});

Deno.test("GAIB_STATE_PATH alone sets the local path, relative to the working directory", async () => {
  await using dir = await tempDir();
  const alone = await BackendFactory.resolve({
    cwd: dir.path,
    env: envOf({ GAIB_STATE_PATH: "elsewhere" }),
  });
  assert.deepStrictEqual(alone.config, { type: "local", path: `${dir.path}/elsewhere` });
  assert.deepStrictEqual(alone.origins, { type: "default", path: "GAIB_STATE_PATH" });
  // Over a file: the file's path is relative to the file, the variable's to the cwd.
  await Deno.mkdir(`${dir.path}/sub`);
  await Deno.writeTextFile(
    `${dir.path}/gaib.yaml`,
    'version: "1"\nbackend:\n  type: local\n  path: st\n',
  );
  const fromFile = await BackendFactory.resolve({ cwd: `${dir.path}/sub`, env: noEnv });
  assert.equal(fromFile.stateRoot, `${dir.path}/st`);
  const over = await BackendFactory.resolve({
    cwd: `${dir.path}/sub`,
    env: envOf({ GAIB_STATE_PATH: "mine" }),
  });
  assert.equal(over.stateRoot, `${dir.path}/sub/mine`);
  assert.equal(over.source, "file");
  assert.deepStrictEqual(over.origins, { type: `${dir.path}/gaib.yaml`, path: "GAIB_STATE_PATH" });
});

Deno.test("each GAIB_* variable replaces its one field of the file: GAIB_DYNAMODB_TABLE, GAIB_S3_BUCKET", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/gaib.yaml`;
  await Deno.writeTextFile(file, S3_FILE);
  const table = await BackendFactory.resolve({
    cwd: dir.path,
    env: envOf({ GAIB_DYNAMODB_TABLE: "env-locks" }),
  });
  assert.deepStrictEqual(table.config, { ...S3_FILE_CONFIG, dynamodb_table: "env-locks" });
  assert.equal(table.origins.dynamodb_table, "GAIB_DYNAMODB_TABLE");
  assert.equal(table.origins.bucket, file);
  const bucket = await BackendFactory.resolve({
    cwd: dir.path,
    env: envOf({ GAIB_S3_BUCKET: "env-bucket", AWS_REGION: "us-east-2" }),
  });
  assert.deepStrictEqual(bucket.config, { ...S3_FILE_CONFIG, bucket: "env-bucket" });
  assert.equal(bucket.source, "environment", "GAIB_S3_BUCKET also names the type");
  assert.deepStrictEqual(bucket.origins, {
    type: "GAIB_S3_BUCKET",
    bucket: "GAIB_S3_BUCKET",
    key: file,
    region: file,
    dynamodb_table: file,
    use_lockfile: file,
  });
  const region = await BackendFactory.resolve({
    cwd: dir.path,
    env: envOf({ GAIB_S3_REGION: "ap-south-1", GAIB_DYNAMODB_ENDPOINT: "http://127.0.0.1:8000" }),
  });
  assert.equal((region.config as { region: string }).region, "ap-south-1");
  assert.deepStrictEqual((region.config as { endpoints: unknown }).endpoints, {
    dynamodb: "http://127.0.0.1:8000",
  });
  assert.equal(region.origins["endpoints.dynamodb"], "GAIB_DYNAMODB_ENDPOINT");
});

Deno.test("GAIB_BACKEND of another type than the file's uses the variables alone", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/sub`);
  const file = `${dir.path}/gaib.yaml`;
  await Deno.writeTextFile(file, S3_FILE);
  const local = await BackendFactory.resolve({
    cwd: `${dir.path}/sub`,
    env: envOf({ GAIB_BACKEND: "local", GAIB_S3_KEY: "other/key" }),
  });
  assert.deepStrictEqual(local.config, { type: "local", path: `${dir.path}/.gaib` });
  assert.equal(local.source, "environment");
  assert.equal(local.file, file);
  assert.deepStrictEqual(local.origins, { type: "GAIB_BACKEND", path: "default" });
  assert.deepStrictEqual(local.notes, [
    `GAIB_BACKEND selects the local backend, so the s3 backend of ${file} is not used.`,
    "GAIB_S3_KEY is ignored: it is not a setting of the local backend.",
  ]);
  await Deno.writeTextFile(file, 'version: "1"\nbackend:\n  type: local\n  path: st\n');
  await assert.rejects(
    BackendFactory.resolve({ cwd: dir.path, env: envOf({ GAIB_BACKEND: "s3" }) }),
    (e: unknown) =>
      e instanceof BackendConfigError &&
      e.message === "backend.bucket is required: set GAIB_S3_BUCKET.",
  );
  const s3 = await BackendFactory.resolve({
    cwd: dir.path,
    env: envOf({ GAIB_BACKEND: "s3", GAIB_S3_BUCKET: "bkt", GAIB_S3_KEY: "k" }),
  });
  assert.deepStrictEqual(s3.config, { type: "s3", bucket: "bkt", key: "k" });
});

Deno.test("a wrong-typed GAIB_* value says what was expected and what was found", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/gaib.yaml`, S3_FILE);
  await assert.rejects(
    BackendFactory.resolve({ cwd: dir.path, env: envOf({ GAIB_S3_MAX_RETRIES: "five" }) }),
    (e: unknown) =>
      e instanceof BackendConfigError && e.path === "GAIB_S3_MAX_RETRIES" &&
      e.message === "Environment variable GAIB_S3_MAX_RETRIES (backend.max_retries): expected a " +
          'whole number from 0 to 20, found the string "five". Fix or unset GAIB_S3_MAX_RETRIES.',
  );
  await assert.rejects(
    BackendFactory.resolve({
      cwd: dir.path,
      env: envOf({ GAIB_S3_ENDPOINT: "ftp://admin:hunter2hunter2@s3.test" }),
    }),
    (e: unknown) =>
      e instanceof BackendConfigError && e.path === "GAIB_S3_ENDPOINT" &&
      !e.message.includes("hunter2") && /must be an http:\/\/ or https:\/\/ URL/.test(e.message),
  );
});

Deno.test("the SDK's AWS_ENDPOINT_URL variables are read into the config, shown with their origin, and below every configured endpoint", async (t) => {
  await using dir = await tempDir();
  const s3 = { GAIB_S3_BUCKET: "states", GAIB_S3_KEY: "k", GAIB_S3_REGION: "eu-west-1" };
  await t.step("a service variable sets that service's endpoint", async () => {
    const resolved = await BackendFactory.resolve({
      cwd: dir.path,
      env: envOf({ ...s3, AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9" }),
    });
    assert.deepStrictEqual((resolved.config as S3BackendConfig).endpoints, {
      s3: "http://127.0.0.1:9",
    });
    assert.equal(resolved.origins["endpoints.s3"], "AWS_ENDPOINT_URL_S3");
  });
  await t.step("the general variable sets endpoint", async () => {
    const resolved = await BackendFactory.resolve({
      cwd: dir.path,
      env: envOf({ ...s3, AWS_ENDPOINT_URL: "http://127.0.0.1:8" }),
    });
    assert.equal((resolved.config as S3BackendConfig).endpoint, "http://127.0.0.1:8");
    assert.equal(resolved.origins.endpoint, "AWS_ENDPOINT_URL");
  });
  await t.step("a configured endpoint wins over all of them", async () => {
    const resolved = await BackendFactory.resolve({
      cwd: dir.path,
      env: envOf({
        ...s3,
        GAIB_S3_ENDPOINT: "http://127.0.0.1:7",
        AWS_ENDPOINT_URL: "http://127.0.0.1:8",
        AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9",
        AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9",
      }),
    });
    const config = resolved.config as S3BackendConfig;
    assert.equal(config.endpoint, "http://127.0.0.1:7");
    assert.equal(config.endpoints, undefined);
  });
});

Deno.test("BackendFactory.resolve refuses a state root every user may write, as the CLI does", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/.gaib`);
  await Deno.chmod(`${dir.path}/.gaib`, 0o777);
  await assert.rejects(
    BackendFactory.resolve({ cwd: dir.path, env: noEnv }),
    (error: Error) => {
      assert.ok(error instanceof BackendConfigError);
      assert.match(error.message, /Not using the state root .*writable by every user/);
      return true;
    },
  );
  await Deno.chmod(`${dir.path}/.gaib`, 0o700);
  assert.equal(
    (await BackendFactory.resolve({ cwd: dir.path, env: noEnv })).stateRoot,
    `${dir.path}/.gaib`,
  );
});
