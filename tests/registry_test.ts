/**
 * The backend registry (`src/backends/_registry.ts`) is the one place that says which backends
 * exist: adding a backend touches its own modules, its descriptor, one line of the table and
 * its config interface in `src/config.ts`, and nothing else.
 *
 * How this is proven. There is no run-time registration to register a throwaway backend with:
 * that would be a public, global, mutable table that any imported module could change, kept
 * only for a test. So these tests prove the claim from both sides instead:
 *
 * - every place that depends on the backends derives from the table: for each registered
 *   backend, the union's messages name it, the factory creates it through its loader, its
 *   constructor refuses what the factory refuses, each of its variables sets its field, and
 *   `config show` hides each of its URL and secret fields (a field that says nothing is secret,
 *   shown with a rule of a backend that does not exist);
 * - no source file outside `src/backends/` and `src/config.ts` names a backend type, so there
 *   is no other place a new backend would have to be added to;
 * - the registry's own rules hold (one selecting backend, variables naming real fields), and
 *   the registry loads no backend module and no npm package.
 *
 * `EXAMPLES` is typed by the `BackendConfig` union, so a new backend does not compile here until
 * it has an example config, and then every test covers it.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { BackendConfig } from "../src/config.ts";
import { BackendConfigError } from "../src/errors.ts";
import { BackendFactory } from "../src/factory.ts";
import {
  type BackendClass,
  backendRule,
  BACKENDS,
  checkBackendOptions,
  descriptorOf,
} from "../src/backends/_registry.ts";
import {
  composeBackend,
  ENVIRONMENT_VARIABLES,
  readEnvironment,
  TYPE_VARIABLE,
} from "../src/_config_env.ts";
import {
  exposureOf,
  httpUrl,
  object,
  type ObjectRule,
  type Shape,
  string,
} from "../src/_config_rules.ts";
import { shownSetting } from "../src/cli/config.ts";
import { SECRET_VARIABLES } from "../src/cli/_redact.ts";
import { REDACTED } from "../src/_url.ts";
import { cliProject, parseJson } from "./_cli.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** A valid config of each registered type; nothing is sent anywhere by creating one. */
const EXAMPLES: { [T in BackendConfig["type"]]: Extract<BackendConfig, { type: T }> } = {
  local: { type: "local", path: "/nonexistent/gaib-registry-test" },
  s3: {
    type: "s3",
    bucket: "gaib-registry-test",
    key: "terraform.tfstate",
    region: "us-east-1",
    endpoint: "http://127.0.0.1:9",
  },
  http: { type: "http", address: "http://127.0.0.1:9/${workspace}" },
  pg: { type: "pg", conn_str: "postgres://gaib:pw@127.0.0.1:9/states?sslmode=disable" },
};

/** The scheme of a backend's URL fields, where it is not https (pg: a postgres:// URL). */
const URL_SCHEME: Partial<Record<BackendConfig["type"], string>> = { pg: "postgres" };

/** Every field of a mapping rule, dotted, with its shape entry. */
function fieldsOf(fields: Shape, prefix = ""): string[] {
  return Object.entries(fields).flatMap(([key, field]) => {
    const nested = (field.rule as Partial<ObjectRule<unknown>>).fields;
    return [`${prefix}${key}`, ...(nested ? fieldsOf(nested, `${prefix}${key}.`) : [])];
  });
}

const env = (vars: Record<string, string>) => ({ get: (name: string) => vars[name] });

Deno.test("every registered type has an example here, and the registry lists each type once", () => {
  const types = BACKENDS.map((d) => d.type);
  assert.deepEqual([...types].sort(), Object.keys(EXAMPLES).sort());
  assert.equal(new Set(types).size, types.length);
  for (const type of types) assert.equal(descriptorOf(type)?.type, type);
  assert.equal(descriptorOf("__proto__"), undefined);
  assert.equal(descriptorOf("toString"), undefined);
});

