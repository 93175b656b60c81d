/**
 * `gaib-state serve`'s handler against a client that speaks exactly as Terraform's does
 * (tests/_terraform_http_client.ts): Terraform's apply cycle, lock conflicts, writes refused by
 * gaib-state's rules, force-unlock, GitLab's methods; authentication, oversized and malformed
 * bodies, path traversal; and what only the HttpBackend client does (retries, redaction,
 * workspaces, history, TLS settings).
 *
 * @module
 */

import assert from "node:assert/strict";
import { BasicAuth } from "../src/_basic_auth.ts";
import { LocalBackend } from "../src/backends/local.ts";
import { HttpBackend } from "../src/backends/http.ts";
import { createStateHandler } from "../src/_state_server.ts";
import {
  BackendConfigError,
  BackendError,
  createEmptyState,
  type GaibState,
  serializeState,
  StateLockError,
} from "../mod.ts";
import { serveBackend } from "./_http_serve.ts";
import {
  type TerraformClientConfig,
  TerraformHttpClient,
  TerraformLockError,
  terraformLockInfo,
} from "./_terraform_http_client.ts";
import { tempDir } from "./_temp.ts";
import { snapshotTree } from "./reliability/_util.ts";
import { BAD_WORKSPACE_NAMES } from "./corpus/manifest.ts";

const encoder = new TextEncoder();
const LINEAGE = "5f1c2d3e-4a5b-4c6d-8e7f-001122334455";

function stateBytes(
  serial: number,
  lineage = LINEAGE,
  extra: Partial<GaibState> = {},
): Uint8Array<ArrayBuffer> {
  return encoder.encode(
    serializeState({ ...createEmptyState(), serial, lineage, ...extra }),
  ) as Uint8Array<ArrayBuffer>;
}

/**
 * Sends one request with the path exactly as given (fetch would resolve "/%2e%2e" to "/"
 * first) and returns the status.
 */
async function rawRequest(
  origin: string,
  method: string,
  path: string,
  body?: Uint8Array,
): Promise<number> {
  const { hostname, port } = new URL(origin);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const head = `${method} ${path} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n` +
      `Content-Length: ${body?.length ?? 0}\r\n\r\n`;
    await conn.write(encoder.encode(head));
    if (body) await conn.write(body);
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
    }
    const text = new TextDecoder().decode(
      chunks.reduce((a, b) => new Uint8Array([...a, ...b]), new Uint8Array()),
    );
    const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
    assert.ok(match, `no status line: ${text.slice(0, 80)}`);
    return Number(match[1]);
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the server already
    }
  }
}

/** A served local backend in a temp dir, with Terraform-style clients for a workspace. */
async function fixture(
  options: { auth?: BasicAuth; maxBodyBytes?: number; lockTtlMs?: number } = {},
) {
  const dir = await tempDir();
  const root = `${dir.path}/.gaib`;
  const server = serveBackend(new LocalBackend({ path: root }), options);
  const terraform = (workspace: string, extra: Partial<TerraformClientConfig> = {}) =>
    new TerraformHttpClient({
      url: `${server.origin}/${workspace}`,
      lockUrl: `${server.origin}/${workspace}`,
      unlockUrl: `${server.origin}/${workspace}`,
      ...extra,
    });
  return {
    dir,
    root,
    server,
    terraform,
    fingerprint: () => snapshotTree(dir.path),
    direct: () => new LocalBackend({ path: root }),
    async [Symbol.asyncDispose]() {
      await server[Symbol.asyncDispose]();
      await dir[Symbol.asyncDispose]();
    },
  };
}

