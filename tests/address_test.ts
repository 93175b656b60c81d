import assert from "node:assert/strict";
import {
  formatInstanceAddress,
  formatKey,
  instanceKey,
  isProviderAddress,
  parseInstanceAddress,
  parseModuleAddress,
  resourceAddress,
} from "../mod.ts";

Deno.test("instance addresses round-trip through parse and format", async (t) => {
  const cases = [
    "discord_role.admin",
    "discord_channel.general[0]",
    'module.app["web"].discord_channel.general[0]',
    'module.m["a.b"].module.inner[3].null_resource.x["with space"]',
    "data.discord_guild.main",
    'module.x["quote\\"inside"].t.n["tab\\tkey"]',
    'null_resource.x["ünïcødé"]',
    'null_resource.x["bracket]x"]',
    'null_resource.x[""]',
  ];
  for (const text of cases) {
    await t.step(text, () => assert.equal(formatInstanceAddress(parseInstanceAddress(text)), text));
  }
});

Deno.test("parseInstanceAddress refuses malformed addresses with the position", () => {
  for (const text of ["", "foo", "foo.", "module.x", "a.b[", 'a.b["x]', "a.b[x]", "a.b.c"]) {
    assert.throws(() => parseInstanceAddress(text), SyntaxError, text);
  }
  assert.throws(() => parseInstanceAddress("a.b[x]"), /at character 5/);
});

Deno.test("formatKey escapes like Terraform", () => {
  assert.equal(formatKey(3), "[3]");
  assert.equal(formatKey('a"b\\c\nd'), '["a\\"b\\\\c\\nd"]');
  assert.equal(formatKey("${x}"), '["$${x}"]');
});

Deno.test("parseModuleAddress reads keyed and nested module paths", () => {
  assert.deepStrictEqual(parseModuleAddress(""), []);
  assert.deepStrictEqual(parseModuleAddress('module.a["x"].module.b[2]'), [
    { name: "a", key: "x" },
    { name: "b", key: 2 },
  ]);
  assert.throws(() => parseModuleAddress("module.a."), SyntaxError);
  assert.throws(() => parseModuleAddress("modul.a"), SyntaxError);
});

Deno.test("isProviderAddress accepts current, legacy and OpenTofu keyed forms only", () => {
  for (
    const ok of [
      'provider["registry.terraform.io/hashicorp/aws"]',
      'provider["registry.terraform.io/hashicorp/aws"].west',
      'provider["registry.opentofu.org/hashicorp/aws"].by_region["eu-west-1"]',
      "provider.null",
      "provider.aws.east",
      'module.child.provider["registry.terraform.io/hashicorp/aws"]',
    ]
  ) assert.ok(isProviderAddress(ok), ok);
  for (const bad of ["this is not a provider address", "provider", 'provider["a b"]', "aws"]) {
    assert.ok(!isProviderAddress(bad), bad);
  }
});

Deno.test("instanceKey treats a null index_key as no key, and resourceAddress parses the module", () => {
  assert.equal(instanceKey({ index_key: null }), undefined);
  assert.equal(instanceKey({}), undefined);
  assert.equal(instanceKey({ index_key: 0 }), 0);
  assert.equal(instanceKey({ index_key: "a" }), "a");
  const address = resourceAddress({ module: "module.a[1]", mode: "data", type: "t", name: "n" });
  assert.equal(formatInstanceAddress({ ...address, key: "k" }), 'module.a[1].data.t.n["k"]');
  assert.throws(() =>
    resourceAddress({ module: "modul.x", mode: "managed", type: "t", name: "n" })
  );
});

Deno.test("addresses are read with HCL's traversal syntax, as Terraform reads them", async (t) => {
  const cases: Array<[string, ReturnType<typeof parseInstanceAddress>]> = [
    [
      'module . app [ "web" ] . t . n [ 0 ]',
      { module: [{ name: "app", key: "web" }], mode: "managed", type: "t", name: "n", key: 0 },
    ],
    ["t.n # a comment", { module: [], mode: "managed", type: "t", name: "n" }],
    ["data.t /* inline */ .n[1e1]", { module: [], mode: "data", type: "t", name: "n", key: 10 }],
    ["module.ünï[2].t.n", {
      module: [{ name: "ünï", key: 2 }],
      mode: "managed",
      type: "t",
      name: "n",
    }],
    ['t.n["$${x}"]', { module: [], mode: "managed", type: "t", name: "n", key: "${x}" }],
    ['t.n["\\u00e9\\U0001F600"]', {
      module: [],
      mode: "managed",
      type: "t",
      name: "n",
      key: "é😀",
    }],
  ];
  for (const [text, expected] of cases) {
    await t.step(text, () => assert.deepStrictEqual(parseInstanceAddress(text), expected));
  }
  for (
    const bad of [
      "module.a[1.5].t.n",
      "t.n[-1]",
      't.n["${x}"]',
      "t.n[*]",
      "t.*",
      "ephemeral.t.n",
      't.n["a\nb"]',
      't.n["\\q"]',
      't.n["\\ud800"]',
      "t.n /* open",
    ]
  ) {
    await t.step(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseInstanceAddress(bad), SyntaxError);
    });
  }
});

Deno.test("isProviderAddress reads legacy addresses with spaces, as OpenTofu's round-trip data has them", () => {
  for (
    const ok of [
      "provider. null",
      "provider . null . alias",
      "module.m.provider.null",
      'provider [ "hashicorp/null" ]',
      'provider["Registry.Terraform.IO/HashiCorp/Null"]',
      'provider["registry.terraform.io/-/null"]',
      'provider["example.com:8443/acme/widget"]',
    ]
  ) assert.ok(isProviderAddress(ok), ok);
  for (
    const bad of [
      "provider.",
      'module.m[0].provider["hashicorp/null"]',
      'provider["example.com/-/null"]',
      'provider["a.com/b/c/d"]',
      'provider["hashicorp/terraform-provider-null"]',
      'provider["hashicorp/null"].a.b',
      'provider["hashi--corp/null"]',
      'provider["hashicorp/nu_ll"]',
    ]
  ) assert.ok(!isProviderAddress(bad), bad);
});

Deno.test("instanceKey truncates a numeric key as Terraform's int() does, also one kept as text", () => {
  assert.equal(instanceKey({ index_key: 1.5 }), 1);
  assert.ok(Object.is(instanceKey({ index_key: -0 }), 0));
  const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;
  assert.equal(instanceKey({ index_key: rawJSON("2.0") }), 2);
  assert.equal(instanceKey({ index_key: rawJSON("1e2") }), 100);
});
