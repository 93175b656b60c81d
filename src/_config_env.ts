/**
 * How the `GAIB_*` variables and a config file make one backend config. Each variable sets its
 * one field over the file's value (and over the default):
 *
 * - the backend type is `GAIB_BACKEND`, else `s3` when `GAIB_S3_BUCKET` is set, else the file's,
 *   else `local`;
 * - when that type is the file's, the file's backend fields apply and each variable that is set
 *   replaces one of them;
 * - when it is another type, only the variables apply (the file's fields are for another kind
 *   of backend), and the file's other sections (`discord`, `outputs`) still do;
 * - `region` is `GAIB_S3_REGION`, else the file's, else `AWS_REGION` or `AWS_DEFAULT_REGION`;
 * - a variable for the other backend type is ignored, and said so in `notes`.
 *
 * @module
 */

/** Environment variables and the backend fields they set. */
export const ENVIRONMENT_VARIABLES: Readonly<Record<string, string>> = {
  GAIB_BACKEND: "type",
  GAIB_STATE_PATH: "path",
  GAIB_S3_BUCKET: "bucket",
  GAIB_S3_KEY: "key",
  GAIB_S3_REGION: "region",
  GAIB_DYNAMODB_TABLE: "dynamodb_table",
  GAIB_S3_USE_LOCKFILE: "use_lockfile",
  GAIB_S3_WORKSPACE_KEY_PREFIX: "workspace_key_prefix",
  GAIB_S3_ENCRYPT: "encrypt",
  GAIB_S3_KMS_KEY_ID: "kms_key_id",
  GAIB_S3_PROFILE: "profile",
  GAIB_S3_ENDPOINT: "endpoint",
  GAIB_DYNAMODB_ENDPOINT: "endpoints.dynamodb",
  GAIB_S3_FORCE_PATH_STYLE: "force_path_style",
  GAIB_S3_MAX_RETRIES: "max_retries",
};

/** Variables of the AWS SDK that give `region` when nothing else does. */
export const REGION_VARIABLES: readonly string[] = ["AWS_REGION", "AWS_DEFAULT_REGION"];

const BOOLEAN_FIELDS = new Set(["use_lockfile", "encrypt", "force_path_style"]);
const LOCAL_FIELDS = new Set(["type", "path"]);

/** Where the environment is read from. */
export interface Environment {
  /** The value of a variable, or `undefined`. */
  get(name: string): string | undefined;
}

/** A variable that is set, with its value as the field takes it. */
interface EnvValue {
  variable: string;
  field: string;
  value: unknown;
}

/** The backend fields as the file and the variables make them, before they are checked. */
export interface ComposedBackend {
  /** The backend section to check. */
  backend: Record<string, unknown>;
  /** For each field (dotted, such as `endpoints.dynamodb`): a variable's name, the file, or "default". */
  origins: Record<string, string>;
  /** Remarks, such as a variable that does not apply to this backend type. */
  notes: string[];
  /** Whether the file's backend section is used. */
  fileBackendUsed: boolean;
}

/** Reads a variable; an empty value and a variable we may not read count as unset. */
export function readVariable(env: Environment, name: string): string | undefined {
  try {
    const value = env.get(name);
    return value === "" ? undefined : value;
  } catch {
    return undefined; // not allowed to read it
  }
}

/** The `GAIB_*` variables that are set, converted for their fields (checked later). */
export function readEnvironment(env: Environment): EnvValue[] {
  const values: EnvValue[] = [];
  for (const [variable, field] of Object.entries(ENVIRONMENT_VARIABLES)) {
    const text = readVariable(env, variable);
    if (text === undefined) continue;
    let value: unknown = text;
    if (BOOLEAN_FIELDS.has(field)) {
      const lower = text.toLowerCase();
      if (["1", "true", "yes", "on"].includes(lower)) value = true;
      else if (["0", "false", "no", "off"].includes(lower)) value = false;
    } else if (field === "max_retries" && /^\d{1,15}$/.test(text)) {
      value = Number(text);
    }
    values.push({ variable, field, value });
  }
  return values;
}

