/**
 * JSON parsing for state files, which hold secrets and must survive a rewrite unchanged:
 *
 * - Every number whose text a double would not write back identically (`1e400`, `-2E+999`,
 *   `1.0`, `-0`, `12345678901234567890`) is kept as a `JSON.rawJSON` value, which
 *   `JSON.stringify` writes back character for character. Numbers that do round-trip stay
 *   plain numbers.
 * - A syntax error names its line and column and what was expected, never the text around it:
 *   V8's own message quotes about ten characters of the input, which may be a token.
 *
 * @module
 */

// `JSON.rawJSON` and `JSON.isRawJSON` (TC39 "JSON.parse source text access") are in V8 but
// not yet in TypeScript's lib.
const { rawJSON, isRawJSON } = JSON as unknown as {
  rawJSON(text: string): unknown;
  isRawJSON(value: unknown): boolean;
};

/** Whether a value is a number kept as its JSON text (see the module doc). */
export function isRawNumber(value: unknown): value is { readonly rawJSON: string } {
  return isRawJSON(value);
}

/** The JSON text of a number, plain or kept as text. */
export function numberText(value: number | { readonly rawJSON: string }): string {
  return typeof value === "number" ? JSON.stringify(value) : value.rawJSON;
}

// A number token follows the start of the text, "[", "," or ":" (and whitespace), and is
// followed by whitespace, ",", "]", "}" or the end. Only tokens with a fraction, an exponent,
// a "-0" or 16 or more digits can be written back differently; the scan looks for those alone
// (most numbers of a state are small integers), then checks each candidate's whole token.
// Text inside a string that looks alike ("a:1.0, b") costs a needless reviver pass, never a
// wrong result; times ("10:09:00") do not match, as "09" is no JSON number.
const CANDIDATE = /[[,:][ \t\n\r]*(?:-?\d+[.eE]|-0|-?\d{16})/g;
const TOKEN_AT =
  /[[,:]?[ \t\n\r]*(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)(?=[ \t\n\r,\]}]|$)/y;

function lossyAt(text: string, index: number): boolean {
  TOKEN_AT.lastIndex = index;
  const m = TOKEN_AT.exec(text);
  return m !== null && String(Number(m[1])) !== m[1];
}

/** Whether some number in the text would not be written back as it is written. */
function hasLossyNumber(text: string): boolean {
  if (lossyAt(text, 0)) return true; // a document that is one number
  CANDIDATE.lastIndex = 0;
  for (let m = CANDIDATE.exec(text); m !== null; m = CANDIDATE.exec(text)) {
    if (lossyAt(text, m.index)) return true;
  }
  return false;
}

interface ReviverContext {
  source?: string;
}

function keepNumberText(_key: string, value: unknown, context?: ReviverContext): unknown {
  if (
    typeof value === "number" && context?.source !== undefined &&
    String(value) !== context.source
  ) {
    return rawJSON(context.source);
  }
  return value;
}

/** A JSON syntax error: where it is and what was expected there, without the input's text. */
export class JsonSyntaxError extends SyntaxError {
  /** 1-based line of the error. */
  readonly line: number;
  /** 1-based column (in characters) of the error. */
  readonly column: number;
  /** What the parser expected there, such as `"a value"`. */
  readonly expected: string;
  /** What it found, by kind only (`"a letter"`, `"the end of the input"`). */
  readonly found: string;

  constructor(line: number, column: number, expected: string, found: string) {
    super(`line ${line}, column ${column}: expected ${expected}, found ${found}`);
    this.name = "JsonSyntaxError";
    this.line = line;
    this.column = column;
    this.expected = expected;
    this.found = found;
  }
}

/**
 * Parses JSON text, keeping the text of every number a double would change.
 *
 * @throws {JsonSyntaxError} naming the line, column and what was expected (never the bytes)
 * @throws {RangeError} when the lossless parse runs out of stack (nesting thousands deep)
 */
export function parseJsonLossless(text: string): unknown {
  try {
    if (!hasLossyNumber(text)) return JSON.parse(text);
    // deno-lint-ignore no-explicit-any
    return JSON.parse(text, keepNumberText as any);
  } catch (error) {
    // V8's message quotes the input: it is dropped here, and not kept as `cause` either.
    if (!(error instanceof SyntaxError)) throw error;
  }
  throw describeSyntaxError(text);
}

function describeSyntaxError(text: string): JsonSyntaxError {
  const spot = locateJsonSyntaxError(text) ??
    // Not expected: the scanner and V8 disagree. Say no more than that it is not JSON.
    { offset: 0, expected: "valid JSON", found: "text that is not" };
  const before = text.lastIndexOf("\n", spot.offset - 1);
  let line = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < spot.offset; i = text.indexOf("\n", i + 1)) {
    line++;
  }
  // Columns count characters (code points), as editors do, not UTF-16 units.
  let column = 1;
  for (let i = before + 1; i < spot.offset; i++) {
    const c = text.charCodeAt(i);
    const low = c >= 0xdc00 && c <= 0xdfff;
    const afterHigh = i > before + 1 && text.charCodeAt(i - 1) >= 0xd800 &&
      text.charCodeAt(i - 1) <= 0xdbff;
    if (!(low && afterHigh)) column++;
  }
  return new JsonSyntaxError(line, column, spot.expected, spot.found);
}

