/**
 * What the HTTP backend client (`http.ts`) and `gaib-state serve` (`../_state_server.ts`) agree
 * on beyond Terraform's protocol: how a refusal travels. Terraform's client reads only status
 * codes and, for a busy lock, the holder's LockInfo as the body
 * (`internal/backend/remote-state/http/client.go` lines 102-120); every refusal body here is a
 * JSON object with Terraform's LockInfo fields at the top when there is a holder (so Terraform
 * reads it) and an `error` member with the gaib-state error's type, message and data, so that a
 * gaib-state client rebuilds the same error class.
 *
 * @module
 */

import {
  BackendError,
  StateFormatError,
  StateLineageError,
  StateLockError,
  StateSerialError,
  WorkspaceNotEmptyError,
} from "../errors.ts";
import { encodeLockJson, pickLockInfo } from "../lock.ts";
import { printable } from "../_printable.ts";
import { redactUrlsInText } from "../_url.ts";
import type { LockInfo } from "../types.ts";

/** The longest error message taken from a server (anything longer is cut). */
const MAX_MESSAGE = 4000;

/**
 * The JSON body of a refusal.
 *
 * @param error the error the backend threw
 * @returns the body text
 */
export function encodeErrorBody(error: BackendError): string {
  const detail: Record<string, unknown> = {
    type: error.name,
    message: redactUrlsInText(error.message),
  };
  if (error instanceof StateSerialError) {
    detail.storedSerial = error.storedSerial;
    detail.newSerial = error.newSerial;
  } else if (error instanceof StateLineageError) {
    detail.storedLineage = error.storedLineage;
    detail.newLineage = error.newLineage;
  } else if (error instanceof WorkspaceNotEmptyError) {
    detail.workspace = error.workspace;
    detail.instances = error.instances;
  }
  if (error instanceof StateLockError && error.lockInfo !== null) {
    return encodeLockJson(error.lockInfo, { error: detail });
  }
  return JSON.stringify({ error: detail });
}

/** A refusal's body as a client reads it. */
export interface ErrorBody {
  /** The holder's lock info when the body has one (a JSON object with an `ID`). */
  holder: LockInfo | null;
  /** The `error` member, when the server is gaib-state. */
  detail: Record<string, unknown> | null;
}

/**
 * Reads a refusal's body; never throws (a server may send anything).
 *
 * @param text the body
 * @returns the holder and the error detail found in it
 */
export function decodeErrorBody(text: string): ErrorBody {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { holder: null, detail: null };
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return { holder: null, detail: null };
  }
  const record = doc as Record<string, unknown>;
  const holder = typeof record.ID === "string" ? pickLockInfo(record) : null;
  const detail = typeof record.error === "object" && record.error !== null &&
      !Array.isArray(record.error)
    ? record.error as Record<string, unknown>
    : null;
  return { holder, detail };
}

function numberOf(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function textOf(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/**
 * The error a gaib-state server described, as the class it was on the server; `null` when the
 * body is not a gaib-state error. The message is escaped for the terminal: it comes from the
 * server.
 *
 * @param body the decoded body
 * @returns the error, or `null`
 */
export function errorFromBody(body: ErrorBody): BackendError | null {
  const { detail, holder } = body;
  if (detail === null || typeof detail.message !== "string") return null;
  const raw = detail.message.length > MAX_MESSAGE
    ? detail.message.slice(0, MAX_MESSAGE) + "…"
    : detail.message;
  const message = printable(redactUrlsInText(raw));
  switch (detail.type) {
    case "StateLockError":
      return new StateLockError(message, holder);
    case "StateSerialError":
      return new StateSerialError(
        message,
        numberOf(detail.storedSerial),
        numberOf(detail.newSerial),
      );
    case "StateLineageError":
      return new StateLineageError(
        message,
        textOf(detail.storedLineage),
        textOf(detail.newLineage),
      );
    case "WorkspaceNotEmptyError":
      return new WorkspaceNotEmptyError(
        message,
        textOf(detail.workspace),
        numberOf(detail.instances),
      );
    case "StateFormatError":
      return new StateFormatError(message);
    default:
      return new BackendError(message);
  }
}
