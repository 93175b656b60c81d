/**
 * The S3 backend in the registry (`_registry.ts`): its config rule, its `GAIB_*` variables,
 * how its fields are shown, the AWS variables `config show` reports and the ones never printed.
 * Light: the backend and the AWS SDK (`s3.ts`) are imported only when one is created.
 *
 * @module
 */

import type { S3BackendConfig } from "../config.ts";
import {
  boolean,
  httpUrl,
  integer,
  literal,
  nonEmpty,
  noSlashEnds,
  object,
  type ObjectRule,
  quote,
  string,
} from "../_config_rules.ts";
import type { BackendDescriptor } from "./_registry.ts";

/** The rule of {@linkcode S3BackendConfig}. */
export const s3BackendRule: ObjectRule<S3BackendConfig> = object({
  type: { rule: literal(["s3"], 'type must be "s3"'), required: true, show: "plain" },
  bucket: {
    rule: string({
      pattern: /^[a-z0-9][a-z0-9.\-_]{1,253}[a-z0-9]$/,
      patternMessage:
        "bucket must be an S3 bucket name (3-255 lowercase letters, digits, '.', '-', '_')",
    }),
    required: true,
    show: "plain",
  },
  key: {
    rule: string({
      refine: [nonEmpty("key"), {
        test: (v) => !v.startsWith("/") && !v.endsWith("/") && !v.includes("//"),
        message: 'key must not start or end with "/" or contain "//"',
      }, {
        test: (key) => !/\$\{(?!workspace\})/.test(key),
        message: 'key may contain only the placeholder "${workspace}"',
      }],
    }),
    required: true,
    show: "plain",
  },
  region: {
    rule: string({
      pattern: /^[a-z0-9-]+$/,
      patternMessage: "region must be a region name such as eu-west-1",
    }),
    show: "plain",
  },
  dynamodb_table: {
    rule: string({
      pattern: /^[A-Za-z0-9_.-]{3,255}$/,
      patternMessage:
        "dynamodb_table must be a DynamoDB table name (3-255 letters, digits, '_', '-', '.')",
    }),
    show: "plain",
  },
  use_lockfile: { rule: boolean, show: "plain" },
  workspace_key_prefix: { rule: noSlashEnds("workspace_key_prefix"), show: "plain" },
  encrypt: { rule: boolean, show: "plain" },
  kms_key_id: { rule: string({ refine: [nonEmpty("kms_key_id")] }), show: "plain" },
  profile: { rule: string({ refine: [nonEmpty("profile")] }), show: "plain" },
  endpoint: { rule: httpUrl, show: "url" },
  endpoints: {
    rule: object({
      s3: { rule: httpUrl, show: "url" },
      dynamodb: { rule: httpUrl, show: "url" },
    }, {
      expected: "s3: and dynamodb: URLs",
    }),
  },
  force_path_style: { rule: boolean, show: "plain" },
  max_retries: { rule: integer(0, 20), show: "plain" },
}, {
  expected: "type: s3 and its settings",
  refine(config, path) {
    const key = config.key as string;
    const custom = config.workspace_key_prefix as string | undefined;
    const prefix = custom ?? "env:";
    if (!key.includes("${workspace}") && key.startsWith(prefix + "/")) {
      return {
        path: [...path, "key"],
        code: "custom",
        message: `key ${quote(key)} lies inside the workspace prefix ${quote(prefix + "/")}, ` +
          "so the default workspace would share its object with another workspace; choose a " +
          "key outside it or another workspace_key_prefix",
      };
    }
    if (key.includes("${workspace}") && custom !== undefined) {
      return {
        path: [...path, "workspace_key_prefix"],
        code: "custom",
        message: 'workspace_key_prefix is not used when key contains "${workspace}"; remove one',
      };
    }
    return undefined;
  },
});

/** The S3 backend: states in an S3 bucket, locked with DynamoDB or an S3 lockfile. */
export const s3Backend: BackendDescriptor<S3BackendConfig> = {
  type: "s3",
  summary: "state in an S3 bucket, locked with DynamoDB or an S3 lockfile",
  rule: s3BackendRule,
  variables: {
    GAIB_S3_BUCKET: { field: "bucket", selects: true },
    GAIB_S3_KEY: { field: "key" },
    GAIB_S3_REGION: { field: "region" },
    GAIB_DYNAMODB_TABLE: { field: "dynamodb_table" },
    GAIB_S3_USE_LOCKFILE: { field: "use_lockfile", coerce: "boolean" },
    GAIB_S3_WORKSPACE_KEY_PREFIX: { field: "workspace_key_prefix" },
    GAIB_S3_ENCRYPT: { field: "encrypt", coerce: "boolean" },
    GAIB_S3_KMS_KEY_ID: { field: "kms_key_id" },
    GAIB_S3_PROFILE: { field: "profile" },
    GAIB_S3_ENDPOINT: { field: "endpoint" },
    GAIB_DYNAMODB_ENDPOINT: { field: "endpoints.dynamodb" },
    GAIB_S3_FORCE_PATH_STYLE: { field: "force_path_style", coerce: "boolean" },
    GAIB_S3_MAX_RETRIES: { field: "max_retries", coerce: "integer" },
    // The AWS SDK's own region variables, below the file's region.
    AWS_REGION: { field: "region", fallback: true },
    AWS_DEFAULT_REGION: { field: "region", fallback: true },
    // The SDK's endpoint variables, below every configured endpoint: read here, so that
    // config show names them, and the clients never read them (or a profile's endpoint_url)
    // on their own (ignoreConfiguredEndpointUrls in _aws_clients.ts).
    AWS_ENDPOINT_URL_S3: { field: "endpoints.s3", fallback: true, unlessSet: ["endpoint"] },
    AWS_ENDPOINT_URL_DYNAMODB: {
      field: "endpoints.dynamodb",
      fallback: true,
      unlessSet: ["endpoint"],
    },
    AWS_ENDPOINT_URL: { field: "endpoint", fallback: true },
  },
  sdkVariables: {
    heading: "AWS credentials and region (values of credentials are never shown):",
    none: "none in the environment (the AWS SDK's default chain applies)",
    hidden: [
      "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN",
      "AWS_WEB_IDENTITY_TOKEN_FILE",
      "AWS_ROLE_ARN",
      "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
      "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ],
    shown: ["AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"],
  },
  secretVariables: [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
  ],
  location(config) {
    // The objects' addresses: the server, the bucket and the keys (the locks do not matter).
    const endpoint = config.endpoints?.s3 ?? config.endpoint;
    let server = "AWS";
    if (endpoint !== undefined) {
      const url = new URL(endpoint); // checked by the rule; its user info is never shown
      server = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
    }
    const layout = config.key.includes("${workspace}")
      ? "per-workspace key"
      : `workspace_key_prefix ${config.workspace_key_prefix ?? "env:"}`;
    return `s3 ${server} bucket ${config.bucket} key ${config.key} (${layout})`;
  },
  load: async () => (await import("./s3.ts")).S3Backend,
  doctor: async () => (await import("./_s3_doctor.ts")).s3Doctor,
};
