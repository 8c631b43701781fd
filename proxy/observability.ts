/**
 * The proxy's operational endpoints, served by the main thread on `telemetry.metrics_addr:metrics_port`:
 * `/health` (build and state), `/live` (the process answers), `/ready` (every listener accepts and, with
 * TCP fingerprinting, the SYN maps are open; 503 during start-up and shutdown) and `/metrics` (all
 * workers merged).
 *
 * @module
 */
import { Hono } from "hono";
import { Registry } from "prom-client";
import { VERSION } from "../shared/metrics.ts";

/** What the endpoints report on. */
export interface ProxyState {
  /** Why the proxy is not ready, or undefined when it is. */
  notReady(): string | undefined;
  /** The Prometheus text exposition of every worker's metrics. */
  metrics(): Promise<string>;
}

/** Builds the app; serve it with `Deno.serve({ ... }, app.fetch)`. */
export function observabilityApp(state: ProxyState): Hono {
  const app = new Hono();
  app.get("/health", (c) => {
    const reason = state.notReady();
    return c.json({ status: "ok", version: VERSION, ready: reason === undefined, ...(reason && { reason }) });
  });
  app.get("/live", (c) => c.text("ok\n"));
  app.get("/ready", (c) => {
    const reason = state.notReady();
    return reason === undefined ? c.text("ready\n") : c.text(`not ready: ${reason}\n`, 503);
  });
  app.get("/metrics", async (c) => {
    return c.body(await state.metrics(), 200, { "content-type": Registry.PROMETHEUS_CONTENT_TYPE });
  });
  return app;
}
