/**
 * `gaib-state output [NAME] [--json | --raw]`: root outputs, as `terraform output` shows them,
 * but stricter: a sensitive value is printed only when its output is asked for by name, also
 * with `--json` (Terraform's `-json` prints every value) and `--verbose`.
 *
 * @module
 */

import { viewOutputs } from "../_outputs.ts";
import { printable } from "../_printable.ts";
import { isRawJson } from "./_sensitive.ts";
import { type CommandRun, handler } from "./_context.ts";
import { UsageError } from "./_errors.ts";
import { renderValue } from "./_render.ts";
import { type ReadFlags, withStateSource } from "./_state_source.ts";

interface OutputFlags extends ReadFlags {
  /** `--raw`: the bare value of one string, number or bool output. */
  readonly raw?: boolean;
}

/** `output [NAME]`. */
export const output = handler(async ({ out }: CommandRun, flags: OutputFlags, name?: string) => {
  if (flags.raw && name === undefined) {
    throw new UsageError("--raw prints one output's value: name the output (output NAME --raw).");
  }
  if (flags.raw && out.json) throw new UsageError("--raw and --json exclude each other.");
  await withStateSource(flags, out, ({ state }) => {
    const views = viewOutputs(state, name);
    if (name !== undefined) {
      const [view] = views;
      if (flags.raw) {
        const v = view.value;
        const raw = typeof v === "string" || typeof v === "number" || typeof v === "boolean"
          ? String(v)
          : isRawJson(v)
          ? (v as { rawJSON: string }).rawJSON
          : null;
        if (raw === null) {
          throw new UsageError(
            `Output "${printable(name)}" is not a string, number or bool, so --raw cannot ` +
              "print it; use --json.",
          );
        }
        // The bare value, as Terraform's -raw: escaped all the same, so a value from the
        // state cannot drive the terminal.
        out.data(out.io.stdoutIsTerminal() ? printable(raw) : raw);
        return Promise.resolve();
      }
      if (out.json) out.jsonDocument(view.value);
      else out.data(renderValue(view.value, 0) + "\n");
      return Promise.resolve();
    }
    if (out.json) {
      const doc: Record<string, unknown> = {};
      for (const v of views) {
        doc[v.name] = v.shown
          ? { sensitive: v.sensitive, type: v.type, value: v.value }
          : { sensitive: true, type: v.type };
      }
      out.jsonDocument(doc);
      return Promise.resolve();
    }
    if (views.length === 0) {
      out.info("The state has no outputs.");
      return Promise.resolve();
    }
    out.data(
      views.map((v) =>
        `${printable(v.name)} = ${v.shown ? renderValue(v.value, 0) : "<sensitive>"}\n`
      ).join(""),
    );
    return Promise.resolve();
  });
});
