/**
 * Shared pieces of the reliability suites: the quick/full size switch, subprocesses whose
 * output is read line by line, and tree hashes to prove that a refused operation changed
 * nothing.
 *
 * @module
 */

/** Sizes of one run of the suites: quick in CI, full with `GAIB_RELIABILITY=full`. */
export interface Sizes {
  /** `"quick"` or `"full"`. */
  name: "quick" | "full";
  /** SIGKILLed writer runs per state profile. */
  kills: { small: number; medium: number; huge: number };
  /** SIGKILLed S3 lock holders per lock mode (DynamoDB, lockfile). */
  s3Kills: number;
  /** Processes and locked cycles per process of the contention suite. */
  contention: { processes: number; cycles: number };
  /** Processes and attempts per process of the unlocked race. */
  race: { processes: number; attempts: number };
  /** Faults injected per backend operation in the S3 fault suite. */
  faultRounds: number;
}

const QUICK: Sizes = {
  name: "quick",
  kills: { small: 30, medium: 18, huge: 2 },
  s3Kills: 4,
  contention: { processes: 4, cycles: 10 },
  race: { processes: 4, attempts: 10 },
  faultRounds: 1,
};

const FULL: Sizes = {
  name: "full",
  kills: { small: 120, medium: 60, huge: 20 },
  s3Kills: 25,
  contention: { processes: 8, cycles: 25 },
  race: { processes: 8, attempts: 25 },
  faultRounds: 3,
};

/** Reads `GAIB_RELIABILITY` (`full` or anything else for quick). */
export function sizes(): Sizes {
  let mode: string | undefined;
  try {
    mode = Deno.env.get("GAIB_RELIABILITY");
  } catch {
    mode = undefined;
  }
  return mode === "full" ? FULL : QUICK;
}

/** The repository root. */
export const REPO: string = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/**
 * Permissions the spawned scripts get: what the library needs for the local backend and for
 * S3 on loopback, nothing more.
 */
export const SCRIPT_FLAGS: readonly string[] = [
  "--quiet",
  "--no-prompt",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys=hostname,osRelease,uid",
  "--allow-net=127.0.0.1",
];

export { type TempDir, tempDir } from "../_temp.ts";

/** A spawned script whose stdout is collected line by line while it runs. */
export class Script {
  /** The process. */
  readonly child: Deno.ChildProcess;
  /** Every stdout line so far. */
  readonly lines: string[] = [];
  /** When each line arrived (`performance.now()`). */
  readonly times: number[] = [];
  /** Resolves with the exit status once stdout and stderr are drained. */
  readonly finished: Promise<{ status: Deno.CommandStatus; stderr: string }>;
  #wake: (() => void)[] = [];
  #ended = false;

  /**
   * @param script path of a script under tests/reliability
   * @param args its arguments
   * @param env extra environment variables
   */
  constructor(script: string, args: string[], env: Record<string, string> = {}) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...SCRIPT_FLAGS, script, ...args],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    const out = this.#read();
    const err = new Response(child.stderr).text();
    this.finished = (async () => {
      const [status, stderr] = await Promise.all([child.status, err, out]);
      return { status, stderr };
    })();
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of this.child.stdout) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        this.lines.push(buffered.slice(0, newline));
        this.times.push(performance.now());
        buffered = buffered.slice(newline + 1);
      }
      this.#notify();
    }
    if (buffered) {
      this.lines.push(buffered);
      this.times.push(performance.now());
    }
    this.#ended = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const fn of wake) fn();
  }

  /**
   * Waits for a stdout line matching `test`; rejects with the script's stderr when it exits
   * first.
   */
  async until(test: (line: string) => boolean, from = 0): Promise<string> {
    let seen = from;
    for (;;) {
      for (; seen < this.lines.length; seen++) {
        if (test(this.lines[seen])) return this.lines[seen];
      }
      if (this.#ended) {
        const { status, stderr } = await this.finished;
        throw new Error(
          `script exited (code ${status.code}) before the expected line; stderr:\n${stderr}`,
        );
      }
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  /** Sends SIGKILL (if the process still runs) and waits for it to end. */
  async kill(): Promise<{ status: Deno.CommandStatus; stderr: string }> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // already exited
    }
    return await this.finished;
  }
}

