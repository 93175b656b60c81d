/**
 * The S3 object calls of the backend: reads that return the ETag, writes that carry
 * Content-MD5, `Content-Type: application/json`, server-side encryption and an optional
 * condition (`If-Match` on an ETag, `If-None-Match: *`), and listings.
 *
 * ETags are kept without quotes: Ceph RGW 16.2 compares `If-Match` only with an unquoted
 * ETag (a quoted one always fails), and AWS accepts both.
 *
 * @module
 */

import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  ListObjectVersionsCommand,
  type ListObjectVersionsCommandOutput,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { errorName, httpStatus } from "./_aws_clients.ts";

/** An object as read: its bytes and its (unquoted) ETag. */
export interface StoredObject {
  bytes: Uint8Array;
  etag: string;
}

/** Server-side encryption of written objects. */
export interface Encryption {
  encrypt: boolean;
  kmsKeyId?: string;
}

/** The condition of a write. */
export interface WriteCondition {
  /** Write only if the object's ETag is this one. */
  ifMatch?: string;
  /** Write only if no object exists. */
  ifNoneMatch?: boolean;
}

/**
 * Whether the server honours `If-Match` on writes to this bucket, as far as seen: `refused`
 * once it refused, in both quotings, an ETag the object provably has (Ceph RGW 16.2 does so
 * for every `If-Match` in a versioned bucket, where it also ignores `If-None-Match`).
 */
export type ConditionalWrites = "unknown" | "honoured" | "refused";

/** MD5 of some bytes: hex (Terraform's digest) and base64 (`Content-MD5`). */
export function md5(bytes: Uint8Array): { hex: string; base64: string } {
  const digest = createHash("md5").update(bytes).digest();
  return { hex: digest.toString("hex"), base64: digest.toString("base64") };
}

