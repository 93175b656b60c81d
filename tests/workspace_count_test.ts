import assert from "node:assert/strict";
import { createEmptyState, type GaibState } from "../mod.ts";
import { managedInstanceCount } from "../src/workspace.ts";

Deno.test("workspace delete counts each managed instance once, deposed objects with their instance", () => {
  const provider = 'provider["registry.terraform.io/x/discord"]';
  const state: GaibState = {
    ...createEmptyState(),
    resources: [
      {
        mode: "managed",
        type: "discord_role",
        name: "r",
        provider,
        instances: [
          { index_key: 0, attributes: {} },
          { index_key: 0, deposed: "00000001", attributes: {} }, // same instance, deposed
          { index_key: 1, deposed: "00000002", attributes: {} }, // only a deposed object left
          { index_key: "1", attributes: {} }, // a for_each key "1" is another instance than [1]
        ],
      },
      { mode: "data", type: "discord_guild", name: "g", provider, instances: [{ attributes: {} }] },
    ],
  };
  assert.equal(managedInstanceCount(state), 3);
  assert.equal(managedInstanceCount(null), 0);
});