/**
 * Waits for every script to exit; kills them all and throws when `deadlineMs` passes first
 * (a hang is a failure, not a slow run: the deadline is many times the expected time).
 */
export async function waitAll(
  scripts: Script[],
  deadlineMs: number,
): Promise<{ status: Deno.CommandStatus; stderr: string }[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      for (const s of scripts) s.kill();
      reject(new Error(`processes still running after ${deadlineMs} ms: left hanging`));
    }, deadlineMs);
  });
  try {
    return await Promise.race([Promise.all(scripts.map((s) => s.finished)), hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** SHA-256 of bytes, hex. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Every file and directory under `root` with its mode, and for files the SHA-256 of the
 * content: two equal snapshots mean nothing was created, removed, changed or re-moded.
 */
export async function snapshotTree(root: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  async function walk(dir: string, rel: string): Promise<void> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    for (const entry of entries) {
      const path = `${dir}/${entry.name}`;
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      const info = await Deno.lstat(path);
      const mode = ((info.mode ?? 0) & 0o7777).toString(8);
      if (entry.isDirectory) {
        result[name + "/"] = `dir ${mode}`;
        await walk(path, name);
      } else if (entry.isFile) {
        result[name] = `file ${mode} ${await sha256(await Deno.readFile(path))}`;
      } else {
        result[name] = `other ${mode}`;
      }
    }
  }
  await walk(root, "");
  return result;
}

/** Mode bits (`0o777` part) of a path. */
export async function modeOf(path: string): Promise<number> {
  return (await Deno.lstat(path)).mode! & 0o777;
}

/** Whether this process may mount file systems (root with CAP_SYS_ADMIN). */
export function canMount(): boolean {
  if (Deno.uid() !== 0) return false;
  const probe = `/tmp/gaib-mount-probe-${Deno.pid}`;
  try {
    Deno.mkdirSync(probe);
    const mount = run("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]);
    if (!mount.success) return false;
    run("umount", [probe]);
    return true;
  } catch {
    return false;
  } finally {
    try {
      Deno.removeSync(probe);
    } catch {
      // not created
    }
  }
}

/** Runs a command synchronously; throws with its stderr when it fails and `check` is set. */
export function run(
  command: string,
  args: string[],
  check = false,
): { success: boolean; stdout: string; stderr: string } {
  const output = new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .outputSync();
  const result = {
    success: output.success,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
  if (check && !result.success) {
    throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
  }
  return result;
}

/** A small tmpfs mounted for the `await using` scope (root only). */
export interface Mount extends AsyncDisposable {
  /** Mount point. */
  readonly path: string;
  /** Remounts read-only. */
  readOnly(): void;
}

/** Mounts a tmpfs of `sizeKb` KiB in a new temp directory. */
export async function mountTmpfs(sizeKb: number): Promise<Mount> {
  const path = await Deno.makeTempDir({ prefix: "gaib-mnt-" });
  run("mount", ["-t", "tmpfs", "-o", `size=${sizeKb}k,mode=0700`, "tmpfs", path], true);
  return {
    path,
    readOnly() {
      run("mount", ["-o", "remount,ro", path], true);
    },
    async [Symbol.asyncDispose]() {
      run("umount", ["-l", path]);
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** Writes one line to stdout synchronously (so it is in the pipe before any SIGKILL). */
export function emit(line: string): void {
  const bytes = new TextEncoder().encode(line + "\n");
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stdout.writeSync(bytes.subarray(offset));
}

/** A random integer in `[0, max)`. */
export function randomInt(max: number): number {
  return Math.floor(Math.random() * max);
}
