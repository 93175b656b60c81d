/**
 * `gaib-state serve` as a process, with the compiled binary's permissions: what it refuses to
 * start with, authentication from the environment (never printed), TLS, a graceful stop that
 * lets a write in flight finish and keeps client locks, a server killed mid-write (the state
 * stays whole), a client killed while holding a lock, and the CLI itself on an HTTP backend
 * configured with Terraform's `TF_HTTP_*` variables.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createEmptyState, type GaibState, serializeState, StateLockError } from "../mod.ts";
import { HttpBackend } from "../src/backends/http.ts";
import type { HttpBackendConfig } from "../src/config.ts";
import { type CliProcess, cliProject } from "./_cli.ts";
import { Script } from "./reliability/_util.ts";

const LINEAGE = "7a1b2c3d-0000-4000-8000-00000000c11e";
const HOLDER = new URL("./testdata/http_lock_holder.ts", import.meta.url).pathname;

function state(serial: number, padding = 0): GaibState {
  return {
    ...createEmptyState(),
    serial,
    lineage: LINEAGE,
    outputs: { pad: { value: "x".repeat(padding), type: "string" } },
  };
}

/** Waits for serve's first line and returns its origin. */
async function origin(server: CliProcess): Promise<string> {
  const stderr = await server.waitForStderr(/Serving the \w+ backend on (https?:\/\/[^/ ]+)\//);
  return /Serving the \w+ backend on (https?:\/\/[^/ ]+)\//.exec(stderr)![1];
}

function clientConfig(base: string, extra: Partial<HttpBackendConfig> = {}): HttpBackendConfig {
  return {
    type: "http",
    address: `${base}/\${workspace}`,
    lock_address: `${base}/\${workspace}/lock`,
    unlock_address: `${base}/\${workspace}/lock`,
    retry_max: 0,
    ...extra,
  };
}

Deno.test("serve refuses a non-loopback address without credentials, half credentials and bad flags", async (t) => {
  await using project = await cliProject();
  const cases: [string, string[], Record<string, string>, number, RegExp][] = [
    ["every interface, no auth", ["--listen", "0.0.0.0:0"], {}, 2, /not this machine's loopback/],
    ["a public address, no auth", ["--listen", "192.0.2.10:8080"], {}, 2, /Refusing to serve/],
    ["a user without a password", [], { GAIB_SERVE_USERNAME: "tf" }, 2, /GAIB_SERVE_PASSWORD/],
    ["--cert without --key", ["--cert", "c.pem"], {}, 2, /--cert and --key go together/],
    ["a listen address without port", ["--listen", "127.0.0.1"], {}, 2, /HOST:PORT/],
    ["a tiny body limit", ["--max-body-size", "10"], {}, 2, /expected a size/],
  ];
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  cases.push([
    "a port in use",
    ["--listen", `127.0.0.1:${(busy.addr as Deno.NetAddr).port}`],
    {},
    1,
    /another program uses that port\. Choose another with --listen/,
  ]);
  for (const [name, args, env, code, message] of cases) {
    await t.step(name, async () => {
      const result = await project.run(["serve", ...args], { env });
      assert.equal(result.code, code, `${result.stdout}\n${result.stderr}`);
      assert.match(result.stderr, message);
    });
  }
  busy.close();
});

Deno.test("serve with basic auth from the environment: clients need it, it is never printed", async () => {
  await using project = await cliProject();
  const secret = "serve-pw-canary-1f2e";
  await using server = project.spawn(["serve", "--listen", "127.0.0.1:0"], {
    env: { GAIB_SERVE_USERNAME: "terraform", GAIB_SERVE_PASSWORD: secret },
  });
  const base = await origin(server);
  await using anonymous = new HttpBackend(clientConfig(base));
  await assert.rejects(anonymous.getState("default"), /requires authentication/);
  await using client = new HttpBackend(
    clientConfig(base, { username: "terraform", password: secret }),
  );
  const { lockId } = await client.lock("default");
  await client.setState("default", state(1), { lockId });
  await client.unlock("default", lockId);
  assert.equal((await client.getState("default"))?.serial, 1);
  server.child.kill("SIGTERM");
  const result = await server.result();
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /basic authentication/);
  assert.match(result.stderr, /"GET \/default" 401/);
  assert.match(result.stderr, /"POST \/default" 200/);
  assert.ok(!result.stderr.includes("ID="), "no query in the access log");
  for (const text of [result.stdout, result.stderr]) {
    assert.ok(!text.includes(secret), "the password was printed");
    assert.ok(!text.includes(btoa(`terraform:${secret}`)), "the Authorization header was printed");
  }
});

Deno.test("serve stops on SIGTERM after the write in flight lands; the client's lock stays held", async () => {
  await using project = await cliProject();
  let server = project.spawn(["serve", "--listen", "127.0.0.1:0", "--verbose"]);
  try {
    const base = await origin(server);
    const client = new HttpBackend(clientConfig(base));
    const { lockId } = await client.lock("prod", { detached: true });
    // A write whose body arrives in two parts, the signal between them.
    const body = new TextEncoder().encode(serializeState(state(1, 200_000)));
    let send!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({ start: (c) => void (send = c) });
    send.enqueue(body.subarray(0, 1000));
    const upload = fetch(`${base}/prod?ID=${lockId}`, { method: "POST", body: stream });
    // With --verbose the server says when a request starts: the signal comes after that.
    await server.waitForStderr(/started "POST \/prod"/);
    server.child.kill("SIGTERM");
    await server.waitForStderr(/SIGTERM: finishing the 1 request\(s\) in flight/);
    send.enqueue(body.subarray(1000));
    send.close();
    const response = await upload;
    assert.equal(response.status, 200, await response.text());
    const result = await server.result();
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Stopped\./);
    await client.close();
    // A new server on the same state root: the state landed, the lock is still the client's.
    server = project.spawn(["serve", "--listen", "127.0.0.1:0"]);
    const again = new HttpBackend(clientConfig(await origin(server)));
    assert.equal((await again.getState("prod"))?.serial, 1);
    assert.equal((await again.getLockInfo("prod"))?.ID, lockId);
    await again.unlock("prod", lockId);
    await again.close();
  } finally {
    await server[Symbol.asyncDispose]();
  }
});

