/**
 * Terraform's state digest: the item `{ LockID: "<bucket>/<state key>-md5", Digest: <hex MD5
 * of the state bytes> }` in the lock table, written after every upload, compared with what a
 * reader downloaded (a mismatch means an upload is not visible yet or the object was changed
 * behind the table's back), and deleted with the workspace.
 *
 * gaib-state also records which state the digest describes (`GaibLineage`, `GaibSerial`,
 * attributes Terraform ignores). A writer killed between uploading the object and updating
 * the digest leaves an object NEWER than its digest; a reader that finds a complete, valid
 * state of the same lineage with a higher serial than the digest describes knows that is what
 * happened, and accepts it (repairing the digest) instead of failing until someone fixes the
 * table by hand. An object older than its digest is still refused: that is what the digest
 * exists to catch.
 *
 * @module
 */

import {
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";

/** A digest item as read. */
export interface StoredDigest {
  /** Lowercase hex MD5 of the state bytes. */
  md5: string;
  /** The state the digest describes, when gaib-state wrote it. */
  state?: { lineage: string; serial: number };
}

/** The digest items of one table. */
export class DynamoDbDigests {
  readonly #client: DynamoDBClient;
  readonly #table: string;

  /**
   * @param client the DynamoDB client
   * @param table the lock table
   */
  constructor(client: DynamoDBClient, table: string) {
    this.#client = client;
    this.#table = table;
  }

  /** The stored digest, or `null` when there is none. */
  async get(id: string): Promise<StoredDigest | null> {
    const out = await this.#client.send(
      new GetItemCommand({
        TableName: this.#table,
        Key: { LockID: { S: id } },
        ProjectionExpression: "LockID, Digest, GaibLineage, GaibSerial",
        ConsistentRead: true,
      }),
    );
    const digest = out.Item?.Digest?.S;
    if (typeof digest !== "string" || !/^[0-9a-fA-F]{32}$/.test(digest)) return null;
    const stored: StoredDigest = { md5: digest.toLowerCase() };
    const serial = Number(out.Item?.GaibSerial?.N);
    const lineage = out.Item?.GaibLineage?.S;
    if (Number.isSafeInteger(serial) && typeof lineage === "string") {
      stored.state = { lineage, serial };
    }
    return stored;
  }

  /**
   * Stores the digest of the state just written.
   *
   * @param replacing when given, only replace a digest with this MD5 (a repair must not undo
   *   a newer writer's digest)
   * @returns `false` when `replacing` did not match
   */
  async put(
    id: string,
    md5Hex: string,
    state: { lineage: string; serial: number },
    replacing?: string,
  ): Promise<boolean> {
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: {
            LockID: { S: id },
            Digest: { S: md5Hex },
            GaibLineage: { S: state.lineage },
            GaibSerial: { N: String(state.serial) },
          },
          ...(replacing === undefined ? {} : {
            ConditionExpression: "Digest = :replacing",
            ExpressionAttributeValues: { ":replacing": { S: replacing } },
          }),
        }),
      );
      return true;
    } catch (error) {
      if (replacing !== undefined && (error as Error).name === "ConditionalCheckFailedException") {
        return false;
      }
      throw error;
    }
  }

  /** Deletes the digest of a deleted state. */
  async delete(id: string): Promise<void> {
    await this.#client.send(
      new DeleteItemCommand({ TableName: this.#table, Key: { LockID: { S: id } } }),
    );
  }
}
