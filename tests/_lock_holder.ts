/**
 * A lock held by another process (`tests/testdata/lock_holder.ts`): for tests that need a
 * live holder the library cannot see into, or one killed with SIGKILL.
 *
 * @module
 */

import type { HolderOptions } from "./testdata/lock_holder.ts";

export type { HolderOptions } from "./testdata/lock_holder.ts";

const SCRIPT = new URL("./testdata/lock_holder.ts", import.meta.url).pathname;

/** A holder process that has taken its lock. */
export interface LockHolder extends AsyncDisposable {
  /** The lock's ID. */
  readonly lockId: string;
  /** The process. */
  readonly child: Deno.ChildProcess;
  /** Ends the holder's stdin: it unlocks and exits; returns its last line (`UNLOCKED`...). */
  release(): Promise<string>;
  /** Kills the holder with SIGKILL (its lock stays behind) and waits for it to die. */
  kill(): Promise<void>;
}

/**
 * Starts a holder and waits until it holds the lock.
 *
 * @param options what to lock, and how
 * @param env environment variables beside this process's (such as AWS credentials)
 * @returns the holder; `await using` kills it if it still runs
 * @throws {Error} when the holder exits without taking the lock (with its stderr)
 */
export async function spawnLockHolder(
  options: HolderOptions,
  env: Record<string, string> = {},
): Promise<LockHolder> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", SCRIPT, JSON.stringify(options)],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<string | null> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) return null;
      buffered += value;
    }
    const end = buffered.indexOf("\n");
    const line = buffered.slice(0, end);
    buffered = buffered.slice(end + 1);
    return line;
  };
  const stderr = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const first = await nextLine();
  const lockId = /^LOCKED (\S+)$/.exec(first ?? "")?.[1];
  if (!lockId) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await status;
    throw new Error(`the lock holder did not lock: ${first}\n${await stderr}`);
  }
  const finish = async () => {
    await status;
    await lines.cancel().catch(() => {});
    await stderr;
  };
  return {
    lockId,
    child,
    async release() {
      await child.stdin.close();
      const last = await nextLine();
      await finish();
      return last ?? "";
    },
    async kill() {
      if (!exited) child.kill("SIGKILL");
      await finish();
    },
    async [Symbol.asyncDispose]() {
      if (!exited) child.kill("SIGKILL");
      await child.stdin.close().catch(() => {});
      await finish();
    },
  };
}