Deno.test("serve: Terraform's apply cycle (lock, get, put with ?ID=, unlock) stores each serial", async () => {
  await using fx = await fixture();
  const tf = fx.terraform("prod");
  assert.equal(await tf.get(), null, "no state: 204");
  const info = terraformLockInfo();
  assert.equal(await tf.lock(info), info.ID);
  await tf.put(stateBytes(1));
  await tf.put(stateBytes(2, LINEAGE, { outputs: { a: { value: "x", type: "string" } } }));
  const read = await tf.get();
  assert.equal(JSON.parse(new TextDecoder().decode(read!)).serial, 2);
  // The lock is the client's, recorded with its ID, Who and Operation.
  const lock = await fx.direct().getLockInfo("prod");
  assert.equal(lock?.ID, info.ID);
  assert.equal(lock?.Who, "terraform@ci");
  assert.equal(lock?.Operation, "OperationTypeApply");
  await tf.unlock();
  assert.equal(await fx.direct().getLockInfo("prod"), null);
  assert.equal((await fx.direct().getState("prod"))?.serial, 2);
  assert.ok(fx.server.log.some((l) => /"POST \/prod" 200/.test(l)), fx.server.log.join("\n"));
  assert.ok(fx.server.log.every((l) => !l.includes("?ID=")), "no query in the access log");
});

Deno.test("serve: a second Terraform's lock gets 423 with the holder's LockInfo", async () => {
  await using fx = await fixture();
  const first = fx.terraform("prod");
  const info = terraformLockInfo();
  await first.lock(info);
  const second = fx.terraform("prod");
  const error = await second.lock(terraformLockInfo("OperationTypePlan")).then(
    () => null,
    (e) => e,
  );
  assert.ok(error instanceof TerraformLockError, String(error));
  assert.equal(error.message, `HTTP remote state already locked: ID=${info.ID}`);
  assert.equal(error.info?.ID, info.ID);
  assert.equal(error.info?.Who, "terraform@ci");
  // A write without the lock's ID is refused, and so is one with another ID.
  const before = await fx.fingerprint();
  await assert.rejects(second.put(stateBytes(1)), /HTTP error: 423/);
  second.lockId = "not-the-lock";
  await assert.rejects(second.put(stateBytes(1)), /HTTP error: 423/);
  assert.deepEqual(await fx.fingerprint(), before, "nothing changed");
  await first.unlock();
});

