/**
 * One of K processes contending for a workspace.
 *
 * - `locked`: M cycles of lock, read, increment, write, unlock. Each cycle raises the serial
 *   and the `counter` output by one and this process's `tally_<id>` output by one.
 * - `unlocked`: M attempts of read, write the next version, without any lock. Each version
 *   carries a unique `token` and the `parent` token of the state it was built from, so the
 *   harness can rebuild the chain of landed writes and prove none was silently overwritten.
 *
 * Usage: `_contender.ts '{"backend": BackendConfig, "workspace": NAME, "id": N,
 * "cycles": M, "mode": "locked" | "unlocked", "lockTimeoutMs": MS, "goFile": PATH}'`
 *
 * Lines: `ready`, then per cycle `wrote SERIAL` (locked) or `landed TOKEN PARENT SERIAL` /
 * `refused TOKEN StateSerialError` / `error TOKEN NAME MESSAGE` (unlocked), then `finished`.
 *
 * @module
 */

import {
  type BackendConfig,
  BackendFactory,
  type GaibState,
  StateSerialError,
  withLock,
} from "../../mod.ts";
import { emit } from "./_util.ts";

const options = JSON.parse(Deno.args[0]) as {
  backend: BackendConfig;
  workspace: string;
  id: number;
  cycles: number;
  mode: "locked" | "unlocked";
  lockTimeoutMs?: number;
  /** Start once this file exists, so that every contender starts at the same moment. */
  goFile?: string;
};

const { workspace, id } = options;
const backend = await BackendFactory.create(options.backend);

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function numberOutput(state: GaibState, name: string): number {
  const value = state.outputs?.[name]?.value;
  return typeof value === "number" ? value : 0;
}

try {
  emit("ready");
  while (options.goFile && !(await exists(options.goFile))) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  for (let i = 0; i < options.cycles; i++) {
    if (options.mode === "locked") {
      const serial = await withLock(backend, workspace, `contender-${id}`, "contend", async ({
        lockId,
      }) => {
        const state = await backend.getState(workspace);
        if (!state) throw new Error("the harness creates the state before the contenders run");
        const tally = `tally_${id}`;
        const next: GaibState = {
          ...state,
          serial: state.serial + 1,
          outputs: {
            ...state.outputs,
            counter: { value: numberOutput(state, "counter") + 1, type: "number" },
            [tally]: { value: numberOutput(state, tally) + 1, type: "number" },
          },
        };
        await backend.setState(workspace, next, { lockId });
        return next.serial;
      }, { timeoutMs: options.lockTimeoutMs ?? 300_000 });
      emit(`wrote ${serial}`);
    } else {
      const token = `p${id}-a${i}`;
      const state = await backend.getState(workspace);
      if (!state) throw new Error("the harness creates the state before the contenders run");
      const parent = String(state.outputs?.token?.value ?? "");
      const next: GaibState = {
        ...state,
        serial: state.serial + 1,
        outputs: {
          ...state.outputs,
          token: { value: token, type: "string" },
          parent: { value: parent, type: "string" },
        },
      };
      try {
        await backend.setState(workspace, next);
        emit(`landed ${token} ${parent} ${next.serial}`);
      } catch (error) {
        if (error instanceof StateSerialError) emit(`refused ${token} StateSerialError`);
        else {
          const e = error as Error;
          emit(`error ${token} ${e.name} ${JSON.stringify(e.message)}`);
        }
      }
    }
  }
} finally {
  await backend.close();
}
emit("finished");
