/**
 * The internal HTTP server's request handler: finds the client connection the request came on, routes
 * it, builds the forwarded headers (fingerprints of that connection included) and forwards it.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import { isMisdirected } from "./certificates.ts";
import { type ConnectionTable, fingerprintFields } from "./connections.ts";
import { applyEdits } from "./header_rules.ts";
import { forwardRequestHeaders } from "./headers.ts";
import type { ProxyMetrics } from "./metrics.ts";
import type { RequestPolicy } from "./request_policy.ts";
import type { Router } from "./router.ts";
import { gatewayError, type Upstream } from "./upstream.ts";

/** What the handler works with; one set per worker. `router` and `policy` are replaced on reload. */
export interface HandlerDeps {
  router: Router;
  policy: RequestPolicy;
  connections: ConnectionTable;
  upstream: Upstream;
  metrics: ProxyMetrics;
  log: Logger;
}

/** Splits `http://authority/path?query` (the form `Deno.serve` gives) without a full URL parse. */
function splitUrl(url: string): { host: string; path: string } {
  const start = url.indexOf("://") + 3;
  const slash = url.indexOf("/", start);
  return slash < 0
    ? { host: url.slice(start), path: "/" }
    : { host: url.slice(start, slash), path: url.slice(slash) };
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/** Builds the `Deno.serve` handler of a worker's internal server. */
export function createHandler(deps: HandlerDeps): Deno.ServeHandler<Deno.NetAddr> {
  const { connections, upstream, metrics, log } = deps;
  return async (req, info) => {
    const ctx = connections.get(info.remoteAddr.port);
    // Only the worker's own relays connect here; anything else reached the internal port directly.
    if (ctx === undefined) return text(403, "Forbidden\n");
    ctx.inflight++;
    ctx.requests++;
    ctx.partial = false;
    // `completed` rejects when the client goes away mid-response (an h2 stream reset, a dropped
    // connection); unhandled, that rejection would end the worker and every connection on it.
    info.completed.catch(() => {}).finally(() => {
      ctx.inflight--;
      ctx.lastActive = performance.now();
    });
    const start = performance.now();
    // Read once: a reload swaps both, and one request must see one configuration.
    const { router, policy } = deps;
    const client = ctx.peer.address;
    if (!policy.ipFilter.permits(client)) {
      metrics.ipFilterRejections.inc({ scope: "global" });
      return text(403, "Forbidden\n");
    }
    const { host, path } = splitUrl(req.url);
    if (isMisdirected(ctx.tls, host)) return text(421, "Misdirected Request\n");
    const match = router.match(host, path);
    if (match === undefined) return text(404, "Not Found\n");
    const rules = policy.route(match.route);
    if (rules.ipFilter?.permits(client) === false) {
      metrics.ipFilterRejections.inc({ scope: "route" });
      return text(403, "Forbidden\n");
    }
    if (rules.rateLimiter !== undefined) {
      const limiter = rules.rateLimiter;
      const decision = limiter.take(limiter.keyOf({ ip: client, route: match.route, headers: req.headers }));
      metrics.rateLimit.inc({ result: decision.allowed ? "allowed" : "rejected" });
      if (!decision.allowed) {
        const response = text(429, "Too Many Requests\n");
        response.headers.set("retry-after", String(decision.retryAfterSecs));
        return response;
      }
    }

    const forwardHeaders = () => {
      const { headers, spoofed } = forwardRequestHeaders(req.headers, {
        clientAddress: client,
        clientPort: ctx.peer.port,
        proto: ctx.proto,
        host,
        fingerprints: match.fingerprinting ? fingerprintFields(ctx) : undefined,
        forwardedFor: policy.trustedProxies.has(client) ? "append" : "replace",
      });
      for (const header of spoofed) metrics.spoofingAttempts.inc({ header });
      // HTTP/2 requests carry the host as :authority only; backends see it as Host either way.
      if (!rules.preserveHost) headers.set("host", match.backend);
      else if (!headers.has("host")) headers.set("host", host);
      applyEdits(headers, rules.headers.request);
      return headers;
    };

    const backend = match.backend;
    let response: Response;
    if (match.unavailable) {
      // Every backend of the route failed its health checks: answer now rather than try a dead one.
      // The headers are still built, for the spoofing count.
      forwardHeaders();
      metrics.noHealthyBackend.inc({ route: match.route });
      response = gatewayError(502);
    } else {
      metrics.backendRequests.inc({ backend });
      const forwarded = await upstream.forward(req, backend, match.path, forwardHeaders());
      if (forwarded.outcome === "client_timeout") {
        metrics.badClientInput.inc({ kind: "slow_request_body" });
      } else if (forwarded.outcome !== "ok") {
        metrics.backendErrors.inc({ backend, kind: forwarded.outcome });
        log.warn("backend request failed", {
          backend,
          route: match.route,
          kind: forwarded.outcome,
          error: forwarded.error,
        });
      }
      response = forwarded.response;
    }
    applyEdits(response.headers, rules.headers.response);
    if (rules.headers.hsts !== undefined && ctx.proto === "https") {
      response.headers.set("strict-transport-security", rules.headers.hsts);
    }
    const labels = {
      method: req.method,
      status_code: String(response.status),
      protocol: ctx.protocol,
      route: match.route,
    };
    metrics.requests.inc(labels);
    metrics.requestDuration.observe(labels, (performance.now() - start) / 1000);
    return response;
  };
}
