/**
 * `doctor` checks that the configured store keeps the promises gaib-state's safety rests on
 * (conditional writes, consistent reads, a lock table with the right key, clocks that agree
 * within a lease, a file system with working fsync, rename and flock), and `bootstrap`
 * creates what the backend needs. Both are what `gaib-state doctor` and `gaib-state
 * bootstrap` run, exported for scripts.
 *
 * The checks are named functions, listed per backend kind in that backend's doctor module
 * (`backends/_<type>_doctor.ts`), which the registry loads only when doctor runs.
 *
 * @example Fail a CI job when the store is not safe
 * ```ts ignore
 * import { doctor } from "@gaib/state";
 *
 * const checks = await doctor();
 * const failed = checks.filter((c) => c.status === "fail");
 * if (failed.length) throw new Error(failed.map((c) => `${c.name}: ${c.summary}`).join("\n"));
 * ```
 *
 * @module
 */

import type { BackendConfig } from "./config.ts";
import { BackendConfigError } from "./errors.ts";
import { BackendFactory, type ResolvedBackendConfig, type ResolveOptions } from "./factory.ts";
import { checkConfig } from "./_config_rules.ts";
import { backendRule, descriptorOf } from "./backends/_registry.ts";
import { CONFIG_CHECKS } from "./_doctor_config.ts";
import {
  type BackendDoctor,
  type BootstrapContext,
  type BootstrapStep,
  type DoctorCheck,
  type DoctorCheckDefinition,
  type DoctorContext,
  messageOf,
} from "./_doctor_types.ts";
import { DEFAULT_WORKSPACE, resolveSelectedWorkspace, validateWorkspaceName } from "./workspace.ts";

export type { BootstrapAction, BootstrapStep, DoctorCheck, DoctorStatus } from "./_doctor_types.ts";

/** Options of {@linkcode doctor}. */
export interface DoctorOptions {
  /**
   * The workspace whose state and lock keys the read-only probes use.
   * @default {the selected workspace (GAIB_WORKSPACE, else the state root's selection), else "default"}
   */
  workspace?: string;
  /**
   * The lease of process-bound locks, in milliseconds: a clock skew beyond a quarter of it
   * fails the clock check. Use the `leaseMs` the backends are created with.
   * @default {30000}
   */
  leaseMs?: number;
  /**
   * This machine's clock, in milliseconds since the epoch: the clock check compares it with
   * the servers' `Date` headers.
   * @default {Date.now}
   */
  clock?: () => number;
  /**
   * How to find the config when none is passed (`cwd`, `env`, `configFile`), as
   * `BackendFactory.resolve` does.
   * @default {{}}
   */
  resolve?: ResolveOptions;
}

/** Options of {@linkcode bootstrap}. */
export interface BootstrapOptions extends DoctorOptions {
  /**
   * Say what would be created or changed, and change nothing.
   * @default {false}
   */
  dryRun?: boolean;
  /**
   * Also change the settings of existing resources, but only those doctor flags (warn or
   * fail) before the run: turn versioning on, add default encryption, a public access block,
   * the modes of a local state root.
   * @default {false}
   */
  fix?: boolean;
}

/** What {@linkcode bootstrap} did, and the doctor run after it. */
export interface BootstrapReport {
  /** Each resource or setting: created, changed, unchanged, undone, refused... */
  readonly steps: BootstrapStep[];
  /** The doctor run at the end (on the resources as they are now). */
  readonly checks: DoctorCheck[];
}

/** A config to check, or what is needed to find it. */
type Target = BackendConfig | ResolvedBackendConfig | undefined;

interface Prepared {
  config: BackendConfig;
  resolved: ResolvedBackendConfig | undefined;
  workspace: string;
  backend: BackendDoctor;
}

function isResolved(target: Target): target is ResolvedBackendConfig {
  return typeof target === "object" && target !== null && "origins" in target &&
    "config" in target;
}

