// A separate process that uses LocalBackend, spawned by tests/local_backend_test.ts.
//   race ROOT WS               try the lock once; print "won" (then hold it until stdin ends)
//                              or "busy"
//   increment ROOT WS N        N locked read-increment-write cycles
// (A holder that is killed or kept alive is tests/testdata/lock_holder.ts.)
import { createEmptyState, LocalBackend, StateLockError, withLock } from "../../mod.ts";

const [mode, root, workspace, arg] = Deno.args;
const backend = new LocalBackend({ path: root, leaseMs: 2_000 });

if (mode === "race") {
  try {
    await backend.lock(workspace, { who: `racer-${Deno.pid}` });
    console.log("won");
    for await (const _ of Deno.stdin.readable) {
      // held until the test ends stdin, once every racer has told its outcome
    }
  } catch (error) {
    if (!(error instanceof StateLockError)) throw error;
    console.log("busy");
  }
} else if (mode === "increment") {
  for (let i = 0; i < Number(arg); i++) {
    await withLock(backend, workspace, `inc-${Deno.pid}`, "increment", async ({ lockId }) => {
      const state = (await backend.getState(workspace)) ?? createEmptyState();
      await backend.setState(workspace, { ...state, serial: state.serial + 1 }, { lockId });
    }, { timeoutMs: 120_000 });
  }
  await backend.close();
} else {
  throw new Error(`unknown mode ${mode}`);
}
