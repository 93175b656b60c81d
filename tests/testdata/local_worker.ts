// A separate process that uses LocalBackend, spawned by tests/local_backend_test.ts.
//   hold ROOT WS [detached]    lock, print {"lockId"} and keep running until killed
//   race ROOT WS HOLD_MS       try the lock once; print "won" (then hold it HOLD_MS) or "busy"
//   increment ROOT WS N        N locked read-increment-write cycles
import { createEmptyState, LocalBackend, StateLockError, withLock } from "../../mod.ts";

const [mode, root, workspace, arg] = Deno.args;
const backend = new LocalBackend({ path: root, leaseMs: 2_000 });

if (mode === "hold") {
  const { lockId } = await backend.lock(workspace, {
    who: `holder-${Deno.pid}`,
    operation: "apply",
    detached: arg === "detached",
  });
  console.log(JSON.stringify({ lockId }));
  setInterval(() => {}, 1 << 30); // keep running until killed
} else if (mode === "race") {
  try {
    await backend.lock(workspace, { who: `racer-${Deno.pid}` });
    console.log("won");
    await new Promise((resolve) => setTimeout(resolve, Number(arg)));
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
