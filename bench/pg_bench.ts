/**
 * Round trips and statements of the PostgreSQL backend, counted on the wire by a loopback
 * proxy between the backend and the server: a locked read-modify-write (lock, getState,
 * setState, unlock) with a 4 KB and a 45 MB state, in a fresh backend (as each CLI command is)
 * and in a warm one, and `listWorkspaces` with 1,000 workspaces; beside them Terraform's and
 * OpenTofu's sequence for the same operation, counted from their source.
 *
 *   deno run --allow-all bench/pg_bench.ts
 *
 * A round trip is a turn of the conversation: the client sends after the server has answered.
 * Statements are the Execute and Query messages the client sends. Uses the server in
 * `GAIB_TEST_PG` (as printed by `GAIB_TEST_SERVERS=pg deno run -A tests/run.ts --serve`), or
 * starts its own.
 *
 * @module
 */

import { PgBackend } from "../src/backends/pg.ts";
import { createEmptyState, serializeState } from "../src/state.ts";
import type { GaibState } from "../src/types.ts";
import { pgServer, startPgServer, tempDatabase } from "../tests/_pg_server.ts";
import { loadLargeFixture } from "../tests/reliability/_states.ts";

/** Counts what passes through: turns, and the client's statements by message type. */
class CountingProxy implements AsyncDisposable {
  readonly port: number;
  turns = 0;
  statements = 0;
  #listener: Deno.Listener;
  #lastFromServer = true;

  constructor(target: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#serve(target);
  }

  reset(): void {
    this.turns = 0;
    this.statements = 0;
  }

