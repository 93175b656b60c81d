/**
 * Ways to stop a real process at a known point, from the outside, for the tests that signal a
 * CLI process while it holds a lock: nothing in the shipped code waits for a test.
 *
 * - {@linkcode stallNextRead}: the state file becomes a FIFO, so the next process that reads
 *   it blocks in `read` (as on a hung disk) until the test lets it go; the test knows the
 *   moment the reader opened it.
 * - {@linkcode stallingProxy}: a TCP proxy on 127.0.0.1 in front of a test server that holds
 *   back the first request whose first line matches, and says when it did.
 *
 * @module
 */

/** A file whose next reader blocks. */
export interface StalledRead extends AsyncDisposable {
  /** Resolves once a process has opened the file and is blocked reading it. */
  readonly reading: Promise<void>;
  /** Gives the blocked reader the file's content, so it carries on. */
  release(): Promise<void>;
}

/**
 * Replaces `path` by a FIFO, so that the next process to read it blocks until
 * {@linkcode StalledRead.release}. As soon as a reader has opened the FIFO the regular file is
 * back at `path` (with the same content and mode 0600): only that reader is stalled, and
 * everything after it (a write, a backup, another process) sees the file as it was.
 *
 * @param path a file that exists
 * @returns the stalled read; `await using` releases a reader still blocked
 */
export async function stallNextRead(path: string): Promise<StalledRead> {
  const content = await Deno.readFile(path);
  const dir = await Deno.makeTempDir({ prefix: "gaib-stall-" });
  const copy = `${dir}/content`;
  await Deno.writeFile(copy, content, { mode: 0o600 });
  await Deno.remove(path);
  const made = await new Deno.Command("mkfifo", { args: ["-m", "600", path] }).output();
  if (!made.success) {
    await Deno.rename(copy, path);
    throw new Error(`mkfifo ${path} failed: ${new TextDecoder().decode(made.stderr)}`);
  }
  // Opening a FIFO for writing blocks until a reader opens it: that is the event.
  const writer = Deno.open(path, { write: true });
  const reading = writer.then(async () => {
    await Deno.rename(copy, path); // the reader keeps the FIFO; the path is a file again
  });
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    const fifo = await writer;
    try {
      await reading;
      await fifo.write(content).catch(() => {}); // the reader may be gone (killed)
    } finally {
      fifo.close();
    }
  };
  return {
    reading,
    release,
    async [Symbol.asyncDispose]() {
      if (!released) {
        released = true;
        // A writer still waiting for a reader is let go by a reader of our own (or, if the
        // path is a file again, that opens the file: harmless). A stalled reader gets EOF.
        const own = await Deno.open(path, { read: true }).catch(() => null);
        (await writer).close();
        own?.close();
      }
      await reading.catch(() => {});
      await Deno.rename(copy, path).catch(() => {}); // already back, unless nobody read it
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A proxy in front of a server that holds back one request. */
export interface StallingProxy extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`: point the client here instead of at the server. */
  readonly endpoint: string;
  /** Resolves when the matching request has arrived and is being held back. */
  readonly stalled: Promise<void>;
}

/**
 * Starts a TCP proxy on 127.0.0.1 that forwards to `target`, except for the first HTTP request
 * whose request line matches `stall`: that request (and its connection) is held until the
 * proxy is disposed. Other requests, on other connections, pass.
 *
 * @param target the server, such as `http://127.0.0.1:7480`
 * @param stall the request line to hold back, such as `/^GET \/bucket\/key\?/`
 * @returns the proxy; `await using` closes it and every connection
 */
export function stallingProxy(target: string, stall: RegExp): StallingProxy {
  const url = new URL(target);
  if (url.hostname !== "127.0.0.1" && url.hostname !== "localhost") {
    throw new Error(`stallingProxy forwards to loopback only, not to ${url.hostname}`);
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections = new Set<Deno.Conn>();
  let onStalled!: () => void;
  const stalled = new Promise<void>((resolve) => onStalled = resolve);
  let held = false;
  const pipes: Promise<void>[] = [];

  const forward = async (from: Deno.Conn, to: Deno.Conn, inspect: boolean) => {
    const decoder = new TextDecoder();
    let holding = false;
    try {
      for await (const chunk of from.readable) {
        if (inspect && !held) {
          // A request's first chunk starts with its request line (HTTP/1.1, no pipelining).
          const line = decoder.decode(chunk.subarray(0, 512)).split("\r\n")[0];
          if (stall.test(line)) {
            held = holding = true;
            onStalled();
          }
        }
        // A held connection is read (so it stays open, unanswered) but never forwarded.
        if (!holding) await writeAll(to, chunk);
      }
    } catch {
      // a side closed
    }
    await to.closeWrite().catch(() => {}); // the other side may be closed already
  };

  const accepting = (async () => {
    for await (const client of listener) {
      let server: Deno.Conn;
      try {
        server = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
      } catch {
        client.close();
        continue;
      }
      connections.add(client).add(server);
      pipes.push(forward(client, server, true), forward(server, client, false));
    }
  })().catch(() => {});

  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    stalled,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const conn of connections) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
      await Promise.all(pipes);
    },
  };
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.length;) offset += await conn.write(data.subarray(offset));
}
