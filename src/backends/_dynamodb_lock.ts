/**
 * Terraform's DynamoDB lock: the item `{ LockID: "<bucket>/<state key>", Info: <LockInfo
 * JSON> }`, put with `attribute_not_exists(LockID)`. gaib-state adds a `GaibLease` attribute
 * (JSON) that Terraform ignores, and keeps `Info` unchanged while it renews the lease, so
 * `Info` identifies a record exactly: every conditional write compares it.
 *
 * Takeover: `PutItem` with `Info = :observedInfo AND GaibLease = :observedLease`. DynamoDB
 * applies conditional writes to one item one at a time, so of two contenders that observed
 * the same expired record only the first write matches; the second finds a new `Info` and
 * fails. A renewal by a live holder changes `GaibLease`, so a takeover based on an older
 * observation fails too.
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
import { decodeLockJson, encodeLockJson } from "../lock.ts";
import type { LockInfo } from "../types.ts";
import type { CreateResult, Locker } from "./_s3_locker.ts";
import { type Lease, type ObservedLock, parseLease } from "./_s3_lease.ts";
import type { S3KeyLayout } from "./_s3_keys.ts";

type Item = Record<string, { S?: string } | undefined>;

/** The DynamoDB lock of one table. */
export class DynamoDbLocker implements Locker {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #keys: S3KeyLayout;
  readonly label: string;

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

  #item(stateKey: string, info: LockInfo, lease: Lease): Record<string, { S: string }> {
    return {
      LockID: { S: this.#keys.lockPath(stateKey) },
      Info: { S: encodeLockJson(info) },
      GaibLease: { S: JSON.stringify(lease) },
    };
  }

  async create(stateKey: string, info: LockInfo, lease: Lease): Promise<CreateResult> {
    const Item = this.#item(stateKey, info, lease);
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item,
          ConditionExpression: "attribute_not_exists(LockID)",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return { created: true, token: Item.Info.S };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // DynamoDB returns the item in the way; servers that do not need a read.
      const old = observe(error.Item as Item | undefined);
      return { created: false, current: old ?? await this.read(stateKey) };
    }
  }

  async read(stateKey: string): Promise<ObservedLock | null> {
    const out = await this.#client.send(
      new GetItemCommand({
        TableName: this.#table,
        Key: { LockID: { S: this.#keys.lockPath(stateKey) } },
        ConsistentRead: true,
      }),
    );
    return observe(out.Item as Item | undefined);
  }

  async replace(
    stateKey: string,
    observed: ObservedLock,
    info: LockInfo,
    lease: Lease,
  ): Promise<string | null> {
    if (observed.rawLease === undefined) return null; // never replace a lock without lease
    const Item = this.#item(stateKey, info, lease);
    const replaced = await unlessConditionFails(this.#client.send(
      new PutItemCommand({
        TableName: this.#table,
        Item,
        ConditionExpression: "Info = :info AND GaibLease = :lease",
        ExpressionAttributeValues: {
          ":info": { S: observed.token },
          ":lease": { S: observed.rawLease },
        },
      }),
    ));
    return replaced ? Item.Info.S : null;
  }

  async renew(stateKey: string, own: string, info: LockInfo, lease: Lease): Promise<string | null> {
    // A conditional PutItem (not UpdateItem), so the IAM policy Terraform needs suffices.
    const Item = this.#item(stateKey, info, lease);
    Item.Info = { S: own };
    const renewed = await unlessConditionFails(this.#client.send(
      new PutItemCommand({
        TableName: this.#table,
        Item,
        ConditionExpression: "Info = :info",
        ExpressionAttributeValues: { ":info": { S: own } },
      }),
    ));
    return renewed ? own : null;
  }

  remove(stateKey: string, observed: ObservedLock): Promise<boolean> {
    return unlessConditionFails(this.#client.send(
      new DeleteItemCommand({
        TableName: this.#table,
        Key: { LockID: { S: this.#keys.lockPath(stateKey) } },
        // An item without Info (a digest item where a lock was, a damaged record) was read
        // with an empty token: "Info = ''" never holds for it, so it could never be removed.
        ConditionExpression: observed.token === ""
          ? "attribute_not_exists(Info) OR Info = :info"
          : "Info = :info",
        ExpressionAttributeValues: { ":info": { S: observed.token } },
      }),
    ));
  }
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
function observe(item: Item | undefined): ObservedLock | null {
  if (!item || !item.LockID) return null;
  const raw = item.Info?.S ?? "";
  const { info } = decodeLockJson(raw, "lock item");
  const rawLease = item.GaibLease?.S;
  return {
    info,
    lease: rawLease === undefined ? null : parseLease(rawLease),
    token: raw,
    rawLease,
  };
}
