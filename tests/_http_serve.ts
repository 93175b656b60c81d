/**
 * `gaib-state serve`'s handler on 127.0.0.1 in the test process, over a backend the test
 * chooses, and HTTP backend clients pointed at it.
 *
 * @module
 */

import { createStateHandler, type StateHandlerOptions } from "../src/_state_server.ts";
import { HttpBackend, type HttpBackendOptions } from "../src/backends/http.ts";
import type { HttpBackendConfig } from "../src/config.ts";
import type { StateBackend } from "../src/types.ts";

/** A running server. */
export interface TestServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** The access log lines so far. */
  log: string[];
  /** A client config for the served backend, `${workspace}` in its addresses. */
  config(extra?: Partial<HttpBackendConfig>): HttpBackendConfig;
  /** A client of the server; closed with the server. */
  client(extra?: Partial<HttpBackendConfig>, options?: HttpBackendOptions): HttpBackend;
}

/**
 * Serves `backend` on a free loopback port.
 *
 * @param backend the backend to serve (closed with the server)
 * @param options the handler's options (the body limit defaults to 256 MiB)
 */
export function serveBackend(
  backend: StateBackend,
  options: Partial<StateHandlerOptions> = {},
): TestServer {
  const log: string[] = [];
  const handler = createStateHandler(backend, {
    maxBodyBytes: 256 * 1024 * 1024,
    log: (line) => log.push(line),
    ...options,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  const origin = `http://127.0.0.1:${server.addr.port}`;
  const clients: HttpBackend[] = [];
  const config = (extra: Partial<HttpBackendConfig> = {}): HttpBackendConfig => ({
    type: "http",
    address: `${origin}/\${workspace}`,
    lock_address: `${origin}/\${workspace}/lock`,
    unlock_address: `${origin}/\${workspace}/lock`,
    retry_wait_min: 0,
    retry_wait_max: 0,
    ...extra,
  });
  return {
    origin,
    log,
    config,
    client(extra = {}, clientOptions = {}) {
      const client = new HttpBackend(config(extra), clientOptions);
      clients.push(client);
      return client;
    },
    async [Symbol.asyncDispose]() {
      for (const client of clients) await client.close();
      await server.shutdown();
      await backend.close();
    },
  };
}
