/**
 * The lost-update rules every backend applies before a write: same lineage, and a serial
 * newer than the stored one (or equal with identical content).
 *
 * @module
 */

import { StateLineageError, StateSerialError } from "./errors.ts";
import type { GaibState } from "./types.ts";
import { STATE_DOCUMENTS, type StoredDocumentCodec } from "./_stored_document.ts";
import { gaibCommand } from "./_command_line.ts";

/** The stored state's identity, as far as the rules need it. */
export interface StoredIdentity {
  lineage: string;
  serial: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Checks a write of `next` over `stored`.
 *
 * @param readStored reads the stored bytes; called only when the serials are equal
 * @param codec how the backend parses and writes what it stores (envelopes behind
 *   `withEncryption`, whose equal-serial case the wrapper settles on the decrypted states)
 * @returns `true` when `next` has the stored serial and the same content (nothing to write)
 * @throws {StateLineageError} when the lineages differ
 * @throws {StateSerialError} when the write would lose an update
 */
export async function checkWrite(
  workspace: string,
  stored: StoredIdentity,
  next: GaibState,
  nextText: string,
  readStored: () => Promise<Uint8Array>,
  codec: StoredDocumentCodec = STATE_DOCUMENTS,
): Promise<boolean> {
  const where = `Cannot write the state of workspace "${workspace}"`;
  if (stored.lineage !== "" && next.lineage !== stored.lineage) {
    throw new StateLineageError(
      `${where}: its lineage "${next.lineage}" differs from the stored state's lineage ` +
        `"${stored.lineage}", so it is the history of other infrastructure. Check the workspace ` +
        `and the file; to replace the stored state anyway, write with force ` +
        `("${gaibCommand(workspace, "state push --force", "FILE")}", FILE: the state to keep).`,
      stored.lineage,
      next.lineage,
    );
  }
  if (next.serial > stored.serial) return false;
  if (next.serial === stored.serial) {
    const storedBytes = await readStored();
    const nextBytes = new TextEncoder().encode(nextText);
    if (sameBytes(storedBytes, nextBytes)) return true;
    // Same content written in another layout (Terraform's escaping, key order) is no change.
    const parsed = codec.parse(storedBytes, "stored state");
    if (parsed && codec.text(parsed) === nextText) return true;
    throw new StateSerialError(
      `${where}: its serial ${next.serial} equals the stored state's, but the content ` +
        "differs, so the state changed since it was read. Read the state again, apply the " +
        "change to it and write it with a higher serial.",
      stored.serial,
      next.serial,
    );
  }
  throw new StateSerialError(
    `${where}: its serial ${next.serial} is older than the stored state's ${stored.serial}; ` +
      "writing it would lose updates made since. Read the state again and apply the change to " +
      `it; to overwrite anyway, write with force ` +
      `("${gaibCommand(workspace, "state push --force", "FILE")}", FILE: the state to keep).`,
    stored.serial,
    next.serial,
  );
}
