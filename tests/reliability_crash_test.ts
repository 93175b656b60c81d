/**
 * Crash consistency of the local backend: a writer process is killed with SIGKILL at random
 * instants, again and again on the same state root. After every kill the state must be
 * exactly one of the versions the writer wrote (the last one it finished or the one it was
 * writing), the backup the version before it (or the same), and the next writer must take
 * the dead holder's lock over and write without any manual repair; orphaned temp files must
 * be cleaned by later writes.
 *
 * Sizes: `GAIB_RELIABILITY=full` kills 120 small (4 KB), 60 medium (1 MB) and 20 huge
 * (45 MB) writers; the quick run 30, 18 and 2.
 *
 * @module
 */

import assert from "node:assert/strict";
import { LocalBackend } from "../mod.ts";
import type { GaibState } from "../mod.ts";
import { type Profile, template, versionOf, versionText } from "./reliability/_states.ts";
import { LARGE_FIXTURE, sharedCorpusTest } from "./corpus/fixtures.ts";
import { Script, sizes, tempDir } from "./reliability/_util.ts";

const WRITER = new URL("./reliability/_crash_writer.ts", import.meta.url).pathname;
const SIZES = sizes();

/** Serial of a state file, read from its header (the file is compared in full afterwards). */
function headerSerial(text: string): number {
  const match =
    /^\{\n {2}"version": 4,\n(?: {2}"terraform_version": "[^"]*",\n)? {2}"serial": (\d+),/
      .exec(text);
  assert.ok(match, `not a state this suite wrote: ${JSON.stringify(text.slice(0, 120))}`);
  return Number(match[1]);
}

/** Where the writer was when it died, by the last line it printed. */
const PHASES: Record<string, string> = {
  ready: "before locking",
  locked: "holding the lock, reading",
  write: "inside setState",
  done: "after setState, before unlocking",
  unlocked: "after unlocking",
};

/**
 * Polls `dir` until a new file named `prefix...` (not one of `known`) exists (true) or `ms`
 * pass (false).
 */
async function tempFileAppears(
  dir: string,
  prefix: string,
  ms: number,
  known: string[],
): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.name.startsWith(prefix) && !known.includes(path)) return true;
    }
    await sleep(1);
  }
  return false;
}

/** The first bytes of a file: enough for `headerSerial`. */
async function readHead(path: string): Promise<string> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(512);
  const n = (await file.read(buffer)) ?? 0;
  return new TextDecoder().decode(buffer.subarray(0, n));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface CrashStats {
  kills: number;
  byPhase: Record<string, number>;
  lockTakeovers: number;
  orphansCleaned: number;
  backupEqualsState: number;
  killedWithTempFile: number;
}

