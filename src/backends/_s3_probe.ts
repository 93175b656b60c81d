/**
 * What the S3 doctor and bootstrap share: their SDK clients (built as the backend builds
 * them, with fewer retries, and noting every answer's `Date` header for the clock check),
 * temporary keys under `.gaib-doctor/`, and the probes that write there: the write cycle the
 * backend depends on, and how the store treats conditional requests. Every probe object is
 * removed afterwards, each of its versions too in a versioned bucket.
 *
 * @module
 */

import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
} from "@aws-sdk/client-s3";
import type { S3BackendConfig } from "../config.ts";
import type { DoctorContext } from "../_doctor_types.ts";
import { type DateSample, dateSample } from "../_doctor_clock.ts";
import { type AwsClients, createClients, errorName, httpStatus } from "./_aws_clients.ts";
import {
  type ConditionalWrites,
  isConditionFailure,
  md5,
  S3Objects,
  unquote,
} from "./_s3_objects.ts";

/** The prefix of every object the doctor writes (and removes again). */
export const PROBE_PREFIX = ".gaib-doctor/";

/** The clients of one doctor or bootstrap run. */
export interface S3Tools {
  clients: AwsClients;
  bucket: string;
  dates: DateSample[];
  /**
   * The versions each probe write made (in a versioned or suspended bucket), so that exactly
   * those are removed, without listing versions (a permission gaib-state does not need).
   */
  versions: Map<string, Set<string>>;
}

type Stack = {
  middlewareStack: {
    add(middleware: unknown, options: { step: string; name: string }): void;
  };
};

/** Notes the `Date` header of every answer (a middleware on the doctor's own clients). */
function watchDates(client: Stack, service: string, now: () => number, dates: DateSample[]) {
  client.middlewareStack.add(
    (next: (args: unknown) => Promise<{ response?: { headers?: Record<string, string> } }>) =>
    async (args: unknown) => {
      const sent = now();
      const out = await next(args);
      const sample = dateSample(service, out.response?.headers?.date, sent, now());
      if (sample) dates.push(sample);
      return out;
    },
    { step: "deserialize", name: "gaibDoctorClock" },
  );
}

/**
 * Notes the version every write or delete of a probe key makes (a middleware on the doctor's
 * own S3 client), so that the backend's own object calls can probe too and leave nothing.
 */
function watchVersions(client: Stack, versions: Map<string, Set<string>>) {
  client.middlewareStack.add(
    (
      next: (args: unknown) => Promise<{ output?: { VersionId?: string } }>,
      context: { commandName?: string },
    ) =>
    async (args: unknown) => {
      const out = await next(args);
      const input = (args as { input?: { Key?: string; VersionId?: string } }).input;
      const writes = context.commandName === "PutObjectCommand" ||
        (context.commandName === "DeleteObjectCommand" && input?.VersionId === undefined);
      if (writes && input?.Key?.startsWith(PROBE_PREFIX)) {
        noteVersion(versions, input.Key, out.output?.VersionId);
      }
      return out;
    },
    { step: "initialize", name: "gaibDoctorVersions" },
  );
}

/** The run's clients, made on first use and destroyed when the run ends. */
export function s3Tools(ctx: DoctorContext<S3BackendConfig>): S3Tools {
  return ctx.shared("s3", () => {
    const config = ctx.config;
    // A doctor answers quickly: few retries, a short timeout.
    const clients = createClients(
      { ...config, max_retries: Math.min(config.max_retries ?? 5, 1) },
      { requestTimeoutMs: 15_000 },
    );
    const dates: DateSample[] = [];
    const versions = new Map<string, Set<string>>();
    watchDates(clients.s3 as unknown as Stack, "s3", ctx.now, dates);
    watchVersions(clients.s3 as unknown as Stack, versions);
    if (clients.dynamodb) {
      watchDates(clients.dynamodb as unknown as Stack, "dynamodb", ctx.now, dates);
    }
    return { clients, bucket: config.bucket, dates, versions };
  }, (tools) => {
    tools.clients.s3.destroy();
    tools.clients.dynamodb?.destroy();
  });
}

