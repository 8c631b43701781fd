/**
 * Chooses the route for a request: the domain by host (exact, then longest `*.suffix`, then `*`), the
 * route within it by longest path prefix, and a healthy backend by round-robin. Everything that does not depend
 * on the request is worked out once, when the router is built.
 *
 * @module
 */
import type { Config } from "./config.ts";

/** Where a request goes. */
export interface RouteMatch {
  /** A stable label for metrics and logs: the configured host followed by the prefix, `example.com/api`. */
  route: string;
  /** The backend address, `host:port`. */
  backend: string;
  /** Set when every backend of the route failed its health checks: `backend` is then not to be used. */
  unavailable?: true;
  /** The path to request upstream, after `replace_path`, query kept; always starts with `/`. */
  path: string;
  /** Whether fingerprint headers are computed and sent for this route. */
  fingerprinting: boolean;
}

interface CompiledRoute {
  label: string;
  prefix: string;
  /** How much of the path the prefix replaces: a trailing `/` is kept, so the rest starts with one. */
  consumed: number;
  replacement: string | undefined;
  backends: readonly string[];
  next: number;
  fingerprinting: boolean;
}

/** Routes of one domain, longest prefix first, so the first match is the longest. */
type Routes = readonly CompiledRoute[];

const SLASH = 0x2f;
const QUESTION_MARK = 0x3f;

/** Matches requests to the routes of a configuration. */
export class Router {
  readonly #exact = new Map<string, Routes>();
  /** `*.suffix` domains as `.suffix`, longest first. */
  readonly #wildcards: Array<{ suffix: string; routes: Routes }> = [];
  readonly #catchAll: Routes | undefined;
  readonly #healthy: (address: string) => boolean;

  /** `healthy` says whether a backend may take requests (see `health_checks.ts`); all may by default. */
  constructor(config: Config, healthy: (address: string) => boolean = () => true) {
    this.#healthy = healthy;
    let catchAll: Routes | undefined;
    for (const domain of config.domains) {
      const host = normalizeHost(domain.host);
      const routes = domain.routes
        .map((r): CompiledRoute => ({
          label: routeLabel(domain.host, r.prefix),
          prefix: r.prefix,
          consumed: r.prefix.endsWith("/") ? r.prefix.length - 1 : r.prefix.length,
          replacement: r.replace_path,
          backends: r.backend,
          next: 0,
          fingerprinting: r.fingerprinting,
        }))
        .sort((a, b) => b.prefix.length - a.prefix.length);
      if (host === "*") catchAll = routes;
      else if (host.startsWith("*.")) this.#wildcards.push({ suffix: host.slice(1), routes });
      else this.#exact.set(host, routes);
    }
    this.#wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
    this.#catchAll = catchAll;
  }

  /**
   * The route for a request to `host` (as sent: any case, maybe with a port) and `path` (with query), or
   * `undefined` when no domain or no route of the chosen domain matches. A request never falls through
   * from the chosen domain to a less specific one.
   */
  match(host: string, path: string): RouteMatch | undefined {
    const routes = this.#domain(normalizeHost(host));
    if (routes === undefined) return undefined;
    if (path.charCodeAt(0) !== SLASH) path = `/${path}`;
    for (const route of routes) {
      if (!prefixMatches(route.prefix, path)) continue;
      const backend = this.#pick(route);
      return {
        route: route.label,
        backend: backend ?? route.backends[0],
        ...(backend === undefined && { unavailable: true as const }),
        path: upstreamPath(route, path),
        fingerprinting: route.fingerprinting,
      };
    }
    return undefined;
  }

  /** The next healthy backend in round-robin order; unhealthy ones are skipped, not waited for. */
  #pick(route: CompiledRoute): string | undefined {
    const n = route.backends.length;
    for (let i = 0; i < n; i++) {
      const candidate = route.backends[(route.next + i) % n];
      if (!this.#healthy(candidate)) continue;
      route.next = (route.next + i + 1) % n;
      return candidate;
    }
    return undefined;
  }

  #domain(host: string): Routes | undefined {
    const exact = this.#exact.get(host);
    if (exact !== undefined) return exact;
    for (const { suffix, routes } of this.#wildcards) {
      if (host.length > suffix.length && host.endsWith(suffix)) return routes;
    }
    return this.#catchAll;
  }
}

/** The `RouteMatch.route` label of the route with `prefix` in the domain declared as `host`. */
export function routeLabel(host: string, prefix: string): string {
  return `${normalizeHost(host)}${prefix}`;
}

/**
 * Lower-cases `host`, drops a port and a trailing dot, and writes IPv6 literals in brackets and in
 * canonical form, so that `[::1]:8443`, `[0:0::1]` and `::1` all find a domain declared as `[::1]`.
 */
export function normalizeHost(host: string): string {
  let h = host;
  if (h.charCodeAt(0) === 0x5b /* [ */) {
    const end = h.indexOf("]");
    h = canonicalIPv6(end < 0 ? h : h.slice(0, end + 1));
  } else {
    const colon = h.indexOf(":");
    if (colon >= 0) h = h.indexOf(":", colon + 1) < 0 ? h.slice(0, colon) : canonicalIPv6(`[${h}]`);
  }
  if (h.endsWith(".")) h = h.slice(0, -1);
  return h.toLowerCase();
}

function canonicalIPv6(bracketed: string): string {
  // Only IPv6 hosts pay for a URL parse; a malformed one is left as it is and matches no exact domain.
  try {
    return new URL(`http://${bracketed}/`).hostname;
  } catch {
    return bracketed;
  }
}

/** `/api` matches `/api`, `/api/x` and `/api?q` but not `/apix`; a prefix ending in `/` matches below it. */
function prefixMatches(prefix: string, path: string): boolean {
  if (!path.startsWith(prefix)) return false;
  if (path.length === prefix.length || prefix.charCodeAt(prefix.length - 1) === SLASH) return true;
  const next = path.charCodeAt(prefix.length);
  return next === SLASH || next === QUESTION_MARK;
}

function upstreamPath(route: CompiledRoute, path: string): string {
  const replacement = route.replacement;
  if (replacement === undefined) return path;
  // The rest is "", or starts with "/" or "?".
  const rest = path.slice(route.consumed);
  const joined = replacement.endsWith("/") && rest.charCodeAt(0) === SLASH
    ? replacement + rest.slice(1)
    : replacement + rest;
  return joined.charCodeAt(0) === SLASH ? joined : `/${joined}`;
}