/** Whether an origin names an environment variable (rather than a file or the default). */
export function isVariableOrigin(origin: string | undefined): origin is string {
  return origin !== undefined &&
    (Object.hasOwn(ENVIRONMENT_VARIABLES, origin) || REGION_VARIABLES.includes(origin));
}

/** The variable that sets a backend field, such as `GAIB_S3_KEY` for `key`. */
export function variableFor(field: string): string | undefined {
  return Object.entries(ENVIRONMENT_VARIABLES).find(([, f]) => f === field)?.[0];
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Puts the backend config together from the file's backend section and the variables.
 *
 * @param fileBackend the file's `backend` value (`undefined` when the file has none)
 * @param file the file, or `undefined` when there is none
 * @param vars the variables that are set ({@linkcode readEnvironment})
 * @param env for the AWS region variables
 * @returns the backend to check and where each field came from
 */
export function composeBackend(
  fileBackend: unknown,
  file: string | undefined,
  vars: EnvValue[],
  env: Environment,
): ComposedBackend {
  const notes: string[] = [];
  const origins: Record<string, string> = {};
  const byField = new Map(vars.map((v) => [v.field, v]));
  // A file without a backend section means the local backend.
  const fromFile = file === undefined
    ? undefined
    : fileBackend === undefined
    ? { type: "local" }
    : fileBackend;
  const fileType = isMapping(fromFile) && (fromFile.type === "local" || fromFile.type === "s3")
    ? fromFile.type
    : undefined;
  const typeVar = byField.get("type") ??
    (byField.has("bucket") ? { ...byField.get("bucket")!, value: "s3" } : undefined);
  let backend: Record<string, unknown>;
  let fileBackendUsed = false;
  if (
    fromFile !== undefined && (typeVar === undefined || fileType === undefined ||
      typeVar.value === fileType)
  ) {
    if (!isMapping(fromFile)) {
      // Not a mapping: checked as it is, so that the error points at the file.
      return {
        backend: fromFile as Record<string, unknown>,
        origins,
        notes,
        fileBackendUsed: true,
      };
    }
    backend = { ...fromFile };
    fileBackendUsed = true;
    for (const key of Object.keys(backend)) {
      if (key === "endpoints" && isMapping(backend.endpoints)) {
        for (const sub of Object.keys(backend.endpoints)) origins[`endpoints.${sub}`] = file!;
      } else origins[key] = file!;
    }
  } else {
    backend = {};
    origins.type = "default";
    if (fromFile !== undefined && fileType !== undefined) {
      notes.push(
        `${typeVar!.variable} selects the ${typeVar!.value} backend, so the ${fileType} ` +
          `backend of ${file} is not used.`,
      );
    }
  }
  if (typeVar !== undefined) {
    backend.type = typeVar.value;
    origins.type = typeVar.variable;
  }
  backend.type ??= "local";
  const type = backend.type;
  for (const { variable, field, value } of vars) {
    if (field === "type") continue;
    if ((type === "local") !== LOCAL_FIELDS.has(field)) {
      if (type === "local" || type === "s3") {
        notes.push(`${variable} is ignored: it is not a setting of the ${type} backend.`);
      }
      continue;
    }
    if (field.startsWith("endpoints.")) {
      const endpoints = isMapping(backend.endpoints) ? { ...backend.endpoints } : {};
      endpoints[field.slice("endpoints.".length)] = value;
      backend.endpoints = endpoints;
    } else backend[field] = value;
    origins[field] = variable;
  }
  if (type === "s3" && backend.region === undefined) {
    for (const variable of REGION_VARIABLES) {
      const region = readVariable(env, variable);
      if (region === undefined) continue;
      backend.region = region;
      origins.region = variable;
      break;
    }
  }
  if (type === "local" && backend.path === undefined) origins.path = "default";
  return { backend, origins, notes, fileBackendUsed };
}
