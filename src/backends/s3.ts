/**
 * The S3 backend (being built; see issue 3). Import it as `@gaib/state/s3`.
 *
 * @module
 */

import type { S3BackendConfig } from "../config.ts";
import { BackendError } from "../errors.ts";
import type { StateBackend } from "../types.ts";

/** Placeholder until the S3 backend lands: constructing it fails with a clear error. */
export const S3Backend: new (config: S3BackendConfig) => StateBackend = class {
  constructor() {
    throw new BackendError("The S3 backend is not available in this build yet.");
  }
} as unknown as new (config: S3BackendConfig) => StateBackend;
