/**
 * OpenTofu's `external` key provider, protocol version 1: gaib-state runs the configured command
 * (no shell), writes `null` or the stored metadata (`{"external_data": ...}`) to its standard
 * input, and reads from its standard output a header line
 * `{"magic":"OpenTofu-External-Key-Provider","version":1}`, then
 * `{"keys":{"encryption_key":"<base64>","decryption_key":"<base64>"},"meta":{...}}`.
 *
 * OpenTofu sources (github.com/opentofu/opentofu at f831fa1a):
 * - internal/encryption/keyprovider/external/provider.go:25-143 (run with a one-minute timeout,
 *   header checked before the rest, strict decoding of the output, stderr in the error);
 * - internal/encryption/keyprovider/external/protocol.go:14-36, meta.go:11-27 (`null` for no
 *   metadata), keyprovider/output.go:20-23 (keys are base64 `[]byte`).
 *
 * Needs `--allow-run` for the command, which the compiled binary does not have by default (see
 * the README's "State encryption" section: it is granted for exactly one program at build time).
 * The key material is never put in an error; the command's stderr is, cut short, because it is
 * the provider's way of saying what went wrong (as OpenTofu shows it).
 *
 * @module
 */

import { fromBase64, goJson } from "./_encryption_envelope.ts";

const MAGIC = "OpenTofu-External-Key-Provider";
const TIMEOUT_MS = 60_000;
const MAX_OUTPUT = 1024 * 1024;

/** What the command returned. */
export interface ExternalKeys {
  encryptionKey: Uint8Array;
  decryptionKey: Uint8Array | undefined;
  /** The metadata to store (JSON of `{"external_data": ...}`). */
  meta: Uint8Array;
}

/** Runs the command; throws an Error whose message says what failed (no key material). */
export async function runExternalProvider(
  command: string[],
  inputMeta: Uint8Array | undefined,
): Promise<ExternalKeys> {
  const what = `the external key provider command ${JSON.stringify(command[0])}`;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command[0], {
      args: command.slice(1),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw new Error(
        `${what} may not be run: the external key provider needs permission to run it, which ` +
          "the gaib-state binary does not have by default. Build one that may run exactly that " +
          `program (COMPILE_FLAGS="--allow-run=${command[0]}" deno task compile), or add ` +
          `--allow-run=${command[0]} to the deno run or deno install line`,
      );
    }
    if (error instanceof Deno.errors.NotFound) throw new Error(`${what} was not found`);
    throw new Error(`${what} could not be started (${(error as Error).message})`);
  }
  // meta.go:19-27: no metadata is written as null.
  const input = inputMeta ?? new TextEncoder().encode("null");
  const writer = child.stdin.getWriter();
  const wrote = writer.write(input).then(() => writer.close()).catch(() => {});
  const [status, stdout, stderr] = await Promise.all([
    child.status,
    readLimited(child.stdout),
    readLimited(child.stderr),
    wrote,
  ]);
  const errText = new TextDecoder().decode(stderr).slice(0, 2000).trim();
  const withStderr = errText ? `; its stderr: ${errText}` : "";
  if (!status.success) {
    throw new Error(
      status.signal
        ? `${what} was stopped by ${status.signal} (it has ${TIMEOUT_MS / 1000} s)${withStderr}`
        : `${what} exited with code ${status.code}${withStderr}`,
    );
  }
  const text = new TextDecoder().decode(stdout);
  const newline = text.indexOf("\n");
  if (newline < 0) throw new Error(`${what} printed no header line${withStderr}`);
  let header: unknown;
  try {
    header = JSON.parse(text.slice(0, newline));
  } catch {
    throw new Error(`${what} printed a header that is not JSON${withStderr}`);
  }
  const { magic, version } = (header ?? {}) as Record<string, unknown>;
  if (magic !== MAGIC) throw new Error(`${what} printed a header without the magic "${MAGIC}"`);
  if (version !== 1) throw new Error(`${what} speaks protocol version ${version}, not 1`);
  let output: unknown;
  try {
    output = JSON.parse(text.slice(newline + 1));
  } catch {
    throw new Error(`${what} returned an invalid JSON response${withStderr}`);
  }
  return checkOutput(output, what);
}

function checkOutput(output: unknown, what: string): ExternalKeys {
  const bad = (detail: string) => new Error(`${what} returned an invalid response: ${detail}`);
  if (typeof output !== "object" || output === null || Array.isArray(output)) {
    throw bad("not a JSON object");
  }
  const unknown = Object.keys(output).filter((k) => k !== "keys" && k !== "meta");
  if (unknown.length) throw bad(`unknown field ${JSON.stringify(unknown[0])}`);
  const { keys, meta } = output as Record<string, unknown>;
  if (typeof keys !== "object" || keys === null || Array.isArray(keys)) {
    throw bad('"keys" is not an object');
  }
  const k = keys as Record<string, unknown>;
  const extra = Object.keys(k).filter((n) => n !== "encryption_key" && n !== "decryption_key");
  if (extra.length) throw bad(`unknown field "keys.${extra[0]}"`);
  const decode = (name: string): Uint8Array | undefined => {
    const value = k[name];
    if (value === undefined || value === null) return undefined;
    const bytes = typeof value === "string" ? fromBase64(value) : null;
    if (bytes === null) throw bad(`"keys.${name}" is not base64`);
    return bytes;
  };
  const encryptionKey = decode("encryption_key");
  if (!encryptionKey || encryptionKey.length === 0) throw bad('"keys.encryption_key" is missing');
  const decryptionKey = decode("decryption_key");
  let metaDoc: unknown = { external_data: null };
  if (meta !== undefined && meta !== null) {
    if (typeof meta !== "object" || Array.isArray(meta)) throw bad('"meta" is not an object');
    const extraMeta = Object.keys(meta).filter((n) => n !== "external_data");
    if (extraMeta.length) throw bad(`unknown field "meta.${extraMeta[0]}"`);
    metaDoc = { external_data: (meta as Record<string, unknown>).external_data ?? null };
  }
  return {
    encryptionKey,
    decryptionKey: decryptionKey && decryptionKey.length > 0 ? decryptionKey : undefined,
    meta: new TextEncoder().encode(goJson(metaDoc)),
  };
}

async function readLimited(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size <= MAX_OUTPUT) chunks.push(chunk);
  }
  const out = new Uint8Array(Math.min(size, MAX_OUTPUT));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk.subarray(0, out.length - offset), offset);
    offset += chunk.length;
    if (offset >= out.length) break;
  }
  return out;
}
