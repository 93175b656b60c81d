/**
 * Large-state and lock benchmarks of the local backend, each beside its floor, in one run:
 *
 *   deno run --allow-all bench/state_bench.ts [--rounds N]
 *
 * - read+write: `getState` + `setState` of the 45 MB `large-20k.tfstate` against the floor
 *   (read, JSON.parse, JSON.stringify, write, fsync, rename of the same bytes), alternating,
 *   median of N rounds; goal: at most 1.5x;
 * - lock + unlock cycles per second on one workspace;
 * - peak memory (VmHWM) of a fresh process doing one read+write, against the floor's.
 *
 * @module
 */

import { LocalBackend } from "../src/backends/local.ts";
import { writeAll } from "../src/backends/_fs.ts";
import { LARGE_FIXTURE } from "../tests/corpus/fixtures.ts";

/** Decompresses the fixture into `dir/terraform.tfstate`. */
export async function unpackLargeState(path: string): Promise<void> {
  const source = await Deno.open(LARGE_FIXTURE).catch((error) => {
    throw new Error(
      `The 45 MB state is in the shared corpus, and ${LARGE_FIXTURE} is missing: put the ` +
        "shared directory (with fixtures/tfstate) beside the repository.",
      { cause: error },
    );
  });
  const target = await Deno.open(path, { write: true, create: true, truncate: true });
  await source.readable.pipeThrough(new DecompressionStream("gzip")).pipeTo(target.writable);
}

/** The floor: what any correct implementation must at least do. */
export async function floorCycle(dir: string): Promise<void> {
  const path = `${dir}/floor.tfstate`;
  const doc = JSON.parse(new TextDecoder().decode(await Deno.readFile(path)));
  const bytes = new TextEncoder().encode(JSON.stringify(doc, null, 2) + "\n");
  const temp = `${path}.tmp`;
  const file = await Deno.open(temp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    await writeAll(file, bytes);
    await file.syncData();
  } finally {
    file.close();
  }
  await Deno.rename(temp, path);
}

/** One getState + setState through the library. */
export async function libraryCycle(backend: LocalBackend): Promise<void> {
  const state = await backend.getState("default");
  await backend.setState("default", { ...state!, serial: state!.serial + 1 });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function peakMemory(kind: "floor" | "library", dir: string): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", import.meta.filename!, "--child", kind, dir],
    stdout: "piped",
  }).output();
  if (!out.success) throw new Error(`memory probe (${kind}) failed`);
  return Number(new TextDecoder().decode(out.stdout).trim());
}

function vmHwmMiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

async function child(kind: string, dir: string): Promise<void> {
  if (kind === "floor") await floorCycle(dir);
  else {
    const backend = new LocalBackend({ path: dir });
    await libraryCycle(backend);
    await backend.close();
  }
  console.log(vmHwmMiB().toFixed(0));
}

async function main(): Promise<void> {
  const roundsArg = Deno.args.indexOf("--rounds");
  const rounds = roundsArg >= 0 ? Number(Deno.args[roundsArg + 1]) : 5;
  const dir = await Deno.makeTempDir({ prefix: "gaib-bench-" });
  try {
    const ws = `${dir}/workspaces/default`;
    await Deno.mkdir(ws, { recursive: true });
    await unpackLargeState(`${ws}/terraform.tfstate`);
    await Deno.copyFile(`${ws}/terraform.tfstate`, `${dir}/floor.tfstate`);
    const size = (await Deno.stat(`${ws}/terraform.tfstate`)).size;
    const backend = new LocalBackend({ path: dir });

    const floor: number[] = [];
    const library: number[] = [];
    await floorCycle(dir); // warm up both paths once
    await libraryCycle(backend);
    for (let i = 0; i < rounds; i++) {
      let t = performance.now();
      await floorCycle(dir);
      floor.push(performance.now() - t);
      t = performance.now();
      await libraryCycle(backend);
      library.push(performance.now() - t);
    }

    let cycles = 0;
    const lockStart = performance.now();
    while (performance.now() - lockStart < 2000) {
      const { lockId } = await backend.lock("locks");
      await backend.unlock("locks", lockId);
      cycles++;
    }
    const lockRate = cycles / ((performance.now() - lockStart) / 1000);
    await backend.close();

    const floorMemory = await peakMemory("floor", dir);
    const libraryMemory = await peakMemory("library", dir);

    const f = median(floor);
    const l = median(library);
    console.log(`large state: ${(size / 1e6).toFixed(1)} MB, median of ${rounds} rounds`);
    console.log(`  floor (parse+stringify+write+fsync+rename)   ${f.toFixed(0)} ms`);
    console.log(`  getState + setState                          ${l.toFixed(0)} ms`);
    console.log(
      `  ratio                                        ${(l / f).toFixed(2)}x (goal <= 1.5x)`,
    );
    console.log(`lock + unlock cycles per second (local)        ${lockRate.toFixed(0)}/s`);
    console.log(`peak memory, fresh process, one read+write:`);
    console.log(`  floor                                        ${floorMemory} MiB`);
    console.log(`  library                                      ${libraryMemory} MiB`);
    console.log(
      `  ratio                                        ${(libraryMemory / floorMemory).toFixed(2)}x`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--child") await child(Deno.args[1], Deno.args[2]);
  else await main();
}
