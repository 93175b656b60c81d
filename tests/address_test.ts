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