Deno.test("serve killed with SIGKILL mid-write leaves a whole state, and a new server serves it", async () => {
  await using project = await cliProject();
  let server = project.spawn(["serve", "--listen", "127.0.0.1:0"]);
  try {
    let base = await origin(server);
    const client = new HttpBackend(clientConfig(base));
    const { lockId } = await client.lock("prod", { detached: true });
    await client.setState("prod", state(1, 1000), { lockId });
    const dir = `${project.path}/.gaib/workspaces/prod`;
    // Kill the server the moment the new version's temp file appears.
    const watcher = Deno.watchFs(dir);
    const killed = (async () => {
      for await (const event of watcher) {
        if (event.paths.some((p) => p.includes("/.tmp-"))) {
          server.child.kill("SIGKILL");
          return true;
        }
      }
      return false;
    })();
    const write = client.setState("prod", state(2, 20_000_000), { lockId }).then(
      () => "landed",
      (e) => e,
    );
    assert.equal(await killed, true);
    watcher.close();
    const outcome = await write;
    assert.ok(outcome === "landed" || outcome instanceof Error, String(outcome));
    await server.result();
    await client.close();
    const text = await Deno.readTextFile(`${dir}/terraform.tfstate`);
    const stored = JSON.parse(text);
    assert.ok(stored.serial === 1 || stored.serial === 2, `serial ${stored.serial}`);
    server = project.spawn(["serve", "--listen", "127.0.0.1:0"]);
    base = await origin(server);
    const again = new HttpBackend(clientConfig(base));
    assert.equal((await again.getState("prod"))?.serial, stored.serial);
    assert.equal((await again.getLockInfo("prod"))?.ID, lockId, "the client's lock survived");
    await again.unlock("prod", lockId);
    await again.close();
  } finally {
    await server[Symbol.asyncDispose]();
  }
});

