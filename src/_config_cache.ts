/**
 * A cache of checked config files, so that starting the CLI does not load the YAML parser and
 * zod (about 100 ms) when `gaib.yaml` has not changed since it was last checked.
 *
 * The cache is `<config dir>/.gaib/.config-cache.json`: the config as checked, keyed by the
 * SHA-256 of the file's bytes, its path and this library's version (a new version may check
 * differently). Only a config that passed every check is stored, so a hit gives exactly what
 * checking the same bytes again would. Failing to read or write the cache only costs time.
 * The cache is trusted as far as the state root it sits in: whoever can write `.gaib/` can
 * already change the states there. An S3 config from the cache is still checked by zod when
 * the backend is created.
 *
 * @module
 */

import type { GaibConfig } from "./config.ts";
import { dirname, join } from "./_path.ts";
import { VERSION } from "./version.ts";

interface CacheEntry {
  version: string;
  file: string;
  sha256: string;
  config: GaibConfig;
}

function cachePath(file: string): string {
  return join(dirname(file), ".gaib/.config-cache.json");
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The checked config for these exact bytes of `file`, or `null` when not cached. */
export async function readCachedConfig(
  file: string,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<GaibConfig | null> {
  try {
    const entry = JSON.parse(await Deno.readTextFile(cachePath(file))) as CacheEntry;
    if (
      entry.version !== VERSION || entry.file !== file || entry.sha256 !== await sha256(bytes) ||
      typeof entry.config !== "object" || entry.config === null
    ) return null;
    return entry.config;
  } catch {
    return null;
  }
}

/** Stores a config that passed every check (best effort, atomic, 0600). */
export async function writeCachedConfig(
  file: string,
  bytes: Uint8Array<ArrayBuffer>,
  config: GaibConfig,
): Promise<void> {
  const path = cachePath(file);
  const temp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    const entry: CacheEntry = { version: VERSION, file, sha256: await sha256(bytes), config };
    await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(temp, JSON.stringify(entry), { createNew: true, mode: 0o600 });
    await Deno.rename(temp, path);
  } catch {
    await Deno.remove(temp).catch(() => {});
  }
}
