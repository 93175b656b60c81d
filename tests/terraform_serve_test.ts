/**
 * The real Terraform binary against `gaib-state serve`, with the README's `backend "http"`
 * block unchanged: init and apply store the state in gaib-state's backend (read back with
 * `gaib-state state list`), a gaib-state lock blocks Terraform (which names the holder's ID),
 * `terraform force-unlock` releases it, and a forced push of an older serial is refused with
 * 409. Terraform's credentials come from `TF_HTTP_USERNAME`/`TF_HTTP_PASSWORD`, serve's from
 * `GAIB_SERVE_*`. Only the built-in `terraform_data` resource is used: nothing is downloaded.
 *
 * Needs `terraform` on PATH; without it the test is skipped with the reason printed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cliProject } from "./_cli.ts";
import { tempDir } from "./_temp.ts";

function terraformPath(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/terraform`).isFile) return `${dir}/terraform`;
    } catch {
      // not there
    }
  }
  return undefined;
}

const TERRAFORM = terraformPath();

Deno.test({
  name: 'Terraform\'s backend "http" block works unchanged against gaib-state serve' +
    (TERRAFORM ? "" : " (skipped: no terraform on PATH)"),
  ignore: TERRAFORM === undefined,
  async fn() {
    const secret = "tf-serve-canary-9a8b";
    await using project = await cliProject();
    await using server = project.spawn(["serve", "--listen", "127.0.0.1:0"], {
      env: { GAIB_SERVE_USERNAME: "terraform", GAIB_SERVE_PASSWORD: secret },
    });
    const stderr = await server.waitForStderr(/on (http:\/\/127\.0\.0\.1:\d+)\//);
    const base = /on (http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr)![1];
    await using dir = await tempDir("gaib-terraform-");
    const main = (input: string) =>
      Deno.writeTextFile(
        `${dir.path}/main.tf`,
        `terraform {
  backend "http" {
    address        = "${base}/prod"
    lock_address   = "${base}/prod/lock"
    unlock_address = "${base}/prod/lock"
  }
}
resource "terraform_data" "x" {
  input = "${input}"
}
output "greeting" {
  value = terraform_data.x.output
}
`,
      );
    const terraform = async (...args: string[]) => {
      const output = await new Deno.Command(TERRAFORM!, {
        args,
        cwd: dir.path,
        env: {
          CHECKPOINT_DISABLE: "1",
          TF_IN_AUTOMATION: "1",
          TF_HTTP_USERNAME: "terraform",
          TF_HTTP_PASSWORD: secret,
          HOME: dir.path,
          PATH: Deno.env.get("PATH") ?? "",
        },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder();
      return {
        code: output.code,
        out: text.decode(output.stdout) + text.decode(output.stderr),
      };
    };
    await main("hello");
    const init = await terraform("init", "-input=false", "-no-color");
    assert.equal(init.code, 0, init.out);
    const apply = await terraform("apply", "-auto-approve", "-input=false", "-no-color");
    assert.equal(apply.code, 0, apply.out);
    // The state is in gaib-state's local backend, where gaib-state reads it.
    const list = await project.run(["state", "list", "-w", "prod"]);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout.trim(), "terraform_data.x");
    const show = await project.run(["state", "show", "output.greeting", "-w", "prod"]);
    assert.match(show.stdout, /hello/);
    // A gaib-state lock blocks Terraform, which names the holder's ID.
    const lock = await project.run(["lock", "acquire", "-w", "prod"]);
    assert.equal(lock.code, 0, lock.stderr);
    const lockId = lock.stdout.trim();
    const plan = await terraform("plan", "-lock-timeout=0s", "-input=false", "-no-color");
    assert.notEqual(plan.code, 0, plan.out);
    assert.match(plan.out, /Error acquiring the state lock/);
    assert.ok(plan.out.includes(`HTTP remote state already locked:`), plan.out);
    assert.ok(plan.out.replace(/\s+/g, " ").includes(`ID=${lockId}`), plan.out);
    // terraform force-unlock sends an UNLOCK without LockInfo: serve releases the lock.
    const unlock = await terraform("force-unlock", "-force", lockId);
    assert.equal(unlock.code, 0, unlock.out);
    const status = await project.run(["lock", "status", "-w", "prod", "--json"]);
    assert.equal(JSON.parse(status.stdout).locked, false, status.stdout);
    // A forced push of an older serial is refused by gaib-state's rules: Terraform prints 409.
    const pulled = await terraform("state", "pull");
    assert.equal(pulled.code, 0, pulled.out);
    await Deno.writeTextFile(`${dir.path}/old.tfstate`, pulled.out.slice(pulled.out.indexOf("{")));
    await main("world");
    const again = await terraform("apply", "-auto-approve", "-input=false", "-no-color");
    assert.equal(again.code, 0, again.out);
    const serial = JSON.parse(
      (await project.run(["state", "pull", "-w", "prod"])).stdout,
    ).serial;
    const push = await terraform("state", "push", "-force", "old.tfstate");
    assert.notEqual(push.code, 0, push.out);
    assert.match(push.out, /HTTP error: 409/);
    const after = JSON.parse((await project.run(["state", "pull", "-w", "prod"])).stdout);
    assert.equal(after.serial, serial, "the older state was not written");
    assert.equal(after.outputs.greeting.value, "world");
    server.child.kill("SIGTERM");
    const result = await server.result();
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!result.stderr.includes(secret), "the password was printed");
  },
});
