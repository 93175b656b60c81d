import assert from "node:assert/strict";
import {
  assertValidState,
  createEmptyState,
  generateLineage,
  isValidState,
  parseState,
  parseStateBytes,
  serializeState,
  StateFormatError,
} from "../mod.ts";
import { readStateHeader } from "../src/_state_header.ts";
import {
  expectedOutcome,
  fixtureFiles,
  manifestSaysReject,
  PACKAGE_FIXTURES,
  SHARED_FIXTURES,
  sharedCorpusTest,
} from "./corpus/fixtures.ts";

/** parseState gives every fixture of a corpus its manifest outcome, one step per file. */
async function checkCorpus(t: Deno.TestContext, root: string): Promise<void> {
  const files = await fixtureFiles(root);
  assert.ok(files.length >= 50, `expected the whole corpus in ${root}, found ${files.length}`);
  const manifest = await Deno.readTextFile(`${root}/MANIFEST.md`);
  for (const file of files) {
    await t.step(file, async () => {
      // Cross-check the table against the manifest row, so the two cannot drift apart.
      const row = manifest.split("\n").find((line) => line.startsWith(`| \`${file}\``));
      assert.ok(row, `${file} has a manifest row`);
      const expected = expectedOutcome(file);
      assert.equal("reject" in expected, manifestSaysReject(row), `table and manifest agree`);

      const text = await Deno.readTextFile(`${root}/${file}`);
      if ("empty" in expected) {
        assert.equal(parseState(text, file), null);
      } else if ("reject" in expected) {
        assert.throws(() => parseState(text, file), (e: unknown) => {
          assert.ok(e instanceof StateFormatError, `a StateFormatError, not ${e}`);
          assert.ok(e.message.includes(expected.reject), `names the problem: ${e.message}`);
          assert.ok(e.message.includes(file), "names the file");
          return true;
        });
      } else {
        const state = parseState(text, file);
        assert.ok(state, `${file} is a state`);
        assert.equal(state.version, 4);
        assert.ok(isValidState(state));
      }
    });
  }
}

Deno.test("parseState gives every fixture of the package's corpus copy its manifest outcome", (t) =>
  checkCorpus(t, PACKAGE_FIXTURES));

sharedCorpusTest(
  "parseState gives every fixture of the shared corpus its manifest outcome",
  SHARED_FIXTURES,
  (t) => checkCorpus(t, SHARED_FIXTURES),
);

sharedCorpusTest(
  "the package's corpus copy (tests/testdata/tfstate) has the shared corpus's bytes",
  SHARED_FIXTURES,
  async () => {
    const shared = new Set(await fixtureFiles(SHARED_FIXTURES));
    const copy = await fixtureFiles(PACKAGE_FIXTURES);
    const both = copy.filter((file) => shared.has(file));
    assert.ok(both.length > 0, "the copy and the shared corpus have files in common");
    for (const file of both) {
      const [mine, theirs] = await Promise.all([
        Deno.readFile(`${PACKAGE_FIXTURES}/${file}`),
        Deno.readFile(`${SHARED_FIXTURES}/${file}`),
      ]);
      assert.deepStrictEqual(mine, theirs, `${file} differs from the shared corpus's`);
    }
  },
);

Deno.test("parseState refuses legacy formats with the version and how to upgrade", () => {
  for (const version of [1, 2, 3]) {
    assert.throws(
      () => parseState(JSON.stringify({ version, serial: 1 })),
      (e: Error) =>
        e instanceof StateFormatError &&
        e.message.includes(`legacy format version ${version}`) &&
        e.message.includes("Terraform 0.12 or later"),
    );
  }
});

Deno.test("parseState refuses non-integer and missing versions", () => {
  for (const doc of ['{"version": 4.5}', '{"version": null}', '{"serial": 1}', "[]", "42"]) {
    assert.throws(() => parseState(doc), StateFormatError, doc);
  }
});

