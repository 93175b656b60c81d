/**
 * HCL's absolute traversal syntax (`module.app["web"].aws_instance.x[0]`), which Terraform and
 * OpenTofu parse every address in a state with (`hclsyntax.ParseTraversalAbs`, called from
 * `internal/addrs`). Reading addresses the same way means accepting what they accept: spaces,
 * tabs, newlines and comments between tokens (`provider. null`), Unicode names, `[1e2]`, and
 * refusing what they refuse (`${` in a key, `[-1]`, `[*]`).
 *
 * After hashicorp/hcl `hclsyntax/parser_traversal.go` (parseTraversal), `scan_tokens.rl`
 * (Ident, NumberLit, Comment, Spaces) and `parser.go` (parseQuotedStringLiteral,
 * ParseStringLiteralToken).
 *
 * @module
 */

/** A name step: the root (`module`) or an attribute (`.app`). */
export interface NameStep {
  readonly kind: "name";
  readonly name: string;
  /** Offset of the step in the text, for messages. */
  readonly at: number;
}

/** An index step: `["web"]` or `[0]` (the number's literal text). */
export interface IndexStep {
  readonly kind: "index";
  readonly key: string | { readonly number: string };
  readonly at: number;
}

/** One step of a traversal. */
export type Step = NameStep | IndexStep;

/** A traversal that breaks HCL's syntax, or an address rule built on it. */
export class AddressSyntaxError extends SyntaxError {
  /** 1-based character position of the problem. */
  readonly character: number;

  constructor(text: string, what: string, at: number) {
    super(`invalid address ${quoteAddress(text)}: ${what} at character ${at + 1}`);
    this.name = "AddressSyntaxError";
    this.character = at + 1;
  }
}

/** Quotes an address for a message, with control characters escaped (never sent raw). */
export function quoteAddress(text: string): string {
  // deno-lint-ignore no-control-regex
  const safe = text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => {
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
  return `"${safe}"`;
}

// HCL: Ident = (ID_Start | '_') (ID_Continue | '-')*
const IDENT = /[\p{ID_Start}_][\p{ID_Continue}-]*/uy;
// HCL: NumberLit = digit followed by digits, dots and exponents, not ending with a dot.
const NUMBER = /\d(?:[\d.]|[eE][+-]?\d)*/y;
const HEX = /^[0-9a-fA-F]+$/;

/**
 * Parses an absolute traversal.
 *
 * @param text the address
 * @returns its steps; the first is always a name
 * @throws {AddressSyntaxError} naming the problem and its position
 */
export function parseTraversal(text: string): Step[] {
  return new TraversalParser(text).parse();
}

class TraversalParser {
  #pos = 0;

  constructor(readonly text: string) {
    // scanTokens strips a UTF-8 byte order mark (scan_tokens.rl).
    if (text.charCodeAt(0) === 0xfeff) this.#pos = 1;
  }

  fail(what: string, at = this.#pos): never {
    throw new AddressSyntaxError(this.text, what, at);
  }

  parse(): Step[] {
    const steps: Step[] = [];
    this.#skip();
    const root = this.#ident();
    if (root === null) this.fail("expected a name");
    steps.push({ kind: "name", name: root, at: this.#pos - root.length });
    for (;;) {
      this.#skip();
      if (this.#pos >= this.text.length) return steps;
      const at = this.#pos;
      const c = this.text[this.#pos];
      if (c === ".") {
        this.#pos++;
        this.#skip();
        const name = this.#ident();
        if (name === null) {
          this.fail(this.text[this.#pos] === "*" ? "splat (.*) not allowed" : "expected a name");
        }
        steps.push({ kind: "name", name, at });
      } else if (c === "[") {
        this.#pos++;
        this.#skip();
        let key: IndexStep["key"];
        if (this.text[this.#pos] === '"') key = this.#string();
        else {
          NUMBER.lastIndex = this.#pos;
          const m = NUMBER.exec(this.text);
          if (!m) {
            this.fail(
              this.text[this.#pos] === "*"
                ? "splat ([*]) not allowed"
                : "expected a number or a quoted string as the key",
            );
          }
          const literal = m[0].replace(/\.+$/, "");
          // numberLitValue: cty.ParseNumberVal, a decimal with one point and an exponent.
          if (!/^\d+(\.\d*)?([eE][+-]?\d+)?$/.test(literal)) this.fail("invalid number");
          this.#pos += literal.length;
          key = { number: literal };
        }
        this.#skip();
        if (this.text[this.#pos] !== "]") this.fail('expected "]"');
        this.#pos++;
        steps.push({ kind: "index", key, at });
      } else this.fail('expected "." or "["');
    }
  }

  #ident(): string | null {
    IDENT.lastIndex = this.#pos;
    const m = IDENT.exec(this.text);
    if (!m) return null;
    this.#pos += m[0].length;
    return m[0];
  }

  /** Skips spaces, tabs, newlines and comments (traversals ignore newlines). */
  #skip(): void {
    const t = this.text;
    for (;;) {
      const c = t[this.#pos];
      if (c === " " || c === "\t" || c === "\n") this.#pos++;
      else if (c === "\r" && t[this.#pos + 1] === "\n") this.#pos += 2;
      else if (c === "#" || (c === "/" && t[this.#pos + 1] === "/")) {
        while (this.#pos < t.length && t[this.#pos] !== "\n") this.#pos++;
      } else if (c === "/" && t[this.#pos + 1] === "*") {
        const end = t.indexOf("*/", this.#pos + 2);
        if (end === -1) this.fail("unterminated comment");
        this.#pos = end + 2;
      } else return;
    }
  }

  /** Reads a quoted string literal with HCL's escapes; template sequences are refused. */
  #string(): string {
    const t = this.text;
    const open = this.#pos++;
    let out = "";
    while (this.#pos < t.length) {
      const c = t[this.#pos];
      if (c === '"') {
        this.#pos++;
        return out;
      }
      if (c === "\n" || c === "\r") this.fail("newline in a quoted string");
      if (c === "\\") {
        const e = t[this.#pos + 1];
        const simple: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\" };
        if (e !== undefined && e in simple) {
          out += simple[e];
          this.#pos += 2;
        } else if (e === "u" || e === "U") {
          const digits = t.slice(this.#pos + 2, this.#pos + (e === "u" ? 6 : 10));
          if (digits.length !== (e === "u" ? 4 : 8) || !HEX.test(digits)) {
            this.fail(`\\${e} must be followed by ${e === "u" ? "four" : "eight"} hex digits`);
          }
          const code = parseInt(digits, 16);
          // utf8.RuneLen: surrogates and values beyond U+10FFFF cannot be encoded.
          if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
            this.fail(`cannot encode character U+${digits.toUpperCase()}`);
          }
          out += String.fromCodePoint(code);
          this.#pos += 2 + digits.length;
        } else this.fail("invalid escape sequence");
      } else if ((c === "$" || c === "%") && t[this.#pos + 1] === "{") {
        this.fail(`template sequences ("${c}{") are not allowed in an address`);
      } else if ((c === "$" || c === "%") && t[this.#pos + 1] === c && t[this.#pos + 2] === "{") {
        // "$${" and "%%{" are the escaped forms of "${" and "%{".
        out += c + "{";
        this.#pos += 3;
      } else {
        out += c;
        this.#pos++;
      }
    }
    return this.fail("unterminated string", open);
  }
}
