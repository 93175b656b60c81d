/**
 * The pure state edits behind `taint`/`untaint`, `state replace-provider` and `output`:
 * deposed objects left alone, per-instance providers (OpenTofu 1.9+) rewritten, sensitive
 * values withheld unless named.
 *
 * @module
 */

import assert from "node:assert/strict";
import { setTainted } from "../src/_taint.ts";
import { replaceProvider } from "../src/_provider_replace.ts";
import { viewOutputs } from "../src/_outputs.ts";
import { parseTarget } from "../src/_targets.ts";
import { createEmptyState } from "../src/state.ts";
import { StateEditError } from "../src/errors.ts";
import type { GaibState } from "../src/types.ts";

const TOFU = "registry.opentofu.org/gaib/discord";

function withDeposed(): GaibState {
  return {
    ...createEmptyState(),
    resources: [{
      mode: "managed",
      type: "discord_role",
      name: "r",
      provider: `provider["registry.terraform.io/gaib/discord"]`,
      instances: [
        { index_key: "a", attributes: { id: "1" } },
        { index_key: "a", deposed: "00000001", attributes: { id: "0" } },
        { index_key: "b", deposed: "00000002", attributes: { id: "2" } },
      ],
    }],
  };
}

Deno.test("setTainted marks the current object only and leaves deposed objects alone", () => {
  const state = withDeposed();
  const { state: next, changed } = setTainted(state, parseTarget('discord_role.r["a"]'), true);
  assert.equal(changed, true);
  const [current, deposed, other] = next.resources![0].instances;
  assert.equal(current.status, "tainted");
  assert.equal(deposed.status, undefined);
  assert.equal(other.status, undefined);
  assert.equal(state.resources![0].instances[0].status, undefined, "input unchanged");
  assert.equal(setTainted(next, parseTarget('discord_role.r["a"]'), true).changed, false);
  const back = setTainted(next, parseTarget('discord_role.r["a"]'), false).state;
  assert.equal("status" in back.resources![0].instances[0], false);
});

Deno.test("setTainted refuses an instance with only deposed objects, a missing one and a data source", () => {
  const state = withDeposed();
  const refuses = (address: string, problem: string, pattern: RegExp) =>
    assert.throws(
      () => setTainted(state, parseTarget(address), true),
      (e) => e instanceof StateEditError && e.problem === problem && pattern.test(e.message),
    );
  refuses('discord_role.r["b"]', "NoMatch", /create_before_destroy/);
  refuses('discord_role.r["c"]', "NoMatch", /no resource instance/);
  refuses("discord_role.r", "NoMatch", /no resource instance/);
  refuses("data.discord_guild.g", "InvalidAddress", /data source/);
  refuses("module.m", "InvalidAddress", /is a module/);
});

Deno.test("replaceProvider rewrites resource and per-instance providers, keeping module, alias and key", () => {
  const state: GaibState = {
    ...createEmptyState(),
    resources: [
      {
        module: "module.guilds",
        mode: "managed",
        type: "discord_role",
        name: "r",
        provider: `module.guilds.provider["${TOFU}"].by_guild`,
        instances: [
          { index_key: "eu", provider: `module.guilds.provider["${TOFU}"].by_guild["eu"]` },
          { index_key: "us", provider: `module.guilds.provider["${TOFU}"].by_guild["us"]` },
        ],
      },
      {
        mode: "managed",
        type: "other_thing",
        name: "x",
        provider: 'provider["registry.terraform.io/hashicorp/other"]',
        instances: [{}],
      },
    ],
  };
  const { state: next, changes } = replaceProvider(state, "gaib/discord", "acme/discord");
  const [r, x] = next.resources!;
  assert.equal(r.provider, 'module.guilds.provider["registry.opentofu.org/acme/discord"].by_guild');
  assert.equal(
    r.instances[1].provider,
    'module.guilds.provider["registry.opentofu.org/acme/discord"].by_guild["us"]',
  );
  assert.equal(x.provider, 'provider["registry.terraform.io/hashicorp/other"]');
  assert.deepEqual(changes.map((c) => [c.address, c.level]), [
    ["module.guilds.discord_role.r", "resource"],
    ['module.guilds.discord_role.r["eu"]', "instance"],
    ['module.guilds.discord_role.r["us"]', "instance"],
  ]);
  // An explicit host matches only that host, and TO's host is used.
  const none = replaceProvider(state, "registry.terraform.io/gaib/discord", "acme/discord");
  assert.equal(none.changes.length, 0);
  const moved = replaceProvider(state, TOFU, "registry.terraform.io/gaib/discord");
  assert.equal(
    moved.state.resources![0].provider,
    'module.guilds.provider["registry.terraform.io/gaib/discord"].by_guild',
  );
});

Deno.test("replaceProvider upgrades legacy addresses and refuses bad sources", () => {
  const state: GaibState = {
    ...createEmptyState(),
    resources: [{
      mode: "managed",
      type: "discord_role",
      name: "r",
      provider: "provider.discord.eu",
      instances: [{}],
    }],
  };
  const { state: next } = replaceProvider(state, "-/discord", "registry.terraform.io/gaib/discord");
  assert.equal(next.resources![0].provider, 'provider["registry.terraform.io/gaib/discord"].eu');
  for (
    const [from, to] of [["not a source", "gaib/discord"], ["gaib/discord", "-/discord"], [
      "gaib/discord",
      "gaib/discord",
    ]]
  ) {
    assert.throws(
      () => replaceProvider(state, from, to),
      (e) => e instanceof StateEditError && e.problem === "InvalidProvider",
    );
  }
});

Deno.test("viewOutputs withholds sensitive values unless the output is named", () => {
  const state: GaibState = {
    ...createEmptyState(),
    outputs: {
      token: { value: "s3cret", type: "string", sensitive: true },
      id: { value: "1", type: "string" },
    },
  };
  assert.deepEqual(viewOutputs(state).map((v) => [v.name, v.shown, v.value]), [
    ["id", true, "1"],
    ["token", false, undefined],
  ]);
  assert.equal(JSON.stringify(viewOutputs(state)).includes("s3cret"), false);
  assert.equal(viewOutputs(state, "token")[0].value, "s3cret");
  assert.throws(() => viewOutputs(state, "__proto__"), StateEditError);
  assert.deepEqual(viewOutputs(null), []);
});
