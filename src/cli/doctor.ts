/**
 * `gaib-state doctor` and `gaib-state bootstrap`: the library's `doctor` and `bootstrap`,
 * printed as tables (or one JSON document), exit 1 when a check or a step fails.
 *
 * @module
 */

import { bootstrap as runBootstrap, doctor as runDoctor } from "../doctor.ts";
import type { BootstrapStep, DoctorCheck, DoctorStatus } from "../_doctor_types.ts";
import { join } from "../_path.ts";
import { type CommandRun, type GlobalFlags, handler } from "./_context.ts";
import { EXIT_FAILURE } from "./_errors.ts";
import type { Output } from "./_output.ts";
import { redactSecrets } from "./_redact.ts";
import { UsageError } from "./_errors.ts";
import { validateWorkspaceName } from "../workspace.ts";

/** Flags of `bootstrap`. */
export interface BootstrapFlags extends GlobalFlags {
  /** `--dry-run`: say what would be done. */
  readonly dryRun?: boolean;
  /** `--fix`: also change settings of existing resources that doctor flags. */
  readonly fix?: boolean;
}

const COLORS: Record<DoctorStatus, string> = { ok: "32", warn: "33", fail: "31;1", skipped: "2" };

function options(flags: GlobalFlags) {
  let workspace: string | undefined;
  if (flags.workspace !== undefined) {
    try {
      workspace = validateWorkspaceName(flags.workspace);
    } catch (error) {
      throw new UsageError(`Invalid --workspace: ${(error as Error).message}`, { cause: error });
    }
  }
  const configFile = flags.config === undefined ? undefined : join(Deno.cwd(), flags.config);
  return { workspace, resolve: { configFile } };
}

/** A text for output: credentials removed, printed commands completed with `--config`. */
function clean(out: Output, text: string | undefined): string | undefined {
  return text === undefined ? undefined : out.pasteable(redactSecrets(text));
}

function cleanCheck(out: Output, check: DoctorCheck): DoctorCheck {
  const fix = clean(out, check.fix);
  return { ...check, summary: clean(out, check.summary)!, ...(fix ? { fix } : {}) };
}

function cleanStep(out: Output, step: BootstrapStep): BootstrapStep {
  const fix = clean(out, step.fix);
  return {
    ...step,
    resource: clean(out, step.resource)!,
    message: clean(out, step.message)!,
    ...(fix ? { fix } : {}),
  };
}

function counts(statuses: DoctorStatus[]): Record<DoctorStatus, number> {
  const c: Record<DoctorStatus, number> = { ok: 0, warn: 0, fail: 0, skipped: 0 };
  for (const s of statuses) c[s]++;
  return c;
}

/** Rows as aligned columns; the last column's text is escaped for the terminal. */
function table(
  out: Output,
  header: string[],
  rows: Array<{ cells: string[]; status: DoctorStatus; fix?: string }>,
): string {
  const widths = header.slice(0, -1).map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r.cells[i].length))
  );
  const indent = widths.reduce((sum, w) => sum + w + 2, 0);
  const lines = [
    header.slice(0, -1).map((h, i) => h.padEnd(widths[i])).join("  ") + "  " +
    header[header.length - 1],
  ];
  for (const row of rows) {
    const cells = row.cells.slice(0, -1).map((cell, i) => {
      const padded = out.safe(cell).padEnd(widths[i]);
      return i === 1 ? out.paintStdout(padded, COLORS[row.status]) : padded;
    });
    lines.push(`${cells.join("  ")}  ${out.safe(row.cells[row.cells.length - 1])}`);
    if (row.fix) lines.push(`${" ".repeat(indent)}fix: ${out.safe(row.fix)}`);
  }
  return lines.join("\n") + "\n";
}

function checksTable(out: Output, checks: DoctorCheck[]): string {
  const c = counts(checks.map((check) => check.status));
  return table(
    out,
    ["CHECK", "RESULT", "DETAIL"],
    checks.map((check) => ({
      cells: [check.name, check.status, check.summary],
      status: check.status,
      fix: check.fix,
    })),
  ) + `\n${c.ok} ok, ${c.warn} warn, ${c.fail} fail, ${c.skipped} skipped\n`;
}

/** `doctor`: run the checks, print the table, exit 1 when one fails. */
export const doctor = handler(async ({ out }: CommandRun, flags: GlobalFlags) => {
  const checks = (await runDoctor(undefined, options(flags))).map((c) => cleanCheck(out, c));
  const failed = checks.some((c) => c.status === "fail");
  if (out.json) {
    out.jsonDocument({ ok: !failed, counts: counts(checks.map((c) => c.status)), checks });
  } else {
    out.data(checksTable(out, checks));
  }
  return failed ? EXIT_FAILURE : 0;
});

/** `bootstrap`: create what the backend needs, then run doctor. */
export const bootstrap = handler(async ({ out }: CommandRun, flags: BootstrapFlags) => {
  const report = await runBootstrap(undefined, {
    ...options(flags),
    dryRun: flags.dryRun === true,
    fix: flags.fix === true,
  });
  const steps = report.steps.map((s) => cleanStep(out, s));
  const checks = report.checks.map((c) => cleanCheck(out, c));
  const failed = steps.some((s) => s.status === "fail") || checks.some((c) => c.status === "fail");
  if (out.json) {
    out.jsonDocument({ ok: !failed, dryRun: flags.dryRun === true, steps, checks });
    return failed ? EXIT_FAILURE : 0;
  }
  const title = flags.dryRun ? "Bootstrap, dry run (nothing was changed):" : "Bootstrap:";
  const stepTable = steps.length === 0 ? "  (nothing to do)\n" : table(
    out,
    ["RESOURCE", "ACTION", "DETAIL"],
    steps.map((s) => ({ cells: [s.resource, s.action, s.message], status: s.status, fix: s.fix })),
  );
  out.data(`${title}\n${stepTable}\nDoctor:\n${checksTable(out, checks)}`);
  return failed ? EXIT_FAILURE : 0;
});