/** The endpoint S3 requests go to, from the config. */
export function s3EndpointOf(config: S3BackendConfig): string | undefined {
  return config.endpoints?.s3 ?? config.endpoint;
}

/** A fresh probe key. */
export function probeKey(purpose: string): string {
  return `${PROBE_PREFIX}${purpose}-${crypto.randomUUID()}`;
}

/** The encryption headers the backend sends with every write. */
export function encryptionOf(config: S3BackendConfig): Partial<PutObjectCommandInput> {
  if (config.kms_key_id !== undefined) {
    return { ServerSideEncryption: "aws:kms", SSEKMSKeyId: config.kms_key_id };
  }
  return config.encrypt ? { ServerSideEncryption: "AES256" } : {};
}

/** A write as the backend makes it: Content-MD5, JSON, the configured encryption. */
export async function putProbe(
  tools: S3Tools,
  config: S3BackendConfig,
  key: string,
  body: string,
  condition: { ifNoneMatch?: boolean; ifMatch?: string } = {},
): Promise<string> {
  const bytes = new TextEncoder().encode(body);
  const out = await tools.clients.s3.send(
    new PutObjectCommand({
      Bucket: tools.bucket,
      Key: key,
      Body: bytes,
      ContentLength: bytes.length,
      ContentMD5: md5(bytes).base64,
      ContentType: "application/json",
      IfNoneMatch: condition.ifNoneMatch ? "*" : undefined,
      IfMatch: condition.ifMatch,
      ...encryptionOf(config),
    }),
  );
  return unquote(out.ETag);
}

/** The object's body, or `null` when it does not exist. */
export async function readProbe(tools: S3Tools, key: string): Promise<string | null> {
  try {
    const out = await tools.clients.s3.send(
      new GetObjectCommand({ Bucket: tools.bucket, Key: key }),
    );
    return out.Body ? await out.Body.transformToString() : "";
  } catch (error) {
    if (httpStatus(error) === 404) return null;
    throw error;
  }
}

/** Whether the object exists. */
export async function probeExists(tools: S3Tools, key: string): Promise<boolean> {
  try {
    await tools.clients.s3.send(new HeadObjectCommand({ Bucket: tools.bucket, Key: key }));
    return true;
  } catch (error) {
    if (httpStatus(error) === 404) return false;
    throw error;
  }
}

function noteVersion(versions: Map<string, Set<string>>, key: string, version?: string): void {
  if (version === undefined) return;
  if (!versions.has(key)) versions.set(key, new Set());
  versions.get(key)!.add(version);
}

/**
 * Removes a probe object: its current version, then (in a versioned or suspended bucket) each
 * version the probe made and the delete marker. Best effort; says what could not be removed.
 *
 * @returns `undefined` when all is gone, else why not
 */
export async function removeProbe(tools: S3Tools, key: string): Promise<string | undefined> {
  const s3: S3Client = tools.clients.s3;
  try {
    await s3.send(new DeleteObjectCommand({ Bucket: tools.bucket, Key: key }));
  } catch (error) {
    return `could not remove s3://${tools.bucket}/${key} (${errorName(error)}): remove it by hand`;
  }
  // "null" is a real version ID too: the one written while versioning is suspended.
  const left: string[] = [];
  for (const version of [...tools.versions.get(key) ?? []]) {
    try {
      await s3.send(
        new DeleteObjectCommand({ Bucket: tools.bucket, Key: key, VersionId: version }),
      );
    } catch (error) {
      if (httpStatus(error) !== 404) left.push(`${version} (${errorName(error)})`);
    }
  }
  tools.versions.delete(key);
  if (left.length === 0) return undefined;
  return `old versions of s3://${tools.bucket}/${key} remain (${left.join(", ")}); ` +
    "remove them by hand, or allow s3:DeleteObjectVersion";
}

/** The lock mode a config names: what a store that refuses `If-Match` may still be used with. */
export function lockMode(config: S3BackendConfig): "lockfile" | "dynamodb" | "none" {
  if (config.use_lockfile) return "lockfile";
  return config.dynamodb_table ? "dynamodb" : "none";
}

