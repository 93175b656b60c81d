/**
 * `moveStates` against the cases of Terraform's own `internal/command/state_mv_test.go`
 * (hashicorp/terraform at 883c7221): resource to instance, instance to resource, instance to
 * a new resource with a for_each key, a whole resource to an instance (refused), and the
 * dependencies Terraform drops after a move.
 *
 * @module
 */

import assert from "node:assert/strict";
import { moveStates } from "../src/_state_move.ts";
import { parseTarget } from "../src/_targets.ts";
import { createEmptyState } from "../src/state.ts";
import { StateEditError } from "../src/errors.ts";
import type { GaibState, StateResource } from "../src/types.ts";

function resource(name: string, keys: Array<number | string | undefined>): StateResource {
  return {
    mode: "managed",
    type: "test_instance",
    name,
    provider: 'provider["registry.terraform.io/hashicorp/test"]',
    instances: keys.map((k) => ({
      ...(k === undefined ? {} : { index_key: k }),
      attributes: { id: `${name}${k ?? ""}` },
    })),
  };
}

function state(...resources: StateResource[]): GaibState {
  return { ...createEmptyState(), resources };
}

function mv(s: GaibState, ...args: string[]) {
  const pairs = [];
  for (let i = 0; i < args.length; i += 2) {
    pairs.push({ source: parseTarget(args[i]), dest: parseTarget(args[i + 1]) });
  }
  return moveStates(s, null, pairs);
}

function addresses(s: GaibState): string[] {
  return s.resources!.flatMap((r) =>
    r.instances.map((i) =>
      `${r.name}${i.index_key === undefined ? "" : `[${JSON.stringify(i.index_key)}]`}`
    )
  );
}

Deno.test("moveStates moves a resource without count to an instance key (TestStateMv_resourceToInstance)", () => {
  const { from } = mv(
    state(resource("foo", [undefined]), resource("baz", [undefined])),
    "test_instance.foo",
    "test_instance.bar[0]",
  );
  assert.deepEqual(addresses(from), ["bar[0]", "baz"]);
  assert.equal(from.resources![1].provider, 'provider["registry.terraform.io/hashicorp/test"]');
});

Deno.test("moveStates moves an instance to a resource without key (TestStateMv_instanceToResource)", () => {
  const { from } = mv(
    state(resource("foo", [0]), resource("baz", [undefined])),
    "test_instance.foo[0]",
    "test_instance.bar",
  );
  assert.deepEqual(addresses(from), ["bar", "baz"]);
});

Deno.test("moveStates moves a count instance to a for_each key of a new resource (TestStateMv_instanceToNewResource)", () => {
  const { from } = mv(
    state(resource("foo", [0])),
    "test_instance.foo[0]",
    'test_instance.bar["new"]',
  );
  assert.deepEqual(addresses(from), ['bar["new"]']);
});

Deno.test("moveStates refuses a whole keyed resource to an instance (TestStateMv_resourceToInstanceErr)", () => {
  assert.throws(
    () => mv(state(resource("foo", [0, 1])), "test_instance.foo", "test_instance.bar[0]"),
    (e) =>
      e instanceof StateEditError && e.problem === "InvalidMove" &&
      /whole resource/.test(e.message),
  );
});

Deno.test("moveStates turns count into for_each in pairs, and reports a half-done resource", () => {
  const start = state(resource("c", [0, 1]));
  const both = mv(
    start,
    "test_instance.c[0]",
    'test_instance.c["a"]',
    "test_instance.c[1]",
    'test_instance.c["b"]',
  );
  assert.deepEqual(addresses(both.from), ['c["a"]', 'c["b"]']);
  assert.deepEqual(both.mixedKeys, []);
  const half = mv(start, "test_instance.c[0]", 'test_instance.c["a"]');
  assert.deepEqual(half.mixedKeys, ["test_instance.c"]);
  assert.deepEqual(addresses(start), ["c[0]", "c[1]"], "the input is not changed");
  assert.throws(
    () => mv(start, "test_instance.c[0]", "test_instance.c[1]"),
    (e) => e instanceof StateEditError && e.problem === "DestinationExists",
  );
});

Deno.test("moveStates drops the dependencies that named what moved, as Terraform does", () => {
  const dependent = resource("dep", [undefined]);
  dependent.instances[0].dependencies = ["test_instance.foo"];
  const other = resource("other", [undefined]);
  other.instances[0].dependencies = ["test_instance.baz"];
  const result = mv(
    state(resource("foo", [undefined]), dependent, other),
    "test_instance.foo",
    "test_instance.bar",
  );
  assert.equal(result.from.resources![1].instances[0].dependencies, undefined);
  assert.deepEqual(result.from.resources![2].instances[0].dependencies, ["test_instance.baz"]);
  assert.deepEqual(result.droppedDependencies, ["test_instance.dep"]);
});

Deno.test("moveStates moves into another state, leaving both inputs unchanged", () => {
  const from = state(resource("foo", [0, 1]), resource("keep", [undefined]));
  const to = state(resource("there", [undefined]));
  const result = moveStates(from, to, [{
    source: parseTarget("test_instance.foo"),
    dest: parseTarget("test_instance.foo"),
  }]);
  assert.deepEqual(addresses(result.from), ["keep"]);
  assert.deepEqual(addresses(result.to!), ["there", "foo[0]", "foo[1]"]);
  assert.deepEqual(addresses(from), ["foo[0]", "foo[1]", "keep"]);
  assert.throws(
    () =>
      moveStates(from, to, [{
        source: parseTarget("test_instance.keep"),
        dest: parseTarget("test_instance.there"),
      }]),
    (e) => e instanceof StateEditError && e.problem === "DestinationExists",
  );
});
