/**
 * The gaib-state version, written into lock info. Kept equal to `deno.json`'s version by a
 * test.
 *
 * @module
 */

/** This library's version. */
export const VERSION = "0.1.0";