/** The backend's own object calls (and so its own `If-Match` detection) on the probe client. */
function backendObjects(tools: S3Tools, config: S3BackendConfig): S3Objects {
  return new S3Objects(tools.clients.s3, tools.bucket, {
    encrypt: config.encrypt === true || config.kms_key_id !== undefined,
    kmsKeyId: config.kms_key_id,
  });
}

/**
 * Replaces a probe object conditional on its ETag exactly as the backend does (`S3Objects`,
 * both quotings), so that doctor and bootstrap judge `If-Match` by the backend's rule.
 *
 * @returns whether it was written, and the backend's verdict on `If-Match` here
 */
async function replaceAsBackend(
  tools: S3Tools,
  config: S3BackendConfig,
  key: string,
  etag: string,
  body: string,
): Promise<{ objects: S3Objects; written: boolean; conditionalWrites: ConditionalWrites }> {
  const objects = backendObjects(tools, config);
  const written = await objects.put(key, new TextEncoder().encode(body), { ifMatch: etag }) !==
    null;
  return { objects, written, conditionalWrites: objects.conditionalWrites };
}

/** How the store treats the conditional requests gaib-state sends. */
export interface ConditionalBehaviour {
  /** `If-None-Match: *` on an existing key was refused (412/409), the object kept. */
  ifNoneMatchRefused: boolean;
  /** `If-Match` with a wrong ETag was refused, the object kept. */
  wrongIfMatchRefused: boolean;
  /**
   * The backend's verdict on `If-Match` with the right ETag (`S3Backend.conditionalWrites`):
   * `refused` when refused in both quotings while the object kept that ETag.
   */
  conditionalWrites: ConditionalWrites;
  /** `DeleteObject` with a wrong `If-Match` was refused, the object kept. */
  conditionalDeleteRefused: boolean;
  /**
   * `If-None-Match: *` on a key just deleted was refused: Ceph RGW 16.2 does so in a bucket
   * whose versioning is suspended (the delete marker counts as an object).
   */
  recreateRefused: boolean;
}

/** Whether an error is a refused condition (anything else is rethrown). */
async function refused(send: () => Promise<unknown>): Promise<boolean> {
  try {
    await send();
    return false;
  } catch (error) {
    if (isConditionFailure(error, true)) return true;
    throw error;
  }
}

/**
 * Tries each conditional request on a temporary object, and removes it.
 *
 * @returns what the store did, and a note when the object could not be removed
 */
export async function probeConditionals(
  tools: S3Tools,
  config: S3BackendConfig,
): Promise<{ behaviour: ConditionalBehaviour; leftover?: string }> {
  const key = probeKey("conditional");
  let behaviour: ConditionalBehaviour;
  let leftover: string | undefined;
  try {
    await putProbe(tools, config, key, "first");
    const ifNoneMatchRefused = await refused(() =>
      putProbe(tools, config, key, "second", { ifNoneMatch: true })
    ) && await readProbe(tools, key) === "first";
    const wrongIfMatchRefused = await refused(() =>
      putProbe(tools, config, key, "third", { ifMatch: "0123456789abcdef0123456789abcdef" })
    ) && await readProbe(tools, key) !== "third";
    const { conditionalWrites } = await replaceAsBackend(
      tools,
      config,
      key,
      await headEtag(tools, key),
      "fourth",
    );
    const conditionalDeleteRefused = await refused(() =>
      tools.clients.s3.send(
        new DeleteObjectCommand({
          Bucket: tools.bucket,
          Key: key,
          IfMatch: "0123456789abcdef0123456789abcdef",
        }),
      )
    ) && await probeExists(tools, key);
    await tools.clients.s3.send(new DeleteObjectCommand({ Bucket: tools.bucket, Key: key }));
    const recreateRefused = await refused(() =>
      putProbe(tools, config, key, "fifth", { ifNoneMatch: true })
    );
    behaviour = {
      ifNoneMatchRefused,
      wrongIfMatchRefused,
      conditionalWrites,
      conditionalDeleteRefused,
      recreateRefused,
    };
  } finally {
    leftover = await removeProbe(tools, key);
  }
  return { behaviour, leftover };
}