Deno.test("serve: a lineage change and a serial regression are refused with 409, with the reason in the body", async () => {
  await using fx = await fixture();
  const tf = fx.terraform("prod");
  await tf.lock(terraformLockInfo());
  await tf.put(stateBytes(5));
  const before = await fx.fingerprint();
  await assert.rejects(tf.put(stateBytes(6, "another-lineage")), /HTTP error: 409/);
  await assert.rejects(tf.put(stateBytes(4)), /HTTP error: 409/);
  assert.deepEqual(await fx.fingerprint(), before, "nothing changed");
  // What Terraform prints is the status; the body says why, for people and gaib-state.
  const raw = await fetch(`${fx.server.origin}/prod?ID=${tf.lockId}`, {
    method: "POST",
    body: stateBytes(4),
  });
  assert.equal(raw.status, 409);
  const body = await raw.json();
  assert.equal(body.error.type, "StateSerialError");
  assert.match(body.error.message, /serial 4 is older than the stored state's 5/);
  await tf.unlock();
});

Deno.test("serve: Terraform's force-unlock (an UNLOCK without LockInfo) releases the lock", async () => {
  await using fx = await fixture();
  await fx.terraform("prod").lock(terraformLockInfo());
  const other = fx.terraform("prod"); // a new process: no LockInfo kept
  await other.unlock();
  assert.equal(await fx.direct().getLockInfo("prod"), null);
  await assert.rejects(other.unlock(), /Unexpected HTTP response code 409/, "not locked");
});

Deno.test("serve: GitLab's lock methods (POST and DELETE on /<ws>/lock) work as LOCK and UNLOCK", async () => {
  await using fx = await fixture();
  const lockUrl = `${fx.server.origin}/staging/lock`;
  const tf = fx.terraform("staging", {
    lockUrl,
    unlockUrl: lockUrl,
    lockMethod: "POST",
    unlockMethod: "DELETE",
    updateMethod: "PUT",
  });
  const info = terraformLockInfo();
  await tf.lock(info);
  await tf.put(stateBytes(1));
  await assert.rejects(
    fx.terraform("staging", { lockUrl, lockMethod: "POST" }).lock(terraformLockInfo()),
    TerraformLockError,
  );
  await tf.unlock();
  assert.equal(await fx.direct().getLockInfo("staging"), null);
  assert.equal((await fx.direct().getState("staging"))?.serial, 1);
});

Deno.test("serve: of 20 Terraform clients locking at once exactly one gets 200", async () => {
  await using fx = await fixture();
  const clients = Array.from({ length: 20 }, () => fx.terraform("prod"));
  const results = await Promise.allSettled(clients.map((c) => c.lock(terraformLockInfo())));
  const winners = results.flatMap((r, i) => r.status === "fulfilled" ? [i] : []);
  assert.equal(winners.length, 1, `winners: ${winners}`);
  const winnerId = clients[winners[0]].lockId;
  for (const r of results) {
    if (r.status === "rejected") {
      assert.ok(r.reason instanceof TerraformLockError, String(r.reason));
      assert.equal(r.reason.info?.ID, winnerId, "every loser is shown the winner");
    }
  }
  await clients[winners[0]].unlock();
});

Deno.test("serve: Terraform's DELETE deletes an unlocked workspace; default and a locked one are refused", async () => {
  await using fx = await fixture();
  await fx.terraform("gone").put(stateBytes(1));
  await fx.terraform("default").put(stateBytes(1));
  await fx.terraform("gone").delete();
  assert.equal(await fx.direct().getState("gone"), null);
  await assert.rejects(fx.terraform("default").delete(), /HTTP error: 409/);
  await fx.terraform("kept").put(stateBytes(1));
  await fx.terraform("kept").lock(terraformLockInfo());
  await assert.rejects(fx.terraform("kept").delete(), /HTTP error: 423/);
  assert.equal((await fx.direct().getState("kept"))?.serial, 1);
});

Deno.test("serve: without the right basic auth every request gets 401 and nothing changes", async (t) => {
  await using fx = await fixture({ auth: new BasicAuth("terraform", "s3cret-canary") });
  const good = fx.terraform("prod", { username: "terraform", password: "s3cret-canary" });
  await good.put(stateBytes(1));
  const before = await fx.fingerprint();
  for (
    const [name, creds] of [
      ["no credentials", {}],
      ["a wrong password", { username: "terraform", password: "guess" }],
      ["a wrong user", { username: "admin", password: "s3cret-canary" }],
      ["a password prefix", { username: "terraform", password: "s3cret" }],
    ] as const
  ) {
    await t.step(name, async () => {
      const tf = fx.terraform("prod", creds);
      await assert.rejects(tf.get(), /requires auth/);
      await assert.rejects(tf.put(stateBytes(2)), /HTTP error: 401/);
      await assert.rejects(tf.lock(terraformLockInfo()), /requires auth/);
      await assert.rejects(tf.delete(), /HTTP error: 401/);
      const raw = await fetch(`${fx.server.origin}/prod`, {
        headers: { authorization: "Basic !!not-base64" },
      });
      assert.equal(raw.status, 401);
      assert.match(raw.headers.get("www-authenticate") ?? "", /^Basic realm=/);
      await raw.body?.cancel();
    });
  }
  assert.deepEqual(await fx.fingerprint(), before, "nothing changed");
  const client = fx.server.client({ username: "terraform", password: "guess" });
  const error = await client.getState("prod").then(() => null, (e) => e);
  assert.ok(error instanceof BackendError);
  assert.match(error.message, /requires authentication/);
  assert.ok(!error.message.includes("guess"), "the password is not in the message");
  assert.equal(
    (await fx.server.client({ username: "terraform", password: "s3cret-canary" }).getState("prod"))
      ?.serial,
    1,
  );
  assert.ok(fx.server.log.every((l) => !l.includes("s3cret") && !l.includes("guess")));
});

Deno.test("serve: an oversized body gets 413 and changes nothing, declared or streamed", async () => {
  await using fx = await fixture({ maxBodyBytes: 4096 });
  await fx.terraform("prod").put(stateBytes(1));
  const before = await fx.fingerprint();
  const big = stateBytes(2, LINEAGE, {
    outputs: { x: { value: "y".repeat(10_000), type: "string" } },
  });
  const declared = await fetch(`${fx.server.origin}/prod`, { method: "POST", body: big });
  assert.equal(declared.status, 413);
  assert.match((await declared.json()).error.message, /larger than the server's limit of 4096/);
  // Without a Content-Length: counted as it arrives.
  const streamed = await fetch(`${fx.server.origin}/prod`, {
    method: "POST",
    body: ReadableStream.from([big.subarray(0, 3000), big.subarray(3000)]),
  });
  assert.equal(streamed.status, 413);
  await streamed.body?.cancel();
  assert.deepEqual(await fx.fingerprint(), before, "nothing changed");
  const client = fx.server.client();
  await assert.rejects(
    client.setState("prod", JSON.parse(new TextDecoder().decode(big))),
    /larger than the server's limit/,
  );
});

Deno.test("serve: malformed bodies get 400 and change nothing", async (t) => {
  await using fx = await fixture();
  await fx.terraform("prod").put(stateBytes(1));
  const before = await fx.fingerprint();
  const cases: [string, string, string, BodyInit, Record<string, string>?][] = [
    ["state: not JSON", "POST", "/prod", "{not json"],
    ["state: empty", "POST", "/prod", ""],
    ["state: legacy version 3", "POST", "/prod", '{"version":3,"serial":2,"lineage":"x"}'],
    ["state: a JSON array", "PUT", "/prod", "[]"],
    ["state: non-UTF-8", "POST", "/prod", new Uint8Array([0xff, 0xfe, 0x7b])],
    ["state: wrong Content-MD5", "POST", "/prod", new TextDecoder().decode(stateBytes(2)), {
      "content-md5": "AAAAAAAAAAAAAAAAAAAAAA==",
    }],
    ["lock: not JSON", "LOCK", "/prod", "nope"],
    ["lock: no ID", "LOCK", "/prod", '{"Who":"x"}'],
    ["lock: an ID with a slash", "LOCK", "/prod/lock", '{"ID":"../x"}'],
    ["lock: empty", "LOCK", "/prod", ""],
    ["unlock: not JSON", "UNLOCK", "/prod", "{"],
  ];
  for (const [name, method, path, body, headers] of cases) {
    await t.step(name, async () => {
      const response = await fetch(`${fx.server.origin}${path}`, { method, body, headers });
      assert.equal(response.status, 400, `${name}: ${response.status}`);
      const json = await response.json();
      assert.equal(typeof json.error.message, "string");
    });
  }
  assert.deepEqual(await fx.fingerprint(), before, "nothing changed");
});

Deno.test("serve: a workspace in the path is checked like any workspace name; traversal is refused", async (t) => {
  await using fx = await fixture();
  await fx.terraform("prod").put(stateBytes(1));
  const before = await fx.fingerprint();
  const parent = await snapshotTree(fx.dir.path);
  const paths = [
    "/..%2f..%2fetc%2fpasswd",
    "/%2e%2e",
    "/.%2e/lock",
    "/a%2fb",
    "/a/b/c",
    "/prod/lock/extra",
    "/-x",
    "/%00",
    "/" + "w".repeat(200),
    "/prod%20x",
    "/%E2%80%AE",
  ];
  for (const path of paths) {
    await t.step(path.slice(0, 40), async () => {
      for (const method of ["GET", "POST", "DELETE", "LOCK", "UNLOCK"]) {
        const body = method === "GET" || method === "DELETE" ? undefined : stateBytes(9);
        const status = await rawRequest(fx.server.origin, method, path, body);
        assert.ok(status === 400 || status === 404, `${method} ${path}: ${status}`);
      }
    });
  }
  // Through the client too: every bad name is refused before a request is sent.
  const client = fx.server.client();
  for (const { name, value } of BAD_WORKSPACE_NAMES) {
    await assert.rejects(client.getState(value), BackendConfigError, name);
  }
  assert.deepEqual(await fx.fingerprint(), before, "nothing changed");
  assert.deepEqual(await snapshotTree(fx.dir.path), parent);
});

Deno.test("serve: a lock taken through the server belongs to the client; --lock-ttl bounds it", async () => {
  await using fx = await fixture({ lockTtlMs: 300 });
  const holder = fx.server.client();
  const { lockInfo } = await holder.lock("prod", { who: "gone@ci" });
  // Another client waits: the lock is detached with the server's TTL, so it expires.
  const waited: string[] = [];
  const taken = await fx.server.client().lock("prod", {
    who: "next@ci",
    timeoutMs: 60_000,
    onWait: (info) => waited.push(info.ID),
  });
  assert.deepEqual(waited, [lockInfo.ID], "it waited for the expired holder");
  assert.notEqual(taken.lockId, lockInfo.ID);
  await assert.rejects(
    holder.setState("prod", createEmptyState(), { lockId: lockInfo.ID }),
    StateLockError,
  );
});

Deno.test("HttpBackend retries a 5xx answer and a refused connection, and never a 4xx", async () => {
  await using dir = await tempDir();
  const backend = new LocalBackend({ path: `${dir.path}/.gaib` });
  const handler = createStateHandler(backend, { maxBodyBytes: 1 << 20 });
  let failures = 2;
  let seen = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req, info) => {
    seen++;
    if (failures > 0) {
      failures--;
      return new Response("busy", { status: 503 });
    }
    return handler(req, info);
  });
  try {
    const origin = `http://127.0.0.1:${server.addr.port}`;
    const config = {
      type: "http" as const,
      address: `${origin}/\${workspace}`,
      retry_wait_min: 0,
      retry_wait_max: 0,
    };
    const client = new HttpBackend(config);
    assert.equal(await client.getState("default"), null);
    assert.equal(seen, 3, "two 503 answers, then the answer");
    assert.equal(client.requestCount, 3);
    // A 4xx is an answer: no retry.
    seen = 0;
    await assert.rejects(client.lock("default"), /no lock_address/);
    const four = new HttpBackend({ ...config, lock_address: `${origin}/a/b/\${workspace}` });
    await assert.rejects(four.getLockInfo("default"), /does not report locks \(GET answered 404\)/);
    assert.equal(four.requestCount, 1);
    await client.close();
    await four.close();
  } finally {
    await server.shutdown();
    await backend.close();
  }
  // Nobody listens: connection refused, retried retry_max times, credentials never shown.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const gone = new HttpBackend({
    type: "http",
    address: `http://user:pa55-canary@127.0.0.1:${port}/s?token=tok-canary`,
    password: "pw-canary",
    username: "u",
    retry_max: 1,
    retry_wait_min: 0,
  });
  const error = await gone.getState("default").then(() => null, (e) => e);
  assert.ok(error instanceof BackendError, String(error));
  assert.match(error.message, /after 2 attempt/);
  for (const canary of ["pa55-canary", "tok-canary", "pw-canary"]) {
    assert.ok(!error.message.includes(canary), `${canary} in ${error.message}`);
  }
  assert.equal(gone.requestCount, 2);
  await gone.close();
});

