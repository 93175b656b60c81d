/**
 * Terraform addresses: module instances (`module.app["web"]`), resource instances
 * (`module.app["web"].discord_channel.general[0]`) and provider configurations, parsed and
 * formatted the way Terraform writes them.
 *
 * @module
 */

/** One `module.NAME[KEY]` step of a module instance address. */
export interface ModuleStep {
  /** The module call's name. */
  name: string;
  /** The instance key: a `count` index or a `for_each` key; absent for a single instance. */
  key?: number | string;
}

/** A parsed resource instance address. */
export interface InstanceAddress {
  /** The module instance path; empty for the root module. */
  module: ModuleStep[];
  /** `"managed"` for resources, `"data"` for data sources. */
  mode: "managed" | "data";
  /** Resource type. */
  type: string;
  /** Resource name. */
  name: string;
  /** Instance key; absent for a single instance (or, in a pattern, for all instances). */
  key?: number | string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*/;

/**
 * Formats an instance key as Terraform does: `[0]` or `["key"]` with HCL string escapes.
 *
 * @param key a `count` index or a `for_each` key
 * @returns the bracketed key
 *
 * @example
 * ```ts
 * import { formatKey } from "@gaib/state";
 * console.log(formatKey(0), formatKey('a"b')); // [0] ["a\"b"]
 * ```
 */
export function formatKey(key: number | string): string {
  if (typeof key === "number") return `[${key}]`;
  let out = "";
  for (let i = 0; i < key.length; i++) {
    const c = key[i];
    if (c === "\\") out += "\\\\";
    else if (c === '"') out += '\\"';
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if ((c === "$" || c === "%") && key[i + 1] === "{") out += c + c;
    else if (c < " ") out += `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
    else out += c;
  }
  return `["${out}"]`;
}

/**
 * Formats a module instance path: `module.a["x"].module.b[0]`, or `""` for the root module.
 *
 * @param steps the module path
 * @returns the address
 *
 * @example
 * ```ts
 * import { formatModuleAddress } from "@gaib/state";
 * console.log(formatModuleAddress([{ name: "app", key: "web" }])); // module.app["web"]
 * ```
 */
export function formatModuleAddress(steps: readonly ModuleStep[]): string {
  return steps.map((s) => `module.${s.name}${s.key === undefined ? "" : formatKey(s.key)}`)
    .join(".");
}

/**
 * Formats a resource instance address as `terraform state list` prints it.
 *
 * @param address the parts of the address
 * @returns the address, such as `module.app["web"].discord_channel.general[0]`
 *
 * @example
 * ```ts
 * import { formatInstanceAddress } from "@gaib/state";
 * const address = formatInstanceAddress({
 *   module: [{ name: "app", key: "web" }], mode: "managed",
 *   type: "discord_channel", name: "general", key: 0,
 * });
 * console.log(address); // module.app["web"].discord_channel.general[0]
 * ```
 */
export function formatInstanceAddress(address: InstanceAddress): string {
  const prefix = address.module.length ? formatModuleAddress(address.module) + "." : "";
  const mode = address.mode === "data" ? "data." : "";
  const key = address.key === undefined ? "" : formatKey(address.key);
  return `${prefix}${mode}${address.type}.${address.name}${key}`;
}

/**
 * The key of a resource instance in a state: its `index_key`, or `undefined` when it has none
 * (absent, or `null` as some hand-written files have it).
 *
 * @param instance a resource instance object
 * @returns the `count` index or `for_each` key
 *
 * @example
 * ```ts
 * import { instanceKey } from "@gaib/state";
 * console.log(instanceKey({ index_key: 2 }), instanceKey({ index_key: null })); // 2 undefined
 * ```
 */
export function instanceKey(instance: { index_key?: unknown }): number | string | undefined {
  const key = instance.index_key;
  return typeof key === "number" || typeof key === "string" ? key : undefined;
}

/**
 * The address of a resource block of a state (without an instance key).
 *
 * @param resource the resource block (`module`, `mode`, `type`, `name`)
 * @returns its address
 * @throws {SyntaxError} when its module address is malformed
 *
 * @example
 * ```ts
 * import { formatInstanceAddress, resourceAddress } from "@gaib/state";
 * const address = resourceAddress({ module: 'module.app["web"]', mode: "managed", type: "t", name: "n" });
 * console.log(formatInstanceAddress(address)); // module.app["web"].t.n
 * ```
 */
export function resourceAddress(
  resource: { module?: string; mode: "managed" | "data"; type: string; name: string },
): InstanceAddress {
  return {
    module: resource.module ? parseModuleAddress(resource.module) : [],
    mode: resource.mode,
    type: resource.type,
    name: resource.name,
  };
}

/** A cursor over an address string; every `read*` method throws on malformed input. */
class AddressScanner {
  pos = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.pos >= this.text.length;
  }

  peek(literal: string): boolean {
    return this.text.startsWith(literal, this.pos);
  }

  expect(literal: string): void {
    if (!this.peek(literal)) this.fail(`expected "${literal}"`);
    this.pos += literal.length;
  }

  readIdent(): string {
    const match = IDENT.exec(this.text.slice(this.pos));
    if (!match) this.fail("expected a name");
    this.pos += match[0].length;
    return match[0];
  }

  /** Reads `[0]` or `["key"]`. */
  readKey(): number | string {
    this.expect("[");
    let key: number | string;
    if (this.peek('"')) key = this.readString();
    else {
      const match = /^\d+/.exec(this.text.slice(this.pos));
      if (!match) this.fail("expected a number or a quoted string as the key");
      this.pos += match[0].length;
      key = Number(match[0]);
    }
    this.expect("]");
    return key;
  }

  /** Reads an HCL-style quoted string. */
  readString(): string {
    this.expect('"');
    let out = "";
    while (!this.done) {
      const c = this.text[this.pos++];
      if (c === '"') return out;
      if (c !== "\\") {
        if (c === "$" || c === "%") {
          // "$${" and "%%{" are the escaped forms of "${" and "%{".
          if (this.peek(c + "{")) this.pos++;
        }
        out += c;
        continue;
      }
      const e = this.text[this.pos++];
      if (e === "n") out += "\n";
      else if (e === "r") out += "\r";
      else if (e === "t") out += "\t";
      else if (e === '"' || e === "\\") out += e;
      else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos, this.pos + 4))) {
        out += String.fromCharCode(parseInt(this.text.slice(this.pos, this.pos + 4), 16));
        this.pos += 4;
      } else this.fail(`unknown escape "\\${e ?? ""}"`);
    }
    this.fail("unterminated string");
  }

  /** Reads `module.NAME[KEY]` steps while they come, each followed by a `.`. */
  readModuleSteps(): ModuleStep[] {
    const steps: ModuleStep[] = [];
    while (this.peek("module.")) {
      this.pos += "module.".length;
      const name = this.readIdent();
      const step: ModuleStep = { name };
      if (this.peek("[")) step.key = this.readKey();
      steps.push(step);
      if (this.done) break;
      this.expect(".");
    }
    return steps;
  }

  fail(what: string): never {
    throw new SyntaxError(
      `invalid address "${this.text}": ${what} at character ${this.pos + 1}`,
    );
  }
}

/**
 * Parses a module instance address such as `module.app["web"].module.db[0]`.
 *
 * @param text the address; `""` is the root module
 * @returns the module path
 * @throws {SyntaxError} when the address is malformed
 *
 * @example
 * ```ts
 * import { parseModuleAddress } from "@gaib/state";
 * console.log(parseModuleAddress('module.app["web"]')); // [ { name: "app", key: "web" } ]
 * ```
 */
export function parseModuleAddress(text: string): ModuleStep[] {
  if (text === "") return [];
  const scanner = new AddressScanner(text);
  const steps = scanner.readModuleSteps();
  if (!scanner.done || text.endsWith(".")) scanner.fail("expected module.NAME");
  return steps;
}

/**
 * Parses a resource or resource instance address, as `terraform state` commands take it.
 *
 * @param text such as `discord_role.admin`, `module.app["web"].discord_channel.general[0]`
 *   or `data.discord_guild.main`
 * @returns the parsed address; `key` is absent when the text names no instance
 * @throws {SyntaxError} when the address is malformed
 *
 * @example
 * ```ts
 * import { parseInstanceAddress } from "@gaib/state";
 * const address = parseInstanceAddress("module.app[1].discord_role.admin");
 * console.log(address.module[0].key, address.type); // 1 discord_role
 * ```
 */
export function parseInstanceAddress(text: string): InstanceAddress {
  const scanner = new AddressScanner(text);
  const module = scanner.readModuleSteps();
  let mode: "managed" | "data" = "managed";
  if (scanner.peek("data.")) {
    scanner.pos += "data.".length;
    mode = "data";
  }
  const type = scanner.readIdent();
  scanner.expect(".");
  const name = scanner.readIdent();
  const address: InstanceAddress = { module, mode, type, name };
  if (scanner.peek("[")) address.key = scanner.readKey();
  if (!scanner.done) scanner.fail("unexpected text after the address");
  return address;
}

/**
 * Checks that a provider configuration address is well formed: the current form
 * `provider["registry.terraform.io/ns/type"].alias`, the legacy form `provider.type.alias`,
 * either optionally behind a module path, and OpenTofu's instance keys (`.alias["key"]`).
 *
 * @param text the address as found in a state file
 * @returns whether it is a provider address
 *
 * @example
 * ```ts
 * import { isProviderAddress } from "@gaib/state";
 * console.log(isProviderAddress('provider["registry.terraform.io/hashicorp/null"]')); // true
 * console.log(isProviderAddress("not a provider")); // false
 * ```
 */
export function isProviderAddress(text: string): boolean {
  try {
    const scanner = new AddressScanner(text);
    scanner.readModuleSteps();
    scanner.expect("provider");
    if (scanner.peek("[")) {
      const source = scanner.readKey();
      if (typeof source !== "string" || !/^[^\s/"]+(\/[^\s/"]+){0,2}$/.test(source)) {
        return false;
      }
    } else {
      scanner.expect(".");
      scanner.readIdent();
    }
    if (scanner.peek(".")) {
      scanner.pos++;
      scanner.readIdent();
    }
    if (scanner.peek("[")) scanner.readKey();
    return scanner.done;
  } catch {
    return false;
  }
}
