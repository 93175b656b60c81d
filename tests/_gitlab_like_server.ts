/**
 * A loopback server that speaks only the part of Terraform's HTTP protocol GitLab's managed
 * Terraform state offers (`lib/api/terraform/state.rb` in gitlab-org/gitlab): GET, POST and
 * DELETE on `/state/<name>`, POST and DELETE on `/state/<name>/lock`. No listing of the
 * states and no GET of a lock (405, as Grape answers a method the route lacks); a busy lock
 * and a write or unlock with another lock's ID are 409 with the holder's LockInfo; basic auth
 * when a password is given. In memory: enough to run gaib-state's CLI against a server that
 * cannot list workspaces or report locks.
 *
 * @module
 */

import type { HttpBackendConfig } from "../src/config.ts";

interface Stored {
  text?: string;
  lock?: { ID: string; text: string };
}

/** A running server. */
export interface GitlabLikeServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** Every request as `METHOD /path`, in order. */
  requests: string[];
  /** The client config GitLab's documentation gives, `${workspace}` in its addresses. */
  config(): HttpBackendConfig;
  /** The state names that have a record (created by a write or a lock, as in GitLab). */
  names(): string[];
}

/**
 * Starts the server on a free loopback port.
 *
 * @param credentials the basic-auth user and password it requires, if any
 */
export function startGitlabLikeServer(
  credentials?: { username: string; password: string },
): GitlabLikeServer {
  const states = new Map<string, Stored>();
  const requests: string[] = [];
  const expected = credentials &&
    `Basic ${btoa(`${credentials.username}:${credentials.password}`)}`;
  const handler = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    requests.push(`${request.method} ${url.pathname}`);
    if (expected && request.headers.get("authorization") !== expected) {
      return new Response("401 Unauthorized", { status: 401 });
    }
    const match = /^\/state\/([A-Za-z0-9_.-]+)(\/lock)?$/.exec(url.pathname);
    if (!match) return new Response('{"error":"404 Not Found"}', { status: 404 });
    const [, name, lockPath] = match;
    const stored = states.get(name);
    const body = request.body ? await request.text() : "";
    const conflict = (lock: { text: string }) =>
      new Response(lock.text, { status: 409, headers: { "content-type": "application/json" } });
    if (lockPath) {
      if (request.method === "POST") {
        if (stored?.lock) return conflict(stored.lock);
        const id = JSON.parse(body).ID as string;
        states.set(name, { ...stored, lock: { ID: id, text: body } });
        return new Response("", { status: 200 });
      }
      if (request.method === "DELETE") {
        const id = url.searchParams.get("ID") ?? (body ? JSON.parse(body).ID : undefined);
        if (stored?.lock && id !== undefined && id !== stored.lock.ID) {
          return conflict(stored.lock);
        }
        if (stored) delete stored.lock;
        return new Response("", { status: 200 });
      }
      return new Response('{"error":"405 Not Allowed"}', { status: 405 });
    }
    switch (request.method) {
      case "GET":
        if (!stored) return new Response('{"message":"404 Not Found"}', { status: 404 });
        if (stored.text === undefined) return new Response(null, { status: 204 });
        return new Response(stored.text, { status: 200 });
      case "POST": {
        const id = url.searchParams.get("ID");
        if (stored?.lock && id !== stored.lock.ID) return conflict(stored.lock);
        states.set(name, { ...stored, text: body });
        return new Response("", { status: 200 });
      }
      case "DELETE":
        if (!stored) return new Response('{"message":"404 Not Found"}', { status: 404 });
        if (stored.lock && url.searchParams.get("ID") !== stored.lock.ID) {
          return conflict(stored.lock);
        }
        states.delete(name);
        return new Response("", { status: 200 });
      default:
        return new Response('{"error":"405 Not Allowed"}', { status: 405 });
    }
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  const origin = `http://127.0.0.1:${server.addr.port}`;
  return {
    origin,
    requests,
    config: () => ({
      type: "http",
      address: `${origin}/state/\${workspace}`,
      lock_address: `${origin}/state/\${workspace}/lock`,
      unlock_address: `${origin}/state/\${workspace}/lock`,
      lock_method: "POST",
      unlock_method: "DELETE",
      retry_max: 0,
      ...(credentials ? { username: credentials.username, password: credentials.password } : {}),
    }),
    names: () => [...states.keys()].sort(),
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}
