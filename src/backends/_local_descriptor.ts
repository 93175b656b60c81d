/**
 * The local backend in the registry (`_registry.ts`): its config rule, its variable, its
 * state root. Light: the backend itself (`local.ts`) is imported only when one is created.
 *
 * @module
 */

import type { LocalBackendConfig } from "../config.ts";
import { integer, literal, nonEmpty, object, type ObjectRule, string } from "../_config_rules.ts";
import type { BackendDescriptor } from "./_registry.ts";

/** The rule of {@linkcode LocalBackendConfig}. */
export const localBackendRule: ObjectRule<LocalBackendConfig> = object({
  type: { rule: literal(["local"], 'type must be "local"'), required: true, show: "plain" },
  path: {
    rule: string({
      expected: "a string (a directory)",
      refine: [nonEmpty("path"), {
        test: (p) => !p.includes("\0"),
        message: "path must not contain a NUL character",
      }],
    }),
    show: "plain",
  },
  history: { rule: integer(0, 10_000), show: "plain" },
}, { expected: "type: local and its settings" });

/** The local backend: state files in a directory on this machine. */
export const localBackend: BackendDescriptor<LocalBackendConfig> = {
  type: "local",
  summary: "state files in a directory on this machine",
  rule: localBackendRule,
  variables: {
    GAIB_STATE_PATH: { field: "path" },
    GAIB_STATE_HISTORY: { field: "history", coerce: "integer" },
  },
  paths: { path: { default: ".gaib", stateRoot: true } },
  location: (config) => `local ${config.path}`,
  load: async () => (await import("./local.ts")).LocalBackend,
  doctor: async () => (await import("./_local_doctor.ts")).localDoctor,
};
