/**
 * An in-memory lock store for the lock engine's tests, with what real stores do to a client:
 * answers that take a while (random, from a seeded generator, so that a failing interleaving
 * can be replayed), a connection that drops, an answer lost after the write landed, a request
 * sent twice. A fake clock drives leases and renewals.
 *
 * Everything runs on promises and microtasks: no timers, so no test waits on the wall clock.
 *
 * @module
 */

import type { Lease } from "../src/_lease.ts";
import type { LockClock } from "../src/_lock_engine.ts";
import type { CreateResult, LockRecord, LockStore, StoredLock } from "../src/_lock_store.ts";
import type { LockInfo } from "../src/types.ts";

/** A seeded pseudo-random generator (mulberry32): the same seed gives the same sequence. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Waits `turns` microtask turns: long enough for other contenders to get a step in. */
export async function yieldTurns(turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

/** A delay before and after each operation: up to `maxTurns` microtask turns, from `random`. */
export function jitter(random: () => number, maxTurns = 20): () => Promise<void> {
  return () => yieldTurns(Math.floor(random() * (maxTurns + 1)));
}

interface Entry {
  info: LockInfo;
  lease: Lease | null;
  version: string;
}

/** The server side: one record per key, each operation atomic. */
export class MemoryLockStore {
  readonly label: string;
  readonly #entries = new Map<string, Entry>();
  readonly #delay: () => Promise<void>;
  #versions = 0;
  #waiters: (() => void)[] = [];

  /**
   * @param label the store's label
   * @param delay awaited before and after each operation
   */
  constructor(label: string, delay: () => Promise<void> = () => Promise.resolve()) {
    this.label = label;
    this.#delay = delay;
  }

  /** The record of `key` as stored, or `null`. */
  peek(key: string): StoredLock | null {
    const entry = this.#entries.get(key);
    return entry ? structuredClone(entry) : null;
  }

  /** Stores a record directly, as another tool would (Terraform's lock has no lease). */
  put(key: string, info: LockInfo, lease: Lease | null): void {
    this.#set(key, { info: structuredClone(info), lease: structuredClone(lease), version: "" });
  }

  /** Resolves at the next change of any record. */
  nextChange(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Resolves once the record of `key` passes `test` (now or after a later change). */
  async until(key: string, test: (record: StoredLock | null) => boolean): Promise<void> {
    while (!test(this.peek(key))) await this.nextChange();
  }

  #set(key: string, entry: Entry | null): string {
    const version = `v${++this.#versions}`;
    if (entry === null) this.#entries.delete(key);
    else this.#entries.set(key, { ...entry, version });
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
    return version;
  }

  async #atomically<T>(fn: () => T): Promise<T> {
    await this.#delay();
    const result = fn();
    await this.#delay();
    return result;
  }

  create(key: string, record: LockRecord): Promise<CreateResult> {
    return this.#atomically(() => {
      if (this.#entries.has(key)) return { created: false, current: this.peek(key) };
      return {
        created: true,
        version: this.#set(key, { ...structuredClone(record), version: "" }),
      };
    });
  }

  read(key: string): Promise<StoredLock | null> {
    return this.#atomically(() => this.peek(key));
  }

  replace(key: string, version: string, record: LockRecord): Promise<string | null> {
    return this.#atomically(() => {
      if (this.#entries.get(key)?.version !== version) return null;
      return this.#set(key, { ...structuredClone(record), version: "" });
    });
  }

  delete(key: string, version: string): Promise<boolean> {
    return this.#atomically(() => {
      if (this.#entries.get(key)?.version !== version) return false;
      this.#set(key, null);
      return true;
    });
  }
}

type Method = "create" | "read" | "replace" | "delete";

/** One client's connection to a {@linkcode MemoryLockStore}: what the engine is given. */
export class Connection implements LockStore {
  readonly #store: MemoryLockStore;
  readonly deleteChecksVersion: boolean;
  /** Every request sent, by method. */
  readonly sent: Method[] = [];
  /** While set, every request fails before it reaches the store. */
  down = false;
  /** How many of the next requests reach the store and then lose their answer. */
  loseAnswers = 0;
  /** How many of the next requests are sent twice (a retry after a lost answer). */
  sendTwice = 0;
  readonly #log: string[] | undefined;
  #answered: (() => void)[] = [];

  /**
   * @param store the store
   * @param options `deleteChecksVersion`: `false` makes the engine read before deleting;
   *   `log`: where to note `<label> <method>` of every request, in order
   */
  constructor(
    store: MemoryLockStore,
    options: { deleteChecksVersion?: boolean; log?: string[] } = {},
  ) {
    this.#store = store;
    this.deleteChecksVersion = options.deleteChecksVersion ?? true;
    this.#log = options.log;
  }

  get label(): string {
    return this.#store.label;
  }

  /** Resolves when the next request sent on this connection has been answered (or failed). */
  answered(): Promise<void> {
    return new Promise((resolve) => this.#answered.push(resolve));
  }

  async #send<T>(method: Method, request: () => Promise<T>): Promise<T> {
    this.sent.push(method);
    this.#log?.push(`${this.label} ${method}`);
    try {
      if (this.down) throw new Error(`connection to ${this.label} lost`);
      let answer = await request();
      if (this.sendTwice > 0) {
        this.sendTwice--;
        this.sent.push(method);
        answer = await request();
      }
      if (this.loseAnswers > 0) {
        this.loseAnswers--;
        throw new Error(`no answer from ${this.label}`);
      }
      return answer;
    } finally {
      const waiters = this.#answered;
      this.#answered = [];
      for (const wake of waiters) wake();
    }
  }

  create(key: string, record: LockRecord): Promise<CreateResult> {
    return this.#send("create", () => this.#store.create(key, record));
  }

  read(key: string): Promise<StoredLock | null> {
    return this.#send("read", () => this.#store.read(key));
  }

  replace(key: string, version: string, record: LockRecord): Promise<string | null> {
    return this.#send("replace", () => this.#store.replace(key, version, record));
  }

  delete(key: string, version: string): Promise<boolean> {
    return this.#send("delete", () => this.#store.delete(key, version));
  }
}

interface Timer {
  ms: number;
  due: number;
  fn: () => Promise<void>;
}

/** A clock that moves only when told to, firing the timers that fall due on the way. */
export class FakeClock implements LockClock {
  #now: number;
  readonly #timers = new Set<Timer>();

  /** @param start the time to start at, in ms since the epoch */
  constructor(start: number) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** How many repeating timers are running. */
  get timers(): number {
    return this.#timers.size;
  }

  every(ms: number, fn: () => Promise<void>): () => void {
    const timer = { ms, due: this.#now + ms, fn };
    this.#timers.add(timer);
    return () => this.#timers.delete(timer);
  }

  /**
   * Moves the clock `ms` forward, calling each timer as it falls due, in order, and waiting
   * for the work each call started before the next (as if ticks were far apart). The first
   * timer is called before this returns its promise.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      const next = [...this.#timers].filter((t) => t.due <= end)
        .sort((a, b) => a.due - b.due)[0];
      if (!next) break;
      this.#now = next.due;
      next.due += next.ms;
      await next.fn();
    }
    this.#now = end;
  }
}
