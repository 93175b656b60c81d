/**
 * Fidelity with Terraform's and OpenTofu's reader, and a lossless rewrite:
 *
 * - A state is accepted or refused as OpenTofu's `internal/states/statefile` reader (read.go,
 *   version4.go, and the Go field types encoding/json enforces) accepts or refuses it; each case
 *   names the rule it follows.
 * - Reading and writing back a state keeps the text of every number and every key, whatever its
 *   name, at every depth, through `serializeState`, the local backend and the CLI.
 *
 * @module
 */

import assert from "node:assert/strict";
import { instanceKey, LocalBackend, parseState, serializeState, StateFormatError } from "../mod.ts";
import { cliProject } from "./_cli.ts";
import { tempDir } from "./_temp.ts";

const NULL_PROVIDER = JSON.stringify('provider["registry.terraform.io/hashicorp/null"]');

/** Pieces of a state's text (raw JSON text, so numbers and keys stay exactly as written). */
interface Parts {
  version?: string;
  serial?: string;
  /** Extra top-level members, each with a leading comma. */
  top?: string;
  /** The members of `outputs`. */
  outputs?: string;
  /** The resource's provider, as JSON text. */
  provider?: string;
  /** Extra members of the resource, each with a leading comma. */
  resource?: string;
  /** Extra members of the instance, each with a leading comma. */
  instance?: string;
  /** Replaces the instances array. */
  instances?: string;
  /** Replaces the resources array. */
  resources?: string;
}

function stateText(p: Parts = {}): string {
  const instances = p.instances ??
    `[{"schema_version":0,"attributes":{"id":"x"}${p.instance ?? ""}}]`;
  const resources = p.resources ??
    `[{"mode":"managed","type":"null_resource","name":"a","provider":${
      p.provider ?? NULL_PROVIDER
    }${p.resource ?? ""},"instances":${instances}}]`;
  return `{"version":${p.version ?? "4"},"serial":${p.serial ?? "1"},"lineage":"l"${
    p.top ?? ""
  },"outputs":{${p.outputs ?? ""}},"resources":${resources}}`;
}

const OUTPUT = (type: string, value: string) => `"o":{"type":${type},"value":${value}}`;
const PATHS = (steps: string) => `,"sensitive_attributes":[[${steps}]]`;
const CHECKS = (kind: string, config: string, objects = "[]") =>
  `,"check_results":[{"object_kind":${JSON.stringify(kind)},"config_addr":${
    JSON.stringify(config)
  },"status":"pass","objects":${objects}}]`;

/** `true`: the reader accepts it; a RegExp: it refuses it with a message matching that. */
type Outcome = true | RegExp;

