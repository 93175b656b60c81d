import assert from "node:assert/strict";
import { BackendConfigError, BackendFactory, LocalBackend } from "../mod.ts";
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
    /Unknown backend type "gcs"/,
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
      e.message.includes("Set GAIB_S3_KEY"),
  );
  await assert.rejects(
    BackendFactory.fromEnvironment(
      envOf({ GAIB_S3_BUCKET: "bkt", GAIB_S3_KEY: "k", GAIB_S3_ENCRYPT: "maybe" }),
    ),
    /GAIB_S3_ENCRYPT="maybe" is not a boolean/,
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

Deno.test("the local default loads no npm package (no YAML, zod or AWS SDK)", async () => {
  await using dir = await tempDir();
  const run = await factoryProbe(dir.path, "auto");
  assert.deepStrictEqual(await run(dir.path, "--no-npm"), { ok: true, stdout: "default" });
  // The probe has teeth: with a config file the YAML parser is needed, and --no-npm stops it.
  await Deno.mkdir(`${dir.path}/with-config`);
  await Deno.writeTextFile(`${dir.path}/with-config/gaib.yaml`, 'version: "1"\n');
  assert.equal((await run(`${dir.path}/with-config`, "--no-npm")).ok, false);
});

Deno.test("an unchanged config file is read from the cache without the YAML parser or zod", async () => {
  await using dir = await tempDir();
  const probe = await factoryProbe(dir.path, "resolve");
  const project = `${dir.path}/project`;
  const run = (...flags: string[]) => probe(project, ...flags);
  await Deno.mkdir(project);
  const config = `${project}/gaib.yaml`;
  await Deno.writeTextFile(config, 'version: "1"\nbackend:\n  type: local\n  path: st\n');
  assert.equal((await run("--no-npm")).ok, false, "the first read needs the parser");
  assert.deepStrictEqual(await run(), { ok: true, stdout: `${project}/st` });
  assert.deepStrictEqual(await run("--no-npm"), { ok: true, stdout: `${project}/st` });
  assert.equal((await Deno.stat(`${project}/.gaib/.config-cache.json`)).mode! & 0o777, 0o600);
  // Any change to the file is checked again.
  await Deno.writeTextFile(config, 'version: "1"\nbackend:\n  type: local\n  path: other\n');
  assert.equal((await run("--no-npm")).ok, false, "a changed file is parsed again");
  await Deno.writeTextFile(config, 'version: "1"\nbackend:\n  type: lokal\n');
  assert.equal((await run()).ok, false, "an invalid file is refused, never served from cache");
});
