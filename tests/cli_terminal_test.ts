/**
 * Whoever can write a shared bucket or state directory chooses the bytes of every name and
 * value in a state and every field of a lock record. None of them may reach the terminal as
 * a control sequence: the CLI escapes C0 and C1 controls, DEL and bidirectional overrides in
 * all it prints from a state, a lock or an error.
 */

import assert from "node:assert/strict";
import { type CliProject, cliProject, type CliResult, parseJson } from "./_cli.ts";

/** Retitles the window, clears the screen, colours by C1 CSI, flips text, plants a link. */
const EVIL = "\x1b]0;pwned\x07\x1b[2J\u009b31m\u202e\x7f\u2066\x1b]8;;https://evil.example\x07" +
  "link\x1b]8;;\x07";
/** What a terminal could act on; line feeds and tabs are plain text. */
// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/u;

const STATE = {
  version: 4,
  terraform_version: "1.9.0",
  serial: 1,
  lineage: "0b9d3a52-9c61-4f7e-8a8e-6f6d2f1c0e11",
  outputs: {
    [`out${EVIL}`]: { value: `value${EVIL}`, type: "string" },
    multi: { value: `line 1\n${EVIL}\nline 3\r`, type: "string" },
  },
  resources: [
    {
      mode: "managed",
      type: "discord_role",
      name: "admin",
      provider: 'provider["registry.terraform.io/gaib/discord"]',
      instances: [{
        index_key: `k${EVIL}`,
        schema_version: 0,
        attributes: {
          id: "1",
          description: `d${EVIL}`,
          topic: `first\n${EVIL}\nlast`,
          [`key${EVIL}`]: "x",
          nested: { [`k${EVIL}`]: [`e${EVIL}`] },
        },
      }],
    },
    {
      module: "module.evil",
      mode: "managed",
      type: `discord_role${EVIL}`,
      name: `n${EVIL}`,
      provider: 'provider["registry.terraform.io/gaib/discord"]',
      instances: [{ schema_version: 0, attributes: { id: "2" } }],
    },
  ],
};

/** The address `state list` prints for the keyed instance (escaped, and parseable back). */
const KEYED = 'discord_role.admin["k\\u001b]0;pwned\\u0007\\u001b[2J\\u009b31m\\u202e\\u007f' +
  '\\u2066\\u001b]8;;https://evil.example\\u0007link\\u001b]8;;\\u0007"]';

async function hostileProject(): Promise<CliProject> {
  const project = await cliProject();
  const push = await project.run(["state", "push", "-"], { stdin: JSON.stringify(STATE) });
  assert.equal(push.code, 0, push.stderr);
  return project;
}

function assertClean(what: string, result: CliResult): void {
  for (const [stream, text] of [["stdout", result.stdout], ["stderr", result.stderr]]) {
    const found = text.match(RAW_CONTROL);
    assert.equal(
      found,
      null,
      `${what}: raw U+${found?.[0].codePointAt(0)?.toString(16).padStart(4, "0")} on ${stream}` +
        `:\n${JSON.stringify(text)}`,
    );
  }
}

