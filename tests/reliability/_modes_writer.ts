/**
 * Creates every kind of file the local backend writes (states, backups, a process-bound lock
 * held open, a detached lock, the guard, the selected workspace), then prints `ready` and
 * waits to be killed, so the harness sees them while the lock is held. Run it under
 * `umask 000`: the modes must not depend on the umask.
 *
 * Usage: `_modes_writer.ts ROOT`
 *
 * @module
 */

import { createEmptyState, LocalBackend, writeSelectedWorkspace } from "../../mod.ts";
import { emit } from "./_util.ts";

const root = Deno.args[0];
const backend = new LocalBackend({ path: root });
const state = createEmptyState();
await backend.setState("default", { ...state, serial: 1 });
await backend.setState("default", { ...state, serial: 2 });
await backend.setState("staging", { ...state, serial: 1 });
await backend.lock("staging", { detached: true });
await backend.lock("default");
await writeSelectedWorkspace(root, "staging");
emit("ready");
await new Promise(() => {});