/** [what, the state's text, outcome, the rule followed]. */
const RULES: Array<[string, string, Outcome, string]> = [
  // Integer fields are uint64 in Go: digits only, no fraction, exponent or sign.
  [
    "version 4.0",
    stateText({ version: "4.0" }),
    /version in the state is 4\.0/,
    "read.go sniffJSONStateVersion: *uint64",
  ],
  ["version 4e0", stateText({ version: "4e0" }), /version in the state is 4e0/, "read.go: *uint64"],
  ["version -0", stateText({ version: "-0" }), /version in the state is -0/, "read.go: *uint64"],
  [
    "version 2^64",
    stateText({ version: "18446744073709551616" }),
    /version in the state is 18446744073709551616/,
    "read.go: *uint64 overflows",
  ],
  ["version 9 (future)", stateText({ version: "9" }), /format version 9/, "read.go readState"],
  [
    "version null",
    stateText({ version: "null" }),
    /no "version" attribute/,
    "read.go: nil version",
  ],
  [
    "serial 1.0",
    stateText({ serial: "1.0" }),
    /"serial" must be a whole number .* found 1\.0/,
    "version4.go stateV4.Serial uint64",
  ],
  [
    "serial 1e0",
    stateText({ serial: "1e0" }),
    /"serial" must be a whole number .* found 1e0/,
    "stateV4.Serial uint64",
  ],
  ["serial -0", stateText({ serial: "-0" }), /found -0/, "stateV4.Serial uint64"],
  [
    "serial null (Go's zero value)",
    stateText({ serial: "null" }),
    true,
    "encoding/json: null leaves the zero value",
  ],
  [
    "schema_version 0.0",
    stateText({ instance: ',"schema_version":0.0' }),
    /"schema_version" must be a whole number/,
    "instanceObjectStateV4.SchemaVersion uint64",
  ],
  [
    "schema_version 1e0",
    stateText({ instance: ',"schema_version":1e0' }),
    /"schema_version" must be a whole number/,
    "SchemaVersion uint64",
  ],
  [
    "schema_version beyond 2^53",
    stateText({ instance: ',"schema_version":9007199254740993' }),
    true,
    "SchemaVersion uint64",
  ],
  [
    "identity_schema_version 1.5",
    stateText({ instance: ',"identity_schema_version":1.5' }),
    /"identity_schema_version" must be a whole number/,
    "IdentitySchemaVersion *uint64",
  ],
  // Keys that differ from a field only in letter case: encoding/json would fill the field.
  [
    'a top-level "Serial"',
    stateText({ top: ',"Serial":9' }),
    /key "Serial", which Terraform reads as "serial"/,
    "encoding/json matches field names case-insensitively",
  ],
  [
    'a top-level "ſerial" (long s)',
    stateText({ top: ',"\u017ferial":9' }),
    /which Terraform reads as "serial"/,
    "encoding/json folds U+017F to s",
  ],
  [
    'an instance "Index_Key"',
    stateText({ instance: ',"Index_Key":1' }),
    /which Terraform reads as "index_key"/,
    "case-insensitive fields",
  ],
  [
    'an output "Value"',
    stateText({ outputs: '"o":{"type":"string","value":"a","Value":"b"}' }),
    /which Terraform reads as "value"/,
    "case-insensitive fields",
  ],
  [
    "unknown keys are kept",
    stateText({ top: ',"future_field":{"x":1}', instance: ',"tofu_only":true' }),
    true,
    "encoding/json ignores unknown fields",
  ],
  // Field types.
  [
    "terraform_version null",
    stateText({ top: ',"terraform_version":null' }),
    true,
    "stateV4.TerraformVersion string",
  ],
  [
    "terraform_version 1.2.3.4.5-rc1+meta",
    stateText({ top: ',"terraform_version":"1.2.3.4.5-rc1+meta"' }),
    true,
    "go-version NewVersion",
  ],
  [
    "terraform_version with a segment beyond int64",
    stateText({ top: ',"terraform_version":"99999999999999999999.0"' }),
    /not a valid version string/,
    "go-version: strconv.ParseInt(…, 64)",
  ],
  [
    "lineage null",
    stateText({ top: "" }).replace('"lineage":"l"', '"lineage":null'),
    true,
    "stateV4.Lineage string",
  ],
  ["mode null", stateText({ resource: ',"mode":null' }), /invalid mode ""/, "prepareStateV4: mode"],
  [
    "type and name absent",
    stateText({ resources: `[{"mode":"managed","provider":${NULL_PROVIDER},"instances":[]}]` }),
    true,
    "prepareStateV4 takes them as given",
  ],
  [
    "type 5",
    stateText({ resource: ',"type":5' }),
    /"type" must be a string/,
    "resourceStateV4.Type string",
  ],
  [
    "each 1",
    stateText({ resource: ',"each":1' }),
    /"each" must be a string/,
    "resourceStateV4.EachMode string",
  ],
  [
    'sensitive "yes"',
    stateText({ outputs: '"o":{"type":"string","value":"a","sensitive":"yes"}' }),
    /"sensitive" must be true or false/,
    "outputStateV4.Sensitive bool",
  ],
  [
    'create_before_destroy "true"',
    stateText({ instance: ',"create_before_destroy":"true"' }),
    /"create_before_destroy" must be true or false/,
    "CreateBeforeDestroy bool",
  ],
  [
    "private that is not base64",
    stateText({ instance: ',"private":"not base64!"' }),
    /"private" must be base64/,
    "PrivateRaw []byte (base64)",
  ],
  [
    "private in base64",
    stateText({ instance: ',"private":"bnVsbA=="' }),
    true,
    "PrivateRaw []byte",
  ],
  [
    "attributes_flat with a null value",
    stateText({ instance: ',"attributes_flat":{"a":null}' }),
    true,
    'map[string]string: null is ""',
  ],
  [
    "a null resource",
    stateText({ resources: "[null]" }),
    /resources\[0\] must be an object/,
    'a zero resource has the invalid mode ""',
  ],
  [
    "a null instance",
    stateText({ instances: "[null]" }),
    /instances\[0\] must be an object/,
    "intentionally stricter (see _state_rules.ts)",
  ],
  [
    "attributes 5",
    stateText({ instance: ',"attributes":5' }),
    /"attributes" must be an object/,
    "intentionally stricter: json.RawMessage",
  ],
  // Index keys: a string, or a number that int() truncates.
  [
    "index_key 1.5 (read as 1)",
    stateText({ instance: ',"index_key":1.5' }),
    true,
    "prepareStateV4: int(float64)",
  ],
  [
    "index_key 1 and 1.5 collide",
    stateText({ instances: '[{"index_key":1},{"index_key":1.5}]' }),
    /null_resource\.a\[1\] appears multiple times/,
    "prepareStateV4: duplicate instance",
  ],
  [
    "index_key 1e400",
    stateText({ instance: ',"index_key":1e400' }),
    /beyond a float64/,
    "encoding/json: float64 overflow",
  ],
  [
    "index_key true",
    stateText({ instance: ',"index_key":true' }),
    /invalid index_key of type boolean/,
    "prepareStateV4: invalid instance key",
  ],
  // Deposed keys: 8 bytes, nothing more.
  [
    'deposed "zzzzzzzz"',
    stateText({ instance: ',"deposed":"zzzzzzzz"' }),
    true,
    "prepareStateV4: len(dk) != 8",
  ],
  [
    'deposed "éééé" (8 bytes)',
    stateText({ instance: ',"deposed":"éééé"' }),
    true,
    "len() counts bytes",
  ],
  [
    'deposed "abc"',
    stateText({ instance: ',"deposed":"abc"' }),
    /deposed key "abc"/,
    "len(dk) != 8",
  ],
  [
    'status "Tainted"',
    stateText({ instance: ',"status":"Tainted"' }),
    /invalid status "Tainted"/,
    "prepareStateV4: status",
  ],
  // Provider addresses, read with HCL's traversal syntax.
  [
    "provider. null",
    stateText({ provider: '"provider. null"' }),
    true,
    "ParseLegacyAbsProviderConfigStr (OpenTofu testdata v4-legacy-modules)",
  ],
  [
    "provider . null . alias /* comment */",
    stateText({ provider: '"provider . null . alias /* c */"' }),
    true,
    "hclsyntax.ParseTraversalAbs",
  ],
  [
    'provider["…"] .alias',
    stateText({
      provider: JSON.stringify('provider [ "registry.terraform.io/hashicorp/null" ] .alias'),
    }),
    true,
    "ParseAbsProviderConfigStr",
  ],
  [
    "provider with upper case",
    stateText({ provider: JSON.stringify('provider["Registry.Terraform.IO/HashiCorp/Null"]') }),
    true,
    "ParseProviderSource lowercases",
  ],
  [
    "provider with the legacy namespace",
    stateText({ provider: JSON.stringify('provider["registry.terraform.io/-/null"]') }),
    true,
    'ParseProviderSource: "-"',
  ],
  [
    "provider with the legacy namespace elsewhere",
    stateText({ provider: JSON.stringify('provider["example.com/-/null"]') }),
    /invalid provider address/,
    '"-" only on the default registry',
  ],
  [
    "provider with four parts",
    stateText({ provider: JSON.stringify('provider["a.com/b/c/d"]') }),
    /invalid provider address/,
    "parseSourceStringParts",
  ],
  [
    "provider terraform-provider-null",
    stateText({ provider: JSON.stringify('provider["hashicorp/terraform-provider-null"]') }),
    /invalid provider address/,
    "ParseProviderSource: redundant prefix",
  ],
  [
    "provider with an instance key on the resource",
    stateText({ provider: JSON.stringify('provider["hashicorp/null"].a["k"]') }),
    /invalid provider address/,
    "ParseAbsProviderConfig: no instance key",
  ],
  [
    "provider in a keyed module",
    stateText({ provider: JSON.stringify('module.m[0].provider["hashicorp/null"]') }),
    /invalid provider address/,
    "no keyed module instance",
  ],
  [
    "legacy provider on an instance",
    stateText({ provider: '""', instance: ',"provider":"provider.null"' }),
    /invalid provider address "provider\.null"/,
    "ParseAbsProviderConfigInstanceStr has no legacy form",
  ],
  [
    "keyed provider on instances",
    stateText({
      provider: '""',
      instances: `[{"index_key":0,"provider":${
        JSON.stringify('provider["hashicorp/null"].a["x"]')
      }},{"index_key":1,"provider":${JSON.stringify('provider["hashicorp/null"].a["y"]')}}]`,
    }),
    true,
    "OpenTofu 1.9 provider instance keys",
  ],
  [
    "different providers on instances",
    stateText({
      provider: '""',
      instances: `[{"index_key":0,"provider":${
        JSON.stringify('provider["hashicorp/null"].a')
      }},{"index_key":1,"provider":${JSON.stringify('provider["hashicorp/null"].b')}}]`,
    }),
    /instances with different provider addresses/,
    "Provider instance field conflict",
  ],
  // Module addresses.
  [
    'module . a [ "x" ]',
    stateText({ resource: ',"module":"module . a [ \\"x\\" ]"' }),
    true,
    "ParseModuleInstanceStr",
  ],
  [
    "module.a[1e1]",
    stateText({ resource: ',"module":"module.a[1e1]"' }),
    true,
    "gocty.FromCtyValue: 10 is whole",
  ],
  [
    "module.a[1.5]",
    stateText({ resource: ',"module":"module.a[1.5]"' }),
    /invalid module address/,
    "gocty.FromCtyValue: not whole",
  ],
  [
    "module.a[-1]",
    stateText({ resource: ',"module":"module.a[-1]"' }),
    /invalid module address/,
    "traversal index: a literal only",
  ],
  [
    "module.ünïcødé",
    stateText({ resource: ',"module":"module.ünïcødé"' }),
    true,
    "HCL identifiers are Unicode",
  ],
  [
    'module.a["${x}"]',
    stateText({ resource: ',"module":"module.a[\\"${x}\\"]"' }),
    /invalid module address/,
    "no template sequences",
  ],
  [
    'module.a["$${x}"]',
    stateText({ resource: ',"module":"module.a[\\"$${x}\\"]"' }),
    true,
    "$${ is an escaped ${",
  ],
  // Outputs: the type must be a cty type and the value must decode as it.
  [
    'output type "strin"',
    stateText({ outputs: OUTPUT('"strin"', '"a"') }),
    /output "o" has an invalid type/,
    "ctyjson.UnmarshalType",
  ],
  [
    "output type null",
    stateText({ outputs: OUTPUT("null", '"a"') }),
    /output "o" has an invalid type/,
    "ctyjson.UnmarshalType",
  ],
  [
    "output value null",
    stateText({ outputs: OUTPUT('"number"', "null") }),
    true,
    "ctyjson.Unmarshal: null of any type",
  ],
  [
    "list(string) of a number and a bool",
    stateText({ outputs: OUTPUT('["list","string"]', '[1,"a",true]') }),
    true,
    "unmarshalPrimitive: string from number or bool",
  ],
  [
    'number from "12"',
    stateText({ outputs: OUTPUT('"number"', '"12"') }),
    true,
    "cty.ParseNumberVal",
  ],
  [
    'number from "abc"',
    stateText({ outputs: OUTPUT('"number"', '"abc"') }),
    /a number is required/,
    "cty.ParseNumberVal",
  ],
  ['bool from "1"', stateText({ outputs: OUTPUT('"bool"', '"1"') }), true, 'convert: "1" is true'],
  [
    'bool from "yes"',
    stateText({ outputs: OUTPUT('"bool"', '"yes"') }),
    /a bool is required/,
    "convert",
  ],
  [
    "string from an array",
    stateText({ outputs: OUTPUT('"string"', "[1]") }),
    /a string is required/,
    "unmarshalPrimitive",
  ],
  [
    "tuple of the wrong length",
    stateText({ outputs: OUTPUT('["tuple",["string","number"]]', '["a"]') }),
    /tuple of 2 elements/,
    "unmarshalTuple",
  ],
  [
    "object with an undeclared attribute",
    stateText({ outputs: OUTPUT('["object",{"a":"string"}]', '{"b":"x"}') }),
    /unsupported attribute "b"/,
    "unmarshalObject",
  ],
  [
    "object missing an attribute",
    stateText({ outputs: OUTPUT('["object",{"a":"string"}]', "{}") }),
    true,
    "unmarshalObject: null for the rest",
  ],
  [
    "object with an undeclared optional",
    stateText({ outputs: OUTPUT('["object",{"a":"string"},["b"]]', "{}") }),
    /optional attribute is not declared/,
    "ObjectWithOptionalAttrs panics",
  ],
  [
    "dynamic list of mixed types",
    stateText({
      outputs: OUTPUT(
        '["list","dynamic"]',
        '[{"value":1,"type":"number"},{"value":"a","type":"string"}]',
      ),
    }),
    /elements of different types/,
    "cty.ListVal panics",
  ],
  [
    "dynamic value",
    stateText({
      outputs: OUTPUT('"dynamic"', '{"value":{"a":[1]},"type":["object",{"a":["list","number"]}]}'),
    }),
    true,
    "unmarshalDynamic",
  ],
  [
    "dynamic value without a type",
    stateText({ outputs: OUTPUT('"dynamic"', '{"value":1}') }),
    /missing "type"/,
    "unmarshalDynamic",
  ],
  [
    "an output without a type",
    stateText({ outputs: '"o":{"value":"a"}' }),
    /has no "type"/,
    "UnmarshalType(nil)",
  ],
  // Sensitive paths.
  [
    "sensitive get_attr",
    stateText({ instance: PATHS('{"type":"get_attr","value":"id"}') }),
    true,
    "unmarshalPaths",
  ],
  [
    "sensitive get_attr 5",
    stateText({ instance: PATHS('{"type":"get_attr","value":5}') }),
    /get_attr step whose value is not a string/,
    "unmarshalPaths",
  ],
  [
    "sensitive index with a typed key",
    stateText({ instance: PATHS('{"type":"index","value":{"value":"k","type":"string"}}') }),
    true,
    "unmarshalPaths: ctyjson dynamic",
  ],
  [
    'sensitive index "test"',
    stateText({ instance: PATHS('{"type":"index","value":"test"}') }),
    /invalid index step/,
    "version4_test: errors",
  ],
  [
    "sensitive step of an unknown type",
    stateText({ instance: PATHS('{"type":"invalid_type","value":["x"]}') }),
    /unsupported type "invalid_type"/,
    "Unsupported path step",
  ],
  [
    "sensitive_attributes {}",
    stateText({ instance: ',"sensitive_attributes":{}' }),
    /must be an array of paths/,
    "version4_test: invalid structure",
  ],
  [
    "sensitive_attributes [null]",
    stateText({ instance: ',"sensitive_attributes":[null]' }),
    true,
    "a null path decodes as an empty one",
  ],
  // Dependencies.
  [
    "dependency var.input",
    stateText({ instance: ',"dependencies":["var.input"]' }),
    true,
    "ParseAbsResourceStr: a resource of type var (testdata v4-foreach)",
  ],
  [
    "dependency data.x.y in a keyed module",
    stateText({ instance: ',"dependencies":["module.m[0].data.x.y"]' }),
    true,
    "ParseAbsResourceStr",
  ],
  [
    "dependency with an instance key",
    stateText({ instance: ',"dependencies":["null_resource.x[0]"]' }),
    /invalid dependency/,
    "ParseAbsResource: no instance",
  ],
  [
    "dependency on a module",
    stateText({ instance: ',"dependencies":["module.a"]' }),
    /invalid dependency/,
    "ParseAbsResource: a resource is required",
  ],
  [
    "dependency null",
    stateText({ instance: ',"dependencies":[null]' }),
    /invalid dependency/,
    '[]string: null is ""',
  ],
  [
    "depends_on an instance",
    stateText({ instance: ',"depends_on":["null_resource.x[0]"]' }),
    true,
    "ParseAbsResourceInstanceStr",
  ],
  [
    'depends_on "a"',
    stateText({ instance: ',"depends_on":["a"]' }),
    /invalid depends_on entry/,
    "ParseAbsResourceInstanceStr",
  ],
  // Check results.
  [
    "check results of an unknown kind",
    stateText({ top: CHECKS("future", "!!") }),
    true,
    "decodeCheckResultsV4 skips unknown kinds",
  ],
  [
    "check result on an output",
    stateText({ top: CHECKS("output", "output.x") }),
    true,
    "ParseCheckableStr",
  ],
  [
    "check result on output.x.y",
    stateText({ top: CHECKS("output", "output.x.y") }),
    /invalid address/,
    "ParseCheckableStr",
  ],
  [
    "check config address with a key",
    stateText({ top: CHECKS("resource", "null_resource.a[0]") }),
    /must not have instance keys/,
    "decodeCheckResultsV4: config address",
  ],
  [
    "check object with a key",
    stateText({
      top: CHECKS(
        "resource",
        "null_resource.a",
        '[{"object_addr":"null_resource.a[0]","status":"fail","failure_messages":["m",null]}]',
      ),
    }),
    true,
    "ParseCheckableStr",
  ],
  [
    "check results with a null entry",
    stateText({ top: ',"check_results":[null]' }),
    true,
    "a zero result has no known kind",
  ],
];

