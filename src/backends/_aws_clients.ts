/**
 * The S3 backend's AWS SDK clients: construction from the backend config (or the clients the
 * caller passed in), and the helpers that read SDK errors without ever printing credentials,
 * signed URLs or bodies.
 *
 * @module
 */

import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { DynamoDBClient, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";
import type { S3BackendConfig } from "../config.ts";
import { redactUrl } from "../_url.ts";

/** The clients of one backend. */
export interface AwsClients {
  s3: S3Client;
  dynamodb: DynamoDBClient | null;
  /**
   * Where S3 requests go, for messages (`AWS` when the SDK picks the endpoint), without the
   * URL's user info.
   */
  s3Endpoint: string;
  /** Where DynamoDB requests go, for messages, without the URL's user info. */
  dynamodbEndpoint: string;
}

/** How the clients are built, beside the config. */
export interface AwsClientOptions {
  /** Time allowed for one HTTP request (the connection gets at most 10 s of it). */
  requestTimeoutMs: number;
  /** Clients to use as they are instead of building them (the caller keeps them). */
  given?: { s3?: S3Client; dynamodb?: DynamoDBClient };
}

/**
 * The S3 client and, when `dynamodb_table` is set, the DynamoDB client: the ones in
 * `options.given`, else built from the config.
 */
export function createClients(config: S3BackendConfig, options: AwsClientOptions): AwsClients {
  const s3Endpoint = config.endpoints?.s3 ?? config.endpoint;
  const dynamodbEndpoint = config.endpoints?.dynamodb ?? config.endpoint;
  const common = {
    region: config.region,
    profile: config.profile,
    maxAttempts: (config.max_retries ?? 5) + 1,
    // Endpoints come from the config only: AWS_ENDPOINT_URL* are read into it (and shown by
    // config show), a profile's endpoint_url is not used.
    ignoreConfiguredEndpointUrls: true,
    requestHandler: {
      connectionTimeout: Math.min(options.requestTimeoutMs, 10_000),
      requestTimeout: options.requestTimeoutMs,
      // Without this the SDK only logs a warning and a request to a frozen server hangs.
      throwOnRequestTimeout: true,
    },
  };
  const s3Config: S3ClientConfig = {
    ...common,
    endpoint: s3Endpoint,
    forcePathStyle: config.force_path_style ?? false,
    // Ceph and other S3-compatible stores reject streaming aws-chunked uploads: send plain
    // bodies with Content-MD5 (set by the backend) instead of trailing checksums.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  };
  const s3 = options.given?.s3 ?? new S3Client(s3Config);
  let dynamodb: DynamoDBClient | null = null;
  if (config.dynamodb_table !== undefined) {
    const dynamoConfig: DynamoDBClientConfig = { ...common, endpoint: dynamodbEndpoint };
    dynamodb = options.given?.dynamodb ?? new DynamoDBClient(dynamoConfig);
  }
  return {
    s3,
    dynamodb,
    // Messages show these: never with a credential from the URL's user info.
    s3Endpoint: s3Endpoint === undefined ? "AWS" : redactUrl(s3Endpoint),
    dynamodbEndpoint: dynamodbEndpoint === undefined ? "AWS" : redactUrl(dynamodbEndpoint),
  };
}

/** The error's name (`NoSuchKey`, `ConditionalCheckFailedException`, `ECONNREFUSED`...). */
export function errorName(error: unknown): string {
  const e = error as { name?: unknown; code?: unknown; Code?: unknown };
  if (typeof e?.code === "string" && /^E[A-Z]+$/.test(e.code)) return e.code;
  if (typeof e?.name === "string" && e.name !== "Error") return e.name;
  if (typeof e?.Code === "string") return e.Code;
  return typeof e?.name === "string" ? e.name : "Error";
}

/** The HTTP status of an SDK error, when the server answered. */
export function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
  "TimeoutError",
  "RequestTimeout",
]);

const NEVER_SENT = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

/**
 * Whether a failed request certainly never reached the server (no connection was made), as
 * opposed to one that may have been carried out before the answer was lost (a timeout or a
 * connection reset after sending).
 */
export function neverSent(error: unknown): boolean {
  // The SDK retries: an earlier attempt may have been carried out even when the last one
  // could not connect.
  const attempts = (error as { $metadata?: { attempts?: number } })?.$metadata?.attempts;
  if (attempts !== undefined && attempts > 1) return false;
  for (let e: unknown = error, depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (NEVER_SENT.has(errorName(e)) || (typeof code === "string" && NEVER_SENT.has(code))) {
      return true;
    }
    const message = (e as { message?: unknown }).message;
    if (typeof message === "string" && /ECONNREFUSED|ENOTFOUND|connection refused/i.test(message)) {
      return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Whether the error means the server could not be reached or did not answer. */
export function isNetworkError(error: unknown): boolean {
  if (httpStatus(error) !== undefined && httpStatus(error)! < 500) return false;
  for (let e: unknown = error, depth = 0; e && depth < 4; depth++) {
    if (NETWORK_CODES.has(errorName(e))) return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === "string" && /connect|socket hang up|network|ECONN/i.test(message)) {
      return httpStatus(error) === undefined;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * A short, safe description of an SDK error: its name and HTTP status. The SDK's message is
 * left out on purpose (it can quote request details); the error stays reachable as `cause`.
 */
export function describeError(error: unknown): string {
  const status = httpStatus(error);
  return status === undefined ? errorName(error) : `${errorName(error)}, HTTP ${status}`;
}
