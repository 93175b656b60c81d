/**
 * Sizes on the command line (`--max-body-size 256MiB`). Light: `cli.ts` imports it to parse
 * flags.
 *
 * @module
 */

/** The default body limit of `serve`: well above the 45 MB state of the benchmarks. */
export const DEFAULT_MAX_BODY = 256 * 1024 * 1024;

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1000,
  kib: 1024,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/**
 * A size such as `256MiB`, `100MB` or `1048576` (bytes), from 1 KiB to 4 GiB.
 *
 * @param text the flag's value
 * @returns bytes
 */
export function parseSize(text: string): number {
  const match = /^(\d{1,10})\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  const bytes = match && unit ? Number(match[1]) * unit : NaN;
  if (!(bytes >= 1024 && bytes <= 4 * 1024 ** 3)) {
    throw new SyntaxError(
      `expected a size from 1KiB to 4GiB such as 256MiB, 100MB or 1048576, found ${
        JSON.stringify(text.slice(0, 40))
      }`,
    );
  }
  return bytes;
}
