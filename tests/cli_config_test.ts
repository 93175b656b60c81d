import assert from "node:assert/strict";
import { cliProject, parseJson, runCli } from "./_cli.ts";
import { tempDir } from "./_temp.ts";

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
      skipped: [],
      notes: [],
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
  await t.step("a variable wins over the file's field", async () => {
    const result = await project.run(["config", "show"], {
      env: { GAIB_BACKEND: "local", GAIB_STATE_PATH: "env-state", GAIB_WORKSPACE: "prod" },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Backend: +local \(from the GAIB_\* environment variables\)/);
    assert.ok(result.stdout.includes(`Config file: ${project.path}/gaib.yaml\n`), result.stdout);
    assert.match(result.stdout, /type = "local" +\(from GAIB_BACKEND\)/);
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

/** Endpoint URLs with a credential in each form of user info, and the secret part of each. */
const CREDENTIAL_URLS: [string, (host: string) => string, string[]][] = [
  ["a token as the user name", (h) => `https://tok3nUserValue@${h}`, ["tok3nUserValue"]],
  ["an empty user name with a password", (h) => `https://:pw-Secret-1@${h}`, ["pw-Secret-1"]],
  ["an @ inside the password", (h) => `https://user:p@ss-Secret-2@${h}`, ["p@ss", "ss-Secret-2"]],
  ["a percent-encoded password", (h) => `https://us%40er:p%40ss%2FSecret-3@${h}`, [
    "us%40er",
    "Secret-3",
  ]],
  ["user and password", (h) => `https://admin:Secret-4-hunter2@${h}`, ["Secret-4", "admin"]],
  ["no slashes after the scheme", (h) => `https:tok3nNoSlashes@${h}`, ["tok3nNoSlashes"]],
];

Deno.test("config show never prints the user info of an endpoint URL, from a variable or the file", async (t) => {
  await using project = await cliProject();
  const base = { GAIB_S3_BUCKET: "my-states", GAIB_S3_KEY: "k", GAIB_S3_REGION: "eu-west-1" };
  for (const [what, url, secrets] of CREDENTIAL_URLS) {
    await t.step(what, async () => {
      const endpoint = url("s3.example.test");
      await Deno.writeTextFile(
        `${project.path}/gaib.yaml`,
        `version: "1"\nbackend:\n  type: s3\n  bucket: my-states\n  key: k\n` +
          `  endpoints:\n    s3: "${endpoint}"\n    dynamodb: "${url("ddb.example.test")}"\n`,
      );
      const runs = [
        [["config", "show"], {}],
        [["config", "show", "--json"], {}],
        [["config", "show", "--verbose"], {}],
        [["config", "show"], { ...base, GAIB_S3_ENDPOINT: endpoint }],
        [["config", "show", "--json"], { ...base, GAIB_S3_ENDPOINT: endpoint }],
      ] as const;
      for (const [args, env] of runs) {
        const result = await project.run([...args], { env });
        assert.equal(result.code, 0, result.stderr);
        const all = result.stdout + result.stderr;
        for (const secret of secrets) {
          assert.ok(!all.includes(secret), `${args.join(" ")} printed ${secret}:\n${all}`);
        }
        assert.ok(all.includes("https://[redacted]@s3.example.test/"), all);
      }
      const json = parseJson(await project.run(["config", "show", "--json"]));
      const settings = (json.backend as { settings: Record<string, { value: string }> }).settings;
      assert.equal(settings["endpoints.s3"].value, "https://[redacted]@s3.example.test/");
      assert.equal(settings["endpoints.dynamodb"].value, "https://[redacted]@ddb.example.test/");
    });
  }
});

Deno.test("a connection error never prints the user info of the endpoint URL", async (t) => {
  await using project = await cliProject();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close(); // nothing listens there now: the connection is refused
  const env = {
    GAIB_S3_BUCKET: "my-states",
    GAIB_S3_KEY: "k",
    GAIB_S3_REGION: "us-east-1",
    GAIB_S3_MAX_RETRIES: "0",
    GAIB_S3_FORCE_PATH_STYLE: "true",
    AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
    AWS_SECRET_ACCESS_KEY: "not-a-real-secret-key-0000",
  };
  for (const [what, url, secrets] of CREDENTIAL_URLS.slice(0, 5)) {
    await t.step(what, async () => {
      const endpoint = url(`127.0.0.1:${port}`).replace("https:", "http:");
      const results = await Promise.all(
        [["state", "list"], ["state", "list", "--json"], ["state", "list", "--verbose"]].map(
          (args) => project.run(args, { env: { ...env, GAIB_S3_ENDPOINT: endpoint } }),
        ),
      );
      for (const result of results) {
        assert.equal(result.code, 1, result.stdout + result.stderr);
        const all = result.stdout + result.stderr;
        assert.ok(all.includes(`Cannot reach S3 at http://[redacted]@127.0.0.1:${port}`), all);
        for (const secret of secrets) {
          assert.ok(!all.includes(secret), `printed ${secret}:\n${all}`);
        }
      }
    });
  }
});

const PLANTED = 'version: "1"\nbackend:\n  type: s3\n  bucket: planted\n  key: k\n' +
  "  endpoint: http://127.0.0.1:9\n";
const NOBODY = 65534;

Deno.test("a gaib.yaml planted in a shared parent directory is skipped, and config show says why", async () => {
  await using dir = await tempDir();
  const shared = `${dir.path}/x`;
  await Deno.mkdir(`${shared}/checkout`, { recursive: true });
  await Deno.chmod(shared, 0o1777);
  await Deno.writeTextFile(`${shared}/gaib.yaml`, PLANTED);
  await Deno.chown(`${shared}/gaib.yaml`, NOBODY, NOBODY);
  const cwd = `${shared}/checkout`;
  const text = await runCli(["config", "show"], { cwd });
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /Backend: +local \(from the default/);
  assert.ok(
    text.stdout.includes(
      `Skipped:     ${shared}/gaib.yaml: ${shared} is a shared directory (every user may ` +
        "create files in it, mode 1777), so a config there is not used\n",
    ),
    text.stdout,
  );
  assert.ok(!text.stdout.includes("planted"));
  const json = parseJson(await runCli(["config", "show", "--json"], { cwd }));
  const backend = json.backend as Record<string, unknown>;
  assert.equal(backend.type, "local");
  assert.deepEqual((backend.skipped as { file: string }[]).map((s) => s.file), [
    `${shared}/gaib.yaml`,
  ]);
  // Commands use the local default, not the planted endpoint.
  const list = await runCli(["state", "list"], { cwd });
  assert.ok(!(list.stdout + list.stderr).includes("127.0.0.1:9"), list.stderr);
});

Deno.test("a gaib.yaml in another user's directory is refused by every command, naming the owner", async () => {
  await using dir = await tempDir();
  const theirs = `${dir.path}/x`;
  await Deno.mkdir(`${theirs}/checkout`, { recursive: true });
  await Deno.writeTextFile(`${theirs}/gaib.yaml`, PLANTED);
  await Deno.chown(`${theirs}/gaib.yaml`, NOBODY, NOBODY);
  const cwd = `${theirs}/checkout`;
  const reason = `Not using ${theirs}/gaib.yaml: it is owned by uid ${NOBODY}, not by you ` +
    `(uid ${Deno.uid()}) or root`;
  for (const args of [["config", "show"], ["state", "list"], ["config", "validate"]]) {
    const result = await runCli(args, { cwd });
    assert.equal(result.code, 1, `${args.join(" ")}: ${result.stdout}`);
    assert.ok(result.stderr.startsWith(`Error: ${reason}`), result.stderr);
    assert.ok(result.stderr.includes(`--config ${theirs}/gaib.yaml`), result.stderr);
  }
  const json = parseJson(await runCli(["config", "show", "--json"], { cwd }));
  const error = json.error as Record<string, unknown>;
  assert.equal(error.file, `${theirs}/gaib.yaml`);
  assert.ok((error.message as string).startsWith(reason));
  // Named explicitly, it is used.
  const named = await runCli(["--config", "../gaib.yaml", "config", "show"], { cwd });
  assert.equal(named.code, 0, named.stderr);
  assert.match(named.stdout, /bucket += "planted"/);
});

Deno.test("config show names the source of each field: the file, a variable, the default", async () => {
  await using project = await cliProject();
  const file = `${project.path}/gaib.yaml`;
  await Deno.writeTextFile(
    file,
    'version: "1"\nbackend:\n  type: s3\n  bucket: file-bucket\n  key: gaib/terraform.tfstate\n' +
      "  dynamodb_table: file-locks\n",
  );
  const env = { GAIB_DYNAMODB_TABLE: "env-locks", AWS_REGION: "eu-west-3", GAIB_STATE_PATH: "x" };
  const json = parseJson(await project.run(["config", "show", "--json"], { env }));
  const backend = json.backend as Record<string, unknown>;
  assert.equal(backend.source, "file");
  assert.deepEqual(backend.settings, {
    type: { value: "s3", origin: file },
    bucket: { value: "file-bucket", origin: file },
    key: { value: "gaib/terraform.tfstate", origin: file },
    dynamodb_table: { value: "env-locks", origin: "GAIB_DYNAMODB_TABLE" },
    region: { value: "eu-west-3", origin: "AWS_REGION" },
  });
  assert.deepEqual(backend.notes, [
    "GAIB_STATE_PATH is ignored: it is not a setting of the s3 backend.",
  ]);
  const text = await project.run(["config", "show"], { env });
  assert.match(text.stdout, /dynamodb_table += "env-locks" +\(from GAIB_DYNAMODB_TABLE\)/);
  assert.ok(text.stdout.includes("Notes:\n  GAIB_STATE_PATH is ignored"), text.stdout);
});

Deno.test("config validate says what type a field expected and what it found", async () => {
  await using project = await cliProject();
  await Deno.writeTextFile(
    `${project.path}/gaib.yaml`,
    'version: "1"\nbackend:\n  type: s3\n  bucket: my-states\n  key: k\n  encrypt: "yes"\n',
  );
  const result = await project.run(["config", "validate"]);
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    `Error: ${project.path}/gaib.yaml:6:12: backend.encrypt: expected a boolean (true or false), ` +
      'found the string "yes"; write true or false without quotes.\n',
  );
});

Deno.test("config show escapes what the environment says and names AWS_ENDPOINT_URL_S3 as the endpoint's origin", async () => {
  await using project = await cliProject({
    GAIB_S3_BUCKET: "states",
    GAIB_S3_KEY: "k",
    GAIB_S3_REGION: "eu-west-1",
    AWS_PROFILE: "p\x1b]0;PWNED\x07\x1b[2J",
    AWS_ENDPOINT_URL_S3: "http://tok:secret@127.0.0.1:9/?token=SECRET",
  });
  const result = await project.run(["config", "show"]);
  assert.equal(result.code, 0, result.stderr);
  assert.ok(!result.stdout.includes("\x1b") && !result.stdout.includes("\x07"), result.stdout);
  assert.match(result.stdout, /AWS_PROFILE: p\\u001b\]0;PWNED/);
  assert.match(
    result.stdout,
    /endpoints\.s3 += "http:\/\/\[redacted\]@127\.0\.0\.1:9\/\?\[redacted\]" +\(from AWS_ENDPOINT_URL_S3\)/,
  );
  assert.ok(!result.stdout.includes("secret") && !result.stdout.includes("SECRET"));
});
