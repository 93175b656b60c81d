/**
 * Turns AWS SDK errors into gaib-state errors that say what failed and what to do, without
 * credentials, signed URLs or state contents. Only the errors named here are mapped; the
 * original is always kept as `cause`.
 *
 * @module
 */

import { BackendConfigError, BackendError } from "../errors.ts";
import { describeError, errorName, httpStatus, isNetworkError, neverSent } from "./_aws_clients.ts";
import { redactUrl } from "../_url.ts";

/** What was being done when an SDK call failed. */
export interface FailureContext {
  service: "s3" | "dynamodb";
  /** Such as `writing the state of workspace "prod" (s3://b/k)`. */
  action: string;
  /** The endpoint URL; shown without its user info. */
  endpoint: string;
  bucket: string;
  table?: string;
  /** What the failure left behind, such as "The state was not changed." */
  outcome?: string;
  /**
   * What it may have left behind when the request may have been carried out although its
   * answer was lost (a timeout): replaces `outcome` then.
   */
  uncertainOutcome?: string;
}

const ACCESS = new Set([
  "AccessDenied",
  "AccessDeniedException",
  "Forbidden",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "UnrecognizedClientException",
  "ExpiredToken",
  "ExpiredTokenException",
  "InvalidToken",
  "InvalidClientTokenId",
]);

/**
 * The gaib-state error for a failed SDK call.
 *
 * @param error the SDK error
 * @param ctx what was being done
 * @returns the error to throw (`error` itself when it already is a gaib-state error)
 */
export function awsFailure(error: unknown, ctx: FailureContext): Error {
  if (error instanceof BackendError) return error;
  ctx = { ...ctx, endpoint: redactUrl(ctx.endpoint) };
  const service = ctx.service === "s3" ? "S3" : "DynamoDB";
  const name = errorName(error);
  const status = httpStatus(error);
  const outcome = ctx.outcome ? ` ${ctx.outcome}` : "";
  const options = { cause: error };
  if (name === "CredentialsProviderError" || /credential/i.test(messageOf(error)) && !status) {
    return new BackendConfigError(
      `No AWS credentials were found while ${ctx.action}.${outcome} Set AWS_ACCESS_KEY_ID and ` +
        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or backend.profile, or run where an instance role " +
        "or SSO session provides them.",
      { path: "backend.profile", ...options },
    );
  }
  if (/region is missing/i.test(messageOf(error))) {
    return new BackendConfigError(
      `No AWS region is set (while ${ctx.action}). Set backend.region or AWS_REGION.`,
      { path: "backend.region", ...options },
    );
  }
  if (isNetworkError(error)) {
    const uncertain = !neverSent(error);
    const what = uncertain ? ctx.uncertainOutcome ?? ctx.outcome : ctx.outcome;
    const said = what ? ` ${what}` : "";
    return new BackendError(
      `${uncertain ? `No answer from ${service}` : `Cannot reach ${service}`} at ` +
        `${ctx.endpoint} (${name}) while ${ctx.action}.${said} ` +
        `Check that the service is up and that backend.${
          ctx.service === "s3" ? "endpoints.s3" : "endpoints.dynamodb"
        } (or backend.endpoint) is right, then retry.`,
      options,
    );
  }
  if (name === "NoSuchBucket") {
    return new BackendError(
      `Bucket "${ctx.bucket}" does not exist at ${ctx.endpoint} (while ${ctx.action}).` +
        `${outcome} Check backend.bucket and backend.endpoint, or create the bucket.`,
      options,
    );
  }
  if (name === "ResourceNotFoundException" && ctx.service === "dynamodb") {
    return new BackendError(
      `DynamoDB table "${ctx.table}" does not exist at ${ctx.endpoint} (while ${ctx.action}).` +
        `${outcome} Create it with the partition key "LockID" (type String), or check ` +
        "backend.dynamodb_table and backend.endpoints.dynamodb.",
      options,
    );
  }
  if (ACCESS.has(name) || status === 403) {
    return new BackendError(
      `${service} denied access (${describeError(error)}) while ${ctx.action}.${outcome} ` +
        "Check the credentials (AWS_* variables, backend.profile) and that their IAM policy " +
        "allows this action (see the README for the minimal policy).",
      options,
    );
  }
  if (name === "BadDigest" || name === "InvalidDigest" || name === "XAmzContentSHA256Mismatch") {
    return new BackendError(
      `S3 rejected the upload while ${ctx.action}: the bytes it received do not match their ` +
        "checksum (Content-MD5), so they were corrupted on the way. Nothing was written; retry.",
      options,
    );
  }
  if (name.startsWith("KMS") || /kms/i.test(name)) {
    return new BackendError(
      `${service} could not use the KMS key (${describeError(error)}) while ${ctx.action}.` +
        `${outcome} Check backend.kms_key_id and that the credentials may use the key.`,
      options,
    );
  }
  return new BackendError(
    `${service} failed (${describeError(error)}) while ${ctx.action}.${outcome}`,
    options,
  );
}

function messageOf(error: unknown): string {
  const message = (error as { message?: unknown })?.message;
  return typeof message === "string" ? message : "";
}
