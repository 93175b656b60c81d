/**
 * The S3 backend's requests, seen from the outside: SDK clients built the way the backend
 * builds them, passed in through its public `clients` option, with an SDK middleware of the
 * test's own that reports every attempt (retries included). Nothing in the shipped modules
 * exists for this.
 *
 * @module
 */

import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import { createClients } from "../src/backends/_aws_clients.ts";
import { S3Backend, type S3BackendClients, type S3BackendOptions } from "../src/backends/s3.ts";
import type { S3BackendConfig } from "../src/config.ts";

/** One HTTP request a backend sent (each retry counts as a request of its own). */
export interface AwsRequest {
  /** `"s3"` or `"dynamodb"`. */
  service: "s3" | "dynamodb";
  /** The API operation, such as `"PutObject"` or `"GetItem"`. */
  operation: string;
}

type Middleware = (
  next: (args: unknown) => Promise<unknown>,
  context: { commandName?: string },
) => (args: unknown) => Promise<unknown>;

interface Stack {
  add(middleware: Middleware, options: { step: string; priority?: string; name: string }): void;
}

/**
 * Adds an SDK middleware that reports each attempt of `client` (in the finalize step, inside
 * the retry middleware, so that every retry counts).
 */
export function observeRequests(
  client: S3Client | DynamoDBClient,
  service: AwsRequest["service"],
  onRequest: (request: AwsRequest) => void,
): void {
  (client.middlewareStack as unknown as Stack).add(
    (next, context) => (args) => {
      onRequest({ service, operation: (context.commandName ?? "").replace(/Command$/, "") });
      return next(args);
    },
    { step: "finalizeRequest", priority: "low", name: "testRequestObserver" },
  );
}

/** Clients for a backend config, as the backend would build them; `destroy()` when done. */
export interface TestClients extends S3BackendClients {
  /** The S3 client. */
  s3: S3Client;
  /** The DynamoDB client (when the config has `dynamodb_table`). */
  dynamodb?: DynamoDBClient;
  /** Destroys both clients. */
  destroy(): void;
}

/**
 * Builds the SDK clients the S3 backend would build from `config`, reporting every request
 * to `onRequest` when it is given.
 */
export function testClients(
  config: S3BackendConfig,
  options: { requestTimeoutMs?: number; onRequest?: (request: AwsRequest) => void } = {},
): TestClients {
  const built = createClients(config, { requestTimeoutMs: options.requestTimeoutMs ?? 60_000 });
  if (options.onRequest) {
    observeRequests(built.s3, "s3", options.onRequest);
    if (built.dynamodb) observeRequests(built.dynamodb, "dynamodb", options.onRequest);
  }
  return {
    s3: built.s3,
    dynamodb: built.dynamodb ?? undefined,
    destroy() {
      built.s3.destroy();
      built.dynamodb?.destroy();
    },
  };
}

/**
 * An `S3Backend` on clients of the test's own that report every request to `onRequest`;
 * closing the backend destroys them.
 */
export function observedS3Backend(
  config: S3BackendConfig,
  options: S3BackendOptions,
  onRequest: (request: AwsRequest) => void,
): S3Backend {
  const clients = testClients(config, { requestTimeoutMs: options.requestTimeoutMs, onRequest });
  return new ClientOwningS3Backend(config, { ...options, clients }, clients);
}

/** An `S3Backend` that destroys the clients it was given when it is closed. */
class ClientOwningS3Backend extends S3Backend {
  readonly #clients: TestClients;

  constructor(config: S3BackendConfig, options: S3BackendOptions, clients: TestClients) {
    super(config, options);
    this.#clients = clients;
  }

  override async close(): Promise<void> {
    try {
      await super.close();
    } finally {
      this.#clients.destroy();
    }
  }
}

/** Collects the requests a backend sends, by operation. */
export class RequestLog {
  /** Every request seen, oldest first. */
  readonly requests: AwsRequest[] = [];
  /** Pass as `onRequest`. */
  readonly record = (request: AwsRequest): void => {
    this.requests.push(request);
  };

  /** The requests since the last call, as `service:Operation` strings, and forgets them. */
  take(): string[] {
    return this.requests.splice(0).map((r) => `${r.service}:${r.operation}`);
  }
}
