/**
 * The HTTP backend in the registry (`_registry.ts`): its config rule (Terraform's field names,
 * `internal/backend/remote-state/http/backend.go` lines 31-108), its `GAIB_HTTP_*` variables
 * (over the file) and Terraform's `TF_HTTP_*` variables (below it, as Terraform reads them:
 * `backend.go` lines 121-271). Light: the backend itself (`http.ts`) is imported only when one
 * is created.
 *
 * @module
 */

import type { HttpBackendConfig } from "../config.ts";
import {
  boolean,
  httpUrl,
  integer,
  literal,
  nonEmpty,
  object,
  type ObjectRule,
  type Rule,
  string,
} from "../_config_rules.ts";
import type { BackendDescriptor } from "./_registry.ts";

/** The only placeholder an address may hold. */
export const WORKSPACE_PLACEHOLDER = "${workspace}";

/** An http(s) URL that may hold `${workspace}` (checked with a workspace name put in). */
function addressRule(what: string): Rule<string> {
  return (value, path, ctx) => {
    if (typeof value === "string" && /\$\{(?!workspace\})/.test(value)) {
      return {
        ok: false,
        issue: {
          path,
          code: "custom",
          message: `${what} may contain only the placeholder "${WORKSPACE_PLACEHOLDER}"`,
        },
      };
    }
    const probe = typeof value === "string"
      ? value.replaceAll(WORKSPACE_PLACEHOLDER, "default")
      : value;
    const checked = httpUrl(probe, path, ctx);
    return checked.ok ? { ok: true, value: value as string } : checked;
  };
}

/** An HTTP method name (fetch refuses CONNECT, TRACE and TRACK). */
const method: Rule<string> = string({
  pattern: /^(?!(?:CONNECT|TRACE|TRACK)$)[A-Za-z]{1,20}$/i,
  patternMessage: "expected an HTTP method such as POST, PUT, LOCK or DELETE",
});

const pem = (what: string) =>
  string({
    refine: [nonEmpty(what), {
      test: (v) => v.includes("-----BEGIN "),
      message: `${what} must be PEM text (-----BEGIN ...-----), not a file name`,
    }],
  });

/** The rule of {@linkcode HttpBackendConfig}. */
export const httpBackendRule: ObjectRule<HttpBackendConfig> = object({
  type: { rule: literal(["http"], 'type must be "http"'), required: true, show: "plain" },
  address: { rule: addressRule("address"), required: true, show: "url" },
  update_method: { rule: method, show: "plain" },
  lock_address: { rule: addressRule("lock_address"), show: "url" },
  lock_method: { rule: method, show: "plain" },
  unlock_address: { rule: addressRule("unlock_address"), show: "url" },
  unlock_method: { rule: method, show: "plain" },
  username: { rule: string({ refine: [nonEmpty("username")] }), show: "plain" },
  password: { rule: string({ refine: [nonEmpty("password")] }) },
  skip_cert_verification: { rule: boolean, show: "plain" },
  retry_max: { rule: integer(0, 20), show: "plain" },
  retry_wait_min: { rule: integer(0, 3600), show: "plain" },
  retry_wait_max: { rule: integer(0, 3600), show: "plain" },
  client_ca_certificate_pem: { rule: pem("client_ca_certificate_pem"), show: "plain" },
  client_certificate_pem: { rule: pem("client_certificate_pem"), show: "plain" },
  client_private_key_pem: { rule: pem("client_private_key_pem") },
}, {
  expected: "type: http, address: and its settings",
  refine(config, path) {
    // Terraform refuses half a key pair (backend.go lines 275-280).
    const cert = config.client_certificate_pem !== undefined;
    const key = config.client_private_key_pem !== undefined;
    if (cert !== key) {
      const missing = cert ? "client_private_key_pem" : "client_certificate_pem";
      return {
        path: [...path, missing],
        code: "custom",
        message: `${missing} is required with ${
          cert ? "client_certificate_pem" : "client_private_key_pem"
        }`,
      };
    }
    const address = config.address as string;
    for (const field of ["lock_address", "unlock_address"] as const) {
      const other = config[field] as string | undefined;
      if (
        other !== undefined &&
        address.includes(WORKSPACE_PLACEHOLDER) !== other.includes(WORKSPACE_PLACEHOLDER)
      ) {
        return {
          path: [...path, field],
          code: "custom",
          message: `${field} must contain "${WORKSPACE_PLACEHOLDER}" exactly when address does, ` +
            "so that each workspace has its own lock",
        };
      }
    }
    return undefined;
  },
});

/** `GAIB_HTTP_<FIELD>` over the file and `TF_HTTP_<FIELD>` below it, for each field. */
function variables(): Record<string, { field: string; coerce?: "integer"; fallback?: boolean }> {
  const out: Record<string, { field: string; coerce?: "integer"; fallback?: boolean }> = {};
  const fields: [string, "integer"?][] = [
    ["address"],
    ["update_method"],
    ["lock_address"],
    ["lock_method"],
    ["unlock_address"],
    ["unlock_method"],
    ["username"],
    ["password"],
    ["retry_max", "integer"],
    ["retry_wait_min", "integer"],
    ["retry_wait_max", "integer"],
    ["client_ca_certificate_pem"],
    ["client_certificate_pem"],
    ["client_private_key_pem"],
  ];
  for (const [field, coerce] of fields) {
    const suffix = field.toUpperCase();
    out[`GAIB_HTTP_${suffix}`] = coerce ? { field, coerce } : { field };
    // Terraform reads no variable for skip_cert_verification (backend.go line 258).
    out[`TF_HTTP_${suffix}`] = coerce
      ? { field, coerce, fallback: true }
      : { field, fallback: true };
  }
  return out;
}

/** The HTTP backend: states behind a server speaking Terraform's `http` backend protocol. */
export const httpBackend: BackendDescriptor<HttpBackendConfig> = {
  type: "http",
  summary: "state behind a Terraform HTTP backend server (GitLab, gaib-state serve)",
  rule: httpBackendRule,
  variables: variables(),
  secretVariables: ["TF_HTTP_PASSWORD", "TF_HTTP_CLIENT_PRIVATE_KEY_PEM", "GAIB_SERVE_PASSWORD"],
  location(config) {
    // The state's address without user info or query (which may carry a token); two addresses
    // that differ only in their query count as one place, which refuses rather than risks.
    const url = new URL(config.address);
    return `http ${url.protocol}//${url.host}${url.pathname}`;
  },
  load: async () => (await import("./http.ts")).HttpBackend,
  doctor: async () => (await import("./_http_doctor.ts")).httpDoctor,
};
