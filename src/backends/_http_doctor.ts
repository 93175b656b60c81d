/**
 * The HTTP backend's doctor checks: the server answers (and its certificate is trusted), the
 * credentials are accepted, a read answers as Terraform's protocol says, the addresses name
 * workspaces, the lock endpoints grant, refuse and release as the protocol says, and the
 * clock agrees with the server's `Date` header. Nothing is written: no state is ever
 * uploaded or deleted, and the lock probe takes a lock only where it can release it at once
 * without touching a lock someone else holds (see `locksCheck`).
 *
 * @module
 */

import type { HttpBackendConfig } from "../config.ts";
import {
  type BackendDoctor,
  type CheckOutcome,
  type DoctorCheckDefinition,
  type DoctorContext,
  messageOf,
  result,
} from "../_doctor_types.ts";
import { type DateSample, dateSample, judgeClockSkew } from "../_doctor_clock.ts";
import {
  BackendConfigError,
  BackendError,
  StateFormatError,
  StateLockError,
  UnsupportedOperationError,
} from "../errors.ts";
import { parseStateBytes } from "../state.ts";
import { plainHttp, redactUrl } from "../_url.ts";
import { DEFAULT_WORKSPACE } from "../workspace.ts";
import { HttpBackend } from "./http.ts";
import { contentMd5, type HttpAnswer, HttpTransport } from "./_http_transport.ts";
import { WORKSPACE_PLACEHOLDER } from "./_http_descriptor.ts";

type Ctx = DoctorContext<HttpBackendConfig>;
type Check = DoctorCheckDefinition<HttpBackendConfig>;

/** What the checks of one run share. */
interface HttpTools {
  /** Raw requests, for the statuses the checks judge (each answer's `Date` is sampled). */
  transport: HttpTransport;
  /** The backend itself, for what it already knows how to ask (locks, listing). */
  backend: HttpBackend;
  dates: DateSample[];
  /** The answer to the read of `http.reachable`. */
  read?: HttpAnswer;
}

/** The run's transport and backend: few retries, a short timeout, as the S3 doctor's. */
function httpTools(ctx: Ctx): HttpTools {
  return ctx.shared("http", () => {
    const config = { ...ctx.config, retry_max: Math.min(ctx.config.retry_max ?? 2, 1) };
    const transport = new HttpTransport(config, {
      requestTimeoutMs: 15_000,
      maxResponseBytes: 1024 ** 3,
    });
    return {
      transport,
      // Its close() releases any lock it still holds: the probe never leaves one behind.
      backend: new HttpBackend(config, { requestTimeoutMs: 15_000 }),
      dates: [],
    };
  }, async (tools) => {
    tools.transport.close();
    await tools.backend.close();
  });
}

function hasPlaceholder(ctx: Ctx): boolean {
  return ctx.config.address.includes(WORKSPACE_PLACEHOLDER);
}

/** The workspace the read probes: without `${workspace}` only `default` exists. */
function readWorkspace(ctx: Ctx): string {
  return hasPlaceholder(ctx) ? ctx.workspace : DEFAULT_WORKSPACE;
}

function stateAddress(ctx: Ctx, workspace: string): string {
  return ctx.config.address.replaceAll(WORKSPACE_PLACEHOLDER, workspace);
}

/** One request, noting the answer's `Date` against this machine's clock. */
async function send(ctx: Ctx, method: string, url: string, what: string): Promise<HttpAnswer> {
  const tools = httpTools(ctx);
  const sent = ctx.now();
  const answer = await tools.transport.request(method, url, undefined, what);
  const sample = dateSample("the server", answer.headers.get("date"), sent, ctx.now());
  if (sample) tools.dates.push(sample);
  return answer;
}

/** The reason inside a transport error ("Failed to ...: GET url: <reason> (after ...)"). */
function reasonOf(error: unknown): string {
  const message = messageOf(error);
  return /^Failed to .*?: \S+ \S+: (.*) \(after \d+ attempt\(s\)\)/s.exec(message)?.[1] ??
    message;
}

/** Where a field's value came from, for messages that must not show it. */
function originOf(ctx: Ctx, field: string): string {
  const origin = ctx.resolved?.origins[field];
  return origin === undefined || origin === "default" ? `backend.${field}` : origin;
}

