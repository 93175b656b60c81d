/**
 * Reading `doctor()` results in tests: one check by name, and the whole run as text for
 * assertion messages.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { DoctorCheck } from "../src/doctor.ts";

/** The check of that name, failing with the names there are when it is missing. */
export function check(checks: DoctorCheck[], name: string): DoctorCheck {
  const found = checks.find((c) => c.name === name);
  assert.ok(found, `no check ${name} in ${checks.map((c) => c.name).join(", ")}`);
  return found;
}

/** One line per check, for assertion messages. */
export function table(checks: DoctorCheck[]): string {
  return checks.map((c) => `${c.name}: ${c.status}: ${c.summary}${c.fix ? ` | fix: ${c.fix}` : ""}`)
    .join("\n");
}
