/**
 * Terraform's DynamoDB lock: the item `{ LockID: "<bucket>/<state key>", Info: <LockInfo
 * JSON> }`, put with `attribute_not_exists(LockID)`. gaib-state adds a `GaibLease` attribute
 * (JSON) that Terraform ignores, and keeps `Info` unchanged while it renews the lease.
 *
 * A record's version is the pair (`Info`, `GaibLease`) as read; every conditional write
 * compares it. DynamoDB applies conditional writes to one item one at a time, so of two
 * contenders that observed the same expired record only the first takeover matches; the
 * second finds a new `Info` and fails. A renewal by a live holder changes `GaibLease`, so a
 * takeover based on an older observation fails too. The version of a record this store wrote
 * is its `Info` alone (only its holder changes its lease), so a renewal whose answer was lost
 * and that the SDK sent again does not cost the holder its lock.
 *
 * Every write is a conditional PutItem or DeleteItem, so the IAM policy Terraform needs
 * suffices.
 *
 * @module
 */

import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import { parseLease } from "../_lease.ts";
import type { CreateResult, LockRecord, LockStore, StoredLock } from "../_lock_store.ts";
import { decodeLockJson, encodeLockJson } from "../lock.ts";
import type { S3KeyLayout } from "./_s3_keys.ts";

type Item = Record<string, { S?: string } | undefined>;

/**
 * What a conditional write must find: `Info` (`null`: an item without one) and, unless
 * absent, `GaibLease` (`null`: an item without one).
 */
interface ItemVersion {
  info: string | null;
  lease?: string | null;
}

/** The DynamoDB lock store of one table. */
export class DynamoDbLockStore implements LockStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #keys: S3KeyLayout;
  readonly label: string;
  readonly deleteChecksVersion: boolean = true;

  /**
   * @param client the DynamoDB client
   * @param table the lock table (partition key `LockID`, string)
   * @param keys the key layout (for `LockID`)
   */
  constructor(client: DynamoDBClient, table: string, keys: S3KeyLayout) {
    this.#client = client;
    this.#table = table;
    this.#keys = keys;
    this.label = `DynamoDB table "${table}"`;
  }

  #lockId(stateKey: string): { S: string } {
    return { S: this.#keys.lockPath(stateKey) };
  }

  #item(stateKey: string, record: LockRecord): Record<string, { S: string }> {
    return {
      LockID: this.#lockId(stateKey),
      Info: { S: encodeLockJson(record.info) },
      GaibLease: { S: JSON.stringify(record.lease) },
    };
  }

  async create(stateKey: string, record: LockRecord): Promise<CreateResult> {
    const Item = this.#item(stateKey, record);
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item,
          ConditionExpression: "attribute_not_exists(LockID)",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return { created: true, version: ownVersion(Item) };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // DynamoDB returns the item in the way; servers that do not need a read.
      const old = observe(error.Item as Item | undefined);
      return { created: false, current: old ?? await this.read(stateKey) };
    }
  }

  async read(stateKey: string): Promise<StoredLock | null> {
    const out = await this.#client.send(
      new GetItemCommand({
        TableName: this.#table,
        Key: { LockID: this.#lockId(stateKey) },
        ConsistentRead: true,
      }),
    );
    return observe(out.Item as Item | undefined);
  }

  async replace(stateKey: string, version: string, record: LockRecord): Promise<string | null> {
    const Item = this.#item(stateKey, record);
    const replaced = await unlessConditionFails(this.#client.send(
      new PutItemCommand({ TableName: this.#table, Item, ...matching(version) }),
    ));
    return replaced ? ownVersion(Item) : null;
  }

  delete(stateKey: string, version: string): Promise<boolean> {
    return unlessConditionFails(this.#client.send(
      new DeleteItemCommand({
        TableName: this.#table,
        Key: { LockID: this.#lockId(stateKey) },
        ...matching(version),
      }),
    ));
  }
}

/** The version of an item this store wrote: its `Info`. */
function ownVersion(item: Record<string, { S: string }>): string {
  return JSON.stringify({ info: item.Info.S } satisfies ItemVersion);
}

/** The condition that the item exists and still has `version`. */
function matching(version: string): {
  ConditionExpression: string;
  ExpressionAttributeValues?: Record<string, { S: string }>;
} {
  const v = JSON.parse(version) as ItemVersion;
  const conditions = ["attribute_exists(LockID)"];
  const values: Record<string, { S: string }> = {};
  if (v.info === null) conditions.push("attribute_not_exists(Info)");
  else {
    conditions.push("Info = :info");
    values[":info"] = { S: v.info };
  }
  if (v.lease === null) conditions.push("attribute_not_exists(GaibLease)");
  else if (v.lease !== undefined) {
    conditions.push("GaibLease = :lease");
    values[":lease"] = { S: v.lease };
  }
  return {
    ConditionExpression: conditions.join(" AND "),
    ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
  };
}

/** Runs a conditional request: `false` when its condition failed (someone else changed it). */
async function unlessConditionFails(request: Promise<unknown>): Promise<boolean> {
  try {
    await request;
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** Reads a lock item; an item without `Info` is a damaged lock with an empty ID. */
function observe(item: Item | undefined): StoredLock | null {
  if (!item || !item.LockID) return null;
  const raw = item.Info?.S;
  const { info } = decodeLockJson(raw ?? "", "lock item");
  const rawLease = item.GaibLease?.S;
  return {
    info,
    lease: rawLease === undefined ? null : parseLease(rawLease),
    version: JSON.stringify({ info: raw ?? null, lease: rawLease ?? null } satisfies ItemVersion),
  };
}
