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

/** Adds the line and column to V8's "... at position N" messages. */
function describeSyntaxError(text: string, message: string): string {
  if (/line \d+ column \d+/.test(message)) return message;
  const match = /position (\d+)/.exec(message);
  const position = match ? Number(match[1]) : /end of JSON input/.test(message) ? text.length : -1;
  if (position < 0) return message;
  const before = text.slice(0, position);
  const line = before.split("\n").length;
  const column = position - before.lastIndexOf("\n");
  return `${message} (line ${line}, column ${column})`;
}
