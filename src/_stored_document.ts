/**
 * What a backend stores for a workspace, at the boundary between its bytes and its objects: a
 * v4 state, or, once {@linkcode storesEnvelopes} was called on the backend (by
 * `withEncryption`), also an OpenTofu encrypted envelope.
 *
 * This is the one seam encryption needs in a backend: the backend parses, serializes and reads
 * the identity (lineage and serial) of what it stores through a codec, and every rule it applies
 * (lineage, serial, lock, digest, backups) works on the envelope's clear `serial` and `lineage`
 * as on a state's. The backend never decrypts: the wrapper does.
 *
 * @module
 */

import { readStateHeader } from "./_state_header.ts";
import {
  base64BytesToBytes,
  checkEnvelope,
  fromBase64,
  isEnvelope,
  serializeEnvelope,
  type StateEnvelope,
} from "./_encryption_envelope.ts";
import { StateFormatError } from "./errors.ts";
import { assertValidState, parseStateBytes, serializeState } from "./state.ts";
import type { GaibState } from "./types.ts";

/** Lineage and serial of a stored document. */
export interface StoredIdentity {
  lineage: string;
  serial: number;
}

/** How a backend turns what it stores into objects and back. */
export interface StoredDocumentCodec {
  /**
   * Parses stored bytes: a state (or, for the envelope codec, an envelope typed as a state:
   * only its `lineage` and `serial` are read by the backend), or `null` for an empty file.
   */
  parse(bytes: Uint8Array, source: string): GaibState | null;
  /** Checks a document to write and returns its text. */
  serialize(doc: GaibState, source: string): string;
  /** The text this codec writes for a parsed document, unchecked (to compare contents). */
  text(doc: GaibState): string;
  /** Lineage and serial from the first bytes, or `null` when the full parse must decide. */
  identity(head: Uint8Array): StoredIdentity | null;
}

/** Plain v4 states only (an envelope is refused with the hint to configure encryption). */
export const STATE_DOCUMENTS: StoredDocumentCodec = {
  parse: parseStateBytes,
  serialize(doc, source) {
    assertValidState(doc, source);
    return serializeState(doc);
  },
  text: serializeState,
  identity(head) {
    const header = readStateHeader(head);
    return header && header.version === 4 ? header : null;
  },
};

/** The head of an envelope as OpenTofu and gaib-state write it: serial and lineage first. */
const ENVELOPE_HEAD = /^\s*\{"serial":(0|[1-9]\d{0,15}),"lineage":("(?:[^"\\]|\\.)*"),"meta":/;

function envelopeIdentity(head: Uint8Array): StoredIdentity | null {
  const match = ENVELOPE_HEAD.exec(new TextDecoder().decode(head.subarray(0, 4096)));
  if (!match) return null;
  try {
    const serial = Number(match[1]);
    return Number.isSafeInteger(serial) ? { serial, lineage: JSON.parse(match[2]) } : null;
  } catch {
    return null;
  }
}

/** The ciphertext of envelopes read by the fast path, decoded once (see `envelopeData`). */
const decodedData = new WeakMap<object, Uint8Array>();

/**
 * The decoded `encrypted_data` of a parsed envelope: kept from the fast parse, else decoded
 * now; `null` when it is not base64.
 */
export function envelopeData(envelope: StateEnvelope): Uint8Array | null {
  return decodedData.get(envelope) ?? fromBase64(envelope.encrypted_data);
}

const DATA_MARK = '"encrypted_data":"';
const TAIL = new TextEncoder().encode('","encryption_version":"v0"}');

/**
 * Reads an envelope in OpenTofu's exact layout without turning its tens of megabytes of base64
 * into a string: the fields before `encrypted_data` are parsed as JSON, the base64 is decoded
 * from the bytes. `null` when the layout differs (the full parse then decides).
 */
function parseCanonicalEnvelope(bytes: Uint8Array, source: string): StateEnvelope | null {
  const head = bytes.subarray(0, Math.min(bytes.length, 65536));
  let headText: string;
  try {
    headText = new TextDecoder("utf-8", { fatal: true }).decode(head, { stream: true });
  } catch {
    return null;
  }
  const at = headText.indexOf(DATA_MARK);
  if (at < 0 || bytes.length < TAIL.length) return null;
  const start = new TextEncoder().encode(headText.slice(0, at + DATA_MARK.length)).length;
  const end = bytes.length - TAIL.length;
  if (end < start) return null;
  for (let i = 0; i < TAIL.length; i++) if (bytes[end + i] !== TAIL[i]) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(`${headText.slice(0, at)}"encrypted_data":"","encryption_version":"v0"}`);
  } catch {
    return null;
  }
  const data = base64BytesToBytes(bytes.subarray(start, end));
  if (data === null || !isEnvelope(doc)) return null;
  const slice = bytes.subarray(start, end);
  // The text is made only if something asks for it (a write of the same serial compares it).
  let text: string | undefined;
  Object.defineProperty(doc, "encrypted_data", {
    get: () => (text ??= new TextDecoder().decode(slice)),
    enumerable: true,
    configurable: true,
  });
  decodedData.set(doc, data);
  return checkEnvelope(doc, source);
}

function parseEnvelope(bytes: Uint8Array, source: string): StateEnvelope | null {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  return isEnvelope(doc) ? checkEnvelope(doc, source) : null;
}

/** Envelopes and plain states (a plain state is what an `unencrypted` fallback reads). */
export const ENVELOPE_DOCUMENTS: StoredDocumentCodec = {
  parse(bytes, source) {
    if (envelopeIdentity(bytes) !== null) {
      const envelope = parseCanonicalEnvelope(bytes, source) ?? parseEnvelope(bytes, source);
      if (envelope) return envelope as unknown as GaibState;
    }
    try {
      return parseStateBytes(bytes, source);
    } catch (error) {
      // An envelope in another layout than OpenTofu's (keys reordered by hand).
      if (!(error instanceof StateFormatError)) throw error;
      const envelope = parseEnvelope(bytes, source);
      if (envelope) return envelope as unknown as GaibState;
      throw error;
    }
  },
  serialize(doc, source) {
    if (isEnvelope(doc)) return serializeEnvelope(checkEnvelope(doc, source));
    return STATE_DOCUMENTS.serialize(doc, source);
  },
  text(doc) {
    return isEnvelope(doc) ? serializeEnvelope(doc) : serializeState(doc);
  },
  identity(head) {
    return envelopeIdentity(head) ?? STATE_DOCUMENTS.identity(head);
  },
};

/**
 * The method `withEncryption` calls on a backend so that it stores and returns envelopes
 * (`ENVELOPE_DOCUMENTS`) as well as states. A backend that has no such method cannot be wrapped.
 */
export const storesEnvelopes: unique symbol = Symbol("gaib-state.storesEnvelopes");