/** Where a JSON text first breaks the grammar, and what was expected there. */
export interface JsonSyntaxSpot {
  /** Offset (UTF-16 units) of the offending character, or the text's length at its end. */
  offset: number;
  /** What the grammar expected, such as `"',' or '}'"`. */
  expected: string;
  /** What is there, by kind only. */
  found: string;
}

const STRUCTURAL = "{}[],:";

/** Names what is at `i` by kind, never by content (it may be part of a secret). */
function describeFound(text: string, i: number): string {
  if (i >= text.length) return "the end of the input";
  const c = text[i];
  if (STRUCTURAL.includes(c)) return `'${c}'`;
  if (c === '"') return "a quotation mark";
  if (c >= "0" && c <= "9") return "a digit";
  if (c === "-" || c === "+") return "a sign";
  if (/\p{L}/u.test(c)) return "a letter";
  if (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f) return "a control character";
  if (/\s/.test(c)) return "a whitespace character JSON does not allow";
  return "another character";
}

/**
 * Finds the first JSON syntax error with a small iterative scanner (no recursion, so any
 * nesting depth is fine). It runs only after `JSON.parse` has failed.
 *
 * @returns the error's position and what was expected, or `null` when the text is valid
 */
export function locateJsonSyntaxError(text: string): JsonSyntaxSpot | null {
  const n = text.length;
  let i = 0;
  const stack: number[] = []; // 0x7b "{" or 0x5b "["
  const spot = (expected: string, at = i): JsonSyntaxSpot => ({
    offset: at,
    expected,
    found: describeFound(text, at),
  });
  const skipWhitespace = () => {
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    }
  };
  const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
  const isHex = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

  // Reads a string starting at its opening quote; returns an error spot or null.
  const readString = (): JsonSyntaxSpot | null => {
    for (i++; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return null;
      }
      if (c < 0x20) {
        return spot("an escape such as \\n in place of a control character in a string");
      }
      if (c === 0x5c) {
        const e = text.charCodeAt(i + 1);
        if (e === 0x75) {
          for (let k = 2; k < 6; k++) {
            if (!isHex(text.charCodeAt(i + k))) {
              return spot("four hexadecimal digits after \\u", i + k);
            }
          }
          i += 5;
        } else if ('"\\/bfnrt'.includes(text[i + 1] ?? "x")) i++;
        else return spot('an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)', i + 1);
      }
    }
    return spot("a closing quotation mark");
  };

  const readNumber = (): JsonSyntaxSpot | null => {
    if (text.charCodeAt(i) === 0x2d) i++;
    if (text.charCodeAt(i) === 0x30) i++;
    else if (isDigit(text.charCodeAt(i))) { while (isDigit(text.charCodeAt(i))) i++; }
    else return spot("a digit");
    if (text.charCodeAt(i) === 0x2e) {
      i++;
      if (!isDigit(text.charCodeAt(i))) return spot("a digit after the decimal point");
      while (isDigit(text.charCodeAt(i))) i++;
    }
    if (text.charCodeAt(i) === 0x65 || text.charCodeAt(i) === 0x45) {
      i++;
      if (text.charCodeAt(i) === 0x2b || text.charCodeAt(i) === 0x2d) i++;
      if (!isDigit(text.charCodeAt(i))) return spot("a digit in the exponent");
      while (isDigit(text.charCodeAt(i))) i++;
    }
    return null;
  };

  // Reads an object key and its colon.
  const readKey = (expected: string): JsonSyntaxSpot | null => {
    skipWhitespace();
    if (text.charCodeAt(i) !== 0x22) return spot(expected);
    const bad = readString();
    if (bad) return bad;
    skipWhitespace();
    if (text.charCodeAt(i) !== 0x3a) return spot("':' after the object key");
    i++;
    return null;
  };

  for (;;) {
    // A value is expected here.
    skipWhitespace();
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) {
      i++;
      skipWhitespace();
      const close = c === 0x7b ? 0x7d : 0x5d;
      if (text.charCodeAt(i) === close) i++;
      else {
        stack.push(c);
        if (c === 0x7b) {
          const bad = readKey("a quoted object key or '}'");
          if (bad) return bad;
        }
        continue;
      }
    } else if (c === 0x22) {
      const bad = readString();
      if (bad) return bad;
    } else if (c === 0x2d || isDigit(c)) {
      const bad = readNumber();
      if (bad) return bad;
    } else {
      const word = ["true", "false", "null"].find((w) => text.startsWith(w, i));
      if (!word) return spot("a value");
      i += word.length;
    }
    // After a value: a separator, a closer, or the end.
    let next = false;
    while (!next) {
      skipWhitespace();
      const top = stack[stack.length - 1];
      if (top === undefined) return i < n ? spot("the end of the input") : null;
      const d = text.charCodeAt(i);
      if (d === 0x2c) {
        i++;
        if (top === 0x7b) {
          const bad = readKey("a quoted object key");
          if (bad) return bad;
        }
        next = true;
      } else if (d === (top === 0x7b ? 0x7d : 0x5d)) {
        stack.pop();
        i++;
      } else return spot(top === 0x7b ? "',' or '}'" : "',' or ']'");
    }
  }
}