Deno.test("the backend union's messages name every registered type", async () => {
  const unknown = await BackendFactory.create({ type: "gcs" } as never).catch((e) => e);
  assert.ok(unknown instanceof BackendConfigError, String(unknown));
  assert.equal(unknown.path, "type");
  for (const { type } of BACKENDS) {
    assert.ok(unknown.message.includes(`"${type}"`), unknown.message);
  }
  assert.match(unknown.message, /found the string "gcs"/);

  const missing = backendRule({}, [], {});
  assert.ok(!missing.ok && missing.issue.missing);
  for (const { type, summary } of BACKENDS) {
    assert.ok(missing.issue.message.includes(`"${type}" (${summary})`), missing.issue.message);
  }
  const notMapping = backendRule("s3", ["backend"], {});
  assert.ok(!notMapping.ok);
  for (const { type } of BACKENDS) assert.ok(notMapping.issue.message.includes(type));
});

Deno.test("the factory creates each backend through its descriptor's loader", async () => {
  for (const descriptor of BACKENDS) {
    const backend = await BackendFactory.create(EXAMPLES[descriptor.type]);
    try {
      assert.ok(backend instanceof await descriptor.load(), descriptor.type);
    } finally {
      await backend.close();
    }
  }
});

Deno.test("each backend's constructor refuses what the factory refuses, naming the same field", async (t) => {
  for (const descriptor of BACKENDS) {
    const Backend = await descriptor.load() as BackendClass<unknown>;
    const example: Record<string, unknown> = { ...EXAMPLES[descriptor.type] };
    const other = BACKENDS.find((d) => d !== descriptor)!.type;
    const firstField = fieldsOf(descriptor.rule.fields).find((f) => f !== "type")!;
    const cases: Record<string, Record<string, unknown>> = {
      "an unknown key": { ...example, no_such_setting: true },
      [`${firstField} of the wrong kind`]: { ...example, [firstField]: ["a", "list"] },
    };
    for (const [what, config] of Object.entries(cases)) {
      await t.step(`${descriptor.type}: ${what}`, async () => {
        const fromFactory = await BackendFactory.create(config as never).catch((e) => e);
        assert.ok(fromFactory instanceof BackendConfigError, String(fromFactory));
        let fromConstructor: unknown;
        try {
          await (new Backend(config)).close();
        } catch (error) {
          fromConstructor = error;
        }
        assert.ok(fromConstructor instanceof BackendConfigError, String(fromConstructor));
        assert.equal(fromConstructor.path, fromFactory.path);
        const problem = (e: Error) => e.message.slice(e.message.indexOf(": ") + 2);
        assert.equal(problem(fromConstructor), problem(fromFactory));
      });
    }
    await t.step(`${descriptor.type}: another backend's type is refused`, () => {
      assert.throws(
        () => new Backend({ ...example, type: other }),
        (e: unknown) => e instanceof BackendConfigError && e.path === "type",
      );
    });
    await t.step(`${descriptor.type}: type may be left out`, async () => {
      const { type: _, ...withoutType } = example;
      await (new Backend(withoutType)).close();
      assert.deepEqual(checkBackendOptions(descriptor as never, withoutType, "test"), example);
    });
  }
});

Deno.test("each backend's variables set their fields, converted as the registry says", () => {
  const samples = { string: "sample-value", boolean: "yes", integer: "3" };
  const converted = { string: "sample-value", boolean: true, integer: 3 };
  for (const descriptor of BACKENDS) {
    for (const [variable, spec] of Object.entries(descriptor.variables)) {
      const coerce = spec.coerce ?? "string";
      const vars = { [TYPE_VARIABLE]: descriptor.type, [variable]: samples[coerce] };
      const composed = composeBackend(undefined, undefined, readEnvironment(env(vars)), env(vars));
      const value = spec.field.split(".").reduce<unknown>(
        (at, key) => (at as Record<string, unknown> | undefined)?.[key],
        composed.backend,
      );
      assert.deepEqual(value, converted[coerce], `${variable} sets ${spec.field}`);
      assert.equal(composed.origins[spec.field], variable);
      assert.equal(composed.backend.type, descriptor.type);
      if (spec.fallback) {
        // Read only for its backend, below the GAIB_* variables (not in the public list).
        assert.ok(!Object.hasOwn(ENVIRONMENT_VARIABLES, variable), variable);
      } else {
        assert.equal(ENVIRONMENT_VARIABLES[variable], spec.field);
      }
      // Another backend type ignores it, and says so.
      for (const other of BACKENDS.filter((d) => !Object.hasOwn(d.variables, variable))) {
        const elsewhere = { ...vars, [TYPE_VARIABLE]: other.type };
        const ignored = composeBackend(
          undefined,
          undefined,
          readEnvironment(env(elsewhere)),
          env(elsewhere),
        );
        assert.equal(ignored.origins[spec.field], undefined, `${variable} for ${other.type}`);
        if (!spec.fallback) {
          assert.ok(ignored.notes.some((n) => n.startsWith(`${variable} is ignored`)));
        }
      }
    }
  }
});

