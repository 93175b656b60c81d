/**
 * Configuration types, with the keys as written in `gaib.yaml` (snake_case). The rules in
 * `_config_rules.ts` (behind the schemas of `schema.ts`) are typed by these interfaces, so the
 * compiler checks that they produce exactly these shapes.
 *
 * @module
 */

import type { EncryptionConfig } from "./_encryption_config.ts";

/** The embedded local file backend. */
export interface LocalBackendConfig {
  /** Selects the local backend. */
  type: "local";
  /**
   * The state root. Relative paths are resolved against the config file's directory (or the
   * working directory when there is no config file).
   * @default {".gaib"}
   */
  path?: string;
  /**
   * How many versions before the current one to keep in each workspace's history
   * (`<workspace>/history/`), pruned on write; 0 keeps none.
   * @default {10}
   */
  history?: number;
}

/** Per-service endpoint overrides, with Terraform's names. */
export interface S3BackendEndpoints {
  /** S3 endpoint URL. */
  s3?: string;
  /** DynamoDB endpoint URL. */
  dynamodb?: string;
}

/** State in S3, locked with DynamoDB and/or an S3 lockfile. */
export interface S3BackendConfig {
  /** Selects the S3 backend. */
  type: "s3";
  /** The bucket that holds the states. */
  bucket: string;
  /**
   * The state object's key. With `${workspace}` in it, each workspace's state is at the key
   * with the name substituted; without, Terraform's layout applies: `default` at `key`, other
   * workspaces at `<workspace_key_prefix>/<name>/<key>`.
   */
  key: string;
  /**
   * AWS region of the bucket and the lock table.
   * @default {AWS_REGION from the environment}
   */
  region?: string;
  /**
   * DynamoDB table for Terraform-compatible locks (partition key `LockID`, string).
   * @default {undefined}
   */
  dynamodb_table?: string;
  /**
   * Lock with an S3 object `<key>.tflock` created with `If-None-Match: *`.
   * @default {false}
   */
  use_lockfile?: boolean;
  /**
   * Prefix of non-default workspaces in Terraform's layout.
   * @default {"env:"}
   */
  workspace_key_prefix?: string;
  /**
   * Server-side encryption of the state objects (AES256, or aws:kms with `kms_key_id`).
   * @default {false}
   */
  encrypt?: boolean;
  /**
   * KMS key for SSE-KMS; implies encryption.
   * @default {undefined}
   */
  kms_key_id?: string;
  /**
   * Named profile of the shared AWS config and credentials files.
   * @default {undefined}
   */
  profile?: string;
  /**
   * Endpoint URL for both S3 and DynamoDB (S3-compatible stores, local test servers).
   * @default {undefined}
   */
  endpoint?: string;
  /**
   * Per-service endpoints; these win over `endpoint`.
   * @default {undefined}
   */
  endpoints?: S3BackendEndpoints;
  /**
   * Path-style S3 URLs (`endpoint/bucket/key`), needed by most S3-compatible stores.
   * @default {false}
   */
  force_path_style?: boolean;
  /**
   * How many times the AWS SDK retries a failed request.
   * @default {5}
   */
  max_retries?: number;
}

/**
 * State behind a server that speaks Terraform's `http` backend protocol (GitLab-managed state,
 * `gaib-state serve`, ...), with Terraform's field names. Each field may also come from
 * Terraform's `TF_HTTP_*` variable (below the file) or `GAIB_HTTP_*` (over the file).
 */
