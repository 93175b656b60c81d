/**
 * gaib-state: Terraform-compatible state storage (format version 4) for Deno, with an
 * embedded local file backend and an S3 backend (import `@gaib/state/s3`).
 *
 * - `LocalBackend` writes atomically and durably and locks safely across processes;
 * - every backend refuses lost updates (lineage and serial checks) and writes without the
 *   lock's ID while a workspace is locked;
 * - `BackendFactory` picks the backend from the environment, `gaib.yaml` or the default.
 *
 * @example Lock, read, change and write a state
 * ```ts
 * import { createEmptyState, LocalBackend, withBackend, withLock } from "@gaib/state";
 *
 * const root = await Deno.makeTempDir();
 * await withBackend(new LocalBackend({ path: root }), async (backend) => {
 *   await withLock(backend, "default", "", "apply", async ({ lockId }) => {
 *     const state = (await backend.getState("default")) ?? createEmptyState();
 *     await backend.setState("default", { ...state, serial: state.serial + 1 }, { lockId });
 *   });
 * });
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @module
 */

export type {
  DeleteStateOptions,
  GaibState,
  GetStateOptions,
  ListVersionsOptions,
  LockDetails,
  LockInfo,
  LockInspector,
  LockOptions,
  LockResult,
  SetStateOptions,
  StateBackend,
  StateHistory,
  StateOutput,
  StateResource,
  StateResourceInstance,
  StateVersion,
} from "./src/types.ts";
export type {
  BackendConfig,
  DiscordConfig,
  GaibConfig,
  HttpBackendConfig,
  LocalBackendConfig,
  OutputConfig,
  PgBackendConfig,
  S3BackendConfig,
  S3BackendEndpoints,
} from "./src/config.ts";
export {
  BackendConfigError,
  type BackendConfigErrorOptions,
  BackendError,
  StateEditError,
  type StateEditProblem,
  StateFormatError,
  StateLineageError,
  StateLockError,
  StateSerialError,
  StateVersionNotFoundError,
  UnsupportedOperationError,
  WorkspaceNotEmptyError,
} from "./src/errors.ts";
export {
  assertValidState,
  createEmptyState,
  generateLineage,
  isValidState,
  parseState,
  parseStateBytes,
  serializeState,
} from "./src/state.ts";
export {
  describeHolder,
  generateLockId,
  withBackend,
  withLock,
  type WithLockOptions,
} from "./src/lock.ts";
export {
  DEFAULT_WORKSPACE,
  readSelectedWorkspace,
  resolveSelectedWorkspace,
  type SelectedWorkspace,
  type SelectedWorkspaceOptions,
  validateWorkspaceName,
  writeSelectedWorkspace,
} from "./src/workspace.ts";
export {
  formatInstanceAddress,
  formatKey,
  formatModuleAddress,
  type InstanceAddress,
  instanceKey,
  isProviderAddress,
  type ModuleStep,
  parseInstanceAddress,
  parseModuleAddress,
  resourceAddress,
} from "./src/address.ts";
export { LocalBackend, type LocalBackendOptions } from "./src/backends/local.ts";
export { type RollbackOptions, type RollbackResult, rollbackState } from "./src/rollback.ts";
export {
  type MigrateOptions,
  migrateStates,
  type MigrationAction,
  type MigrationEntry,
  MigrationError,
  type MigrationProgress,
} from "./src/migrate.ts";
export {
  type AesGcmMethodConfig,
  EncryptedBackend,
  type EncryptionConfig,
  type EncryptionTargetConfig,
  type ExternalKeyProviderConfig,
  type Pbkdf2KeyProviderConfig,
  type StateEncryptionConfig,
  StateEncryptionError,
  type StateEnvelope,
  withEncryption,
  type WithEncryptionOptions,
} from "./src/encryption.ts";
export {
  BackendFactory,
  CONFIG_FILE_NAMES,
  type ConfigSource,
  ENVIRONMENT_VARIABLES,
  type ResolvedBackendConfig,
  type ResolveOptions,
} from "./src/factory.ts";
export {
  BackendSchema,
  type ConfigSchema,
  type ConfigSchemaIssue,
  type ConfigSchemaResult,
  DiscordConfigSchema,
  GaibConfigSchema,
  isValidBackendConfig,
  LocalBackendSchema,
  OutputSchema,
  parseBackendConfig,
  parseGaibConfig,
  S3BackendSchema,
  safeParseGaibConfig,
  type SafeParseGaibConfigResult,
} from "./src/schema.ts";
export {
  bootstrap,
  type BootstrapAction,
  type BootstrapOptions,
  type BootstrapReport,
  type BootstrapStep,
  doctor,
  type DoctorCheck,
  type DoctorOptions,
  type DoctorStatus,
} from "./src/doctor.ts";
export { VERSION } from "./src/version.ts";
