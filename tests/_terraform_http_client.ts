/**
 * A test client that speaks exactly as Terraform's HTTP backend client does, written from
 * hashicorp/terraform `internal/backend/remote-state/http/client.go` (commit 883c7221):
 *
 * - every request (lines 43-78): basic auth only when a user name is set; with a body,
 *   `Content-Type: application/json`, the length, and `Content-MD5` (base64 of the MD5);
 * - Lock (lines 80-124): `LockMethod` on `LockURL` with the LockInfo JSON; 200 keeps the ID and
 *   the JSON; 401/403 auth errors; 409 and 423 read the body as the holder's LockInfo;
 * - Unlock (lines 126-143): `UnlockMethod` on `UnlockURL` with the JSON kept by Lock (empty when
 *   this client took no lock: Terraform's force-unlock); only 200 succeeds;
 * - Get (lines 145-203): 200 a payload (none when empty), 204 and 404 none, 401/403/500 and
 *   others errors;
 * - Put (lines 205-243): `UpdateMethod` (POST) with `?ID=<lock id>` while locked; 200, 201 and
 *   204 succeed, anything else is `HTTP error: <status>`;
 * - Delete (lines 245-262): DELETE, only 200 succeeds.
 *
 * Retries (go-retryablehttp) are left out: these tests look at single answers.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Terraform's statemgr.LockInfo, in its JSON field order. */
export interface TerraformLockInfo {
  ID: string;
  Operation: string;
  Info: string;
  Who: string;
  Version: string;
  Created: string;
  Path: string;
}

/** Terraform's `statemgr.LockError`: the holder, when the body named one. */
export class TerraformLockError extends Error {
  constructor(message: string, readonly info: TerraformLockInfo | null) {
    super(message);
  }
}

/** The client's configuration, as backend.go builds it. */
export interface TerraformClientConfig {
  url: string;
  updateMethod?: string;
  lockUrl?: string;
  lockMethod?: string;
  unlockUrl?: string;
  unlockMethod?: string;
  username?: string;
  password?: string;
}

/** A new LockInfo as Terraform fills it (statemgr.NewLockInfo). */
export function terraformLockInfo(operation = "OperationTypeApply"): TerraformLockInfo {
  return {
    ID: crypto.randomUUID(),
    Operation: operation,
    Info: "",
    Who: "terraform@ci",
    Version: "1.14.0",
    Created: new Date().toISOString(),
    Path: "",
  };
}

/** Terraform's http client, request for request. */
export class TerraformHttpClient {
  lockId = "";
  jsonLockInfo = new Uint8Array();
  /** Requests sent. */
  requests = 0;

  constructor(readonly config: TerraformClientConfig) {}

  async request(method: string, url: string, data?: Uint8Array): Promise<Response> {
    const headers = new Headers();
    if (this.config.username) {
      headers.set(
        "authorization",
        `Basic ${btoa(`${this.config.username}:${this.config.password ?? ""}`)}`,
      );
    }
    if (data !== undefined) {
      headers.set("content-type", "application/json");
      headers.set("content-md5", createHash("md5").update(data).digest("base64"));
    }
    this.requests++;
    return await fetch(url, { method, headers, body: data as BodyInit | undefined });
  }

  async lock(info: TerraformLockInfo): Promise<string> {
    if (!this.config.lockUrl) return "";
    this.lockId = "";
    const json = new TextEncoder().encode(JSON.stringify(info));
    const resp = await this.request(this.config.lockMethod ?? "LOCK", this.config.lockUrl, json);
    const body = await resp.text();
    switch (resp.status) {
      case 200:
        this.lockId = info.ID;
        this.jsonLockInfo = json;
        return info.ID;
      case 401:
        throw new Error("HTTP remote state endpoint requires auth");
      case 403:
        throw new Error("HTTP remote state endpoint invalid auth");
      case 409:
      case 423: {
        let existing: TerraformLockInfo;
        try {
          existing = JSON.parse(body);
        } catch {
          throw new TerraformLockError(
            "HTTP remote state already locked, failed to unmarshal body",
            null,
          );
        }
        throw new TerraformLockError(
          `HTTP remote state already locked: ID=${existing.ID}`,
          existing,
        );
      }
      default:
        throw new Error(`Unexpected HTTP response code ${resp.status}`);
    }
  }

  async unlock(): Promise<void> {
    if (!this.config.unlockUrl) return;
    const resp = await this.request(
      this.config.unlockMethod ?? "UNLOCK",
      this.config.unlockUrl,
      this.jsonLockInfo,
    );
    await resp.body?.cancel();
    if (resp.status !== 200) throw new Error(`Unexpected HTTP response code ${resp.status}`);
  }

  async get(): Promise<Uint8Array | null> {
    const resp = await this.request("GET", this.config.url);
    const bytes = new Uint8Array(await resp.arrayBuffer());
    switch (resp.status) {
      case 200:
        break;
      case 204:
      case 404:
        return null;
      case 401:
        throw new Error("HTTP remote state endpoint requires auth");
      case 403:
        throw new Error("HTTP remote state endpoint invalid auth");
      case 500:
        throw new Error("HTTP remote state internal server error");
      default:
        throw new Error(`Unexpected HTTP response code ${resp.status}`);
    }
    return bytes.length === 0 ? null : bytes;
  }

  async put(data: Uint8Array): Promise<void> {
    const base = new URL(this.config.url);
    if (this.lockId !== "") base.searchParams.set("ID", this.lockId);
    const resp = await this.request(this.config.updateMethod ?? "POST", base.href, data);
    await resp.body?.cancel();
    if (resp.status === 200 || resp.status === 201 || resp.status === 204) return;
    throw new Error(`HTTP error: ${resp.status}`);
  }

  async delete(): Promise<void> {
    const resp = await this.request("DELETE", this.config.url);
    await resp.body?.cancel();
    if (resp.status !== 200) throw new Error(`HTTP error: ${resp.status}`);
  }
}
