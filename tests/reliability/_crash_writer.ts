/**
 * The process the crash harness kills: it locks a workspace, reads its state, writes the next
 * version and unlocks, over and over, saying on stdout what it is about to do and what it
 * has done (written synchronously, so every line is in the pipe before a SIGKILL lands).
 *
 * Usage: `_crash_writer.ts '{"root": DIR, "workspace": NAME, "profile": "small",
 * "iterations": N}'` (no `iterations`: until killed).
 *
 * Lines: `ready`, `locked ID`, `write N`, `done N`, `unlocked`, `finished`.
 *
 * @module
 */

import { LocalBackend } from "../../mod.ts";
import { nextVersion, type Profile, template, versionOf } from "./_states.ts";
import { emit } from "./_util.ts";

const options = JSON.parse(Deno.args[0]) as {
  root: string;
  workspace: string;
  profile: Profile;
  iterations?: number;
};

const backend = new LocalBackend({ path: options.root });
const workspace = options.workspace;
emit("ready");
for (let i = 0; options.iterations === undefined || i < options.iterations; i++) {
  // timeoutMs 0: a lock left by a killed writer must be taken over at once, not waited out.
  const { lockId } = await backend.lock(workspace, { operation: "crash-test", timeoutMs: 0 });
  emit(`locked ${lockId}`);
  const stored = await backend.getState(workspace);
  const next = stored ? nextVersion(stored) : versionOf(await template(options.profile), 1);
  emit(`write ${next.serial}`);
  await backend.setState(workspace, next, { lockId });
  emit(`done ${next.serial}`);
  await backend.unlock(workspace, lockId);
  emit("unlocked");
}
await backend.close();
emit("finished");
