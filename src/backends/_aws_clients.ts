/**
 * The S3 backend's AWS SDK clients: construction from the backend config, the hook that
 * reports every HTTP request (for request counts), and the helpers that read SDK errors
 * without ever printing credentials, signed URLs or bodies.
 *
 * @module
 */

import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { DynamoDBClient, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";
import type { S3BackendConfig } from "../config.ts";
import { redactUrl } from "../_url.ts";

/** One HTTP request the backend sent (each retry counts as a request of its own). */
export interface S3BackendRequest {
  /** `"s3"` or `"dynamodb"`. */
  service: "s3" | "dynamodb";
  /** The API operation, such as `"PutObject"` or `"GetItem"`. */
  operation: string;
}

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
  onRequest?: (request: S3BackendRequest) => void;
  requestTimeoutMs: number;
}

const registry = new WeakMap<object, AwsClients>();

/** Remembers the clients of a backend, for tests that add middleware ({@linkcode clientsOf}). */
export function registerClients(owner: object, clients: AwsClients): void {
  registry.set(owner, clients);
}

/** The clients of a backend (tests only: fault injection through SDK middleware). */
export function clientsOf(owner: object): AwsClients | undefined {
  return registry.get(owner);
}

/** Builds the S3 client and, when `dynamodb_table` is set, the DynamoDB client. */
export function createClients(config: S3BackendConfig, options: AwsClientOptions): AwsClients {
  const s3Endpoint = config.endpoints?.s3 ?? config.endpoint;
  const dynamodbEndpoint = config.endpoints?.dynamodb ?? config.endpoint;
  const common = {
    region: config.region,
    profile: config.profile,
    maxAttempts: (config.max_retries ?? 5) + 1,
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
  const s3 = new S3Client(s3Config);
  observe(s3, "s3", options.onRequest);
  let dynamodb: DynamoDBClient | null = null;
  if (config.dynamodb_table !== undefined) {
    const dynamoConfig: DynamoDBClientConfig = { ...common, endpoint: dynamodbEndpoint };
    dynamodb = new DynamoDBClient(dynamoConfig);
    observe(dynamodb, "dynamodb", options.onRequest);
  }
  return {
    s3,
    dynamodb,
    // Messages show these: never with a credential from the URL's user info.
    s3Endpoint: s3Endpoint === undefined ? "AWS" : redactUrl(s3Endpoint),
    dynamodbEndpoint: dynamodbEndpoint === undefined ? "AWS" : redactUrl(dynamodbEndpoint),
  };
}

type Stack = {
  add(
    middleware: (
      next: (args: unknown) => Promise<unknown>,
      context: { commandName?: string },
    ) => (args: unknown) => Promise<unknown>,
    options: { step: "finalizeRequest"; priority: "low"; name: string },
  ): void;
};

/** Reports each attempt (inside the retry middleware, so retries count). */
function observe(
  client: S3Client | DynamoDBClient,
  service: "s3" | "dynamodb",
  onRequest: ((request: S3BackendRequest) => void) | undefined,
): void {
  if (!onRequest) return;
  (client.middlewareStack as unknown as Stack).add(
    (next, context) => (args) => {
      onRequest({ service, operation: (context.commandName ?? "").replace(/Command$/, "") });
      return next(args);
    },
    { step: "finalizeRequest", priority: "low", name: "gaibRequestObserver" },
  );
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
