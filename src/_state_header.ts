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

/**
 * Returns the header of a state document, or `null` when it cannot be read cheaply or is not
 * plainly valid (the caller then parses the whole document, which names the problem).
 */
export function readStateHeader(bytes: Uint8Array): StateHeader | null {
  const text = new TextDecoder().decode(bytes.subarray(0, SCAN_LIMIT));
  // No prototype, so that a key named "__proto__" is just a key.
  const found: Record<string, unknown> = Object.create(null);
  // One member: "key" : scalar, followed by "," or "}".
  const member =
    /\s*"((?:[^"\\]|\\.)*)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)\s*([,}])/y;
  const start = /^\uFEFF?\s*\{/.exec(text);
  if (!start) return null;
  member.lastIndex = start[0].length;
  const numbers: Record<string, string> = Object.create(null);
  for (;;) {
    const match = member.exec(text);
    if (!match) break;
    let key: string;
    try {
      key = JSON.parse(`"${match[1]}"`);
      // A key seen twice makes JSON.parse take the last one: let the full parse decide.
      if (Object.hasOwn(found, key)) return null;
      found[key] = JSON.parse(match[2]);
    } catch {
      return null; // a control character or a bad escape: the full parse reports it
    }
    numbers[key] = match[2];
    // Terraform reads "Serial" as "serial" (encoding/json ignores letter case): the full
    // parse refuses such a key.
    const folded = key.replace(/\u017f/g, "s").replace(/\u212a/g, "k").toLowerCase();
    if (folded !== key && HEADER_FIELDS.has(folded)) return null;
    if (match[3] === "}") break;
  }
  const { serial, lineage } = found;
  // Only numbers written as Terraform writes them: the full parse refuses "4.0", "1e0", "-0".
  if (
    numbers.version !== "4" || !/^(0|[1-9]\d*)$/.test(numbers.serial ?? "") ||
    !Number.isSafeInteger(serial) || typeof lineage !== "string"
  ) {
    return null;
  }
  return { version: 4, serial: serial as number, lineage };
}

const HEADER_FIELDS = new Set(["version", "terraform_version", "serial", "lineage"]);