Deno.test("a client killed while holding a lock through serve leaves it held; the CLI on TF_HTTP_* sees and clears it", async () => {
  await using project = await cliProject();
  await using server = project.spawn(["serve", "--listen", "127.0.0.1:0"]);
  const base = await origin(server);
  const holder = new Script(HOLDER, [JSON.stringify(clientConfig(base)), "prod"]);
  const line = await holder.until((l) => l.startsWith("locked "));
  const lockId = line.slice("locked ".length);
  await holder.kill();
  // Nothing renews a lock over HTTP, so none is taken over for being silent: it stays held,
  // as Terraform's locks do, until force-unlock (or serve --lock-ttl).
  await using other = new HttpBackend(clientConfig(base));
  await assert.rejects(other.lock("prod", { who: "next@ci" }), (e: unknown) => {
    assert.ok(e instanceof StateLockError, String(e));
    assert.equal(e.lockInfo?.ID, lockId);
    assert.match(e.message, /held by killed@ci/);
    return true;
  });
  // The CLI, configured as Terraform is: TF_HTTP_* variables, the type from GAIB_BACKEND.
  const env = {
    GAIB_BACKEND: "http",
    TF_HTTP_ADDRESS: `${base}/\${workspace}`,
    TF_HTTP_LOCK_ADDRESS: `${base}/\${workspace}/lock`,
    TF_HTTP_UNLOCK_ADDRESS: `${base}/\${workspace}/lock`,
  };
  await using cli = await cliProject(env);
  await other.setState("prod", state(1), {}).catch(() => {}); // locked: refused
  const status = await cli.run(["lock", "status", "-w", "prod", "--json"]);
  assert.equal(status.code, 0, status.stderr);
  assert.equal((JSON.parse(status.stdout).lockInfo ?? {}).ID, lockId, status.stdout);
  const cleared = await cli.run(["force-unlock", "--force", lockId, "-w", "prod"]);
  assert.equal(cleared.code, 0, cleared.stderr);
  assert.equal(await other.getLockInfo("prod"), null);
});

Deno.test("serve over TLS with --cert/--key; the client trusts it through client_ca_certificate_pem", async () => {
  await using project = await cliProject();
  // A CA and a server certificate it signed (rustls refuses a CA as the server's own).
  await Deno.writeTextFile(
    `${project.path}/leaf.cnf`,
    "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
  );
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  for (
    const args of [
      [
        "req",
        "-x509",
        ...ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=gaib test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
      ],
      ["req", ...ec, "-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"],
      [
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-extfile",
        "leaf.cnf",
      ],
    ]
  ) {
    const made = await new Deno.Command("openssl", {
      args,
      cwd: project.path,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(made.success, new TextDecoder().decode(made.stderr));
  }
  const ca = await Deno.readTextFile(`${project.path}/ca.pem`);
  await using server = project.spawn([
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--cert",
    "cert.pem",
    "--key",
    "key.pem",
  ]);
  const base = await origin(server);
  assert.match(base, /^https:\/\/127\.0\.0\.1:\d+$/);
  await using untrusting = new HttpBackend(clientConfig(base));
  await assert.rejects(untrusting.getState("default"), /certificate|UnknownIssuer|invalid peer/i);
  await using client = new HttpBackend(clientConfig(base, { client_ca_certificate_pem: ca }));
  const { lockId } = await client.lock("default");
  await client.setState("default", state(1), { lockId });
  await client.unlock("default", lockId);
  assert.equal((await client.getState("default"))?.serial, 1);
  // The CLI itself, with the compiled binary's permissions and Terraform's variables: the CA
  // needs no permission of its own (Deno.createHttpClient is stable and reads no file).
  await using cli = await cliProject({
    GAIB_BACKEND: "http",
    TF_HTTP_ADDRESS: `${base}/\${workspace}`,
    TF_HTTP_CLIENT_CA_CERTIFICATE_PEM: ca,
  });
  const listed = await cli.run(["state", "pull"]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal(JSON.parse(listed.stdout).serial, 1);
});
