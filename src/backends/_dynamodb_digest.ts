/**
 * Terraform's state digest: the item `{ LockID: "<bucket>/<state key>-md5", Digest: <hex MD5
 * of the state bytes> }` in the lock table, written after every upload, compared with what a
 * reader downloaded (a mismatch means an upload is not visible yet or the object was changed
 * behind the table's back), and deleted with the workspace.
 *
 * @module
 */

import {
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";

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

  /** The stored digest (lowercase hex), or `null` when there is none. */
  async get(id: string): Promise<string | null> {
    const out = await this.#client.send(
      new GetItemCommand({
        TableName: this.#table,
        Key: { LockID: { S: id } },
        ProjectionExpression: "LockID, Digest",
        ConsistentRead: true,
      }),
    );
    const digest = out.Item?.Digest?.S;
    return typeof digest === "string" && /^[0-9a-fA-F]{32}$/.test(digest)
      ? digest.toLowerCase()
      : null;
  }

  /** Stores the digest of the state just written. */
  async put(id: string, md5Hex: string): Promise<void> {
    await this.#client.send(
      new PutItemCommand({
        TableName: this.#table,
        Item: { LockID: { S: id }, Digest: { S: md5Hex } },
      }),
    );
  }

  /** Deletes the digest of a deleted state. */
  async delete(id: string): Promise<void> {
    await this.#client.send(
      new DeleteItemCommand({ TableName: this.#table, Key: { LockID: { S: id } } }),
    );
  }
}
