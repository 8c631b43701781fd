/**
 * The agent's HTTP endpoints: liveness, readiness from the kernel's real state, and Prometheus metrics.
 *
 * @module
 */
import { Hono } from "hono";
import type { Registry } from "prom-client";
import { metricsResponse, VERSION } from "../shared/metrics.ts";

/** Whether the agent is doing its job, and if not, why. */
export type Readiness = { ready: true } | { ready: false; reason: string };

/** `/health`, `/live`, `/ready` and `/metrics`. */
export function createApp(readiness: () => Readiness, registry: Registry): Hono {
  const app = new Hono();
  const alive = () => ({ status: "ok", version: VERSION });
  app.get("/health", (c) => c.json(alive()));
  app.get("/live", (c) => c.json(alive()));
  app.get("/ready", (c) => {
    const state = readiness();
    return c.json(state, state.ready ? 200 : 503);
  });
  app.get("/metrics", () => metricsResponse(registry));
  return app;
}