async function crashRun(profile: Profile, kills: number, workspace: string): Promise<CrashStats> {
  await using dir = await tempDir();
  const root = dir.path;
  const wsDir = `${root}/workspaces/${workspace}`;
  const statePath = `${wsDir}/terraform.tfstate`;
  const backupPath = `${wsDir}/terraform.tfstate.backup`;
  const lockPath = `${wsDir}/.terraform.tfstate.lock.info`;
  const base: GaibState = await template(profile);
  const texts = new Map<number, string>();
  const expected = (n: number): string => {
    let text = texts.get(n);
    if (text === undefined) {
      if (texts.size >= 4) texts.delete(texts.keys().next().value!);
      text = versionText(base, n);
      texts.set(n, text);
    }
    return text;
  };
  const writerArgs = (iterations?: number) => [
    JSON.stringify({ root, workspace, profile, iterations }),
  ];

  // Calibration: a writer that finishes, to learn how long one cycle takes here.
  const calibration = new Script(WRITER, writerArgs(2));
  await calibration.until((line) => line === "ready");
  const started = performance.now();
  const calibrated = await calibration.finished;
  assert.equal(calibrated.status.code, 0, calibrated.stderr);
  const cycleMs = (performance.now() - started) / 2;
  const at = (word: string) =>
    calibration.times.filter((_, i) => calibration.lines[i].startsWith(word));
  const [writes, dones] = [at("write "), at("done ")];
  const writeMs = dones.reduce((sum, t, i) => sum + t - writes[i], 0) / dones.length;

  let lastDone = 2; // highest version a writer reported as written
  let lastWrite = 2; // highest version a writer started writing
  let survived = 2; // the version found after the last kill
  const stats: CrashStats = {
    kills: 0,
    byPhase: {},
    lockTakeovers: 0,
    orphansCleaned: 0,
    backupEqualsState: 0,
    killedWithTempFile: 0,
  };
  let agedOrphans: string[] = [];
  const reader = new LocalBackend({ path: root });
  try {
    for (let k = 0; k < kills; k++) {
      const lockLeft = await Deno.stat(lockPath).then(() => true, () => false);
      const writer = new Script(WRITER, writerArgs());
      await writer.until((line) => line === "ready");
      if (k % 3 === 0) {
        // Any instant of the lock-read-write-unlock cycle.
        await sleep(Math.random() * cycleMs * 2.5);
      } else if (k % 3 === 1) {
        // An instant inside setState: serializing, writing the temp file, backup, rename.
        await writer.until((line) => line.startsWith("write "));
        await sleep(Math.random() * writeMs * 1.2);
      } else {
        // While the new state's temp file exists: being written, synced or renamed.
        await writer.until((line) => line.startsWith("write "));
        const seen = await tempFileAppears(wsDir, ".tmp-state-", writeMs * 2, agedOrphans);
        if (seen) stats.killedWithTempFile++;
        await sleep(Math.random() * 5);
      }
      const { status, stderr } = await writer.kill();
      assert.equal(
        status.signal,
        "SIGKILL",
        `kill ${k}: the writer stopped by itself (code ${status.code}):\n${stderr}`,
      );
      stats.kills++;
      const phase = PHASES[writer.lines.at(-1)!.split(" ")[0]];
      stats.byPhase[phase] = (stats.byPhase[phase] ?? 0) + 1;

      let wroteAny = false;
      let firstWrite: number | undefined;
      for (const line of writer.lines) {
        const [word, value] = line.split(" ");
        if (word === "locked" && lockLeft && !wroteAny) stats.lockTakeovers++;
        if (word === "write") {
          firstWrite ??= Number(value);
          lastWrite = Math.max(lastWrite, Number(value));
        }
        if (word === "done") {
          wroteAny = true;
          lastDone = Math.max(lastDone, Number(value));
        }
      }
      if (firstWrite !== undefined) {
        // The writer read exactly the version the previous kill left.
        assert.equal(firstWrite, survived + 1, `kill ${k}: the writer read a stale state`);
      }

      // The state is complete and is the version finished last or the one being written.
      const stateText = await Deno.readTextFile(statePath);
      const serial = headerSerial(stateText);
      assert.ok(
        serial >= lastDone && serial <= lastWrite,
        `kill ${k}: serial ${serial}, expected ${lastDone}..${lastWrite}`,
      );
      assert.ok(stateText === expected(serial), `kill ${k}: the state is not version ${serial}`);
      const parsed = await reader.getState(workspace);
      assert.equal(parsed?.serial, serial);
      // The backup is the version before it (or the same one, when the kill fell between
      // making the backup and renaming the new state into place).
      const backupText = await Deno.readTextFile(backupPath);
      const backupSerial = headerSerial(backupText);
      assert.ok(
        backupSerial === serial - 1 || backupSerial === serial,
        `kill ${k}: backup serial ${backupSerial} next to state serial ${serial}`,
      );
      assert.ok(
        backupText === expected(backupSerial),
        `kill ${k}: the backup is not version ${backupSerial}`,
      );
      if (backupSerial === serial) stats.backupEqualsState++;
      // The history holds only versions that landed, each whole: the newest entry is the
      // state (or the one before, when the kill fell between the rename and the link), and
      // serials fall one by one from there; older entries were the newest once, and checked.
      const entries = (await Array.fromAsync(Deno.readDir(`${wsDir}/history`)))
        .map((e) => e.name).filter((n) => !n.startsWith(".tmp-")).sort().reverse();
      const entrySerials: number[] = [];
      for (const name of entries) {
        entrySerials.push(headerSerial(await readHead(`${wsDir}/history/${name}`)));
      }
      assert.ok(
        entries.length >= 1 && entries.length <= 11,
        `kill ${k}: ${entries.length} entries`,
      );
      assert.ok(
        entrySerials[0] === serial || entrySerials[0] === serial - 1,
        `kill ${k}: newest history entry ${entrySerials[0]} next to state serial ${serial}`,
      );
      // Consecutive: a version a kill left out is added by the next write.
      assert.deepEqual(entrySerials, entrySerials.map((_, i) => entrySerials[0] - i));
      assert.ok(
        (await Deno.readTextFile(`${wsDir}/history/${entries[0]}`)) === expected(entrySerials[0]),
        `kill ${k}: the newest history entry is not version ${entrySerials[0]}`,
      );
      survived = serial;
      lastDone = serial;
      lastWrite = serial;

      // Temp files aged by the previous round are gone once a write has succeeded since.
      if (wroteAny) {
        for (const path of agedOrphans) {
          const left = await Deno.stat(path).then(() => true, () => false);
          assert.ok(!left, `kill ${k}: orphaned temp file ${path} survived a later write`);
          stats.orphansCleaned++;
        }
        agedOrphans = [];
      }
      // Orphans of this kill: make them old enough to count as orphans (the backend never
      // removes a temp file younger than 10 s, which another writer may still be filling).
      const old = new Date(Date.now() - 60_000);
      for await (const entry of Deno.readDir(wsDir)) {
        if (!entry.name.startsWith(".tmp-")) continue;
        const path = `${wsDir}/${entry.name}`;
        await Deno.utime(path, old, old).catch(() => {});
        if (!agedOrphans.includes(path)) agedOrphans.push(path);
      }
    }

    // The next run after all those kills works without help and leaves a clean directory.
    const lockLeft = await Deno.stat(lockPath).then(() => true, () => false);
    const last = new Script(WRITER, writerArgs(3));
    const finished = await last.finished;
    assert.equal(finished.status.code, 0, finished.stderr);
    if (lockLeft) stats.lockTakeovers++;
    stats.orphansCleaned += agedOrphans.length;
    const final = await reader.getState(workspace);
    assert.equal(final?.serial, survived + 3);
    assert.ok(
      (await Deno.readTextFile(statePath)) === expected(survived + 3),
      "the final state is not the version written last",
    );
    const names = (await Array.fromAsync(Deno.readDir(wsDir))).map((e) => e.name).sort();
    assert.deepEqual(names, [".guard", "history", "terraform.tfstate", "terraform.tfstate.backup"]);
    const history = await reader.listVersions(workspace);
    assert.equal(history[0].serial, survived + 3);
    assert.ok(history.length <= 11, "pruned to the current version and 10 earlier ones");
  } finally {
    await reader.close();
  }
  return stats;
}