Deno.test("gaib-state prints no control character or bidi override from a hostile state", async (t) => {
  await using project = await hostileProject();
  const cases: Array<[string, string[], number]> = [
    ["state list", ["state", "list"], 0],
    ["state list --json", ["state", "list", "--json"], 0],
    ["state pull", ["state", "pull"], 0],
    ["state show of a keyed instance", ["state", "show", KEYED], 0],
    ["state show --json", ["state", "show", KEYED, "--json"], 0],
    ["state show of an output", ["state", "show", `output.out${EVIL}`], 0],
    ["state show of a multi-line output", ["state", "show", "output.multi"], 0],
    ["state show of a missing output", ["state", "show", "output.nope"], 1],
    ["state show --verbose of a missing output", ["state", "show", "output.nope", "--verbose"], 1],
    ["state rm --dry-run", ["state", "rm", "module.evil", "--dry-run"], 0],
    ["state mv --dry-run", ["state", "mv", "module.evil", "module.good", "--dry-run"], 0],
  ];
  for (const [what, args, code] of cases) {
    await t.step(what, async () => {
      const result = await project.run(args);
      assert.equal(result.code, code, `${what}: ${result.stderr}`);
      assertClean(what, result);
    });
  }

  await t.step("the escaped text is shown, not dropped", async () => {
    const list = await project.run(["state", "list"]);
    assert.equal(
      list.stdout,
      `${KEYED}\nmodule.evil.discord_role\\u001b]0;pwned\\u0007\\u001b[2J\\u009b31m\\u202e` +
        "\\u007f\\u2066\\u001b]8;;https://evil.example\\u0007link\\u001b]8;;\\u0007.n\\u001b]0;" +
        "pwned\\u0007\\u001b[2J\\u009b31m\\u202e\\u007f\\u2066\\u001b]8;;https://evil.example" +
        "\\u0007link\\u001b]8;;\\u0007\n",
    );
    const show = await project.run(["state", "show", KEYED]);
    assert.match(show.stdout, /\n {4}description +=\s"d\\u001b\]0;pwned\\u0007/);
    // A multi-line string keeps its lines; the controls inside them are escaped.
    assert.ok(
      show.stdout.includes("<<-EOT\n        first\n        \\u001b]0;"),
      show.stdout,
    );
    const multi = await project.run(["state", "show", "output.multi"]);
    assert.ok(multi.stdout.includes("        line 3\\u000d\n"), multi.stdout);
  });

  await t.step("--json and pull keep every value", async () => {
    const show = parseJson(await project.run(["state", "show", KEYED, "--json"]));
    assert.deepEqual(show.attributes, STATE.resources[0].instances[0].attributes);
    assert.equal(show.index_key, `k${EVIL}`);
    const pulled = JSON.parse((await project.run(["state", "pull"])).stdout);
    assert.deepEqual(pulled.outputs, STATE.outputs);
    assert.deepEqual(pulled.resources, STATE.resources);
  });

  await t.step("the messages of a real rm and mv", async () => {
    const mv = await project.run(["state", "mv", KEYED, "discord_role.renamed"]);
    assert.equal(mv.code, 0, mv.stderr);
    assertClean("state mv", mv);
    assert.match(mv.stderr, /Moved discord_role\.admin\["k\\u001b\]0;pwned/);
    const rm = await project.run(["state", "rm", "module.evil"]);
    assert.equal(rm.code, 0, rm.stderr);
    assertClean("state rm", rm);
    assert.match(rm.stderr, /Removed module\.evil\.discord_role\\u001b\]0;pwned/);
  });
});

Deno.test("gaib-state escapes C1 controls and bidi overrides in a hand-written lock record", async () => {
  await using project = await hostileProject();
  const dir = `${project.path}/.gaib/workspaces/default`;
  await Deno.writeTextFile(
    `${dir}/.terraform.tfstate.lock.info`,
    JSON.stringify({
      ID: "8a4f3e9c-1d2b-4c5a-9e8f-7b6a5c4d3e2f",
      Operation: `apply${EVIL}`,
      Info: `info${EVIL}`,
      Who: `mallory${EVIL}`,
      Version: "1.9.0",
      Created: "2026-11-26T10:02:11Z",
      Path: `default${EVIL}`,
    }),
  );
  for (
    const args of [
      ["lock", "status"],
      ["lock", "status", "--all"],
      ["lock", "status", "--json"],
      ["state", "rm", "module.evil"],
    ]
  ) {
    const result = await project.run(args);
    assertClean(args.join(" "), result);
    assert.ok(
      (result.stdout + result.stderr).includes("mallory\\u001b]0;pwned"),
      `${args.join(" ")} names the holder: ${result.stdout}${result.stderr}`,
    );
  }
});

Deno.test("gaib-state escapes what a hostile S3 endpoint says in its errors", async () => {
  // A loopback server that answers every request with an S3 error whose text is hostile.
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () =>
      new Response(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>` +
          `denied${EVIL}</Message><RequestId>r${EVIL}</RequestId></Error>`,
        { status: 403, headers: { "content-type": "application/xml" } },
      ),
  );
  await using project = await cliProject({
    GAIB_BACKEND: "s3",
    GAIB_S3_BUCKET: "states",
    GAIB_S3_KEY: "terraform.tfstate",
    GAIB_S3_REGION: "us-east-1",
    GAIB_S3_ENDPOINT: `http://127.0.0.1:${server.addr.port}`,
    GAIB_S3_FORCE_PATH_STYLE: "true",
    GAIB_S3_MAX_RETRIES: "1",
    AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
    AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  });
  for (const args of [["state", "list"], ["state", "list", "--verbose"], ["state", "pull"]]) {
    const result = await project.run(args);
    assert.equal(result.code, 1, result.stderr);
    assertClean(args.join(" "), result);
    if (args.includes("--verbose")) {
      // The server's own words reach only --verbose (in the causes), escaped.
      assert.match(result.stderr, /denied\\u001b\]0;pwned/, result.stderr);
    }
  }
});