Deno.test("parseState accepts and refuses what OpenTofu's statefile reader does, rule by rule", async (t) => {
  for (const [what, text, outcome, rule] of RULES) {
    await t.step(`${what} (${rule})`, () => {
      if (outcome === true) {
        const state = parseState(text, "state file x");
        assert.ok(state, "a state");
        return;
      }
      assert.throws(() => parseState(text, "state file x"), (e: unknown) => {
        assert.ok(e instanceof StateFormatError, `a StateFormatError, not ${e}`);
        assert.match(e.message, outcome);
        assert.ok(e.message.startsWith("Invalid state file x: "), e.message);
        return true;
      });
    });
  }
});

Deno.test("parseState reads every v4 round-trip input of OpenTofu's test data", async (t) => {
  const dir = new URL("./testdata/opentofu_roundtrip/", import.meta.url);
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".tfstate")) names.push(entry.name);
  }
  assert.equal(names.length, 5);
  for (const name of names.sort()) {
    await t.step(name, async () => {
      const text = await Deno.readTextFile(new URL(name, dir));
      const state = parseState(text, name);
      assert.ok(state);
      assert.deepStrictEqual(JSON.parse(serializeState(state)), JSON.parse(text));
    });
  }
});

Deno.test("instanceKey reads a numeric index_key as Terraform does: a whole number, fraction dropped", () => {
  const state = parseState(stateText({ instances: '[{"index_key":2.0},{"index_key":-0}]' }))!;
  const [a, b] = state.resources![0].instances;
  assert.equal(instanceKey(a), 2);
  assert.ok(Object.is(instanceKey(b), 0), "-0 is 0");
  assert.equal(instanceKey({ index_key: 1.5 }), 1);
});