function report(profile: string, stats: CrashStats): void {
  console.log(
    `crash ${profile}: ${stats.kills} kills survived; killed after ${
      Object.entries(stats.byPhase).map(([p, n]) => `${p}: ${n}`).join(", ")
    }; ${stats.lockTakeovers} dead holders' locks taken over; ${stats.orphansCleaned} orphaned ` +
      `temp files cleaned; backup equal to state after ${stats.backupEqualsState} kills; ` +
      `${stats.killedWithTempFile} kills aimed at a live temp file`,
  );
}

const OPTIONS = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: `LocalBackend survives ${SIZES.kills.small} SIGKILLs of a writer of 4 KB states ` +
    "with a complete state and backup, and the next writer needs no repair",
  ...OPTIONS,
  async fn() {
    report("small", await crashRun("small", SIZES.kills.small, "default"));
  },
});

Deno.test({
  name: `LocalBackend survives ${SIZES.kills.medium} SIGKILLs of a writer of 1 MB states ` +
    "in a named workspace with a complete state and backup",
  ...OPTIONS,
  async fn() {
    report("medium", await crashRun("medium", SIZES.kills.medium, "crash-medium"));
  },
});

// The 45 MB state is in the shared corpus only (too big to copy into the package).
sharedCorpusTest(
  `LocalBackend survives ${SIZES.kills.huge} SIGKILLs of a writer of the 45 MB state ` +
    "with a complete state and backup",
  LARGE_FIXTURE,
  async () => {
    report("huge", await crashRun("huge", SIZES.kills.huge, "default"));
  },
  OPTIONS,
);

Deno.test({
  name: "LocalBackend leaves no temp file behind when a crash left the backup as a second name " +
    "of the state",
  ...OPTIONS,
  async fn() {
    await using dir = await tempDir();
    const backend = new LocalBackend({ path: dir.path });
    try {
      const base = await template("small");
      await backend.setState("default", versionOf(base, 1));
      await backend.setState("default", versionOf(base, 2));
      // What a writer killed after making the backup, before renaming its state, leaves.
      const wsDir = `${dir.path}/workspaces/default`;
      await Deno.remove(`${wsDir}/terraform.tfstate.backup`);
      await Deno.link(`${wsDir}/terraform.tfstate`, `${wsDir}/terraform.tfstate.backup`);
      await backend.setState("default", versionOf(base, 3));
      const names = (await Array.fromAsync(Deno.readDir(wsDir))).map((e) => e.name).sort();
      assert.deepEqual(names, [
        ".guard",
        "history",
        "terraform.tfstate",
        "terraform.tfstate.backup",
      ]);
      assert.ok(
        (await Deno.readTextFile(`${wsDir}/terraform.tfstate.backup`)) === versionText(base, 2),
      );
    } finally {
      await backend.close();
    }
  },
});