Deno.test("the registry's own rules hold for every descriptor", () => {
  const selecting = BACKENDS.filter((d) => Object.values(d.variables).some((v) => v.selects));
  assert.ok(selecting.length <= 1, "only one backend may be selected by its variables");
  const owners = new Map<string, string>();
  for (const descriptor of BACKENDS) {
    const fields = fieldsOf(descriptor.rule.fields);
    assert.ok(fields.includes("type"));
    for (const [variable, spec] of Object.entries(descriptor.variables)) {
      assert.ok(fields.includes(spec.field), `${variable} sets ${spec.field}, not a field`);
      assert.ok(spec.fallback || variable.startsWith("GAIB_"), variable);
      assert.notEqual(variable, TYPE_VARIABLE);
      const owner = owners.get(variable);
      assert.ok(owner === undefined || owner === spec.field, `${variable}: two fields`);
      owners.set(variable, spec.field);
    }
    const paths = Object.entries(descriptor.paths ?? {});
    for (const [field] of paths) assert.ok(fields.includes(field), field);
    assert.ok(paths.filter(([, p]) => p.stateRoot).length <= 1, "one state root");
    for (const variable of descriptor.secretVariables ?? []) {
      assert.ok(SECRET_VARIABLES.includes(variable), variable);
    }
  }
});

Deno.test("config show shows each field as its rule says; a field that says nothing is secret", () => {
  const url = "https://user:s3cr3t-TOKEN@127.0.0.1:9/";
  for (const descriptor of BACKENDS) {
    for (const field of fieldsOf(descriptor.rule.fields)) {
      const exposure = exposureOf(descriptor.rule, field);
      const shown = String(shownSetting(exposure, url));
      if (exposure === "plain") assert.equal(shown, "https://[redacted]@127.0.0.1:9/");
      else assert.ok(!shown.includes("s3cr3t") && !shown.includes("user"), shown);
      if (exposure === "secret") assert.equal(shown, REDACTED);
    }
  }
  // The rule of a backend that does not exist: a password and a connection string that do
  // not say how they are shown are never shown, whatever their value.
  const rule = object({
    host: { rule: string(), show: "plain" },
    conn_str: { rule: httpUrl },
    auth: { rule: object({ password: { rule: string() } }) },
  });
  assert.equal(exposureOf(rule, "host"), "plain");
  assert.equal(exposureOf(rule, "conn_str"), "secret");
  assert.equal(exposureOf(rule, "auth.password"), "secret");
  assert.equal(exposureOf(rule, "no.such.field"), "secret");
  assert.equal(shownSetting("secret", "hunter2"), REDACTED);
  assert.equal(shownSetting("secret", 5432), REDACTED);
  assert.equal(shownSetting("plain", "db.example.test"), "db.example.test");
});

Deno.test("a config error quotes a value only for a field whose rule says it is plain", () => {
  const value = 123456789;
  for (const descriptor of BACKENDS) {
    for (const field of fieldsOf(descriptor.rule.fields)) {
      const [head, ...rest] = field.split(".");
      const config: Record<string, unknown> = { ...EXAMPLES[descriptor.type] };
      config[head] = rest.length ? { [rest.join(".")]: value } : value;
      const checked = descriptor.rule(config, ["backend"], {});
      if (checked.ok) continue;
      const quoted = checked.issue.message.includes(String(value));
      assert.equal(
        quoted,
        exposureOf(descriptor.rule, field) === "plain",
        `${descriptor.type} ${field}: ${checked.issue.message}`,
      );
    }
  }
});

