/**
 * Keeps credentials out of everything the CLI prints: the values of the backends' credential
 * variables (AWS keys...), the signature parts of presigned URLs and `Authorization` headers, and the user
 * info of every URL (`https://TOKEN@host`, `https://user:pa@ss@host`...).
 *
 * @module
 */

import { redactUrlsInText } from "../_url.ts";
import { exposureOf } from "../_config_rules.ts";
import { BACKENDS } from "../backends/_registry.ts";

/**
 * Environment variables whose values are never printed: each backend's credentials (such as
 * `AWS_SECRET_ACCESS_KEY`) and its variables for secret fields (see the registry), whichever
 * backend is used.
 */
export const SECRET_VARIABLES: readonly string[] = BACKENDS.flatMap((descriptor) => [
  ...descriptor.secretVariables ?? [],
  ...Object.entries(descriptor.variables)
    .filter(([, variable]) => exposureOf(descriptor.rule, variable.field) === "secret")
    .map(([name]) => name),
]);

const PATTERNS: readonly RegExp[] = [
  /(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s"']+/gi,
  /(Signature=)[0-9a-f]{16,}/gi,
  /(Credential=)[^,\s"']+/gi,
  /(aws_secret_access_key\s*[=:]\s*)\S+/gi,
  /(aws_session_token\s*[=:]\s*)\S+/gi,
];

function secretValues(): string[] {
  const values: string[] = [];
  for (const name of SECRET_VARIABLES) {
    try {
      const value = Deno.env.get(name);
      // Short values (test servers' "test") would match ordinary words; real keys are longer.
      if (value && value.length >= 8) values.push(value);
    } catch {
      // not permitted to read it: then it cannot leak through us either
    }
  }
  return values;
}

/**
 * Replaces credentials in a text with `[redacted]`.
 *
 * @param text any text about to be printed
 * @returns the text without credential values
 */
export function redactSecrets(text: string): string {
  let out = text;
  for (const value of secretValues()) out = out.split(value).join("[redacted]");
  for (const pattern of PATTERNS) {
    out = out.replace(pattern, (_m, head: string) => `${head}[redacted]`);
  }
  return redactUrlsInText(out);
}
