/**
 * Temporary directories for tests, removed when the `await using` scope ends.
 *
 * @module
 */

/** A temp directory that removes itself on disposal. */
export interface TempDir extends AsyncDisposable {
  /** The directory's absolute path. */
  readonly path: string;
}

/**
 * Creates a temp directory, removed (recursively) when disposed.
 *
 * @example
 * ```ts ignore
 * await using dir = await tempDir();
 * await Deno.writeTextFile(`${dir.path}/x`, "y");
 * ```
 */
export async function tempDir(prefix = "gaib-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      // A test may have left read-only directories behind: make them removable first.
      await chmodTree(path).catch(() => {});
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

async function chmodTree(path: string): Promise<void> {
  await Deno.chmod(path, 0o700);
  for await (const entry of Deno.readDir(path)) {
    if (entry.isDirectory) await chmodTree(`${path}/${entry.name}`);
  }
}