/** `http.reachable`: the server answers a read of the state's address. */
const reachableCheck: Check = {
  name: "http.reachable",
  async run(ctx) {
    let tools: HttpTools;
    try {
      tools = httpTools(ctx);
    } catch (error) {
      if (!(error instanceof BackendConfigError)) throw error;
      return result("fail", error.message, "correct the TLS settings as the message says");
    }
    const workspace = readWorkspace(ctx);
    const url = stateAddress(ctx, workspace);
    const shown = redactUrl(url);
    try {
      tools.read = await send(ctx, "GET", url, `read the state of workspace "${workspace}"`);
    } catch (error) {
      const reason = reasonOf(error);
      if (/certificate|UnknownIssuer|invalid peer/i.test(reason)) {
        return result(
          "fail",
          `cannot connect to ${shown}: the server's TLS certificate is not trusted (${reason})`,
          "put the server's CA certificate (PEM) in backend.client_ca_certificate_pem (or " +
            "TF_HTTP_CLIENT_CA_CERTIFICATE_PEM)",
        );
      }
      return result(
        "fail",
        `cannot reach ${shown} (${reason})`,
        "check that the server is up and that backend.address (or TF_HTTP_ADDRESS) names it",
      );
    }
    const over = url.startsWith("https:") ? "over TLS, certificate verified" : "over plain HTTP";
    return result("ok", `${shown} answered HTTP ${tools.read.status} (${over})`);
  },
};

/** `http.tls`: states and credentials cross the network encrypted. */
const tlsCheck: Check = {
  name: "http.tls",
  run(ctx) {
    const fields = ["address", "lock_address", "unlock_address"] as const;
    const remote = fields.filter((f) => plainHttp(ctx.config[f]) === "remote");
    if (remote.length) {
      return Promise.resolve(result(
        "warn",
        `${remote.map((f) => `backend.${f}`).join(", ")} ${remote.length > 1 ? "are" : "is"} ` +
          "plain HTTP to another machine: states (which hold secrets) and the password cross " +
          "the network unencrypted",
        "use https:// addresses (gaib-state serve: --cert and --key)",
      ));
    }
    const loopback = fields.some((f) => plainHttp(ctx.config[f]) === "loopback");
    return Promise.resolve(result(
      "ok",
      loopback ? "plain HTTP to this machine only" : "every address is https://",
    ));
  },
};

/** `http.credentials`: the server accepts the credentials (they are never shown). */
const credentialsCheck: Check = {
  name: "http.credentials",
  requires: ["http.reachable"],
  run(ctx) {
    const status = httpTools(ctx).read!.status;
    const user = ctx.config.username;
    const inUrl = new URL(stateAddress(ctx, DEFAULT_WORKSPACE)).username !== "";
    const password = `the password (from ${originOf(ctx, "password")}; never shown)`;
    const setBoth = "set backend.username (or TF_HTTP_USERNAME) and the password or token in " +
      "TF_HTTP_PASSWORD (or GAIB_HTTP_PASSWORD)";
    let outcome: CheckOutcome;
    if (status === 401 && user === undefined && !inUrl) {
      outcome = result("fail", "the server requires authentication (HTTP 401)", setBoth);
    } else if (status === 401) {
      outcome = result(
        "fail",
        `the server refused the credentials${user ? ` of user "${user}"` : ""} (HTTP 401)`,
        `check the user name and ${password}`,
      );
    } else if (status === 403) {
      outcome = result(
        "fail",
        `the server denied access${user ? ` to user "${user}"` : ""} (HTTP 403): the ` +
          "credentials are wrong or may not use this state",
        `check ${password}, and that the user may read and write this state (GitLab: a token ` +
          'with the "api" scope, of a Maintainer)',
      );
    } else {
      outcome = result(
        "ok",
        user !== undefined || inUrl
          ? `accepted${user ? ` for user "${user}"` : ""} (values never shown)`
          : "the server asked for none",
      );
    }
    return Promise.resolve(outcome);
  },
};