async function headEtag(tools: S3Tools, key: string): Promise<string> {
  const out = await tools.clients.s3.send(
    new HeadObjectCommand({ Bucket: tools.bucket, Key: key }),
  );
  return unquote(out.ETag);
}

/** What the write cycle of {@linkcode probeWrites} found. */
export interface WriteProbe {
  /** What failed, of what the configured lock mode needs (empty when everything worked). */
  failures: string[];
  /**
   * The backend's verdict on `If-Match` here. `refused` without a failure: the lock mode is
   * DynamoDB, and the backend writes this bucket without a condition under that lock alone.
   */
  conditionalWrites: ConditionalWrites;
}

/** The step whose failure says that the store refuses `If-Match` (the prefix of its text). */
export const REPLACE_STEP = "replacing it with If-Match on its ETag";

/**
 * The write cycle the backend depends on, on a temporary object: create it with
 * `If-None-Match: *`, read it back, replace it with `If-Match` as the backend does, delete it,
 * create it again; in lockfile mode, a second create must be refused. A store that refuses `If-Match` (the
 * backend's rule) fails the cycle unless locks use DynamoDB: there the backend writes without
 * a condition under the lock, and so does this probe.
 *
 * @returns what failed and what the backend would conclude about `If-Match`
 */
export async function probeWrites(tools: S3Tools, config: S3BackendConfig): Promise<WriteProbe> {
  const key = probeKey("write");
  const failures: string[] = [];
  let conditionalWrites: ConditionalWrites = "unknown";
  const step = async (what: string, fn: () => Promise<boolean>) => {
    try {
      if (!(await fn())) failures.push(what);
    } catch (error) {
      const status = httpStatus(error);
      failures.push(`${what} (${errorName(error)}${status ? `, HTTP ${status}` : ""})`);
    }
  };
  try {
    let etag = "";
    await step("creating an object with If-None-Match: *", async () => {
      etag = await putProbe(tools, config, key, "one", { ifNoneMatch: true });
      return true;
    });
    if (failures.length) return { failures, conditionalWrites };
    await step("reading it back", async () => await readProbe(tools, key) === "one");
    let refusedHere = false;
    await step(REPLACE_STEP, async () => {
      const replaced = await replaceAsBackend(tools, config, key, etag, "two");
      conditionalWrites = replaced.conditionalWrites;
      if (replaced.written) return true;
      refusedHere = conditionalWrites === "refused";
      // Where the store refuses If-Match, the backend writes under the DynamoDB lock alone.
      if (!refusedHere || lockMode(config) !== "dynamodb") return false;
      return await replaced.objects.put(key, new TextEncoder().encode("two")) !== null;
    });
    if (refusedHere && failures.at(-1) === REPLACE_STEP) {
      failures[failures.length - 1] += " (refused in both quotings, an ETag the object has; " +
        "only a DynamoDB lock can keep writers apart on this store)";
    }
    if (config.use_lockfile) {
      await step(
        "refusing a second create with If-None-Match: * (the lockfile's lock)",
        () => refused(() => putProbe(tools, config, key, "three", { ifNoneMatch: true })),
      );
    }
    await step("deleting it", async () => {
      await tools.clients.s3.send(new DeleteObjectCommand({ Bucket: tools.bucket, Key: key }));
      return true;
    });
    // What every lockfile lock after an unlock, and a state written after its deletion, does.
    // Ceph RGW 16.2 refuses it in a bucket whose versioning is suspended (the delete marker
    // counts as an object there).
    await step("creating it again after the delete, with If-None-Match: *", async () => {
      await putProbe(tools, config, key, "four", {
        ifNoneMatch: conditionalWrites !== "refused",
      });
      return true;
    });
    return { failures, conditionalWrites };
  } finally {
    await removeProbe(tools, key);
  }
}
