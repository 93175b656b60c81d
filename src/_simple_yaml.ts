/**
 * A reader for the small part of YAML that `gaib.yaml` files are written in, so that reading
 * the usual config does not load the YAML parser (about 85 ms of start-up).
 *
 * It reads block mappings of plain keys, nested by indentation with spaces, whose values are
 * `true`/`false`, small decimal integers, strings in double quotes without escapes, strings in
 * single quotes without `''`, and plain strings made of a few safe characters, with comments.
 * On anything else it returns `null` and the caller reads the text with the full parser,
 * which also reports errors with their line and column. Whatever this reader accepts, it reads
 * exactly as the full parser does (`tests/config_test.ts` compares the two on a corpus).
 *
 * @module
 */

/** A YAML mapping as JavaScript data. */
export type SimpleMapping = { [key: string]: SimpleValue };
/** A value this reader produces. */
export type SimpleValue = string | number | boolean | SimpleMapping;

const KEY_LINE = /^([A-Za-z_][A-Za-z0-9_-]*):(?=[ ]|$)(.*)$/;
/** Keys the YAML core schema reads as something else than their text, or that are magic in JS. */
const SPECIAL_KEY = /^(?:true|false|null|__proto__)$/i;
const NOTHING_OR_COMMENT = /^(?:[ ]+#.*)?[ ]*$/;
const DOUBLE_QUOTED = /^"([^"\\]*)"(?:[ ]+#.*)?[ ]*$/;
const SINGLE_QUOTED = /^'([^']*)'(?:[ ]+#.*)?[ ]*$/;
/** A plain scalar of safe characters, starting with one that is not a YAML indicator. */
const PLAIN = /^[A-Za-z0-9_./$][A-Za-z0-9_./${}@%+=,()~:-]*(?: [A-Za-z0-9_./${}@%+=,()~:-]+)*$/;
const SMALL_INTEGER = /^(?:0|[1-9][0-9]{0,14})$/;
/** Plain scalars the core schema may read as a number, null or boolean. */
const MAYBE_NOT_A_STRING = /^(?:[-+0-9]|\.(?:[0-9]|inf$|nan$)|(?:true|false|null)$)/i;

/**
 * Reads `text` when it uses only the subset described above.
 *
 * @param text the config file's text
 * @returns the top-level mapping, or `null` when the full parser must read the text
 */
export function parseSimpleYaml(text: string): SimpleMapping | null {
  // Printable ASCII and line breaks only: no tabs, no control or Unicode line characters.
  if (/[^\n\r\x20-\x7e]/.test(text)) return null;
  const root: SimpleMapping = {};
  const stack: { indent: number; map: SimpleMapping }[] = [{ indent: 0, map: root }];
  let opener: { indent: number; map: SimpleMapping; key: string } | null = null;
  let keys = 0;
  for (let line of text.split("\n")) {
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.includes("\r")) return null;
    const content = line.trimStart();
    if (content === "" || content.startsWith("#")) continue;
    const indent = line.length - content.length;
    const match = KEY_LINE.exec(content);
    if (!match) return null;
    const [, key, rest] = match;
    if (SPECIAL_KEY.test(key)) return null;
    if (opener) {
      if (indent <= opener.indent) return null; // an empty value: null, left to the full parser
      const map: SimpleMapping = {};
      opener.map[opener.key] = map;
      stack.push({ indent, map });
      opener = null;
    } else {
      while (stack.length > 1 && stack[stack.length - 1].indent > indent) stack.pop();
      if (stack[stack.length - 1].indent !== indent) return null;
    }
    const { map } = stack[stack.length - 1];
    if (Object.hasOwn(map, key)) return null; // a duplicate key: an error, reported in full
    keys++;
    if (NOTHING_OR_COMMENT.test(rest)) {
      opener = { indent, map, key };
      map[key] = {}; // replaced by the nested mapping on the next line
      continue;
    }
    const value = scalar(rest.trimStart());
    if (value === undefined) return null;
    map[key] = value;
  }
  return opener || keys === 0 ? null : root;
}

function scalar(text: string): string | number | boolean | undefined {
  if (text.startsWith('"')) return DOUBLE_QUOTED.exec(text)?.[1];
  if (text.startsWith("'")) return SINGLE_QUOTED.exec(text)?.[1];
  const comment = text.search(/ #/);
  const plain = (comment < 0 ? text : text.slice(0, comment)).trimEnd();
  if (!PLAIN.test(plain) || /:(?: |$)/.test(plain)) return undefined;
  if (plain === "true") return true;
  if (plain === "false") return false;
  if (SMALL_INTEGER.test(plain)) return Number(plain);
  return MAYBE_NOT_A_STRING.test(plain) ? undefined : plain;
}