/** `http.read`: GET answers as Terraform's protocol says (200 a state, 204 or 404 none). */
const readCheck: Check = {
  name: "http.read",
  requires: ["http.credentials"],
  run(ctx) {
    const answer = httpTools(ctx).read!;
    const workspace = readWorkspace(ctx);
    const fixAddress = "check that backend.address is the state's address (GitLab: " +
      ".../api/v4/projects/<id>/terraform/state/<name>)";
    let outcome: CheckOutcome;
    if (answer.status === 204 || answer.status === 404) {
      outcome = result("ok", `no state yet in workspace "${workspace}" (HTTP ${answer.status})`);
    } else if (answer.status >= 300 && answer.status < 400) {
      const to = redactUrl(answer.headers.get("location") ?? "another address");
      outcome = result(
        "fail",
        `the server redirects (HTTP ${answer.status}) to ${to}: gaib-state does not follow ` +
          "redirects, which would send the credentials where the config does not say",
        "put the final address in backend.address",
      );
    } else if (answer.status !== 200) {
      outcome = result(
        "fail",
        `a read answered HTTP ${answer.status}; Terraform's protocol answers 200, 204 or 404`,
        fixAddress,
      );
    } else {
      outcome = judgeState(answer, workspace, fixAddress);
    }
    return Promise.resolve(outcome);
  },
};

/** A 200 answer: its body is a state (or empty) and matches its `Content-MD5`. */
function judgeState(answer: HttpAnswer, workspace: string, fix: string): CheckOutcome {
  const md5 = answer.headers.get("content-md5");
  if (md5 !== null && md5 !== contentMd5(answer.bytes)) {
    return result("fail", "the state's body does not match its Content-MD5", fix);
  }
  try {
    const state = parseStateBytes(answer.bytes, `state of workspace "${workspace}"`);
    if (state === null) return result("ok", `workspace "${workspace}" has an empty state`);
    return result(
      "ok",
      `workspace "${workspace}" has a state (serial ${state.serial}, lineage ${state.lineage})`,
    );
  } catch (error) {
    if (!(error instanceof StateFormatError)) throw error;
    return result(
      "fail",
      `the answer is not a Terraform state (${error.message})`,
      fix,
    );
  }
}

/** `http.workspaces`: each workspace has its own address, and whether the server lists them. */
const workspacesCheck: Check = {
  name: "http.workspaces",
  requires: ["http.credentials"],
  async run(ctx) {
    if (!hasPlaceholder(ctx)) {
      return result(
        "warn",
        `backend.address has no "${WORKSPACE_PLACEHOLDER}": only the "default" workspace ` +
          "exists (as in Terraform)",
        `put "${WORKSPACE_PLACEHOLDER}" in backend.address, lock_address and unlock_address ` +
          "to give each workspace its own state (GitLab: .../terraform/state/" +
          `${WORKSPACE_PLACEHOLDER})`,
      );
    }
    try {
      const names = await httpTools(ctx).backend.listWorkspaces();
      return result("ok", `each workspace has its own address; the server lists ${names.length}`);
    } catch (error) {
      if (!(error instanceof UnsupportedOperationError)) throw error;
      return result(
        "ok",
        "each workspace has its own address; the server cannot list them (Terraform's " +
          'protocol has no listing): "workspace list" says so, and a workspace exists when it ' +
          "has a state",
      );
    }
  },
};

