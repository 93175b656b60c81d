/**
 * SIGINT and SIGTERM as an `AbortSignal`, for commands that wait (for a lock, on a migration)
 * and must stop cleanly when the user or CI interrupts them.
 *
 * @module
 */

/** What {@linkcode abortOnSignals} returns; `using` removes the listeners. */
export interface SignalAbort extends Disposable {
  /** Aborted on the first SIGINT or SIGTERM. */
  readonly signal: AbortSignal;
  /** The first signal received, if any (its exit code is 130 or 143). */
  readonly received: "SIGINT" | "SIGTERM" | undefined;
}

/**
 * Listens for SIGINT and SIGTERM until disposed, aborting `signal` on the first.
 *
 * @returns the signal and what was received
 */
export function abortOnSignals(): SignalAbort {
  const controller = new AbortController();
  let received: "SIGINT" | "SIGTERM" | undefined;
  const listeners = (["SIGINT", "SIGTERM"] as const).map((name) => {
    const listener = () => {
      received ??= name;
      controller.abort();
    };
    Deno.addSignalListener(name, listener);
    return [name, listener] as const;
  });
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    [Symbol.dispose]() {
      for (const [name, listener] of listeners) Deno.removeSignalListener(name, listener);
    },
  };
}
