/**
 * Configuration reloads: which parts of a new configuration may replace the running one, the hash that
 * identifies a configuration, the redacted form `--print-effective-config` prints, and the watch that
 * notices the file changed.
 *
 * Backends, domains and routes, header rules and the security rules are dynamic: workers switch to them
 * for new requests while requests in flight finish under the old ones. Everything else (listeners, TLS,
 * fingerprinting, telemetry, timeouts, the connection limit, workers, logging) is bound into sockets,
 * workers and timers at start, so a change there needs a restart; a reload touching it applies nothing.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Config } from "./config.ts";

/** The keys of `security` that are bound at start. */
const STATIC_SECURITY_KEYS = ["max_connections"] as const;

/** The top-level keys that are bound at start. */
const STATIC_KEYS = ["listen", "tls", "fingerprint", "telemetry", "timeout", "workers", "logging"] as const;

/** The static keys (`tls`, `security.max_connections`) whose values differ between `a` and `b`. */
export function staticChanges(a: Config, b: Config): string[] {
  const changed: string[] = STATIC_KEYS.filter((key) => canonicalJson(a[key]) !== canonicalJson(b[key]));
  for (const key of STATIC_SECURITY_KEYS) {
    if (a.security[key] !== b.security[key]) changed.push(`security.${key}`);
  }
  return changed;
}

/** JSON with object keys sorted, so that equal configurations serialize equally. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v) =>
      v !== null && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
        : v,
  ) ?? "undefined";
}

/** The first 16 hex digits of the SHA-256 of the configuration's canonical JSON. */
export function configHash(config: Config): string {
  return createHash("sha256").update(canonicalJson(config)).digest("hex").slice(0, 16);
}

/** Keys whose values are secrets, or say where secrets are kept. */
const SECRET_KEYS = new Set(["key_path"]);

/** A copy of `config` with the secret keys' values replaced by `"<redacted>"`, at any depth. */
export function redactedConfig(config: Config): unknown {
  return JSON.parse(
    JSON.stringify(config, (key, v) => SECRET_KEYS.has(key) && v !== undefined ? "<redacted>" : v),
  );
}

/** A running watch of a file. */
export interface FileWatch {
  stop(): void;
}

/**
 * Calls `onChange` when the file at `path` changes, polling its mtime and size every `intervalMs`. A
 * change is reported once the file has stayed the same for one more poll, so that an editor's or a
 * ConfigMap's write in several steps is read whole, once.
 */
export function watchFile(path: string, intervalMs: number, onChange: () => void): FileWatch {
  const stamp = async () => {
    try {
      const s = await Deno.stat(path);
      return `${s.mtime?.getTime()}:${s.size}:${s.ino}`;
    } catch {
      return "missing";
    }
  };
  let seen: Promise<string> = stamp();
  let pending: string | undefined;
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const [before, now] = [await seen, await stamp()];
      if (now !== before) {
        seen = Promise.resolve(now);
        pending = now;
      } else if (pending !== undefined) {
        pending = undefined;
        onChange();
      }
    } finally {
      busy = false;
    }
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}
