/**
 * A JSON syntax error in a state (or a lock file) is reported by line, column and what was
 * expected, never with the text around it: V8's own message quotes about ten characters of
 * the input, and a state holds tokens. Checked through the library, the local and S3
 * backends, and the CLI (plain, `--json` and `--verbose`, which prints every cause).
 *
 * @module
 */

import assert from "node:assert/strict";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { LocalBackend, parseState, parseStateBytes, StateFormatError } from "../mod.ts";
import { readStateHeader } from "../src/_state_header.ts";
import { cliProject } from "./_cli.ts";
import { s3Fixture, s3Test } from "./_s3_fixture.ts";
import { tempDir } from "./_temp.ts";

/** A token that looks like a GitHub one; fresh per run so that no fixture can contain it. */
const TOKEN = `ghp_${crypto.randomUUID().replaceAll("-", "")}Z9`;

/** Fails when `text` holds any 4 consecutive characters of the token. */
function assertNoTokenPiece(text: string, where: string): void {
  for (let i = 0; i + 4 <= TOKEN.length; i++) {
    const piece = TOKEN.slice(i, i + 4);
    assert.ok(!text.includes(piece), `${where} quotes ${JSON.stringify(piece)}:\n${text}`);
  }
}

/** Every message and stack of an error and its causes. */
function everythingSaid(error: unknown): string {
  const parts: string[] = [];
  for (let e = error; e instanceof Error; e = e.cause) parts.push(e.message, e.stack ?? "");
  return parts.join("\n");
}

const HEAD = '{\n  "version": 4,\n  "serial": 1,\n  "lineage": "l",\n';

/** Broken states with the token next to the error, and where the error is. */
const CASES: Array<{ name: string; text: string; at: string; expected: string }> = [
  {
    name: "an unquoted token",
    text: `${HEAD}  "outputs": {"t": {"type": "string", "value": ${TOKEN}}}\n}\n`,
    at: "line 5, column 48",
    expected: "expected a value, found a letter",
  },
  {
    name: "a trailing comma after the token",
    text: `${HEAD}  "token": "${TOKEN}",\n}\n`,
    at: "line 6, column 1",
    expected: "expected a quoted object key, found '}'",
  },
  {
    name: "a file cut short inside the token",
    text: `${HEAD}  "token": "${TOKEN}`,
    at: `line 5, column ${13 + TOKEN.length}`,
    expected: "expected a closing quotation mark, found the end of the input",
  },
  {
    name: "a control character after the token",
    text: `${HEAD}  "token": "${TOKEN}\u0007"\n}\n`,
    at: `line 5, column ${13 + TOKEN.length}`,
    expected: "expected an escape such as \\n in place of a control character in a string",
  },
  {
    name: "a bad escape after the token",
    text: `${HEAD}  "token": "${TOKEN}\\x"\n}\n`,
    at: `line 5, column ${14 + TOKEN.length}`,
    expected: "expected an escape",
  },
  {
    name: "a missing comma after the token",
    text: `${HEAD}  "token": "${TOKEN}" "next": 1\n}\n`,
    at: `line 5, column ${15 + TOKEN.length}`,
    expected: "expected ',' or '}', found a quotation mark",
  },
  {
    name: "the token after the document",
    text: `${HEAD}  "resources": []\n}\n${TOKEN}\n`,
    at: "line 7, column 1",
    expected: "expected the end of the input, found a letter",
  },
  {
    name: "wide characters before the error on its line",
    text: `${HEAD}  "é😀": ${TOKEN}\n}\n`,
    at: "line 5, column 9",
    expected: "expected a value, found a letter",
  },
];

Deno.test("parseState reports a JSON syntax error by line, column and what was expected, never quoting the file", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, () => {
      assert.throws(() => parseState(c.text, "state file x.tfstate"), (e: unknown) => {
        assert.ok(e instanceof StateFormatError, String(e));
        assert.ok(
          e.message.includes(`not valid JSON (${c.at}: ${c.expected}`),
          `says where and what: ${e.message}`,
        );
        assertNoTokenPiece(everythingSaid(e), "the error or a cause");
        return true;
      });
    });
  }
});

Deno.test("parseStateBytes and the header read before a write never quote the bytes either", () => {
  const bytes = new TextEncoder().encode(`${HEAD}  "token": "${TOKEN}\\x"\n}\n`);
  assert.throws(() => parseStateBytes(bytes, "x"), (e: unknown) => {
    assertNoTokenPiece(everythingSaid(e), "parseStateBytes");
    return true;
  });
  // A bad escape or a control character in a header key or value: no SyntaxError escapes the
  // cheap header read (its message would quote the bytes); the full parse reports it.
  for (const text of [`{"lin\\x": "${TOKEN}", "serial": 1}`, `{"lineage": "${TOKEN}\u0001"}`]) {
    assert.equal(readStateHeader(new TextEncoder().encode(text)), null);
  }
});