export interface HttpBackendConfig {
  /** Selects the HTTP backend. */
  type: "http";
  /**
   * The state's URL. With `${workspace}` in it each workspace has its own URL; without, there
   * is only `default`, as in Terraform.
   */
  address: string;
  /**
   * Method of a state upload.
   * @default {"POST"}
   */
  update_method?: string;
  /**
   * URL of lock requests; without it (and `unlock_address`) the server offers no locks.
   * @default {undefined}
   */
  lock_address?: string;
  /**
   * Method of a lock request.
   * @default {"LOCK"}
   */
  lock_method?: string;
  /**
   * URL of unlock requests.
   * @default {undefined}
   */
  unlock_address?: string;
  /**
   * Method of an unlock request.
   * @default {"UNLOCK"}
   */
  unlock_method?: string;
  /**
   * User name for HTTP basic authentication.
   * @default {undefined}
   */
  username?: string;
  /**
   * Password (or token) for HTTP basic authentication: a secret, never shown.
   * @default {undefined}
   */
  password?: string;
  /**
   * Skip the verification of the server's certificate. Refused: Deno cannot skip it for one
   * client; give the server's CA in `client_ca_certificate_pem` instead.
   * @default {false}
   */
  skip_cert_verification?: boolean;
  /**
   * How many times a request is retried after a connection error or a 5xx answer.
   * @default {2}
   */
  retry_max?: number;
  /**
   * Seconds before the first retry (doubling each time).
   * @default {1}
   */
  retry_wait_min?: number;
  /**
   * Longest wait between retries, in seconds.
   * @default {30}
   */
  retry_wait_max?: number;
  /**
   * PEM CA certificate(s) that the server's certificate must chain to.
   * @default {undefined}
   */
  client_ca_certificate_pem?: string;
  /**
   * PEM client certificate for mutual TLS (with `client_private_key_pem`).
   * @default {undefined}
   */
  client_certificate_pem?: string;
  /**
   * PEM private key of the client certificate: a secret, never shown.
   * @default {undefined}
   */
  client_private_key_pem?: string;
}

/**
 * State in a PostgreSQL database, in the tables Terraform's and OpenTofu's `pg` backend use,
 * with OpenTofu's names for the settings.
 */
export interface PgBackendConfig {
  /** Selects the PostgreSQL backend. */
  type: "pg";
  /**
   * The connection URL, `postgres://user:password@host:port/database?sslmode=verify-full`
   * (`sslmode`: `disable`, `require` or `verify-full`; `sslrootcert`: a CA file for
   * `verify-full`). Never shown with its user info. Also read from `PG_CONN_STR`.
   * @default {undefined}
   */
  conn_str?: string;
  /**
   * A file holding the connection URL (a secret mounted by CI), instead of `conn_str`.
   * @default {undefined}
   */
  conn_str_file?: string;
  /**
   * The schema of the states table (created unless `skip_schema_creation`).
   * @default {"terraform_remote_state"}
   */
  schema_name?: string;
  /**
   * The states table.
   * @default {"states"}
   */
  table_name?: string;
  /**
   * The unique index on the table's `name` column.
   * @default {"states_by_name"}
   */
  index_name?: string;
  /**
   * Do not create the schema (the database user may lack `CREATE` on the database).
   * @default {false}
   */
  skip_schema_creation?: boolean;
  /**
   * Do not create the tables (the states table, its sequence and gaib-state's own tables).
   * @default {false}
   */
  skip_table_creation?: boolean;
  /**
   * Do not create the unique index.
   * @default {false}
   */
  skip_index_creation?: boolean;
}

/** The backend part of a config: local, S3, HTTP or PostgreSQL. */
export type BackendConfig =
  | LocalBackendConfig
  | S3BackendConfig
  | HttpBackendConfig
  | PgBackendConfig;

/** Settings of the Gaib toolchain's Discord bot. */
export interface DiscordConfig {
  /** The Discord server (guild) ID the configuration manages. */
  guild_id?: string;
  /** The bot's application ID. */
  application_id?: string;
  /**
   * Name of the environment variable that holds the bot token; the token itself is never
   * written in the config.
   * @default {"DISCORD_TOKEN"}
   */
  token_env?: string;
}

/** An output the Gaib toolchain exports from a state. */
export interface OutputConfig {
  /** What the output is for. */
  description?: string;
  /** Whether the value is secret: masked in every display. */
  sensitive?: boolean;
  /** The value, or an expression the toolchain evaluates. */
  value?: unknown;
}

/** A whole `gaib.yaml`. */
export interface GaibConfig {
  /** Config format version: `"1"`. */
  version: "1";
  /** Where the state lives. */
  backend?: BackendConfig;
  /** Discord bot settings. */
  discord?: DiscordConfig;
  /** Outputs by name. */
  outputs?: Record<string, OutputConfig>;
  /** State encryption: OpenTofu's `encryption` block (see `withEncryption`). */
  encryption?: EncryptionConfig;
}