/** Resolves and checks the config, or says why it cannot be used. */
async function prepare(
  target: Target,
  options: DoctorOptions,
): Promise<Prepared | DoctorCheck> {
  let resolved: ResolvedBackendConfig | undefined;
  let config: BackendConfig;
  try {
    if (target === undefined) resolved = await BackendFactory.resolve(options.resolve);
    else if (isResolved(target)) resolved = target;
    config = checkConfig(backendRule, resolved?.config ?? target, "backend config");
  } catch (error) {
    if (!(error instanceof BackendConfigError)) throw error;
    return {
      name: "config.valid",
      status: "fail",
      summary: error.message,
      fix: 'correct the config (run "gaib-state config validate" to see where), then run ' +
        '"gaib-state doctor" again',
    };
  }
  let workspace = DEFAULT_WORKSPACE;
  if (options.workspace !== undefined) workspace = validateWorkspaceName(options.workspace);
  else if (resolved) {
    // A state root the checks will report on (not a directory, unreadable) must not stop
    // the doctor before it can say so.
    workspace = await resolveSelectedWorkspace(resolved.stateRoot).then(
      (selected) => selected.name,
      () => DEFAULT_WORKSPACE,
    );
  }
  const load = descriptorOf(config.type)!.doctor as (() => Promise<BackendDoctor>) | undefined;
  const backend: BackendDoctor = load ? await load() : { checks: [] };
  return { config, resolved, workspace, backend };
}

/** One run's context: shared values made on first use, disposed of by `close`. */
function context(
  prepared: Prepared,
  options: DoctorOptions,
  results: Map<string, DoctorCheck>,
): DoctorContext & { close(): Promise<void> } {
  const shared = new Map<string, { value: unknown; dispose?: (value: never) => unknown }>();
  return {
    config: prepared.config,
    resolved: prepared.resolved,
    workspace: prepared.workspace,
    leaseMs: options.leaseMs ?? 30_000,
    now: options.clock ?? Date.now,
    results,
    shared<T>(key: string, make: () => T, dispose?: (value: T) => void | Promise<void>): T {
      if (!shared.has(key)) shared.set(key, { value: make(), dispose });
      return shared.get(key)!.value as T;
    },
    async close() {
      for (const { value, dispose } of shared.values()) {
        await Promise.resolve(dispose?.(value as never)).catch(() => {});
      }
      shared.clear();
    },
  };
}

/** Runs checks in order; a check whose prerequisites did not pass is skipped. */
async function runChecks(
  definitions: readonly DoctorCheckDefinition[],
  ctx: DoctorContext,
  results: Map<string, DoctorCheck>,
): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  for (const definition of definitions) {
    const blocker = (definition.requires ?? []).find((name) => {
      const status = results.get(name)?.status;
      return status === "fail" || status === "skipped";
    });
    let check: DoctorCheck;
    if (blocker !== undefined) {
      check = {
        name: definition.name,
        status: "skipped",
        summary: `not run: ${blocker} did not pass`,
      };
    } else {
      try {
        check = { name: definition.name, ...await definition.run(ctx) };
      } catch (error) {
        check = {
          name: definition.name,
          status: "fail",
          summary: `the check itself failed: ${messageOf(error)}`,
        };
      }
    }
    results.set(check.name, check);
    checks.push(check);
  }
  return checks;
}

async function runDoctor(prepared: Prepared, options: DoctorOptions): Promise<DoctorCheck[]> {
  const results = new Map<string, DoctorCheck>();
  const ctx = context(prepared, options, results);
  try {
    return await runChecks(
      [...CONFIG_CHECKS, ...prepared.backend.checks as DoctorCheckDefinition[]],
      ctx,
      results,
    );
  } finally {
    await ctx.close();
  }
}

