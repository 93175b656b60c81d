/**
 * Reads a stored state's lineage and serial from the start of its bytes, so a write can check
 * them without parsing a state that may be tens of megabytes.
 *
 * Terraform (and `serializeState`) write `version`, `terraform_version`, `serial` and
 * `lineage` before anything nested. The scanner walks top-level members from the opening
 * brace while their values are scalars; because it starts at the top of the document, every
 * key it sees is a top-level key. When the document has another shape, it returns `null` and
 * the caller parses the whole document instead.
 *
 * @module
 */

/** The fields a write is checked against. */
export interface StateHeader {
  version: number;
  serial: number;
  lineage: string;
}

const SCAN_LIMIT = 64 * 1024;

/** Returns the header of a state document, or `null` when it cannot be read cheaply. */
export function readStateHeader(bytes: Uint8Array): StateHeader | null {
  const text = new TextDecoder().decode(bytes.subarray(0, SCAN_LIMIT));
  const found: Record<string, unknown> = {};
  // One member: "key" : scalar, followed by "," or "}".
  const member =
    /\s*"((?:[^"\\]|\\.)*)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)\s*([,}])/y;
  const start = /^\uFEFF?\s*\{/.exec(text);
  if (!start) return null;
  member.lastIndex = start[0].length;
  for (;;) {
    const match = member.exec(text);
    if (!match) break;
    const key = JSON.parse(`"${match[1]}"`) as string;
    // A key seen twice would make JSON.parse take the last one: let the full parse decide.
    if (key in found) return null;
    found[key] = JSON.parse(match[2]);
    if (match[3] === "}") break;
  }
  const { version, serial, lineage } = found;
  if (typeof version !== "number" || !Number.isSafeInteger(serial) || typeof lineage !== "string") {
    return null;
  }
  return { version, serial: serial as number, lineage };
}
