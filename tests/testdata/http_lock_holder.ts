/**
 * Takes a lock through an HTTP backend and holds it until killed: `deno run ...
 * http_lock_holder.ts '<HttpBackendConfig JSON>' <workspace>` prints `locked <lock id>`.
 *
 * @module
 */

import { HttpBackend } from "../../src/backends/http.ts";

const backend = new HttpBackend(JSON.parse(Deno.args[0]));
const { lockId } = await backend.lock(Deno.args[1], { who: "killed@ci", operation: "apply" });
console.log(`locked ${lockId}`);
await new Promise(() => {}); // until SIGKILL
