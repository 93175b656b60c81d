/**
 * The full YAML reading of a config file, with positions: syntax errors and every problem the
 * rules find are reported at their line and column, and numbers are quoted as they were
 * written. Loaded only when the fast reader (`_simple_yaml.ts`) cannot read a file, or a file
 * has a problem to report.
 *
 * @module
 */

import { isMap, isScalar, LineCounter, parseDocument } from "yaml";
import type { ConfigIssue } from "./_config_rules.ts";
import { BackendConfigError } from "./errors.ts";

const MAX_ALIASES = 100;

/** A config file read by the full YAML parser. */
export interface YamlConfig {
  /** The top-level mapping as JavaScript data. */
  value: Record<string, unknown>;
  /** `file:line:column` of the node an issue is about (or of its nearest ancestor). */
  locate(issue: ConfigIssue): string;
  /** The source text of the scalar at `path`, such as `123456789012345678`. */
  sourceOf(path: readonly string[]): string | undefined;
}

type Ranged = { range?: [number, number, number] };

/**
 * Parses a config file's text.
 *
 * @param text the text
 * @param file names the file in errors
 * @returns the data and ways to find positions in the text
 * @throws {BackendConfigError} for a syntax error, too many aliases, an empty file or a top
 * level that is not a mapping
 */
export function readYamlConfig(text: string, file: string): YamlConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax) {
    const at = lines.linePos(syntax.pos[0]);
    const where = at ? `${file}:${at.line}:${at.col}` : file;
    // The parser's message may quote the text around the error; only its first line (which
    // names the problem) is kept.
    throw new BackendConfigError(
      `${where}: invalid YAML: ${syntax.message.split("\n")[0]}. Fix the syntax at that spot.`,
      { file, cause: syntax },
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (error) {
    throw new BackendConfigError(
      `${file}: the YAML uses too many aliases (${(error as Error).message}); ` +
        "write the values out instead of repeating anchors.",
      { file, cause: error },
    );
  }
  if (value === null || value === undefined) {
    throw new BackendConfigError(`${file} is empty. It needs at least: version: "1"`, { file });
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new BackendConfigError(
      `${file}: the top level must be a mapping of keys (version, backend, discord, outputs).`,
      { file },
    );
  }
  const position = (node: Ranged | undefined): string => {
    const offset = node?.range?.[0];
    const pos = offset === undefined ? undefined : lines.linePos(offset);
    return pos ? `${file}:${pos.line}:${pos.col}` : file;
  };
  return {
    value: value as Record<string, unknown>,
    locate(issue) {
      if (issue.key !== undefined) {
        const key = findKeyNode(doc.getIn(issue.path, true), issue.key);
        if (key) return position(key);
      }
      for (let n = issue.path.length; n > 0; n--) {
        const node = doc.getIn(issue.path.slice(0, n), true) as Ranged | undefined;
        if (node?.range) return position(node);
      }
      return file;
    },
    sourceOf(path) {
      const node = doc.getIn([...path], true);
      return isScalar(node) && typeof node.source === "string" ? node.source : undefined;
    },
  };
}

function findKeyNode(parent: unknown, key: string): Ranged | undefined {
  if (!isMap(parent)) return undefined;
  for (const pair of parent.items) {
    const k = pair.key as { value?: unknown } & Ranged | null;
    if (k && String(k.value) === key) return k;
  }
  return undefined;
}