/** A doctor-own workspace name, for a lock nobody else uses. */
function probeWorkspace(): string {
  return `gaib-doctor-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Takes a lock on `workspace`, checks that a second is refused naming the holder and that an
 * unlock with another ID is refused, then releases it. The caller has made sure the lock is
 * nobody else's to lose.
 */
async function probeLock(ctx: Ctx, workspace: string): Promise<CheckOutcome> {
  const backend = httpTools(ctx).backend;
  const options = { operation: "gaib-state doctor", info: "probe lock, released at once" };
  const held = await backend.lock(workspace, options);
  const seen: string[] = ["LOCK granted"];
  const problems: string[] = [];
  try {
    try {
      const second = await backend.lock(workspace, options);
      await backend.unlock(workspace, second.lockId).catch(() => {});
      problems.push(
        "a second LOCK was granted while the first was held: two writers could both " +
          "take the lock",
      );
    } catch (error) {
      if (!(error instanceof StateLockError)) throw error;
      seen.push(
        error.lockInfo?.ID === held.lockId
          ? "a second LOCK refused, naming the holder"
          : "a second LOCK refused (without naming the holder)",
      );
    }
    try {
      await backend.unlock(workspace, crypto.randomUUID());
      problems.push("an UNLOCK with another lock's ID released the lock: anyone could release it");
    } catch (error) {
      // gaib-state serve says why (a StateLockError); another server may send only a status.
      if (!(error instanceof BackendError)) throw error;
      seen.push("an UNLOCK with another ID refused");
    }
  } finally {
    await backend.unlock(workspace, held.lockId).then(
      () => seen.push("UNLOCK granted"),
      (error) => problems.push(`the UNLOCK of the probe lock failed (${messageOf(error)})`),
    );
  }
  const done = `${seen.join("; ")} (on workspace "${workspace}"; no state written)`;
  if (problems.length) {
    return result(
      "fail",
      `${done}. ${problems.join(". ")}`,
      "use a server that keeps Terraform's lock protocol (gaib-state serve, GitLab)",
    );
  }
  return result("ok", done);
}

/** `http.locks`: the lock endpoints grant, refuse and release as the protocol says. */
const locksCheck: Check = {
  name: "http.locks",
  requires: ["http.read"],
  async run(ctx) {
    const missing = (["lock_address", "unlock_address"] as const).filter((f) =>
      ctx.config[f] === undefined
    );
    if (missing.length) {
      return result(
        "warn",
        `no ${missing.join(" or ")}: the server offers no locks, so gaib-state commands that ` +
          "change a state refuse to run (Terraform would write without a lock)",
        `set backend.${missing.join(" and backend.")} (gaib-state serve and GitLab: the ` +
          "address followed by /lock; GitLab also lock_method POST and unlock_method DELETE)",
      );
    }
    const backend = httpTools(ctx).backend;
    if (hasPlaceholder(ctx)) {
      // A workspace of the doctor's own: no one else's lock or state is touched.
      const workspace = probeWorkspace();
      if (await backend.getState(workspace) !== null) {
        return result("skipped", `workspace "${workspace}" unexpectedly has a state`);
      }
      try {
        return await probeLock(ctx, workspace);
      } finally {
        // A server that keeps a record per locked name (GitLab) keeps none of the probe's.
        const url = stateAddress(ctx, workspace);
        await send(ctx, "DELETE", url, `remove the probe workspace "${workspace}"`)
          .catch(() => {});
      }
    }
    // Without ${workspace} the only lock is the real state's: probe it only when the server
    // says nobody holds it, and release it at once.
    let holder;
    try {
      holder = await backend.getLockInfo(DEFAULT_WORKSPACE);
    } catch (error) {
      if (!(error instanceof UnsupportedOperationError)) throw error;
      return result(
        "skipped",
        `backend.address has no "${WORKSPACE_PLACEHOLDER}", so the only lock is the state's ` +
          "own, and the server cannot report whether someone holds it: doctor does not lock a " +
          "state it cannot see",
        `put "${WORKSPACE_PLACEHOLDER}" in the addresses, so that doctor probes a lock of its ` +
          "own",
      );
    }
    if (holder !== null) {
      return result(
        "skipped",
        `the state is locked (lock ID ${holder.ID}, ${holder.Who}, ${holder.Operation}): ` +
          "doctor never touches a held lock",
        'run "gaib-state doctor" again when it is released',
      );
    }
    return await probeLock(ctx, DEFAULT_WORKSPACE);
  },
};

/**
 * `clock`: this machine's clock against the server's `Date` header. The server's locks do not
 * depend on it (they have no lease this machine judges), so a skew only warns.
 */
const clockCheck: Check = {
  name: "clock",
  requires: ["http.reachable"],
  run(ctx) {
    return Promise.resolve(judgeClockSkew(httpTools(ctx).dates, ctx.leaseMs, {
      status: "warn",
      consequence: "the ages of locks that gaib-state shows are off by as much (the server " +
        "judges its own locks, and gaib-state serve its --lock-ttl, by its own clock)",
    }));
  },
};

/** The HTTP backend's doctor: its checks in order (it has nothing to bootstrap). */
export const httpDoctor: BackendDoctor<HttpBackendConfig> = {
  checks: [
    reachableCheck,
    tlsCheck,
    credentialsCheck,
    readCheck,
    workspacesCheck,
    locksCheck,
    clockCheck,
  ],
};
