/**
 * `doctor` on the HTTP backend, against `gaib-state serve`'s handler on 127.0.0.1 (over a
 * local backend), a GitLab-like server (no listing, no lock GET) and a closed port. The doctor
 * writes no state and leaves no lock: each test checks what the server holds afterwards.
 *
 * @module
 */

import assert from "node:assert/strict";
import { LocalBackend } from "../src/backends/local.ts";
import type { HttpBackendConfig } from "../src/config.ts";
import { doctor } from "../src/doctor.ts";
import { createEmptyState } from "../src/state.ts";
import { startGitlabLikeServer } from "./_gitlab_like_server.ts";
import { serveBackend } from "./_http_serve.ts";
import { freePort } from "./_servers.ts";
import { tempDir } from "./_temp.ts";
import { cliProject, parseJson } from "./_cli.ts";
import { check, table } from "./_doctor_checks.ts";

const HTTP_CHECKS = [
  "http.reachable",
  "http.tls",
  "http.credentials",
  "http.read",
  "http.workspaces",
  "http.locks",
  "clock",
];

/** A served local root with a state in `default`. */
async function served() {
  const dir = await tempDir("gaib-doctor-http-");
  const local = new LocalBackend({ type: "local", path: dir.path });
  await local.setState("default", { ...createEmptyState(), serial: 3 });
  const server = serveBackend(local);
  return {
    dir,
    server,
    /** A second client, to look at the server's state after the doctor. */
    observer: server.client(),
    /** Request lines of the access log that wrote a state or deleted a real workspace. */
    writes: () =>
      server.log.filter((line) =>
        /"(POST|PUT) \/[^/"]+"/.test(line) || /"DELETE \/(?!gaib-doctor-)/.test(line)
      ),
    async [Symbol.asyncDispose]() {
      await server[Symbol.asyncDispose]();
      await dir[Symbol.asyncDispose]();
    },
  };
}

