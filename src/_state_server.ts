/**
 * The request handler of `gaib-state serve`: any backend behind Terraform's `http` backend
 * protocol, as Terraform's client speaks it (`internal/backend/remote-state/http/client.go`):
 *
 * | path              | method                        | does                                   |
 * | ----------------- | ----------------------------- | -------------------------------------- |
 * | `/<ws>`           | GET                           | 200 the state, 204 none                |
 * | `/<ws>`           | POST, PUT (`?ID=`, `?force=`) | write through `setState`: 200          |
 * | `/<ws>`           | DELETE (`?ID=`, `?force=`)    | `deleteState`: 200                     |
 * | `/<ws>`, `/<ws>/lock` | LOCK; POST, PUT on `/lock` | lock with the client's LockInfo: 200, 423 + holder |
 * | `/<ws>`, `/<ws>/lock` | UNLOCK; DELETE on `/lock`  | unlock by the LockInfo's ID: 200       |
 * | `/<ws>/lock`      | GET                           | the lock (200) or 204 (an extension)   |
 * | `/`               | GET                           | `{"workspaces": [...]}` (an extension) |
 *
 * Every write goes through the backend's rules (lock ID, lineage, serial); a refusal is 409
 * (423 with the holder's LockInfo for a lock in the way), with a body `encodeErrorBody`
 * describes. A lock is taken detached, with the client's lock ID: it belongs to the client
 * and outlives the server (`lockTtlMs` bounds it). An UNLOCK without a body is Terraform's
 * `force-unlock` (its client sends no LockInfo then, client.go line 131), one whose LockInfo
 * has the ID alone is OpenTofu's.
 *
 * @module
 */

import { BackendError, StateFormatError, StateLockError } from "./errors.ts";
import { LOCK_ID_PATTERN, pickLockInfo } from "./lock.ts";
import { printable } from "./_printable.ts";
import { redactUrlsInText } from "./_url.ts";
import { parseStateBytes, serializeState as serialize } from "./state.ts";
import type { LockInfo, LockOptions, StateBackend } from "./types.ts";
import { checkDeletable, DEFAULT_WORKSPACE, validateWorkspaceName } from "./workspace.ts";
import { encodeErrorBody } from "./backends/_http_protocol.ts";
import { contentMd5 } from "./backends/_http_transport.ts";
import type { BasicAuth } from "./_basic_auth.ts";

/** Options of {@linkcode createStateHandler}. */
export interface StateHandlerOptions {
  /** Credentials every request must carry; `undefined` serves without authentication. */
  auth?: BasicAuth;
  /** The largest request body, in bytes. */
  maxBodyBytes: number;
  /** How long a lock taken through the server lasts; `undefined`: until unlocked. */
  lockTtlMs?: number;
  /** Receives one access log line per request (no body, no query, no credentials). */
  log?: (line: string) => void;
}

/** The largest LockInfo body read. */
const MAX_LOCK_BODY = 64 * 1024;

class HttpRefusal extends Error {
  constructor(readonly status: number, message: string, readonly headers: HeadersInit = {}) {
    super(message);
  }
}

