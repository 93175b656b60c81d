/**
 * State encryption's cost, beside its floor, in one run:
 *
 *   deno run --allow-all bench/encryption_bench.ts [--rounds N]
 *
 * - get+set of the 45 MB `large-20k.tfstate` through `withEncryption` (AES-256-GCM, the key
 *   already derived) against the same through the plain local backend, alternating, median of
 *   N rounds; goal: at most 1.3x. The one key derivation (PBKDF2-SHA512, 600,000 rounds,
 *   OpenTofu's default) is timed apart: a process pays it once per key and salt.
 * - `gaib-state state list` on a small encrypted state (600,000 rounds) against the same on the
 *   plain state, median of N runs: the difference is the derivations the command paid (goal:
 *   one, not two).
 *
 * @module
 */

import { LocalBackend } from "../src/backends/local.ts";
import { type EncryptionConfig, withEncryption } from "../src/encryption.ts";
import { pbkdf2Bytes } from "../src/_encryption_pbkdf2.ts";
import type { StateBackend } from "../src/types.ts";
import { cliRunArgs } from "../tests/_cli.ts";
import { unpackLargeState } from "./state_bench.ts";

const rounds = Number(Deno.args[Deno.args.indexOf("--rounds") + 1]) || 5;
const PASSPHRASE = "benchmark passphrase of 2026";
const CONFIG: EncryptionConfig = {
  key_provider: { pbkdf2: { bench: { passphrase_env: "GAIB_BENCH_PASSPHRASE" } } },
  method: { aes_gcm: { secure: { keys: "key_provider.pbkdf2.bench" } } },
  state: { method: "method.aes_gcm.secure" },
};
const env = { get: (name: string) => name === "GAIB_BENCH_PASSPHRASE" ? PASSPHRASE : undefined };

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function cycle(backend: StateBackend): Promise<number> {
  const start = performance.now();
  const state = await backend.getState("default");
  await backend.setState("default", { ...state!, serial: state!.serial + 1 });
  return performance.now() - start;
}

const dir = await Deno.makeTempDir({ prefix: "gaib-bench-crypt-" });
try {
  // Plain and encrypted copies of the same 45 MB state.
  const plainRoot = `${dir}/plain`;
  const cryptRoot = `${dir}/crypt`;
  for (const root of [plainRoot, cryptRoot]) {
    await Deno.mkdir(`${root}/workspaces/default`, { recursive: true });
  }
  await unpackLargeState(`${plainRoot}/workspaces/default/terraform.tfstate`);
  const plain = new LocalBackend({ path: plainRoot });
  const crypt = withEncryption(new LocalBackend({ path: cryptRoot }), CONFIG, { env });
  const derivationStart = performance.now();
  await crypt.setState("default", (await plain.getState("default"))!); // derives the key once
  const firstWrite = performance.now() - derivationStart;
  const t = performance.now();
  await pbkdf2Bytes(
    new TextEncoder().encode(PASSPHRASE),
    new Uint8Array(32),
    600_000,
    "sha512",
    32,
  );
  const derivation = performance.now() - t;
  const plainTimes: number[] = [];
  const cryptTimes: number[] = [];
  for (let i = 0; i < rounds; i++) {
    plainTimes.push(await cycle(plain));
    cryptTimes.push(await cycle(crypt));
  }
  await plain.close();
  await crypt.close();
  const p = median(plainTimes);
  const c = median(cryptTimes);
  console.log(
    `45 MB get+set, median of ${rounds}: encrypted ${c.toFixed(0)} ms vs plain ${
      p.toFixed(0)
    } ms: ` +
      `${(c / p).toFixed(2)}x (goal at most 1.3x); one PBKDF2-SHA512 600k derivation: ` +
      `${derivation.toFixed(0)} ms (first encrypted write, with it: ${firstWrite.toFixed(0)} ms)`,
  );

  // CLI state list on a small state, encrypted (600k rounds) vs plain.
  const small = new URL("../tests/testdata/cli_small.tfstate", import.meta.url).pathname;
  const cliPlain = `${dir}/cli-plain`;
  const cliCrypt = `${dir}/cli-crypt`;
  await Deno.mkdir(`${cliPlain}/.gaib/workspaces/default`, { recursive: true });
  await Deno.copyFile(small, `${cliPlain}/.gaib/workspaces/default/terraform.tfstate`);
  await Deno.mkdir(cliCrypt);
  await Deno.writeTextFile(
    `${cliCrypt}/gaib.yaml`,
    `version: "1"\nencryption:\n  key_provider:\n    pbkdf2:\n      bench:\n` +
      `        passphrase_env: GAIB_BENCH_PASSPHRASE\n  method:\n    aes_gcm:\n      secure:\n` +
      `        keys: key_provider.pbkdf2.bench\n  state:\n    method: method.aes_gcm.secure\n`,
  );
  const seeded = withEncryption(new LocalBackend({ path: `${cliCrypt}/.gaib` }), CONFIG, { env });
  await seeded.setState(
    "default",
    (await new LocalBackend({ path: `${cliPlain}/.gaib` }).getState("default"))!,
  );
  await seeded.close();
  const runList = async (cwd: string) => {
    const start = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...cliRunArgs(), "state", "list"],
      cwd,
      env: { GAIB_BENCH_PASSPHRASE: PASSPHRASE },
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return performance.now() - start;
  };
  const listPlain: number[] = [];
  const listCrypt: number[] = [];
  for (let i = 0; i < Math.max(rounds, 5); i++) {
    listPlain.push(await runList(cliPlain));
    listCrypt.push(await runList(cliCrypt));
  }
  const lp = median(listPlain);
  const lc = median(listCrypt);
  console.log(
    `CLI state list, small state, median of ${listPlain.length}: encrypted ${
      lc.toFixed(0)
    } ms vs ` +
      `plain ${lp.toFixed(0)} ms: +${(lc - lp).toFixed(0)} ms = ` +
      `${((lc - lp) / derivation).toFixed(2)} derivations (goal: one)`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
