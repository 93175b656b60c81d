import assert from "node:assert/strict";
import { cliProject, parseJson } from "./_cli.ts";

Deno.test("gaib-state config show reports the local default with no config file", async () => {
  await using project = await cliProject();
  const text = await project.run(["config", "show"]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^Backend: +local \(from the default/);
  assert.match(text.stdout, /Config file: none found/);
  assert.ok(text.stdout.includes(`State root:  ${project.path}/.gaib`));
  assert.match(text.stdout, /Workspace: +default \(from default\)/);
  const json = parseJson(await project.run(["config", "show", "--json"]));
  assert.deepEqual(json, {
    backend: {
      type: "local",
      source: "default",
      file: null,
      stateRoot: `${project.path}/.gaib`,
      settings: {
        type: { value: "local", origin: "default" },
        path: { value: `${project.path}/.gaib`, origin: "default" },
      },
    },
    workspace: { name: "default", source: "default" },
    credentials: null,
  });
});

Deno.test("gaib-state config show names where each value came from: file, environment, --config", async (t) => {
  await using project = await cliProject();
  await Deno.writeTextFile(
    `${project.path}/gaib.yaml`,
    'version: "1"\nbackend:\n  type: local\n  path: state\n',
  );
  await Deno.mkdir(`${project.path}/ci`);
  await Deno.writeTextFile(
    `${project.path}/ci/other.yaml`,
    'version: "1"\nbackend:\n  type: local\n  path: ci-state\n',
  );
  await t.step("gaib.yaml", async () => {
    const json = parseJson(await project.run(["config", "show", "--json"]));
    const backend = json.backend as Record<string, unknown>;
    assert.equal(backend.source, "file");
    assert.equal(backend.file, `${project.path}/gaib.yaml`);
    assert.equal(backend.stateRoot, `${project.path}/state`);
    assert.deepEqual((backend.settings as Record<string, unknown>).path, {
      value: `${project.path}/state`,
      origin: `${project.path}/gaib.yaml`,
    });
  });
  await t.step("--config", async () => {
    const json = parseJson(
      await project.run(["--config", "ci/other.yaml", "config", "show", "--json"]),
    );
    assert.equal(
      (json.backend as Record<string, unknown>).stateRoot,
      `${project.path}/ci/ci-state`,
    );
  });
  await t.step("the environment wins over the file", async () => {
    const result = await project.run(["config", "show"], {
      env: { GAIB_BACKEND: "local", GAIB_STATE_PATH: "env-state", GAIB_WORKSPACE: "prod" },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Backend: +local \(from the GAIB_\* environment variables\)/);
    assert.match(result.stdout, /gaib\.yaml \(found, but the environment takes precedence\)/);
    assert.match(result.stdout, /path = ".*\/env-state" +\(from GAIB_STATE_PATH\)/);
    assert.match(result.stdout, /Workspace: +prod \(from GAIB_WORKSPACE\)/);
  });
  await t.step("commands use the backend it shows", async () => {
    assert.equal((await project.run(["workspace", "new", "x"])).code, 0);
    await Deno.stat(`${project.path}/state/workspaces/x/terraform.tfstate`);
  });
  await t.step("a missing --config file is an error", async () => {
    const result = await project.run(["config", "show", "--config", "nope.yaml"]);
    assert.equal(result.code, 1);
    assert.ok(
      result.stderr.startsWith(`Error: Config file ${project.path}/nope.yaml does not exist`),
      result.stderr,
    );
  });
});

Deno.test("gaib-state config show never prints credentials, also with --json and --verbose", async () => {
  await using project = await cliProject();
  const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  const token = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN0123456789";
  const env = {
    GAIB_S3_BUCKET: "my-states",
    GAIB_S3_KEY: "servers/terraform.tfstate",
    GAIB_S3_REGION: "eu-west-1",
    GAIB_DYNAMODB_TABLE: "locks",
    GAIB_S3_ENDPOINT: "https://admin:hunter2hunter2@s3.example.test",
    AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE",
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_SESSION_TOKEN: token,
    AWS_PROFILE: "ci",
  };
  for (
    const args of [["config", "show"], ["config", "show", "--json"], [
      "config",
      "show",
      "--verbose",
    ]]
  ) {
    const result = await project.run(args, { env });
    assert.equal(result.code, 0, result.stderr);
    const all = result.stdout + result.stderr;
    for (const value of [secret, token, "AKIAIOSFODNN7EXAMPLE", "hunter2hunter2"]) {
      assert.ok(!all.includes(value), `${args.join(" ")} printed ${value}:\n${all}`);
    }
    assert.match(all, /AWS_SECRET_ACCESS_KEY/);
    assert.match(all, /set \(value hidden\)/);
    assert.match(all, /my-states/);
  }
  const json = parseJson(await project.run(["config", "show", "--json"], { env }));
  assert.deepEqual(json.credentials, {
    AWS_ACCESS_KEY_ID: "set (value hidden)",
    AWS_SECRET_ACCESS_KEY: "set (value hidden)",
    AWS_SESSION_TOKEN: "set (value hidden)",
    AWS_PROFILE: "ci",
  });
});

Deno.test("gaib-state config validate checks a file and points at the problem", async (t) => {
  await using project = await cliProject();
  await t.step("no file anywhere", async () => {
    const result = await project.run(["config", "validate"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /No config file found/);
  });
  await t.step("a valid file", async () => {
    await Deno.writeTextFile(
      `${project.path}/gaib.yaml`,
      'version: "1"\nbackend:\n  type: s3\n  bucket: my-states\n  key: x/terraform.tfstate\n',
    );
    const result = await project.run(["config", "validate"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${project.path}/gaib.yaml is valid (backend: s3).\n`);
    assert.deepEqual(parseJson(await project.run(["config", "validate", "gaib.yaml", "--json"])), {
      file: "gaib.yaml",
      valid: true,
      backend: "s3",
    });
  });
  await t.step("an invalid file", async () => {
    await Deno.writeTextFile(
      `${project.path}/bad.yaml`,
      'version: "1"\nbackend:\n  type: s3\n  bucket: my-states\n  key: x\n  regoin: eu-west-1\n',
    );
    const result = await project.run(["config", "validate", "bad.yaml"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^Error: bad\.yaml:6:3: backend\.regoin: unknown key "regoin"/);
    const json = parseJson(await project.run(["config", "validate", "bad.yaml", "--json"]));
    const error = json.error as Record<string, unknown>;
    assert.equal(error.type, "BackendConfigError");
    assert.equal(error.file, "bad.yaml");
    assert.equal(error.path, "backend.regoin");
  });
  await t.step("a missing file", async () => {
    const result = await project.run(["config", "validate", "missing.yaml"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^Error: .*missing\.yaml/);
  });
});
