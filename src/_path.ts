/**
 * The two path operations the library needs (POSIX paths; no `@std/path` here, JSR being out
 * of reach).
 *
 * @module
 */

/** `path` resolved against `dir`, unless it is absolute. */
export function join(dir: string, path: string): string {
  return path.startsWith("/") ? path : `${dir.replace(/\/+$/, "")}/${path}`;
}

/** The directory part of a path: `.` for a bare name, `/` for a file in the root. */
export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}
