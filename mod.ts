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
  LockInfo,
  LockOptions,
  LockResult,
  SetStateOptions,
  StateBackend,
  StateOutput,
  StateResource,
  StateResourceInstance,
} from "./src/types.ts";
export type {
  BackendConfig,
  DiscordConfig,
  GaibConfig,
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
  StateFormatError,
  StateLineageError,
  StateLockError,
  StateSerialError,
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
export { VERSION } from "./src/version.ts";