  async #serve(target: number): Promise<void> {
    for await (const client of this.#listener) {
      const server = await Deno.connect({ hostname: "127.0.0.1", port: target });
      // A streaming parse of the client's messages: a type byte and a length (the start-up
      // message has no type); bodies are skipped, never buffered.
      let started = false;
      let skip = 0;
      let header = new Uint8Array(0);
      const count = (chunk: Uint8Array) => {
        let at = 0;
        while (at < chunk.length) {
          if (skip > 0) {
            const n = Math.min(skip, chunk.length - at);
            skip -= n;
            at += n;
            continue;
          }
          const need = started ? 5 : 4;
          const take = Math.min(need - header.length, chunk.length - at);
          const next = new Uint8Array(header.length + take);
          next.set(header);
          next.set(chunk.subarray(at, at + take), header.length);
          header = next;
          at += take;
          if (header.length < need) break;
          const view = new DataView(header.buffer);
          if (!started) {
            skip = view.getInt32(0) - 4;
            started = true;
          } else {
            const type = String.fromCharCode(header[0]);
            if (type === "E" || type === "Q") this.statements++;
            skip = view.getInt32(1) - 4;
          }
          header = new Uint8Array(0);
        }
      };
      const up = (async () => {
        for await (const chunk of client.readable) {
          if (this.#lastFromServer) this.turns++;
          this.#lastFromServer = false;
          count(chunk);
          const w = server.writable.getWriter();
          await w.write(chunk);
          w.releaseLock();
        }
      })().catch(() => {});
      const down = (async () => {
        for await (const chunk of server.readable) {
          this.#lastFromServer = true;
          const w = client.writable.getWriter();
          await w.write(chunk);
          w.releaseLock();
        }
      })().catch(() => {});
      Promise.all([up, down]).finally(() => {
        try {
          client.close();
        } catch { /* closed */ }
        try {
          server.close();
        } catch { /* closed */ }
      });
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    return Promise.resolve();
  }
}

/** A state of about `kb` KB. */
function sizedState(kb: number): GaibState {
  return {
    ...createEmptyState(),
    outputs: { blob: { value: "x".repeat(kb * 1024 - 200), type: "string" } },
  };
}

interface Counts {
  turns: number;
  statements: number;
  ms: number;
}

async function measure(proxy: CountingProxy, fn: () => Promise<unknown>): Promise<Counts> {
  proxy.reset();
  const started = performance.now();
  await fn();
  return { turns: proxy.turns, statements: proxy.statements, ms: performance.now() - started };
}

/** One locked read-modify-write; returns counts per step. */
async function cycle(
  proxy: CountingProxy,
  backend: PgBackend,
  next: (s: GaibState | null) => GaibState,
): Promise<Record<string, Counts>> {
  const out: Record<string, Counts> = {};
  let lockId = "";
  out.lock = await measure(proxy, async () => {
    lockId = (await backend.lock("default")).lockId;
  });
  let state: GaibState | null = null;
  out.getState = await measure(proxy, async () => {
    state = await backend.getState("default");
  });
  out.setState = await measure(proxy, () => backend.setState("default", next(state), { lockId }));
  out.unlock = await measure(proxy, () => backend.unlock("default", lockId));
  return out;
}

function total(steps: Record<string, Counts>): Counts {
  return Object.values(steps).reduce(
    (a, b) => ({
      turns: a.turns + b.turns,
      statements: a.statements + b.statements,
      ms: a.ms + b.ms,
    }),
    { turns: 0, statements: 0, ms: 0 },
  );
}

function line(name: string, steps: Record<string, Counts>): string {
  const all = total(steps);
  const parts = Object.entries(steps).map(([k, v]) => `${k} ${v.turns}/${v.statements}`);
  return `${name}: ${all.turns} round trips, ${all.statements} statements, ` +
    `${all.ms.toFixed(0)} ms (${parts.join(", ")}; round trips/statements)`;
}

async function main(): Promise<void> {
  const shared = pgServer();
  await using own = shared ? null : await startPgServer();
  const info = shared ?? own!.info;
  await using db = await tempDatabase(info);
  await using proxy = new CountingProxy(info.port);
  const connStr = db.connStr.replace(`:${info.port}/`, `:${proxy.port}/`);
  const lines: string[] = [];

  for (
    const [label, make] of [["4 KB", () => sizedState(4)], ["45 MB", loadLargeFixture]] as const
  ) {
    const base = await make();
    const size = new TextEncoder().encode(serializeState(base)).length;
    // Seed it, so that the cycle updates an existing row.
    {
      const seeding = new PgBackend({ type: "pg", conn_str: connStr });
      await seeding.setState("default", { ...base, serial: 1 }, { force: true });
      await seeding.close();
    }
    const bump = (s: GaibState | null) => ({ ...(s ?? base), serial: (s?.serial ?? 1) + 1 });
    // Fresh: a new backend, as every CLI command is (connection start-up counted apart).
    const fresh = new PgBackend({ type: "pg", conn_str: connStr });
    const connect = await measure(proxy, () => fresh.isConfigured());
    const first = await cycle(proxy, fresh, bump);
    const warm = await cycle(proxy, fresh, bump);
    await fresh.close();
    lines.push(
      `state ${label} (${(size / 1e6).toFixed(2)} MB):`,
      `  connect and check the tables: ${connect.turns} round trips, ${connect.statements} ` +
        `statements, ${connect.ms.toFixed(0)} ms`,
      `  ${line("locked read-modify-write, fresh backend", first)}`,
      `  ${line("locked read-modify-write, warm backend", warm)}`,
    );
  }

  {
    const seeding = new PgBackend({ type: "pg", conn_str: db.connStr });
    await seeding.isConfigured();
    await seeding.close();
    const { default: postgres } = await import("postgres");
    const admin = postgres(db.connStr, { max: 1, onnotice: () => {} });
    await admin.unsafe(
      `INSERT INTO terraform_remote_state.states (name, data)
       SELECT 'ws-' || g, '' FROM generate_series(1, 1000) g ON CONFLICT (name) DO NOTHING`,
    );
    await admin.end();
    const backend = new PgBackend({ type: "pg", conn_str: connStr });
    await backend.isConfigured();
    let names: string[] = [];
    const fresh = await measure(proxy, async () => {
      names = await backend.listWorkspaces();
    });
    const warm = await measure(proxy, () => backend.listWorkspaces());
    await backend.close();
    lines.push(
      `listWorkspaces with ${names.length} workspaces: ${fresh.statements} statement, ` +
        `${fresh.turns} round trips (first call), ${warm.turns} (warm); ` +
        `${fresh.ms.toFixed(0)} / ${warm.ms.toFixed(0)} ms`,
    );
  }

  lines.push(
    "Terraform's sequence for one locked read-modify-write of an existing workspace (from " +
      "internal/backend/remote-state/pg, lib/pq: 2 round trips for a statement with parameters, " +
      "1 without):",
    "  Configure: schema check 2, CREATE SEQUENCE 1, CREATE TABLE 1, CREATE INDEX 1; " +
      "StateMgr's Workspaces 1; Lock 2 + creation-lock release 1; Get 2; Put 2; Unlock 1 = " +
      "14 round trips, 10 statements",
    "  OpenTofu: the same, but the creation-lock release and Unlock take a parameter " +
      "(2 each) = 16 round trips, 10 statements",
    "  Workspaces (listing): 1 statement, 1 round trip",
  );
  console.log(lines.join("\n"));
}

if (import.meta.main) await main();
