/**
 * The shapes of `doctor` and `bootstrap`: a check's result, a named check, what a check runs
 * with, and a backend's set of checks and bootstrap steps. Light (types and a few small
 * helpers only): the registry's descriptors name a backend's doctor module by a lazy
 * `doctor()` loader, and this is all they need to know of it.
 *
 * @module
 */

import type { BackendConfig } from "./config.ts";
import type { ResolvedBackendConfig } from "./factory.ts";

/** The result of one check: `fail` makes `gaib-state doctor` exit 1. */
export type DoctorStatus = "ok" | "warn" | "fail" | "skipped";

/** One check's result, as `doctor()` returns it and `gaib-state doctor --json` prints it. */
export interface DoctorCheck {
  /** The check's name: its area and what it checks, such as `s3.versioning`. */
  readonly name: string;
  /** ok, warn, fail or skipped. */
  readonly status: DoctorStatus;
  /**
   * What was found, and for a result other than ok what it means. Never holds a credential;
   * values from a server are quoted as they came (the CLI escapes them for the terminal).
   */
  readonly summary: string;
  /** For a result other than ok: what to do, with commands that work when pasted. */
  readonly fix?: string;
}

/** What a check function returns; the runner adds the check's name. */
export type CheckOutcome = Omit<DoctorCheck, "name">;

/** What every check runs with. */
export interface DoctorContext<C extends BackendConfig = BackendConfig> {
  /** The checked backend config. */
  readonly config: C;
  /** Where the config came from, when it was resolved from a file and the environment. */
  readonly resolved: ResolvedBackendConfig | undefined;
  /** The workspace whose keys the read-only probes use. */
  readonly workspace: string;
  /** The lease of process-bound locks, in milliseconds (clock skew is judged against it). */
  readonly leaseMs: number;
  /** This machine's clock, in milliseconds since the epoch (injectable for tests and scripts). */
  now(): number;
  /** The results of the checks that ran before this one, by name. */
  readonly results: ReadonlyMap<string, DoctorCheck>;
  /**
   * A value shared by the checks of one run (SDK clients), made on first use and disposed of
   * when the run ends.
   */
  shared<T>(key: string, make: () => T, dispose?: (value: T) => void | Promise<void>): T;
}

/** A named check of one backend kind. */
export interface DoctorCheckDefinition<C extends BackendConfig = BackendConfig> {
  /** Its name, such as `s3.versioning`: unique in a run. */
  readonly name: string;
  /**
   * Checks that must have passed (ok or warn) for this one to mean anything: when one of them
   * failed or was skipped, this one is skipped, saying which.
   * @default {[]}
   */
  readonly requires?: readonly string[];
  /** Runs the check. A thrown error is reported as a failure of this check, not of the run. */
  run(ctx: DoctorContext<C>): Promise<CheckOutcome>;
}

/** What happened to one resource in `bootstrap`. */
export type BootstrapAction =
  | "created"
  | "changed"
  | "unchanged"
  | "would-create"
  | "would-change"
  | "needs-fix"
  | "undone"
  | "refused"
  | "skipped"
  | "failed";

/** One step of `bootstrap`: a resource or setting, what was done, and whether all is well. */
export interface BootstrapStep {
  /** What it is about, such as `bucket my-states` or `versioning of bucket my-states`. */
  readonly resource: string;
  /** What was done (or, in a dry run, would be done). */
  readonly action: BootstrapAction;
  /** ok, warn (the store refused or broke the setting; it was left off) or fail. */
  readonly status: DoctorStatus;
  /** What was found and done, and for warn or fail why. */
  readonly message: string;
  /** For warn or fail: what to do. */
  readonly fix?: string;
}

/** What a backend's bootstrap runs with. */
export interface BootstrapContext<C extends BackendConfig = BackendConfig>
  extends DoctorContext<C> {
  /** Say what would be done, change nothing. */
  readonly dryRun: boolean;
  /** Also change settings of existing resources that doctor flagged. */
  readonly fix: boolean;
  /** Whether doctor, run before any change, flagged this check (warn or fail). */
  flagged(check: string): boolean;
  /** Records a step. */
  step(step: BootstrapStep): void;
}

/**
 * A backend kind's doctor: its named checks, in the order they run, and what `bootstrap`
 * creates. Loaded lazily through the registry (`BackendDescriptor.doctor`).
 */
export interface BackendDoctor<C extends BackendConfig = BackendConfig> {
  /** The checks of this backend kind (after the config checks every backend gets). */
  readonly checks: readonly DoctorCheckDefinition<C>[];
  /** Creates what the backend needs; without it bootstrap says there is nothing to create. */
  bootstrap?(ctx: BootstrapContext<C>): Promise<void>;
}

/** A check result. */
export function result(status: DoctorStatus, summary: string, fix?: string): CheckOutcome {
  return fix === undefined ? { status, summary } : { status, summary, fix };
}

/** The message of an error, without its stack. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