function json(status: number, body: string, headers: HeadersInit = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function refusal(status: number, message: string, headers: HeadersInit = {}): Response {
  return json(status, JSON.stringify({ error: { type: "BackendError", message } }), headers);
}

/** The status of an error the backend threw. */
function statusOf(error: BackendError): number {
  if (error instanceof StateLockError) return error.lockInfo !== null ? 423 : 409;
  // A stored state that cannot be read: the request was fine, the data is not.
  if (error instanceof StateFormatError) return 422;
  if (error.name === "BackendConfigError") return 400;
  if (error.name === "BackendError") return 500; // the store failed: worth a retry
  return 409; // lineage, serial, workspace not empty
}

/** Reads a body of at most `max` bytes; 413 beyond. */
async function readBody(request: Request, max: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  const tooLarge = () =>
    new HttpRefusal(
      413,
      `The body is larger than the server's limit of ${max} bytes (gaib-state serve ` +
        "--max-body-size).",
    );
  if (Number.isFinite(declared) && declared > max) throw tooLarge();
  if (request.body === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.length;
    if (size > max) throw tooLarge();
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Checks a body against its Content-MD5, when it has one (client.go lines 65-68). */
function checkMd5(request: Request, body: Uint8Array): void {
  const sent = request.headers.get("content-md5");
  if (sent !== null && sent !== contentMd5(body)) {
    throw new HttpRefusal(400, "The body does not match its Content-MD5; nothing was changed.");
  }
}

/** The client's LockInfo: Terraform's JSON, with an ID the backend can record. */
function readLockInfo(body: Uint8Array): LockInfo | null {
  if (body.length === 0) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw new HttpRefusal(400, "The body is not Terraform's LockInfo JSON.");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new HttpRefusal(400, "The body is not Terraform's LockInfo JSON object.");
  }
  const info = pickLockInfo(doc as Record<string, unknown>);
  if (!LOCK_ID_PATTERN.test(info.ID)) {
    throw new HttpRefusal(
      400,
      'The LockInfo has no usable "ID" (1 to 128 letters, digits or "-._:").',
    );
  }
  return info;
}

/**
 * The handler for `Deno.serve`.
 *
 * @param backend the backend to serve
 * @param options authentication, body limit, lock TTL, access log
 * @returns the handler
 */
export function createStateHandler(
  backend: StateBackend,
  options: StateHandlerOptions,
): (request: Request, info: Deno.ServeHandlerInfo) => Promise<Response> {
  const lockOptions = (info: LockInfo): LockOptions => ({
    id: info.ID,
    who: info.Who,
    operation: info.Operation || "lock",
    info: info.Info,
    detached: true,
    ...(options.lockTtlMs !== undefined ? { ttlMs: options.lockTtlMs } : {}),
  });

  async function lock(workspace: string, body: Uint8Array): Promise<Response> {
    const info = readLockInfo(body);
    if (info === null) throw new HttpRefusal(400, "A lock request needs Terraform's LockInfo.");
    try {
      const result = await backend.lock(workspace, lockOptions(info));
      return json(200, JSON.stringify(result.lockInfo));
    } catch (error) {
      // The same lock again: a client retrying a request whose answer it lost.
      if (error instanceof StateLockError && error.lockInfo?.ID === info.ID) {
        return json(200, JSON.stringify(error.lockInfo));
      }
      throw error;
    }
  }

  async function unlock(workspace: string, body: Uint8Array, force: boolean): Promise<Response> {
    const info = readLockInfo(body);
    if (info === null) {
      // Terraform's force-unlock sends no LockInfo: release the current lock.
      const current = await backend.getLockInfo(workspace);
      if (current === null) {
        throw new HttpRefusal(409, `Workspace "${workspace}" is not locked.`);
      }
      await backend.forceUnlock(workspace, current.ID);
    } else if (force || (info.Who === "" && info.Operation === "" && info.Created === "")) {
      // `?force=true` (gaib-state's force-unlock), or OpenTofu's force-unlock, which sends a
      // LockInfo with the ID alone (opentofu internal/backend/remote-state/http/client.go,
      // Unlock): release the lock with that ID whoever holds it.
      await backend.forceUnlock(workspace, info.ID);
    } else {
      await backend.unlock(workspace, info.ID);
    }
    return new Response(null, { status: 200 });
  }

  async function route(request: Request, url: URL, rawPath: string): Promise<Response> {
    // The path as sent: the URL parser would turn "/%2e%2e" into "/" (a dot segment).
    const parts = rawPath.split("/").slice(1);
    const method = request.method.toUpperCase();
    if (parts.length === 1 && parts[0] === "") {
      if (method !== "GET") {
        throw new HttpRefusal(405, "Only GET lists the workspaces.", { allow: "GET" });
      }
      return json(200, JSON.stringify({ workspaces: await backend.listWorkspaces() }));
    }
    const onLock = parts.length === 2 && parts[1] === "lock";
    if (parts.length !== 1 && !onLock) {
      throw new HttpRefusal(404, "No such path: use /<workspace> or /<workspace>/lock.");
    }
    // The raw segment: a valid name equals its path-escaped form, so "%2e%2e" is refused too.
    const workspace = validateWorkspaceName(parts[0]);
    const lockId = url.searchParams.get("ID") ?? undefined;
    const force = url.searchParams.get("force") === "true";
    if (onLock) {
      switch (method) {
        case "GET": {
          const info = await backend.getLockInfo(workspace);
          return info === null
            ? new Response(null, { status: 204 })
            : json(200, JSON.stringify(info));
        }
        case "LOCK":
        case "POST":
        case "PUT":
          return await lock(workspace, await readBody(request, MAX_LOCK_BODY));
        case "UNLOCK":
        case "DELETE":
          return await unlock(workspace, await readBody(request, MAX_LOCK_BODY), force);
        default:
          throw new HttpRefusal(405, `${printable(method)} is not a lock method.`, {
            allow: "GET, LOCK, POST, PUT, UNLOCK, DELETE",
          });
      }
    }
    switch (method) {
      case "GET": {
        const state = await backend.getState(workspace);
        if (state === null) return new Response(null, { status: 204 });
        const bytes = new TextEncoder().encode(serialize(state));
        return new Response(bytes, {
          status: 200,
          headers: { "content-type": "application/json", "content-md5": contentMd5(bytes) },
        });
      }
      case "POST":
      case "PUT": {
        const body = await readBody(request, options.maxBodyBytes);
        checkMd5(request, body);
        let state;
        try {
          state = parseStateBytes(body, "uploaded state");
        } catch (error) {
          if (error instanceof StateFormatError) throw new HttpRefusal(400, error.message);
          throw error;
        }
        if (state === null) throw new HttpRefusal(400, "The uploaded state is empty.");
        await backend.setState(workspace, state, { lockId, force });
        return new Response(null, { status: 200 });
      }
      case "DELETE":
        // Refusals the backend reports as plain BackendErrors, which would read as failures.
        try {
          if (workspace === DEFAULT_WORKSPACE) checkDeletable(workspace, "this server", true);
          checkDeletable(
            workspace,
            "this server",
            (await backend.listWorkspaces()).includes(workspace),
          );
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          throw new HttpRefusal(workspace === DEFAULT_WORKSPACE ? 409 : 404, message);
        }
        await backend.deleteState(workspace, { lockId, force });
        return new Response(null, { status: 200 });
      case "LOCK":
        return await lock(workspace, await readBody(request, MAX_LOCK_BODY));
      case "UNLOCK":
        return await unlock(workspace, await readBody(request, MAX_LOCK_BODY), force);
      default:
        throw new HttpRefusal(405, `${printable(method)} is not a state method.`, {
          allow: "GET, POST, PUT, DELETE, LOCK, UNLOCK",
        });
    }
  }

  return async (request, info) => {
    const started = performance.now();
    const url = new URL(request.url);
    const rawPath = request.url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, "").split(/[?#]/)[0] ||
      "/";
    let response: Response;
    if (options.auth && !(await options.auth.accepts(request.headers.get("authorization")))) {
      response = refusal(401, "Authentication required.", {
        "www-authenticate": 'Basic realm="gaib-state", charset="UTF-8"',
      });
    } else {
      try {
        response = await route(request, url, rawPath);
      } catch (error) {
        if (error instanceof HttpRefusal) {
          response = refusal(error.status, error.message, error.headers);
        } else if (error instanceof BackendError) {
          response = json(statusOf(error), encodeErrorBody(error));
        } else {
          response = refusal(500, "Internal error; see the server's log.");
          console.error(
            `gaib-state serve: ${
              redactUrlsInText(error instanceof Error ? error.message : String(error))
            }`,
          );
        }
      }
    }
    if (options.log) {
      const remote = "hostname" in info.remoteAddr ? info.remoteAddr.hostname : "-";
      options.log(
        `${new Date().toISOString()} ${remote} "${printable(request.method)} ${
          printable(rawPath.slice(0, 200))
        }" ${response.status} ${Math.round(performance.now() - started)}ms`,
      );
    }
    return response;
  };
}