Deno.test("LocalBackend never quotes a stored state around its syntax error, reading or writing over it", async () => {
  await using dir = await tempDir();
  const backend = new LocalBackend({ path: dir.path });
  const path = backend.statePath("default");
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const check = (what: string, at: string) => (e: unknown) => {
    assert.ok(e instanceof StateFormatError, `${what}: ${e}`);
    assert.ok(e.message.includes(at), `${what}: ${e.message}`);
    assertNoTokenPiece(everythingSaid(e), what);
    return true;
  };
  for (const c of CASES) {
    await Deno.writeTextFile(path, c.text);
    await assert.rejects(backend.getState("default"), check(`getState, ${c.name}`, c.at));
  }
  // A write reads the stored lineage and serial from the first bytes: broken there, the whole
  // file is parsed, and the write is refused with the same kind of message.
  await Deno.writeTextFile(
    path,
    `{\n  "version": 4,\n  "serial": 1,\n  "lineage": "${TOKEN}\u0001"\n}`,
  );
  const next = { version: 4 as const, serial: 2, lineage: "l" };
  await assert.rejects(
    backend.setState("default", next),
    check("setState", `line 4, column ${15 + TOKEN.length}`),
  );
});

s3Test("S3Backend never quotes a stored state around its syntax error", [], async () => {
  await using fx = await s3Fixture();
  const backend = fx.backend();
  const text = CASES[0].text;
  await fx.s3Client.send(
    new PutObjectCommand({ Bucket: fx.bucket, Key: "terraform.tfstate", Body: text }),
  );
  await assert.rejects(backend.getState("default"), (e: unknown) => {
    assert.ok(e instanceof StateFormatError, String(e));
    assert.ok(e.message.includes(CASES[0].at), e.message);
    assertNoTokenPiece(everythingSaid(e), "getState");
    return true;
  });
});

Deno.test("the CLI never prints the bytes around a syntax error: state push of a bad file, a bad stored state, a damaged lock file", async (t) => {
  await using project = await cliProject();
  const stored = `${project.path}/.gaib/workspaces/default`;
  for (const flags of [[], ["--json"], ["--verbose"]]) {
    await t.step(`state push of a bad file ${flags.join(" ")}`, async () => {
      for (const c of CASES) {
        await Deno.writeTextFile(`${project.path}/bad.tfstate`, c.text);
        const result = await project.run(["state", "push", ...flags, "bad.tfstate"]);
        assert.equal(result.code, 1, `${c.name}: ${result.stderr}`);
        assert.ok((result.stdout + result.stderr).includes(c.at), `${c.name}: ${result.stderr}`);
        assertNoTokenPiece(result.stdout + result.stderr, `${c.name} ${flags}`);
      }
    });
  }
  await t.step("a bad stored state: state pull, state list, and a push over it", async () => {
    await Deno.mkdir(stored, { recursive: true });
    await Deno.writeTextFile(`${stored}/terraform.tfstate`, CASES[1].text);
    await Deno.writeTextFile(`${project.path}/good.tfstate`, `${HEAD}  "serial": 5\n}\n`);
    for (
      const args of [
        ["state", "pull", "--verbose"],
        ["state", "list", "--json"],
        ["state", "push", "--verbose", "good.tfstate"],
      ]
    ) {
      const result = await project.run(args);
      assert.equal(result.code, 1, `${args}: ${result.stderr}`);
      assert.ok((result.stdout + result.stderr).includes(CASES[1].at), result.stderr);
      assertNoTokenPiece(result.stdout + result.stderr, args.join(" "));
    }
  });
  await t.step("a damaged lock file holding the token", async () => {
    await Deno.writeTextFile(`${stored}/terraform.tfstate`, "");
    await Deno.writeTextFile(
      `${stored}/.terraform.tfstate.lock.info`,
      `{"ID": "x", "Info": ${TOKEN}}`,
    );
    for (const args of [["lock", "status", "--verbose"], ["lock", "status", "--json"]]) {
      const result = await project.run(args);
      assert.match(result.stdout + result.stderr, /damaged lock file/, `${args}: ${result.stderr}`);
      assertNoTokenPiece(result.stdout + result.stderr, args.join(" "));
    }
  });
});
