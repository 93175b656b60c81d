/**
 * States the crash writer writes. Version `n` of a profile is a pure function of the profile
 * and `n`, so the harness can rebuild every version that was ever written and compare the
 * surviving files with them byte for byte.
 *
 * @module
 */

import { type GaibState, parseStateBytes, serializeState } from "../../mod.ts";
import { LARGE_FIXTURE } from "../corpus/fixtures.ts";

/** State sizes the crash harness exercises. */
export type Profile = "small" | "medium" | "huge";

/** About 4 KB (small) or 1 MB (medium) of generated resources. */
function generated(instances: number, lineage: string): GaibState {
  const resources = [];
  for (let r = 0; r < Math.ceil(instances / 50); r++) {
    const list = [];
    for (let i = 0; i < Math.min(50, instances - r * 50); i++) {
      list.push({
        index_key: `item-${i}`,
        schema_version: 0,
        attributes: {
          id: `${r}-${i}`,
          name: `channel ${r}/${i}`,
          topic: "x".repeat(700),
          position: i,
          nsfw: false,
          permissions: [{ role: `role-${i}`, allow: 1024, deny: 0 }],
        },
        sensitive_attributes: [],
        dependencies: [`discord_category.c${r}`],
      });
    }
    resources.push({
      mode: "managed",
      type: "discord_text_channel",
      name: `c${r}`,
      provider: 'provider["registry.terraform.io/gaib/discord"]',
      instances: list,
    });
  }
  return {
    version: 4,
    terraform_version: "1.0.0",
    serial: 0,
    lineage,
    outputs: {},
    resources: resources as GaibState["resources"],
    check_results: null,
  };
}

/** Loads the 45 MB fixture (about 2-3 s on a slow machine). */
export async function loadLargeFixture(): Promise<GaibState> {
  const file = await Deno.open(LARGE_FIXTURE);
  const bytes = new Uint8Array(
    await new Response(file.readable.pipeThrough(new DecompressionStream("gzip")))
      .arrayBuffer(),
  );
  return parseStateBytes(bytes, LARGE_FIXTURE)!;
}

/** The template every version of a profile is derived from. */
export async function template(profile: Profile): Promise<GaibState> {
  if (profile === "small") return generated(4, "11111111-0000-4000-8000-000000000001");
  if (profile === "medium") return generated(1200, "11111111-0000-4000-8000-000000000002");
  return await loadLargeFixture();
}

/** Version `n` of a profile: the template with serial `n` and an output saying `n`. */
export function versionOf(base: GaibState, n: number): GaibState {
  return {
    ...base,
    serial: n,
    outputs: { ...base.outputs, crash_seq: { value: n, type: "number" } },
  };
}

/** What a writer writes after reading version `n`: version `n + 1`, built from what it read. */
export function nextVersion(stored: GaibState): GaibState {
  return versionOf(stored, stored.serial + 1);
}

/** The exact bytes of version `n`. */
export function versionText(base: GaibState, n: number): string {
  return serializeState(versionOf(base, n));
}