Deno.test("parseState returns null only for a 0-byte file: whitespace or a lone BOM is a syntax error", () => {
  assert.equal(parseState(""), null);
  assert.equal(parseStateBytes(new Uint8Array()), null);
  // Terraform's statefile.Read: only len(src) == 0 is "no state"; json.Unmarshal refuses the rest.
  assert.throws(() => parseState("  \n\t"), /not valid JSON \(line 2, column 2: expected a value/);
  assert.throws(() => parseState("\uFEFF"), /not valid JSON \(line 1, column 1: expected a value/);
  assert.throws(
    () => parseStateBytes(new Uint8Array([0xef, 0xbb, 0xbf, 0x0a])),
    /not valid JSON \(line 2, column 1: expected a value/,
  );
});

Deno.test("parseStateBytes refuses bytes that are not UTF-8", () => {
  const bytes = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]);
  assert.throws(() => parseStateBytes(bytes, "x.tfstate"), /not UTF-8 text/);
});

Deno.test("parseState reports the line and column of a JSON syntax error", () => {
  assert.throws(
    () => parseState('{\n  "version": 4,\n  "serial": ,\n}'),
    /line 3, column 13/,
  );
});

async function losslessCheck(file: string): Promise<void> {
  const text = await Deno.readTextFile(`${PACKAGE_FIXTURES}/${file}`);
  const written = serializeState(parseState(text)!);
  const original = JSON.parse(text);
  const again = JSON.parse(written);
  // Zero values Go would decode for absent fields may be filled in; nothing else changes.
  for (const key of ["serial", "lineage"]) if (!(key in original)) delete again[key];
  assert.deepStrictEqual(again, original, `${file} round-trips without loss`);
}

Deno.test("every accepted fixture is written back without losing a field", async (t) => {
  for (const file of await fixtureFiles()) {
    if (!("accept" in expectedOutcome(file))) continue;
    await t.step(file, () => losslessCheck(file));
  }
});

Deno.test("v4 round-trip inputs are stored as read, without Terraform's plan-time normalisation", async () => {
  const input = await Deno.readTextFile(
    `${PACKAGE_FIXTURES}/roundtrip/v4-legacy-simple.in.tfstate`,
  );
  const normalised = await Deno.readTextFile(
    `${PACKAGE_FIXTURES}/roundtrip/v4-legacy-simple.out.tfstate`,
  );
  const written = serializeState(parseState(input)!);
  assert.deepStrictEqual(JSON.parse(written), JSON.parse(input));
  assert.notDeepStrictEqual(JSON.parse(written), JSON.parse(normalised));
  assert.ok(written.includes('"provider": "provider.null"'), "legacy provider kept as written");
});

Deno.test("serializeState keeps numbers a double cannot hold, digit for digit", () => {
  const text = JSON.stringify({
    version: 4,
    serial: 1,
    lineage: "l",
    outputs: {
      big: { value: 12345678901234567890, type: "number" },
      precise: { value: 0.1, type: "number" },
    },
    resources: [],
  }).replace("12345678901234567000", "12345678901234567890")
    .replace('"value":0.1', '"value":0.10000000000000000555');
  const written = serializeState(parseState(text)!);
  assert.ok(written.includes('"value": 12345678901234567890'), written);
  assert.ok(written.includes('"value": 0.10000000000000000555'), written);
});

Deno.test("serializeState writes Terraform's layout with the header first", () => {
  const state = parseState(
    '{"lineage": "x", "resources": [], "serial": 2, "version": 4, "terraform_version": "1.9.0"}',
  )!;
  const text = serializeState(state);
  assert.ok(
    text.startsWith(
      '{\n  "version": 4,\n  "terraform_version": "1.9.0",\n  "serial": 2,\n  "lineage": "x",',
    ),
    text,
  );
  assert.ok(text.endsWith("]\n}\n"));
});

Deno.test("createEmptyState gives a valid state with a fresh lineage", () => {
  const a = createEmptyState();
  const b = createEmptyState();
  assert.ok(isValidState(a));
  assert.equal(a.serial, 0);
  assert.notEqual(a.lineage, b.lineage);
  assert.match(
    generateLineage(),
    /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  assert.deepStrictEqual(parseState(serializeState(a)), a);
});

Deno.test("isValidState and assertValidState say what is wrong without changing the value", () => {
  const state = { version: 4, serial: 1, lineage: "x", resources: [{ mode: "weird" }] };
  const before = JSON.stringify(state);
  assert.equal(isValidState(state), false);
  assert.throws(() => assertValidState(state), /invalid mode "weird"/);
  assert.equal(JSON.stringify(state), before);
  assert.throws(() => assertValidState({ version: 4 }), /needs a "serial" and a "lineage"/);
  // A file may leave them null (Terraform reads 0 and ""); a state handed to a backend says them.
  assert.throws(
    () => assertValidState({ version: 4, serial: null, lineage: "x" }),
    /needs a "serial" and a "lineage"/,
  );
});

Deno.test("readStateHeader reads lineage and serial from the first bytes only", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  assert.deepStrictEqual(
    readStateHeader(enc(serializeState({ ...createEmptyState(), serial: 7, lineage: "L" }))),
    { version: 4, serial: 7, lineage: "L" },
  );
  // A nested value before the serial: unknown, the caller parses the whole file.
  assert.equal(readStateHeader(enc('{"version":4,"outputs":{},"serial":1,"lineage":"x"}')), null);
  // A key seen twice: let the full parse decide.
  assert.equal(
    readStateHeader(enc('{"version":4,"serial":1,"serial":2,"lineage":"x","resources":[]}')),
    null,
  );
  assert.equal(readStateHeader(enc("[1,2]")), null);
});
