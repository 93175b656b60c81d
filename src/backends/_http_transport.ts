/**
 * One HTTP request of the HTTP backend, sent as Terraform's client sends it
 * (`internal/backend/remote-state/http/client.go` lines 43-78): basic auth when a user name is
 * set, and with a body `Content-Type: application/json` and `Content-MD5`. Retried as
 * go-retryablehttp's default policy retries (which Terraform's client uses, `backend.go`
 * lines 221-224): after a connection error or a 5xx answer other than 501, waiting
 * `retry_wait_min * 2^attempt` seconds, at most `retry_wait_max`, `retry_max` times. Every
 * request also has a timeout. URLs in messages never show their user info or query.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { BackendConfigError, BackendError } from "../errors.ts";
import { redactUrl, redactUrlsInText } from "../_url.ts";
import type { HttpBackendConfig } from "../config.ts";

/** What came back. */
export interface HttpAnswer {
  /** The status code. */
  status: number;
  /** The headers. */
  headers: Headers;
  /** The body. */
  bytes: Uint8Array;
}

/** Options of {@linkcode HttpTransport}. */
export interface HttpTransportOptions {
  /** Time allowed for one attempt, in milliseconds. */
  requestTimeoutMs: number;
  /** The largest answer body read, in bytes. */
  maxResponseBytes: number;
}

/** The base64 MD5 of a body, as the `Content-MD5` header carries it. */
export function contentMd5(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("base64");
}

/** `user:password` in base64, as Go's `SetBasicAuth` writes it (UTF-8 bytes). */
function basicAuth(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

/** An error's message with its causes' ("fetch failed: invalid peer certificate: ..."). */
function describe(error: unknown): string {
  const parts: string[] = [];
  for (let e = error, depth = 0; e !== undefined && depth < 4; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ");
}

/** The text with the query of every URL in it hidden (a query may carry a token). */
function withoutQueries(text: string): string {
  return text.replace(/(\bhttps?:\/\/[^\s"'<>?#)]*)\?[^\s"'<>)]*/gi, "$1?[redacted]");
}

/** Reads at most `max` bytes of a body; more is an error. */
async function readCapped(response: Response, max: number, where: string): Promise<Uint8Array> {
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await response.body?.cancel();
    throw new BackendError(`The answer of ${where} is ${declared} bytes, more than ${max}.`);
  }
  if (response.body === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.length;
    if (size > max) {
      throw new BackendError(`The answer of ${where} is more than ${max} bytes.`);
    }
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Sends requests with the config's credentials, TLS settings and retries. */
export class HttpTransport {
  readonly #authorization: string | undefined;
  readonly #client: Deno.HttpClient | undefined;
  readonly #retryMax: number;
  readonly #waitMinMs: number;
  readonly #waitMaxMs: number;
  readonly #options: HttpTransportOptions;
  /** Requests sent (each attempt counts), for callers that report it. */
  requests = 0;

  /**
   * @param config the checked config
   * @param options timeout and answer size
   * @throws {BackendConfigError} when the TLS settings cannot be used
   */
  constructor(config: HttpBackendConfig, options: HttpTransportOptions) {
    this.#options = options;
    // Terraform's defaults (backend.go lines 187-219).
    this.#retryMax = config.retry_max ?? 2;
    this.#waitMinMs = (config.retry_wait_min ?? 1) * 1000;
    this.#waitMaxMs = (config.retry_wait_max ?? 30) * 1000;
    if (config.username !== undefined) {
      this.#authorization = basicAuth(config.username, config.password ?? "");
    }
    if (config.skip_cert_verification === true) {
      // Deno has no per-client switch for it; --unsafely-ignore-certificate-errors would
      // turn verification off for every connection of the process, S3's included.
      throw new BackendConfigError(
        "backend.skip_cert_verification: Deno cannot skip the verification of one server's " +
          "certificate. Put the server's CA certificate (PEM) in " +
          "backend.client_ca_certificate_pem (or TF_HTTP_CLIENT_CA_CERTIFICATE_PEM) and remove " +
          "skip_cert_verification.",
        { path: "backend.skip_cert_verification" },
      );
    }
    const ca = config.client_ca_certificate_pem;
    const cert = config.client_certificate_pem;
    const key = config.client_private_key_pem;
    if (ca !== undefined || cert !== undefined) {
      try {
        // Stable in Deno 2 and needs no permission (the PEM texts are in the config).
        this.#client = Deno.createHttpClient({
          ...(ca !== undefined ? { caCerts: [ca] } : {}),
          ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
        });
      } catch (error) {
        // The message of a PEM parser never quotes the key, but keep only its first line.
        const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
        throw new BackendConfigError(
          `backend: the client TLS settings cannot be used (${reason}). Check ` +
            "client_ca_certificate_pem, client_certificate_pem and client_private_key_pem: " +
            "each must be PEM text.",
          { path: "backend.client_certificate_pem" },
        );
      }
    }
  }

  /**
   * Sends one request, retrying as Terraform's client does.
   *
   * @param method the method
   * @param url the URL (may carry user info: used as basic auth when no user name is set)
   * @param body the JSON body, if any
   * @param what what the request does, for messages ("read the state of workspace \"x\"")
   * @returns the answer (any status)
   * @throws {BackendError} when no answer came after the retries, or a 5xx answer stayed
   */
  async request(
    method: string,
    url: string,
    body: Uint8Array | undefined,
    what: string,
  ): Promise<HttpAnswer> {
    const target = new URL(url);
    const headers = new Headers();
    let authorization = this.#authorization;
    if (target.username !== "" || target.password !== "") {
      // Go's client uses a URL's user info as basic auth when no header is set.
      authorization ??= basicAuth(
        decodeURIComponent(target.username),
        decodeURIComponent(target.password),
      );
      target.username = "";
      target.password = "";
    }
    if (authorization !== undefined) headers.set("authorization", authorization);
    if (body !== undefined) {
      headers.set("content-type", "application/json");
      headers.set("content-md5", contentMd5(body));
    }
    const shown = redactUrl(url);
    const where = `${method} ${shown}`;
    for (let attempt = 0;; attempt++) {
      if (attempt > 0) {
        const wait = Math.min(this.#waitMaxMs, this.#waitMinMs * 2 ** (attempt - 1));
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
      this.requests++;
      let response: Response;
      try {
        response = await fetch(target, {
          method,
          headers,
          body: body as BodyInit | undefined,
          signal: AbortSignal.timeout(this.#options.requestTimeoutMs),
          redirect: "manual",
          ...(this.#client ? { client: this.#client } : {}),
        });
      } catch (error) {
        const reason = error instanceof DOMException && error.name === "TimeoutError"
          ? `no answer within ${this.#options.requestTimeoutMs / 1000} s`
          : withoutQueries(redactUrlsInText(describe(error)));
        // go-retryablehttp does not retry a certificate the client cannot verify.
        const certificate = /certificate|UnknownIssuer|invalid peer/i.test(reason);
        if (attempt < this.#retryMax && !certificate) continue;
        throw new BackendError(
          `Failed to ${what}: ${where}: ${reason} (after ${attempt + 1} attempt(s)). Check ` +
            "that the server is up and the address is right; the outcome of a write is " +
            "unknown: read the state before retrying.",
        );
      }
      if (response.status >= 500 && response.status !== 501 && attempt < this.#retryMax) {
        await response.body?.cancel();
        continue;
      }
      const bytes = await readCapped(response, this.#options.maxResponseBytes, where);
      return { status: response.status, headers: response.headers, bytes };
    }
  }

  /** Closes the TLS client, if one was made. */
  close(): void {
    this.#client?.close();
  }
}
