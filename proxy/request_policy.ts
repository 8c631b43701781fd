/**
 * The per-request rules of a configuration, compiled once: the trusted proxies, the global and
 * per-route IP filters, the rate limit that applies to each route (its own, else its domain's, else the
 * global one), and each route's header rules. Built anew when the configuration is reloaded.
 *
 * @module
 */
import type { Config } from "./config.ts";
import { compileHeaderRules, type RouteHeaderRules } from "./header_rules.ts";
import { CidrSet, IpFilter } from "./ip_filter.ts";
import { RateLimiter, type RateLimitRule } from "./rate_limit.ts";
import { routeLabel } from "./router.ts";

/** What applies to one route. */
export interface RoutePolicy {
  ipFilter?: IpFilter;
  rateLimiter?: RateLimiter;
  headers: RouteHeaderRules;
  /** Send the client's Host to the backend (true), or the backend's address. */
  preserveHost: boolean;
}

const NO_HEADER_RULES = compileHeaderRules([]);

/** The admission rules of one configuration. */
export class RequestPolicy {
  /** `security.trusted_proxies`. */
  readonly trustedProxies: CidrSet;
  /** `security.ip_filter`. */
  readonly ipFilter: IpFilter;
  readonly #routes = new Map<string, RoutePolicy>();
  readonly #limiters: RateLimiter[] = [];

  constructor(config: Config) {
    this.trustedProxies = new CidrSet(config.security.trusted_proxies);
    this.ipFilter = new IpFilter(config.security.ip_filter);
    // One limiter per rule as written, so that routes sharing a domain's or the global rule share buckets.
    const limiter = (rule: RateLimitRule | false | undefined) => {
      if (rule === undefined || rule === false) return undefined;
      const made = new RateLimiter(rule);
      this.#limiters.push(made);
      return made;
    };
    const global = limiter(config.security.rate_limit);
    for (const domain of config.domains) {
      const domainLimiter = domain.rate_limit === undefined ? global : limiter(domain.rate_limit);
      for (const route of domain.routes) {
        this.#routes.set(routeLabel(domain.host, route.prefix), {
          ipFilter: route.ip_filter && new IpFilter(route.ip_filter),
          rateLimiter: route.rate_limit === undefined ? domainLimiter : limiter(route.rate_limit),
          headers: compileHeaderRules([config.headers, domain.headers, route.headers]),
          preserveHost: route.preserve_host,
        });
      }
    }
  }

  /** The rules of the route labelled `route` (`RouteMatch.route`). */
  route(route: string): RoutePolicy {
    return this.#routes.get(route) ?? { headers: NO_HEADER_RULES, preserveHost: true };
  }

  /** Drops refilled rate-limit buckets; called periodically. */
  sweep(now = performance.now()): void {
    for (const limiter of this.#limiters) limiter.sweep(now);
  }
}
