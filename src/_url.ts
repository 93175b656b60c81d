/**
 * URLs for display: never with their user info. An endpoint such as
 * `https://TOKEN@s3.example` or `https://:password@host` carries a credential in the part before
 * the `@`, and every place that shows a URL (config show, errors, `--verbose`) drops it.
 *
 * @module
 */

/** What replaces the user info of a URL. */
export const REDACTED = "[redacted]";

/**
 * A URL in free text: a scheme with `//`, or one of the special schemes that the URL parser
 * also reads without slashes or with backslashes (`https:TOKEN@host`, `https:\\TOKEN@host`),
 * up to the last `@` before the next white space, quote or angle bracket. Taking everything up to
 * the last `@` also covers an `@` or a `/` inside an unencoded password. A URL with an empty
 * authority (`file:///…/@scope/pkg` in a stack trace) has no user info.
 */
const USER_INFO_IN_TEXT =
  /\b([a-z][a-z0-9+.-]*:\/\/(?!\/)|(?:https?|wss?|ftp):(?![\\/]{3})[\\/]*)[^\s"'<>`]*@/gi;

/**
 * Redacts the user info of every URL in a text (error messages, stack traces, free text).
 *
 * @param text any text
 * @returns the text with `scheme://[redacted]@host` wherever a URL had user info
 */
export function redactUrlsInText(text: string): string {
  return text.replace(USER_INFO_IN_TEXT, (_match, scheme: string) => `${scheme}${REDACTED}@`);
}

/**
 * One URL as it may be shown: parsed as the URL parser (and so the AWS SDK) reads it, and
 * without its user name and password. A value that is not a URL is still passed through
 * {@linkcode redactUrlsInText}, so nothing that looks like user info survives either way.
 *
 * @param value a URL, such as a configured endpoint
 * @returns the URL without user info (`https://[redacted]@host/` when it had some)
 */
export function redactUrl(value: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(value);
  } catch {
    parsed = undefined;
  }
  // A query may carry a token too (`?token=…`): its values are not shown either.
  if (parsed && parsed.search !== "") parsed.search = `?${REDACTED}`;
  if (parsed && (parsed.username !== "" || parsed.password !== "")) {
    parsed.username = "";
    parsed.password = "";
    const shown = parsed.href;
    const slashes = shown.indexOf("//");
    if (slashes >= 0) {
      return `${shown.slice(0, slashes + 2)}${REDACTED}@${shown.slice(slashes + 2)}`;
    }
    return shown;
  }
  if (parsed && parsed.search !== "") return parsed.href;
  return redactUrlsInText(value);
}

/**
 * Whether an endpoint is plain HTTP, and whether only to this machine (where no network sees
 * it).
 *
 * @param endpoint a URL, if any
 * @returns `"no"` (HTTPS or none), `"loopback"` or `"remote"`
 */
export function plainHttp(endpoint: string | undefined): "no" | "loopback" | "remote" {
  if (endpoint === undefined || !endpoint.startsWith("http://")) return "no";
  const host = new URL(endpoint).hostname;
  return host === "localhost" || host === "[::1]" || /^127\./.test(host) ? "loopback" : "remote";
}
