/**
 * `gaib-state serve`: the configured backend behind Terraform's `http` backend protocol
 * (`../_state_server.ts`), on `Deno.serve`, so that Terraform and OpenTofu keep their state in
 * any gaib-state backend under gaib-state's locks and write rules.
 *
 * Credentials come from `GAIB_SERVE_USERNAME` and `GAIB_SERVE_PASSWORD` only (never from the
 * command line, where `ps` shows them); without them the server listens on loopback only.
 * SIGINT and SIGTERM stop it gracefully: no new connection is accepted, requests in flight
 * (writes included) finish, and locks that clients took stay held: they are theirs.
 *
 * @module
 */

import { BasicAuth } from "../_basic_auth.ts";
import { createStateHandler } from "../_state_server.ts";
import { type CommandRun, type GlobalFlags, handler } from "./_context.ts";
import { formatDuration } from "./_duration.ts";
import { CliError, UsageError } from "./_errors.ts";
import { printable } from "../_printable.ts";
import { openSession } from "./_session.ts";
import { DEFAULT_MAX_BODY } from "./_size.ts";

/** `host:port` or `[v6]:port`. */
function parseListen(text: string): { hostname: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 0 && port <= 65535)) {
    throw new UsageError(
      `--listen takes HOST:PORT, such as 127.0.0.1:8080 or [::1]:8080; found ${
        JSON.stringify(text.slice(0, 60))
      }.`,
    );
  }
  return { hostname: match[1] ?? match[2], port };
}

/** Whether a listen address is this machine's loopback only. */
function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** The credentials of the environment: both or neither. */
function authFromEnvironment(): BasicAuth | undefined {
  const read = (name: string) => {
    try {
      return Deno.env.get(name) || undefined;
    } catch {
      return undefined;
    }
  };
  const username = read("GAIB_SERVE_USERNAME");
  const password = read("GAIB_SERVE_PASSWORD");
  if ((username === undefined) !== (password === undefined)) {
    throw new UsageError(
      `${username === undefined ? "GAIB_SERVE_USERNAME" : "GAIB_SERVE_PASSWORD"} is not set, ` +
        "but the other is: set both (HTTP basic authentication) or neither.",
    );
  }
  return username === undefined ? undefined : new BasicAuth(username, password!);
}

/** The flags of `serve`. */
interface ServeFlags extends GlobalFlags {
  listen: string;
  cert?: string;
  key?: string;
  maxBodySize?: number;
  lockTtl?: number;
}

/** `serve [--listen 127.0.0.1:8080] [--cert FILE --key FILE] [--max-body-size 256MiB]`. */
export const serve = handler(async ({ out }: CommandRun, flags: ServeFlags) => {
  const { hostname, port } = parseListen(flags.listen);
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new UsageError("--cert and --key go together: give both files for TLS, or neither.");
  }
  const auth = authFromEnvironment();
  if (auth === undefined && !isLoopback(hostname)) {
    throw new UsageError(
      `Refusing to serve states on ${hostname}, which is not this machine's loopback, without ` +
        "authentication: anyone who can reach it could read every state and its secrets. Set " +
        "GAIB_SERVE_USERNAME and GAIB_SERVE_PASSWORD (and use --cert/--key), or listen on " +
        "127.0.0.1.",
    );
  }
  const tls = flags.cert !== undefined
    ? { cert: await Deno.readTextFile(flags.cert), key: await Deno.readTextFile(flags.key!) }
    : undefined;
  await using session = await openSession(flags, out, { workspace: "any" });
  const maxBodyBytes = flags.maxBodySize ?? DEFAULT_MAX_BODY;
  const handle = createStateHandler(session.backend, {
    auth,
    maxBodyBytes,
    lockTtlMs: flags.lockTtl,
    log: (line) => out.info(line),
  });
  // Deno's shutdown() cuts off request bodies still arriving, so the requests in flight are
  // awaited here first; a request that arrives meanwhile gets 503, which clients retry.
  const inFlight = new Set<Promise<Response>>();
  let stopping = false;
  const serveOne = (request: Request, info: Deno.ServeHandlerInfo): Promise<Response> => {
    if (stopping) {
      return Promise.resolve(
        new Response('{"error":{"type":"BackendError","message":"The server is stopping."}}', {
          status: 503,
          headers: { "content-type": "application/json", connection: "close" },
        }),
      );
    }
    // With --verbose, the start of each request too (the access log line comes at its end).
    out.debug(`started "${printable(request.method)} ${printable(new URL(request.url).pathname)}"`);
    const handled = handle(request, info);
    inFlight.add(handled);
    handled.finally(() => inFlight.delete(handled)).catch(() => {});
    return handled;
  };
  const stopped = Promise.withResolvers<"SIGINT" | "SIGTERM">();
  const listeners = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const listener = () => stopped.resolve(signal);
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  try {
    const listening = Promise.withResolvers<Deno.NetAddr>();
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname,
        port,
        ...tls,
        onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
      }, serveOne);
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse || error instanceof Deno.errors.AddrNotAvailable) {
        throw new CliError(
          `Cannot listen on ${flags.listen}: ${
            error instanceof Deno.errors.AddrInUse
              ? "another program uses that port"
              : "that address is not one of this machine's"
          }. Choose another with --listen HOST:PORT.`,
        );
      }
      throw error;
    }
    const addr = await listening.promise;
    const scheme = tls ? "https:" : "http:";
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    out.info(
      `Serving the ${session.resolved.config.type} backend on ${scheme}//${host}:${addr.port}/` +
        ` (states at /<workspace>, locks at /<workspace>/lock; ` +
        `${auth ? "basic authentication" : "no authentication, loopback only"}; bodies up to ` +
        `${maxBodyBytes} bytes; locks ${
          flags.lockTtl ? `expire after ${formatDuration(flags.lockTtl)}` : "last until unlocked"
        }). Stop with Ctrl-C.`,
    );
    const signal = await stopped.promise;
    stopping = true;
    out.info(
      `${signal}: finishing the ${inFlight.size} request(s) in flight; locks held by clients ` +
        "stay held.",
    );
    await Promise.allSettled([...inFlight]);
    await server.shutdown();
    out.info("Stopped.");
  } finally {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
});