Deno.test("HttpBackend: one state without ${workspace}; its history is the current version only", async () => {
  await using fx = await fixture();
  const single = fx.server.client({
    address: `${fx.server.origin}/default`,
    lock_address: undefined,
    unlock_address: undefined,
  });
  assert.deepEqual(await single.listWorkspaces(), ["default"]);
  await assert.rejects(
    single.getState("staging"),
    (e: unknown) =>
      e instanceof BackendConfigError && /only the "default" workspace/.test(e.message),
  );
  await assert.rejects(single.lock("default"), /no lock_address/);
  assert.deepEqual(await single.listVersions("default"), []);
  await single.setState("default", { ...createEmptyState(), serial: 3, lineage: LINEAGE });
  const versions = await single.listVersions("default");
  assert.equal(versions.length, 1);
  assert.equal(versions[0].serial, 3);
  assert.equal(versions[0].current, true);
  assert.equal((await single.getStateVersion("default", versions[0].versionId)).serial, 3);
  await assert.rejects(
    single.getStateVersion("default", "md5-0000"),
    (e: unknown) => e instanceof BackendError && /keeps only the current state/.test(e.message),
  );
  await assert.rejects(single.listVersions("default", { limit: 0 }), /at least 1/);
});

Deno.test("HttpBackend refuses skip_cert_verification, half a key pair and a bad PEM, clearly", () => {
  const base = { type: "http" as const, address: "https://127.0.0.1:9/s" };
  assert.throws(
    () => new HttpBackend({ ...base, skip_cert_verification: true }),
    (e: unknown) => e instanceof BackendConfigError && /client_ca_certificate_pem/.test(e.message),
  );
  assert.throws(
    () => new HttpBackend({ ...base, client_certificate_pem: "-----BEGIN CERTIFICATE-----\n" }),
    /client_private_key_pem is required/,
  );
  assert.throws(
    () =>
      new HttpBackend({
        ...base,
        client_ca_certificate_pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      }),
    (e: unknown) =>
      e instanceof BackendConfigError && /TLS settings cannot be used/.test(e.message),
  );
  assert.throws(
    () => new HttpBackend({ ...base, address: "http://h/${other}" }),
    /only the placeholder/,
  );
});