/**
 * Checks that the configured backend is safe to trust: the config checks, then the named
 * checks of the backend's kind (for S3: credentials, bucket, permissions probed on temporary
 * keys under `.gaib-doctor/` that are removed again, versioning, encryption, public access
 * block, conditional writes for the lock mode, the DynamoDB table, clock skew; for local:
 * fsync, atomic rename and flock on temporary files, the mount, file modes, leftovers; for
 * http: the server, TLS, credentials, the read, workspaces, and the lock endpoints probed on a
 * workspace of the doctor's own).
 * A check whose prerequisite did not pass is `skipped`. No check prints a credential.
 *
 * Needs the permissions of the backend itself (`--allow-net` to its endpoints for S3;
 * `--allow-read` and `--allow-write` of the state root for local, whose mount check reads
 * `/proc/self/mountinfo` under `--allow-all` and asks `statfs` otherwise:
 * `--allow-sys=statfs`).
 *
 * @param target the backend config (as in `gaib.yaml`), a config resolved by
 *   `BackendFactory.resolve` (which also names where each value came from), or nothing to
 *   resolve it here as the CLI does
 * @param options workspace, lease, clock, and how to resolve the config
 * @returns one result per check, in order; an invalid config gives one failed `config.valid`
 * @throws {Error} only for what is not about the store (a missing permission of the process)
 *
 * @example Check a local state root
 * ```ts
 * import { doctor } from "@gaib/state";
 *
 * const root = await Deno.makeTempDir();
 * const checks = await doctor({ type: "local", path: root });
 * const fs = checks.find((c) => c.name === "local.filesystem");
 * if (fs?.status !== "ok") throw new Error(`expected ok, got ${fs?.status}: ${fs?.summary}`);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function doctor(
  target?: BackendConfig | ResolvedBackendConfig,
  options: DoctorOptions = {},
): Promise<DoctorCheck[]> {
  const prepared = await prepare(target, options);
  if ("status" in prepared) return [prepared];
  return await runDoctor(prepared, options);
}

/**
 * Creates what the configured backend needs, idempotently, then runs {@linkcode doctor}. For
 * S3: the bucket (in the configured region), versioning, default encryption (SSE-S3, or
 * SSE-KMS with `kms_key_id`), a public access block, a policy denying plain-HTTP requests
 * (not on an `http://` endpoint), and the DynamoDB lock table (`LockID` String, on-demand),
 * waited for until it is active. For local: the state root, mode 0700.
 *
 * Settings of a resource that already exists are changed only with `fix`, and only those
 * doctor flags; objects are never touched. After each change the bucket is probed with a
 * temporary object; a change that broke writing (some S3-compatible stores deny every write
 * once a public access block is set) is undone and reported as a warning with the reason.
 *
 * @param target as for {@linkcode doctor}
 * @param options `dryRun`, `fix`, and the options of {@linkcode doctor}
 * @returns every step and the final doctor results
 * @throws {Error} only for what is not about the store (a missing permission of the process)
 *
 * @example Create a local state root
 * ```ts
 * import { bootstrap } from "@gaib/state";
 *
 * const dir = await Deno.makeTempDir();
 * const report = await bootstrap({ type: "local", path: `${dir}/.gaib` });
 * if (report.steps[0].action !== "created") throw new Error("the root was not created");
 * if (((await Deno.stat(`${dir}/.gaib`)).mode! & 0o777) !== 0o700) throw new Error("not 0700");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function bootstrap(
  target?: BackendConfig | ResolvedBackendConfig,
  options: BootstrapOptions = {},
): Promise<BootstrapReport> {
  const prepared = await prepare(target, options);
  if ("status" in prepared) return { steps: [], checks: [prepared] };
  // What doctor flags decides what --fix may change, and what a run without it names.
  const flagged = new Set<string>();
  for (const check of await runDoctor(prepared, options)) {
    if (check.status === "warn" || check.status === "fail") flagged.add(check.name);
  }
  const steps: BootstrapStep[] = [];
  const results = new Map<string, DoctorCheck>();
  const base = context(prepared, options, results);
  const ctx: BootstrapContext = {
    ...base,
    dryRun: options.dryRun === true,
    fix: options.fix === true,
    flagged: (name) => flagged.has(name),
    step: (step) => void steps.push(step),
  };
  try {
    if (prepared.backend.bootstrap) await prepared.backend.bootstrap(ctx);
    else {
      steps.push({
        resource: `backend ${prepared.config.type}`,
        action: "skipped",
        status: "ok",
        message: "this backend has nothing to create",
      });
    }
  } finally {
    await base.close();
  }
  return { steps, checks: await runDoctor(prepared, options) };
}