// Numbers a double does not write back as written, next to ones it does.
const NUMBERS = [
  "1e400",
  "-2E+999",
  "1e-400",
  "1.0",
  "-0",
  "1e2",
  "1E+2",
  "0.10",
  "0.1",
  "100",
  "-7",
  "12345678901234567890",
  "0.1000000000000000055511151231257827",
];
// Names that are special to JavaScript objects.
const KEYS = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "prototype"];

/** A state in Terraform's layout holding every number and every key, at several depths. */
function losslessText(): string {
  const numbers = NUMBERS.map((n, i) => `"n${i}": ${n}`).join(",\n");
  const keyed = (inner: string) => KEYS.map((k) => `"${k}": ${inner}`).join(",\n");
  const doc = `{
  "version": 4,
  "terraform_version": "1.9.0",
  "serial": 3,
  "lineage": "lossless",
  "outputs": {
    ${KEYS.map((k) => `"${k}": {"type": "number", "value": 1e400}`).join(",\n")},
    "numbers": {"type": ["list", "number"], "value": [${NUMBERS.join(", ")}]}
  },
  "resources": [
    {
      "mode": "managed",
      "type": "null_resource",
      "name": "a",
      "provider": ${NULL_PROVIDER},
      "instances": [
        {
          "schema_version": 0,
          "attributes": {${numbers}, ${keyed(`{${keyed("[1.0, {" + keyed("-0") + "}]")}}`)}},
          ${keyed("1e400")}
        }
      ]
    }
  ],
  ${keyed('{"__proto__": {"polluted": true}}')}
}`;
  // In Terraform's layout (two-space indent), so that a rewrite must give the same bytes.
  return layout(doc);
}

