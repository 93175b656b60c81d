/**
 * The contention harness, for any backend: K real processes on one workspace, with locks
 * (no update may be lost, nobody may hang) and without (every write lands or is refused
 * with `StateSerialError`, never silently overwritten).
 *
 * @module
 */

import assert from "node:assert/strict";
import { type BackendConfig, BackendFactory, createEmptyState, type GaibState } from "../../mod.ts";
import { Script, waitAll } from "./_util.ts";

const CONTENDER = new URL("./_contender.ts", import.meta.url).pathname;

/** What a contention run did. */
export interface ContentionResult {
  /** Processes. */
  processes: number;
  /** Cycles (or attempts) per process. */
  cycles: number;
  /** The final serial. */
  finalSerial: number;
  /** Wall time of the contended part, for the bench. */
  elapsedMs: number;
  /** Unlocked race: writes that landed. */
  landed?: number;
  /** Unlocked race: writes refused with StateSerialError. */
  refused?: number;
  /**
   * Unlocked race: writes that landed but are not in the stored history (overwritten by
   * another write built on the same parent, or off the chain to the stored state): lost.
   */
  lost?: number;
}

/** Options of {@linkcode lockedContention} and {@linkcode unlockedRace}. */
export interface ContentionOptions {
  /** Extra environment of the processes (such as AWS credentials). */
  env?: Record<string, string>;
  /** A hang: the run fails when the processes are not done by then. */
  deadlineMs?: number;
}

async function seed(config: BackendConfig, workspace: string, outputs: GaibState["outputs"]) {
  const backend = await BackendFactory.create(config);
  try {
    const state = { ...createEmptyState(), serial: 1, outputs };
    await backend.setState(workspace, state);
  } finally {
    await backend.close();
  }
}

async function readFinal(config: BackendConfig, workspace: string) {
  const backend = await BackendFactory.create(config);
  try {
    return {
      state: await backend.getState(workspace),
      lock: await backend.getLockInfo(workspace),
    };
  } finally {
    await backend.close();
  }
}

async function spawnAll(
  config: BackendConfig,
  workspace: string,
  processes: number,
  cycles: number,
  mode: "locked" | "unlocked",
  options: ContentionOptions,
): Promise<{ scripts: Script[]; elapsedMs: number }> {
  const goFile = await Deno.makeTempFile({ prefix: "gaib-go-" });
  await Deno.remove(goFile);
  const scripts: Script[] = [];
  for (let id = 0; id < processes; id++) {
    const args = { backend: config, workspace, id, cycles, mode, goFile };
    scripts.push(new Script(CONTENDER, [JSON.stringify(args)], options.env));
  }
  // Every process is loaded before any starts, so they really contend.
  await Promise.all(scripts.map((s) => s.until((line) => line === "ready")));
  await Deno.writeTextFile(goFile, "go");
  const started = performance.now();
  const results = await waitAll(scripts, options.deadlineMs ?? 600_000);
  const elapsedMs = performance.now() - started;
  await Deno.remove(goFile).catch(() => {});
  results.forEach(({ status, stderr }, id) => {
    assert.equal(status.code, 0, `contender ${id} failed:\n${stderr}`);
    assert.equal(scripts[id].lines.at(-1), "finished", `contender ${id} did not finish`);
  });
  return { scripts, elapsedMs };
}

/**
 * K processes x M locked read-increment-write cycles: the final serial and counter are
 * exactly K*M above the start, every serial was written exactly once, each process's tally
 * is M, and the lock is free afterwards.
 */
export async function lockedContention(
  config: BackendConfig,
  workspace: string,
  processes: number,
  cycles: number,
  options: ContentionOptions = {},
): Promise<ContentionResult> {
  await seed(config, workspace, { counter: { value: 0, type: "number" } });
  const { scripts, elapsedMs } = await spawnAll(
    config,
    workspace,
    processes,
    cycles,
    "locked",
    options,
  );
  const written: number[] = [];
  for (const script of scripts) {
    const mine = script.lines.filter((l) => l.startsWith("wrote ")).map((l) => Number(l.slice(6)));
    assert.equal(mine.length, cycles);
    written.push(...mine);
  }
  written.sort((a, b) => a - b);
  const total = processes * cycles;
  assert.deepEqual(written, Array.from({ length: total }, (_, i) => i + 2), "serials written");
  const { state, lock } = await readFinal(config, workspace);
  assert.equal(state?.serial, 1 + total);
  assert.equal(state?.outputs?.counter?.value, total);
  for (let id = 0; id < processes; id++) {
    assert.equal(state?.outputs?.[`tally_${id}`]?.value, cycles, `tally of contender ${id}`);
  }
  assert.equal(lock, null, "the lock is released");
  return { processes, cycles, finalSerial: state!.serial, elapsedMs };
}

/**
 * K processes x M unlocked read-write attempts: each attempt lands or is refused with
 * `StateSerialError`. The landed writes are counted, and so are the lost ones: a landed write
 * is kept only if it is on the one chain of writes, each built on the one before, from the
 * seed to the stored state. Asserts that every attempt landed or was refused and that the
 * stored state ends that chain; the caller asserts `lost === 0` (so a bench can print it).
 */
export async function unlockedRace(
  config: BackendConfig,
  workspace: string,
  processes: number,
  attempts: number,
  options: ContentionOptions = {},
): Promise<ContentionResult> {
  await seed(config, workspace, { token: { value: "seed", type: "string" } });
  const { scripts, elapsedMs } = await spawnAll(
    config,
    workspace,
    processes,
    attempts,
    "unlocked",
    options,
  );
  const parents = new Map<string, string>(); // landed token -> the token it was built on
  let refused = 0;
  for (const script of scripts) {
    for (const line of script.lines) {
      const [word, token, parent] = line.split(" ");
      if (word === "error") assert.fail(`an attempt failed with another error: ${line}`);
      if (word === "refused") refused++;
      if (word === "landed") parents.set(token, parent);
    }
  }
  const landed = parents.size;
  assert.equal(landed + refused, processes * attempts, "every attempt landed or was refused");
  // The history that survived: from the stored state back to the seed, parent by parent.
  const { state } = await readFinal(config, workspace);
  const tip = String(state?.outputs?.token?.value);
  const kept = new Set<string>();
  for (let token = tip; token !== "seed"; token = parents.get(token)!) {
    assert.ok(parents.has(token), `the stored state ${tip} descends from ${token}, never written`);
    assert.ok(!kept.has(token), `a cycle through ${token}`);
    kept.add(token);
  }
  assert.equal(state?.serial, 1 + kept.size, "one serial per write in the stored history");
  const lost = landed - kept.size;
  return {
    processes,
    cycles: attempts,
    finalSerial: state!.serial,
    elapsedMs,
    landed,
    refused,
    lost,
  };
}
