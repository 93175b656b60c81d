/**
 * The Terraform/OpenTofu state-file corpus and what reading each file must give.
 *
 * - `tests/testdata/tfstate/` is the package's own copy of the shared corpus's small files
 *   (every file but the 45 MB `large-20k.tfstate.gz`, with its MANIFEST.md, verbatim): tests
 *   that need a fixture read it there, so a clone without `../shared` runs them too.
 * - `../shared/fixtures/tfstate/` (beside the repository) is the shared corpus itself. Only
 *   what needs it declares itself with {@linkcode sharedCorpusTest}: the whole-corpus check
 *   (which also covers files added there later) and the 45 MB state. When it is missing, such
 *   a test is skipped with a warning that says so, and under `CI=true` it fails.
 *
 * @module
 */

import { isCi } from "../_server_env.ts";

/** The package's copy of the corpus's small files (`tests/testdata/tfstate`). */
export const PACKAGE_FIXTURES: string = new URL("../testdata/tfstate", import.meta.url).pathname;

/** The shared corpus beside the repository (`../shared/fixtures/tfstate`). */
export const SHARED_FIXTURES: string = new URL("../../../shared/fixtures/tfstate", import.meta.url)
  .pathname;

/** The 45 MB synthetic state of the shared corpus, gzipped (benches and the crash suite). */
export const LARGE_FIXTURE = `${SHARED_FIXTURES}/large-20k.tfstate.gz`;

/** What reading a fixture gives: a state, no state (empty file), or a refusal naming why. */
export type FixtureOutcome = { accept: true } | { empty: true } | { reject: string };

/**
 * The outcome of every fixture that is not simply accepted, after MANIFEST.md (legacy formats
 * 1-3 are this library's policy: refused with a hint to upgrade).
 */
const NOT_ACCEPTED: Record<string, FixtureOutcome> = {
  "invalid/invalid-bad-provider-address.tfstate": {
    reject: 'invalid provider address "this is not a provider address"',
  },
  "invalid/invalid-deposed-key-length.tfstate": {
    reject: 'deposed key "abc", which is not correctly formatted',
  },
  "invalid/invalid-duplicate-instance.tfstate": {
    reject: "instance null_resource.a appears multiple times",
  },
  "invalid/invalid-missing-provider.tfstate": {
    reject: "null_resource.a is missing a provider address",
  },
  "invalid/invalid-missing-version.tfstate": { reject: 'has no "version" attribute' },
  "invalid/invalid-serial-negative.tfstate": { reject: '"serial" must be a whole number' },
  "invalid/invalid-terraform-version-string.tfstate": {
    reject: 'Terraform version "not-a-version", which is not a valid version string',
  },
  "invalid/invalid-truncated.tfstate": { reject: "not valid JSON" },
  "invalid/invalid-version-0.tfstate": { reject: "version number of zero" },
  "invalid/invalid-version-5-future.tfstate": {
    reject: "format version 5, which this version of gaib-state does not support",
  },
  "invalid/invalid-version-string.tfstate": {
    reject: "the version in the state is string. A positive whole number is required",
  },
  "invalid/rw-encrypted-opentofu-home-ops-a.tfstate": { reject: "the state is encrypted" },
  "invalid/rw-invalid-age-encrypted.tfstate": { reject: "not valid JSON" },
  "invalid/tofu-corrupt-not-json.tfstate": { reject: "not valid JSON" },
  "invalid/tofu-empty-file.tfstate": { empty: true },
  "invalid/tofu-fake-encrypted.tfstate": { reject: "the state is encrypted" },
  "legacy/rw-v3-tf-0.12-terraformer-cloudflare.tfstate": {
    reject: "legacy format version 3",
  },
  "legacy/rw-v3-tf-0.12-terraformer-iam-large.tfstate": { reject: "legacy format version 3" },
  "legacy/tofu-backend-config-v3-backend-and-remote.tfstate": {
    reject: "legacy format version 3",
  },
  "legacy/tofu-hist-v1-state-filter-complete.tfstate": { reject: "legacy format version 1" },
  "roundtrip/v1-simple.in.tfstate": { reject: "legacy format version 1" },
  "roundtrip/v3-bigint.in.tfstate": { reject: "legacy format version 3" },
  "roundtrip/v3-grabbag.in.tfstate": { reject: "legacy format version 3" },
  "roundtrip/v3-simple.in.tfstate": { reject: "legacy format version 3" },
};

/**
 * What reading a fixture must give.
 *
 * @param file the fixture's path inside the corpus, such as `valid/tofu-minimal.tfstate`
 */
export function expectedOutcome(file: string): FixtureOutcome {
  return NOT_ACCEPTED[file] ?? { accept: true };
}

/**
 * Whether a MANIFEST.md row says the file is refused (or, for legacy formats, needs an upgrade
 * this library does not do): the check that keeps {@linkcode expectedOutcome} and the manifest
 * from drifting apart.
 */
export function manifestSaysReject(row: string): boolean {
  return /\| reject|Terraform: upgrade|legacy: Terraform|reader must reject|without encryption config|without the passphrase|not a real state/
    .test(row);
}

/**
 * The `.tfstate` files of a corpus, as `<directory>/<name>`, sorted.
 *
 * @param root the corpus: {@linkcode PACKAGE_FIXTURES} or {@linkcode SHARED_FIXTURES}
 */
export async function fixtureFiles(root: string = PACKAGE_FIXTURES): Promise<string[]> {
  const files: string[] = [];
  for await (const dir of Deno.readDir(root)) {
    if (!dir.isDirectory) continue;
    for await (const file of Deno.readDir(`${root}/${dir.name}`)) {
      if (file.name.endsWith(".tfstate")) files.push(`${dir.name}/${file.name}`);
    }
  }
  return files.sort();
}

/** Why the shared corpus cannot be used, or `undefined` when it is there. */
function sharedCorpusProblem(needs: string): string | undefined {
  try {
    Deno.statSync(needs);
    return undefined;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return `needs the shared fixture corpus, and ${needs} does not exist: put the shared ` +
    "directory (with fixtures/tfstate) beside the repository";
}

/**
 * Declares a test that needs the shared corpus (`needs`: the corpus or one file of it). When
 * that is missing, the test is skipped with a warning that names what is missing, and under
 * `CI=true` it fails with that reason instead.
 *
 * @param name the test's name, a sentence
 * @param needs the path the test reads
 * @param fn the test
 * @param options `Deno.test` options
 */
export function sharedCorpusTest(
  name: string,
  needs: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  options: { sanitizeOps?: boolean; sanitizeResources?: boolean } = {},
): void {
  const problem = sharedCorpusProblem(needs);
  if (problem !== undefined && !isCi()) {
    console.warn(`skip "${name}": ${problem}`);
    Deno.test({ name, ignore: true, fn: () => {} });
    return;
  }
  Deno.test({
    name,
    ...options,
    fn: async (t) => {
      if (problem !== undefined) {
        throw new Error(`"${name}" ${problem}. Under CI=true a missing corpus fails the test`);
      }
      await fn(t);
    },
  });
}