Deno.test("doctor on gaib-state serve: every HTTP check ok, no state written, no lock left", async () => {
  await using fx = await served();
  const checks = await doctor(fx.server.config(), { workspace: "default" });
  for (const name of HTTP_CHECKS) assert.equal(check(checks, name).status, "ok", table(checks));
  assert.match(check(checks, "http.read").summary, /has a state \(serial 3/);
  assert.match(check(checks, "http.workspaces").summary, /the server lists 1/);
  const locks = check(checks, "http.locks").summary;
  assert.match(locks, /LOCK granted; a second LOCK refused, naming the holder/);
  assert.match(locks, /an UNLOCK with another ID refused; UNLOCK granted/);
  assert.match(locks, /on workspace "gaib-doctor-[0-9a-f]{8}"/);
  assert.match(check(checks, "clock").summary, /the server's/);
  assert.deepEqual(await fx.observer.listWorkspaces(), ["default"]);
  assert.equal(await fx.observer.getLockInfo("default"), null);
  assert.equal((await fx.observer.getState("default"))?.serial, 3);
  assert.deepEqual(fx.writes(), [], "the doctor wrote");
});

Deno.test("doctor without ${workspace}: warns, probes the state's lock only when nobody holds it, and never touches a held one", async () => {
  await using fx = await served();
  const origin = fx.server.origin;
  const config: HttpBackendConfig = {
    type: "http",
    address: `${origin}/default`,
    lock_address: `${origin}/default/lock`,
    unlock_address: `${origin}/default/lock`,
  };
  const free = await doctor(config);
  assert.equal(check(free, "http.workspaces").status, "warn", table(free));
  assert.match(check(free, "http.workspaces").fix!, /\$\{workspace\}/);
  assert.equal(check(free, "http.locks").status, "ok", table(free));
  assert.match(check(free, "http.locks").summary, /on workspace "default"/);
  assert.equal(await fx.observer.getLockInfo("default"), null);

  const { lockId } = await fx.observer.lock("default", { operation: "apply", detached: true });
  const held = await doctor(config);
  const locks = check(held, "http.locks");
  assert.equal(locks.status, "skipped", table(held));
  assert.match(locks.summary, new RegExp(`locked \\(lock ID ${lockId}.*never touches a held lock`));
  assert.equal((await fx.observer.getLockInfo("default"))?.ID, lockId, "the holder kept it");
  await fx.observer.unlock("default", lockId);
  assert.deepEqual(fx.writes(), [], "the doctor wrote");
});

Deno.test("doctor on a GitLab-like server: no listing, the lock probed on a name of its own and removed", async () => {
  await using server = startGitlabLikeServer();
  const checks = await doctor(server.config(), { workspace: "prod" });
  for (const name of HTTP_CHECKS) assert.equal(check(checks, name).status, "ok", table(checks));
  assert.match(check(checks, "http.read").summary, /no state yet in workspace "prod" \(HTTP 404\)/);
  assert.match(check(checks, "http.workspaces").summary, /cannot list them/);
  // GitLab's 409 carries the holder's LockInfo; its refusal of another ID, only a status.
  assert.match(check(checks, "http.locks").summary, /a second LOCK refused, naming the holder/);
  assert.deepEqual(server.names(), [], "the probe's record was removed");
  assert.ok(
    !server.requests.some((r) => /^POST \/state\/[^/]+$/.test(r)),
    `a state was written: ${server.requests.join(", ")}`,
  );

  // Without ${workspace}, a server that cannot report locks is not probed at all.
  const single = { ...server.config(), address: `${server.origin}/state/prod` };
  single.lock_address = single.unlock_address = `${server.origin}/state/prod/lock`;
  const skipped = check(await doctor(single), "http.locks");
  assert.equal(skipped.status, "skipped");
  assert.match(skipped.summary, /cannot report whether someone holds it/);
  assert.deepEqual(server.names(), []);
});

Deno.test("doctor fails missing or wrong credentials without showing them", async () => {
  const secret = "doctor-http-canary-secret";
  await using server = startGitlabLikeServer({ username: "ci", password: secret });
  const none = await doctor({ ...server.config(), username: undefined, password: undefined });
  const missing = check(none, "http.credentials");
  assert.equal(missing.status, "fail", table(none));
  assert.match(missing.summary, /requires authentication \(HTTP 401\)/);
  assert.match(missing.fix!, /TF_HTTP_PASSWORD/);
  for (const name of ["http.read", "http.workspaces", "http.locks"]) {
    assert.equal(check(none, name).status, "skipped", table(none));
  }
  const wrong = await doctor({ ...server.config(), password: "wrong-password-canary" });
  const refused = check(wrong, "http.credentials");
  assert.equal(refused.status, "fail", table(wrong));
  assert.match(refused.summary, /refused the credentials of user "ci"/);
  const text = JSON.stringify([...none, ...wrong]);
  assert.ok(!text.includes(secret) && !text.includes("wrong-password-canary"), text);
  assert.equal(check(await doctor(server.config()), "http.credentials").status, "ok");
});

Deno.test("doctor fails an unreachable server (a closed loopback port) and skips what needs it", async () => {
  const port = freePort();
  const checks = await doctor({
    type: "http",
    address: `http://127.0.0.1:${port}/\${workspace}`,
    lock_address: `http://127.0.0.1:${port}/\${workspace}/lock`,
    unlock_address: `http://127.0.0.1:${port}/\${workspace}/lock`,
    retry_max: 0,
  });
  const reachable = check(checks, "http.reachable");
  assert.equal(reachable.status, "fail", table(checks));
  assert.match(reachable.summary, new RegExp(`cannot reach http://127.0.0.1:${port}/default`));
  assert.match(reachable.fix!, /server is up/);
  for (const name of ["http.credentials", "http.read", "http.locks", "clock"]) {
    assert.equal(check(checks, name).status, "skipped", table(checks));
  }
});

Deno.test("doctor fails a read that is not a Terraform state, and judges the clock against the Date header", async () => {
  await using server = startGitlabLikeServer();
  const put = await fetch(`${server.origin}/state/default`, { method: "POST", body: "<html>" });
  await put.body?.cancel();
  const checks = await doctor(server.config(), { clock: () => Date.now() + 60_000 });
  const read = check(checks, "http.read");
  assert.equal(read.status, "fail", table(checks));
  assert.match(read.summary, /not a Terraform state/);
  assert.equal(check(checks, "http.locks").status, "skipped");
  const clock = check(checks, "clock");
  assert.equal(clock.status, "warn", table(checks));
  assert.match(clock.summary, /ahead of the server's/);
  assert.match(clock.fix!, /NTP/);
});

Deno.test("doctor fails TLS settings Deno cannot honour, and a certificate it does not trust", async () => {
  const unusable = await doctor({
    type: "http",
    address: "https://127.0.0.1:1/${workspace}",
    skip_cert_verification: true,
  });
  const setting = check(unusable, "http.reachable");
  assert.equal(setting.status, "fail", table(unusable));
  assert.match(setting.summary, /client_ca_certificate_pem/);

  // A self-signed certificate for 127.0.0.1 that the client has no reason to trust.
  await using dir = await tempDir("gaib-doctor-tls-");
  const made = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${dir.path}/key.pem`,
      "-out",
      `${dir.path}/cert.pem`,
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(made.success, new TextDecoder().decode(made.stderr));
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: await Deno.readTextFile(`${dir.path}/cert.pem`),
    key: await Deno.readTextFile(`${dir.path}/key.pem`),
    onListen() {},
  }, () => new Response(null, { status: 204 }));
  try {
    const origin = `https://127.0.0.1:${server.addr.port}`;
    const checks = await doctor({ type: "http", address: `${origin}/\${workspace}`, retry_max: 0 });
    const reachable = check(checks, "http.reachable");
    assert.equal(reachable.status, "fail", table(checks));
    assert.match(reachable.summary, /TLS certificate is not trusted/);
    assert.match(reachable.fix!, /client_ca_certificate_pem/);
    assert.equal(check(checks, "http.tls").summary, "every address is https://");
  } finally {
    await server.shutdown();
  }
});

Deno.test("gaib-state doctor on an HTTP backend: exit 0, then 1 with a wrong password, never printing it", async () => {
  const secret = "doctor-cli-canary-secret";
  await using server = startGitlabLikeServer({ username: "ci", password: secret });
  const config = server.config();
  const env = {
    GAIB_BACKEND: "http",
    TF_HTTP_ADDRESS: config.address,
    TF_HTTP_LOCK_ADDRESS: config.lock_address!,
    TF_HTTP_UNLOCK_ADDRESS: config.unlock_address!,
    TF_HTTP_LOCK_METHOD: "POST",
    TF_HTTP_UNLOCK_METHOD: "DELETE",
    TF_HTTP_USERNAME: "ci",
    TF_HTTP_PASSWORD: secret,
  };
  await using project = await cliProject(env);
  const good = await project.run(["doctor"]);
  assert.equal(good.code, 0, good.stdout + good.stderr);
  assert.match(good.stdout, /^http\.locks +ok +LOCK granted/m);
  const wrong = await project.run(["doctor", "--json"], {
    env: { TF_HTTP_PASSWORD: "wrong-cli-canary" },
  });
  assert.equal(wrong.code, 1, wrong.stderr);
  const checks = parseJson(wrong).checks as { name: string; status: string; fix?: string }[];
  const credentials = checks.find((c) => c.name === "http.credentials");
  assert.equal(credentials?.status, "fail", wrong.stdout);
  assert.match(credentials!.fix!, /TF_HTTP_PASSWORD/);
  for (const output of [good.stdout, good.stderr, wrong.stdout, wrong.stderr]) {
    assert.ok(!output.includes(secret) && !output.includes("wrong-cli-canary"), output);
  }
  assert.deepEqual(server.names(), []);
});
