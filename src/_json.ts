/**
 * JSON parsing that loses nothing: numbers a JavaScript number cannot hold exactly are kept
 * as `JSON.rawJSON` values, which `JSON.stringify` writes back digit for digit.
 *
 * @module
 */

// A number token of 16+ characters may carry more precision than a double holds (any
// decimal of at most 15 significant digits survives a round trip). Scanning for one is far
// cheaper than a reviver over every value, so the reviver only runs when one is present.
const LONG_NUMBER = /[:[,]\s*-?\d[\d.eE+-]{15,}/;

interface ReviverContext {
  source?: string;
}

// `JSON.rawJSON` (TC39 "JSON.parse source text access") is in V8 but not yet in TypeScript's lib.
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

function significantDigits(source: string): number {
  const mantissa = source.replace(/^-/, "").split(/[eE]/)[0].replace(".", "");
  return mantissa.replace(/^0+/, "").replace(/0+$/, "").length;
}

function keepPrecision(_key: string, value: unknown, context?: ReviverContext): unknown {
  if (typeof value === "number" && context?.source && significantDigits(context.source) > 15) {
    return rawJSON(context.source);
  }
  return value;
}

/**
 * Parses JSON text, keeping numbers with more than 15 significant digits exactly.
 *
 * @throws {SyntaxError} with the line and column of the error in its message
 */
export function parseJsonLossless(text: string): unknown {
  try {
    if (!LONG_NUMBER.test(text)) return JSON.parse(text);
    // deno-lint-ignore no-explicit-any
    return JSON.parse(text, keepPrecision as any);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new SyntaxError(describeSyntaxError(text, error.message), { cause: error });
  }
}

/** Adds the line and column of the error to V8's message. */
function describeSyntaxError(text: string, message: string): string {
  if (/line \d+ column \d+/.test(message)) return message;
  const match = /position (\d+)/.exec(message);
  const position = match ? Number(match[1]) : findSyntaxError(text);
  if (position < 0) return message;
  const before = text.slice(0, position);
  const line = before.split("\n").length;
  const column = position - before.lastIndexOf("\n");
  return `${message} (line ${line}, column ${column})`;
}

/**
 * Finds the offset of the first JSON syntax error (V8 does not always say), with a small
 * iterative scanner: it runs only after JSON.parse has failed. Returns -1 if none is found.
 */
export function findSyntaxError(text: string): number {
  let i = 0;
  const n = text.length;
  const stack: string[] = []; // "{" or "["
  const ws = () => {
    while (i < n && (text[i] === " " || text[i] === "\n" || text[i] === "\r" || text[i] === "\t")) {
      i++;
    }
  };
  const scalar = (): boolean => {
    if (text[i] === '"') {
      for (i++; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c === 0x22) return (i++, true);
        if (c < 0x20) return false;
        if (c === 0x5c) {
          const e = text[++i];
          if (e === "u") {
            if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) return false;
            i += 4;
          } else if (!'"\\/bfnrt'.includes(e ?? "x")) return false;
        }
      }
      return false;
    }
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(
      text.slice(i, i + 400),
    );
    if (!m) return false;
    i += m[0].length;
    return true;
  };
  // States: expecting a value; after a value (expect , or a closer).
  ws();
  for (;;) {
    // expect a value
    ws();
    if (i >= n) return i;
    if (text[i] === "{" || text[i] === "[") {
      const open = text[i++];
      stack.push(open);
      ws();
      if (text[i] === (open === "{" ? "}" : "]")) {
        stack.pop();
        i++;
      } else if (open === "{") {
        if (text[i] !== '"' || !scalar()) return i;
        ws();
        if (text[i++] !== ":") return i - 1;
        continue;
      } else continue;
    } else if (!scalar()) return i;
    // after a value
    for (;;) {
      ws();
      if (stack.length === 0) return i < n ? i : -1;
      const top = stack[stack.length - 1];
      if (text[i] === ",") {
        i++;
        if (top === "{") {
          ws();
          if (text[i] !== '"' || !scalar()) return i;
          ws();
          if (text[i++] !== ":") return i - 1;
        }
        break;
      }
      if (text[i] === (top === "{" ? "}" : "]")) {
        stack.pop();
        i++;
        continue;
      }
      return i;
    }
  }
}