/** An ETag without its quotes. */
export function unquote(etag: string | undefined): string {
  return (etag ?? "").replace(/^W\//, "").replace(/^"|"$/g, "");
}

function isMissing(error: unknown): boolean {
  const name = errorName(error);
  return name === "NoSuchKey" || name === "NotFound" ||
    (httpStatus(error) === 404 && name !== "NoSuchBucket");
}

/** Whether a conditional write failed because the object is not what the condition said. */
export function isConditionFailure(error: unknown, conditional: boolean): boolean {
  const status = httpStatus(error);
  const name = errorName(error);
  if (status === 412 || name === "PreconditionFailed") return true;
  // AWS: 409 when a concurrent conditional write on the same key wins the race.
  if (status === 409 || name === "ConditionalRequestConflict") return true;
  // AWS answers If-Match on a missing key with 404 (Ceph with 412).
  return conditional && isMissing(error);
}

/** The objects of one bucket. */
export class S3Objects {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #encryption: Encryption;
  /**
   * How this server wants the ETag in `If-Match`. RFC 7232 quotes it and most servers take
   * either; Ceph RGW 16.2 (and DigitalOcean Spaces) fail every quoted one with 412. Starts
   * unquoted, and flips when the server refuses an ETag that matches.
   */
  #quoteIfMatch = false;
  #conditionalWrites: ConditionalWrites = "unknown";

  /**
   * @param client the S3 client
   * @param bucket the bucket
   * @param encryption SSE settings for writes
   * @param quoteIfMatch start by quoting ETags in `If-Match` (flips when the server says no)
   */
  constructor(client: S3Client, bucket: string, encryption: Encryption, quoteIfMatch = false) {
    this.#client = client;
    this.#bucket = bucket;
    this.#encryption = encryption;
    this.#quoteIfMatch = quoteIfMatch;
  }

  /** What this server was seen to do with `If-Match` on writes (see the type). */
  get conditionalWrites(): ConditionalWrites {
    return this.#conditionalWrites;
  }

  /**
   * Reads an object, or its first `rangeBytes` bytes; with `versionId`, that version of it.
   *
   * @returns the bytes and ETag (of the whole object), or `null` when it (or that version)
   *   does not exist
   */
  async get(key: string, rangeBytes?: number, versionId?: string): Promise<StoredObject | null> {
    try {
      const out = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          VersionId: versionId,
          Range: rangeBytes === undefined ? undefined : `bytes=0-${rangeBytes - 1}`,
        }),
      );
      const bytes = out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
      return { bytes, etag: unquote(out.ETag) };
    } catch (error) {
      if (isMissing(error)) return null;
      // A version ID the server cannot parse (400), or a delete marker (405): no such version.
      const status = httpStatus(error);
      if (versionId !== undefined && (status === 400 || status === 405)) return null;
      // An empty object has no byte 0: a ranged read of it fails with 416.
      if (status === 416 && rangeBytes !== undefined) {
        return await this.get(key, undefined, versionId);
      }
      throw error;
    }
  }

  /**
   * Writes an object with Content-MD5 and the configured encryption.
   *
   * @returns the new ETag, or `null` when `condition` did not hold
   */
  async put(
    key: string,
    bytes: Uint8Array,
    condition: WriteCondition = {},
    contentMd5: string = md5(bytes).base64,
  ): Promise<string | null> {
    const input: PutObjectCommandInput = {
      Bucket: this.#bucket,
      Key: key,
      Body: bytes,
      ContentLength: bytes.length,
      ContentMD5: contentMd5,
      ContentType: "application/json",
      IfNoneMatch: condition.ifNoneMatch ? "*" : undefined,
    };
    if (this.#encryption.kmsKeyId !== undefined) {
      input.ServerSideEncryption = "aws:kms";
      input.SSEKMSKeyId = this.#encryption.kmsKeyId;
    } else if (this.#encryption.encrypt) {
      input.ServerSideEncryption = "AES256";
    }
    const conditional = condition.ifMatch !== undefined || condition.ifNoneMatch === true;
    const etag = await this.#ifMatching(key, condition.ifMatch, async (ifMatch) => {
      try {
        const out = await this.#client.send(new PutObjectCommand({ ...input, IfMatch: ifMatch }));
        return unquote(out.ETag);
      } catch (error) {
        if (conditional && isConditionFailure(error, condition.ifMatch !== undefined)) return null;
        throw error;
      }
    });
    if (etag !== null && condition.ifMatch !== undefined) this.#conditionalWrites = "honoured";
    return etag;
  }

  /**
   * Runs a request conditional on `etag` (`null` from `send`: the condition did not hold).
   * A refused ETag that the object still has means the server wants the other quoting:
   * switch, and send once more.
   */
  async #ifMatching<T>(
    key: string,
    etag: string | undefined,
    send: (ifMatch: string | undefined) => Promise<T | null>,
  ): Promise<T | null> {
    const header = () => etag === undefined ? undefined : this.#quoteIfMatch ? `"${etag}"` : etag;
    const result = await send(header());
    if (result !== null || etag === undefined) return result;
    if (await this.#etagOf(key) !== etag) return null; // a real conflict
    this.#quoteIfMatch = !this.#quoteIfMatch;
    const again = await send(header());
    if (again !== null || this.#conditionalWrites === "honoured") return again;
    if (await this.#etagOf(key) === etag) {
      // Refused in both quotings while the object kept that ETag: the server refuses every
      // If-Match here (Ceph RGW 16.2 in a versioned bucket). Callers decide what may be
      // written without a condition; the quoting goes back to what it was.
      this.#quoteIfMatch = !this.#quoteIfMatch;
      this.#conditionalWrites = "refused";
    }
    return null;
  }

  async #etagOf(key: string): Promise<string | null> {
    try {
      const out = await this.#client.send(
        new HeadObjectCommand({ Bucket: this.#bucket, Key: key }),
      );
      return unquote(out.ETag);
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  /**
   * Deletes an object. `ifMatch` makes the delete conditional where the server supports it
   * (AWS does; Ceph RGW 16.2 ignores it, which is why callers read before they delete).
   *
   * @returns `false` when the condition did not hold
   */
  async delete(key: string, ifMatch?: string): Promise<boolean> {
    const deleted = await this.#ifMatching(key, ifMatch, async (header) => {
      try {
        await this.#client.send(
          new DeleteObjectCommand({ Bucket: this.#bucket, Key: key, IfMatch: header }),
        );
        return true;
      } catch (error) {
        if (ifMatch !== undefined && isConditionFailure(error, true)) return null;
        if (isMissing(error)) return true;
        throw error;
      }
    });
    return deleted === true;
  }

  /** Whether an object exists (a `HEAD` request). */
  async exists(key: string): Promise<boolean> {
    try {
      await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }));
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  /** One page of a ListObjectsV2 listing. */
  list(
    prefix: string,
    delimiter: string | undefined,
    token: string | undefined,
  ): Promise<ListObjectsV2CommandOutput> {
    return this.#client.send(
      new ListObjectsV2Command({
        Bucket: this.#bucket,
        Prefix: prefix,
        Delimiter: delimiter,
        ContinuationToken: token,
      }),
    );
  }

  /**
   * One page of a ListObjectVersions listing of the keys that start with `prefix`.
   *
   * @param prefix the key prefix
   * @param keyMarker `NextKeyMarker` of the previous page
   * @param versionIdMarker `NextVersionIdMarker` of the previous page
   */
  versions(
    prefix: string,
    keyMarker: string | undefined,
    versionIdMarker: string | undefined,
  ): Promise<ListObjectVersionsCommandOutput> {
    return this.#client.send(
      new ListObjectVersionsCommand({
        Bucket: this.#bucket,
        Prefix: prefix,
        KeyMarker: keyMarker,
        VersionIdMarker: versionIdMarker,
      }),
    );
  }

  /** Checks that the bucket exists and may be used (`HeadBucket`). */
  async headBucket(): Promise<void> {
    await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }));
  }
}
