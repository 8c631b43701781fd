/**
 * The internal HTTP server's request handler: finds the client connection the request came on, routes
 * it, builds the forwarded headers (fingerprints of that connection included) and forwards it.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import type { ConnectionTable } from "./connections.ts";
import { forwardRequestHeaders } from "./headers.ts";
import type { ProxyMetrics } from "./metrics.ts";
import type { Router } from "./router.ts";
import type { Upstream } from "./upstream.ts";

/** What the handler works with; one set per worker. */
export interface HandlerDeps {
  router: Router;
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
  const { router, connections, upstream, metrics, log } = deps;
  return async (req, info) => {
    const ctx = connections.get(info.remoteAddr.port);
    // Only the worker's own relays connect here; anything else reached the internal port directly.
    if (ctx === undefined) return text(403, "Forbidden\n");
    ctx.inflight++;
    info.completed.finally(() => {
      ctx.inflight--;
      ctx.lastActive = performance.now();
    });
    const start = performance.now();
    const { host, path } = splitUrl(req.url);
    const match = router.match(host, path);
    if (match === undefined) return text(404, "Not Found\n");

    const { headers, spoofed } = forwardRequestHeaders(req.headers, {
      clientAddress: ctx.peer.address,
      clientPort: ctx.peer.port,
      proto: ctx.proto,
      host,
      fingerprints: match.fingerprinting ? ctx.fingerprints : [],
    });
    for (const header of spoofed) metrics.spoofingAttempts.inc({ header });
    // HTTP/2 requests carry the host as :authority only; backends see it as Host either way.
    if (!headers.has("host")) headers.set("host", host);

    metrics.backendRequests.inc({ backend: match.backend });
    const forwarded = await upstream.forward(req, match.backend, match.path, headers);
    if (forwarded.outcome !== "ok") {
      metrics.backendErrors.inc({ backend: match.backend, kind: forwarded.outcome });
      log.warn("backend request failed", {
        backend: match.backend,
        route: match.route,
        kind: forwarded.outcome,
        error: forwarded.error,
      });
    }
    const labels = {
      method: req.method,
      status_code: String(forwarded.response.status),
      protocol: ctx.protocol,
      route: match.route,
    };
    metrics.requests.inc(labels);
    metrics.requestDuration.observe(labels, (performance.now() - start) / 1000);
    return forwarded.response;
  };
}