Deno.test("config show never prints the user info of any backend's URL fields", async () => {
  await using project = await cliProject();
  const secret = "Zq8-user-info-secret";
  for (const descriptor of BACKENDS) {
    const config: Record<string, unknown> = { ...EXAMPLES[descriptor.type] };
    const urls = fieldsOf(descriptor.rule.fields)
      .filter((field) => exposureOf(descriptor.rule, field) === "url");
    for (const field of urls) {
      const [head, ...rest] = field.split(".");
      const value = `${URL_SCHEME[descriptor.type] ?? "https"}://${secret}@${field}.example.test/`;
      config[head] = rest.length
        ? { ...config[head] as Record<string, unknown>, [rest.join(".")]: value }
        : value;
    }
    await Deno.writeTextFile(
      `${project.path}/gaib.yaml`,
      JSON.stringify({ version: "1", backend: config }),
    );
    for (const args of [["config", "show"], ["config", "show", "--json", "--verbose"]]) {
      const result = await project.run(args);
      assert.equal(result.code, 0, result.stderr);
      const all = result.stdout + result.stderr;
      assert.ok(!all.includes(secret), `${descriptor.type}: ${args.join(" ")}:\n${all}`);
      for (const field of urls) {
        const scheme = URL_SCHEME[descriptor.type] ?? "https";
        assert.ok(all.includes(`${scheme}://[redacted]@${field}.example.test/`), all);
      }
    }
    const json = parseJson(await project.run(["config", "show", "--json"]));
    assert.equal((json.backend as { type: string }).type, descriptor.type);
  }
});

Deno.test("no source file outside src/backends/ and src/config.ts names a backend type", async () => {
  const files = [`${ROOT}cli.ts`, `${ROOT}mod.ts`];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory && path !== `${ROOT}src/backends`) await walk(path);
      else if (entry.isFile && entry.name.endsWith(".ts")) files.push(path);
    }
  };
  await walk(`${ROOT}src`);
  assert.ok(files.includes(`${ROOT}src/factory.ts`) && files.includes(`${ROOT}src/cli/config.ts`));
  const named: string[] = [];
  for (const file of files) {
    if (file === `${ROOT}src/config.ts`) continue; // the interfaces of the BackendConfig union
    const lines = (await Deno.readTextFile(file)).split("\n");
    lines.forEach((line, i) => {
      if (/^\s*(\*|\/\/|\/\*)/.test(line)) return; // doc comments and comments
      for (const { type } of BACKENDS) {
        if (new RegExp(`["'\`]${type}["'\`]`).test(line)) {
          named.push(`${file.slice(ROOT.length)}:${i + 1}: ${line.trim()}`);
        }
      }
    });
  }
  assert.deepEqual(named, [], "read the registry instead of naming a backend type");
});

Deno.test("the registry loads no backend module and no npm package until a backend is created", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `${ROOT}src/backends/_registry.ts`],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    roots: string[];
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier: string }; isDynamic?: boolean }[];
    }[];
  };
  const modules = new Map(info.modules.map((m) => [m.specifier, m]));
  const loaded = new Set<string>();
  const dynamic = new Set<string>();
  const visit = (specifier: string) => {
    if (loaded.has(specifier)) return;
    loaded.add(specifier);
    for (const dep of modules.get(specifier)?.dependencies ?? []) {
      if (dep.code === undefined) continue; // a type-only import
      if (dep.isDynamic) dynamic.add(dep.code.specifier);
      else visit(dep.code.specifier);
    }
  };
  visit(info.roots[0]);
  const npm = [...loaded].filter((s) => s.startsWith("npm:"));
  assert.deepEqual(npm, []);
  const backends = [...loaded].filter((s) => /\/src\/backends\/[a-z0-9]+\.ts$/.test(s));
  assert.deepEqual(backends, [], "backend modules are loaded by descriptors' load()");
  // The test can fail: each backend's module is reachable, through its loader only.
  assert.equal(
    [...dynamic].filter((s) => /\/src\/backends\/[a-z0-9]+\.ts$/.test(s)).length,
    BACKENDS.length,
  );
});
