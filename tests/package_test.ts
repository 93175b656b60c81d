import assert from "node:assert/strict";
import * as mod from "../mod.ts";
import { VERSION } from "../src/version.ts";

Deno.test("the library version matches deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.equal(VERSION, config.version);
  assert.equal(config.name, "@gaib/state");
  assert.deepStrictEqual(Object.keys(config.exports).sort(), [".", "./cli", "./s3"]);
});

Deno.test("mod.ts exports the public API by its fixed names", () => {
  const names = [
    "createEmptyState",
    "generateLineage",
    "generateLockId",
    "isValidState",
    "isValidBackendConfig",
    "parseState",
    "serializeState",
    "withBackend",
    "withLock",
    "BackendError",
    "StateLockError",
    "StateLineageError",
    "StateSerialError",
    "BackendConfigError",
    "StateFormatError",
    "LocalBackend",
    "BackendFactory",
    "LocalBackendSchema",
    "S3BackendSchema",
    "BackendSchema",
    "DiscordConfigSchema",
    "OutputSchema",
    "GaibConfigSchema",
    "parseGaibConfig",
    "safeParseGaibConfig",
  ];
  for (const name of names) assert.ok(name in mod, `mod.ts exports ${name}`);
  for (const error of ["StateLockError", "StateLineageError", "StateSerialError"] as const) {
    assert.ok(new mod[error]("x") instanceof mod.BackendError);
  }
  const cause = new Error("root");
  assert.equal(new mod.StateFormatError("x", { cause }).cause, cause);
});

Deno.test("the cli task runs cli.ts with exactly the compiled binary's permissions", async () => {
  const { tasks } = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const compileFlags = tasks.compile.replace(
    "deno compile $COMPILE_FLAGS --output gaib-state ",
    "",
  );
  assert.equal(tasks.cli, `deno run ${compileFlags}`);
});