Deno.test("HttpBackend does not follow a redirect (the credentials would go along) and says where it points", async () => {
  let authorization: string | null = "";
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    authorization = req.headers.get("authorization");
    return new Response(null, {
      status: 302,
      headers: { location: "http://user:leak-canary@127.0.0.1:9/elsewhere?token=t-canary" },
    });
  });
  try {
    const client = new HttpBackend({
      type: "http",
      address: `http://127.0.0.1:${server.addr.port}/\${workspace}`,
      username: "u",
      password: "pw",
    });
    const error = await client.getState("default").then(() => null, (e) => e);
    assert.ok(error instanceof BackendError, String(error));
    assert.match(error.message, /redirects \(HTTP 302\) to http:\/\/\[redacted\]@127\.0\.0\.1:9/);
    assert.ok(!/leak-canary|t-canary/.test(error.message), error.message);
    assert.equal(client.requestCount, 1);
    assert.equal(authorization, `Basic ${btoa("u:pw")}`, "basic auth as Go's SetBasicAuth");
    await client.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("serve: an UNLOCK with the ID alone (OpenTofu's force-unlock) releases even a live process's lock; a full LockInfo does not", async () => {
  await using fx = await fixture();
  const direct = fx.direct();
  const { lockId, lockInfo } = await direct.lock("prod", { who: "gaib@ci" });
  const full = await fetch(`${fx.server.origin}/prod/lock`, {
    method: "UNLOCK",
    body: JSON.stringify({ ...lockInfo, Who: "terraform@ci", Operation: "OperationTypeApply" }),
  });
  assert.equal(full.status, 423, "a live process's lock is not released by a plain unlock");
  assert.match((await full.json()).error.message, /still running/);
  const bare = await fetch(`${fx.server.origin}/prod/lock`, {
    method: "UNLOCK",
    body: JSON.stringify({ ID: lockId }),
  });
  assert.equal(bare.status, 200);
  await bare.body?.cancel();
  assert.equal(await fx.direct().getLockInfo("prod"), null);
  await direct.close();
});

Deno.test("HttpBackend gives up on a server that never answers after its request timeout", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn); // accepted, never answered
  })();
  const client = new HttpBackend({
    type: "http",
    address: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/\${workspace}`,
    retry_max: 1,
    retry_wait_min: 0,
  }, { requestTimeoutMs: 200 });
  const error = await client.getState("default").then(() => null, (e) => e);
  assert.ok(error instanceof BackendError, String(error));
  assert.match(error.message, /no answer within 0\.2 s \(after 2 attempt\(s\)\)/);
  await client.close();
  listener.close();
  for (const conn of held) conn.close();
  await accepting.catch(() => {});
});