/** Re-indents JSON text without parsing its values (numbers and keys stay as written). */
function layout(text: string): string {
  let out = "";
  let depth = 0;
  let inString = false;
  const newline = () => "\n" + "  ".repeat(depth);
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i];
      else if (c === '"') inString = false;
      continue;
    }
    if (/\s/.test(c)) continue;
    if (c === '"') inString = true;
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      let j = i + 1;
      while (/\s/.test(text[j])) j++;
      if (text[j] === close) {
        out += c + close;
        i = j;
        continue;
      }
      depth++;
      out += c + newline();
    } else if (c === "}" || c === "]") {
      depth--;
      out += newline() + c;
    } else if (c === ",") out += "," + newline();
    else if (c === ":") out += ": ";
    else out += c;
  }
  return out + "\n";
}

Deno.test("serializeState writes back every number's text and every key, whatever its name, at every depth", () => {
  const text = losslessText();
  const state = parseState(text)!;
  assert.equal(serializeState(state), text);
  // Out of Terraform's order, the header is moved first; the keys named like Object's members
  // stay keys (an object rebuilt by assignment would lose "__proto__").
  const shuffled =
    `{"lineage":"l","__proto__":{"a":-0},"serial":1,"constructor":1e400,"version":4}`;
  const written = serializeState(parseState(shuffled)!);
  assert.equal(
    written,
    '{\n  "version": 4,\n  "serial": 1,\n  "lineage": "l",\n  "__proto__": {\n    "a": -0\n  },\n' +
      '  "constructor": 1e400\n}\n',
  );
  assert.equal(({} as Record<string, unknown>).polluted, undefined, "no prototype was touched");
});

Deno.test("LocalBackend and the CLI store and give back a state byte for byte: numbers and keys intact", async () => {
  const text = losslessText();
  await using dir = await tempDir();
  const backend = new LocalBackend({ path: dir.path });
  await backend.setState("default", parseState(text)!);
  assert.equal(await Deno.readTextFile(backend.statePath("default")), text);
  const read = await backend.getState("default");
  assert.equal(serializeState(read!), text);
  // A second write (the header is read from the stored bytes first) keeps them too.
  const next = parseState(text.replace('"serial": 3', '"serial": 4'))!;
  await backend.setState("default", next);
  assert.equal(
    await Deno.readTextFile(backend.statePath("default")),
    text.replace('"serial": 3', '"serial": 4'),
  );

  await using project = await cliProject();
  await Deno.writeTextFile(`${project.path}/in.tfstate`, text);
  const push = await project.run(["state", "push", "in.tfstate"]);
  assert.equal(push.code, 0, push.stderr);
  const pull = await project.run(["state", "pull"]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.equal(pull.stdout, text);
});
