/**
 * Prometheus helpers shared by the agent and the proxy: one registry per process, build info, and the
 * text exposition response. Metric families themselves are defined next to the code that updates them.
 *
 * @module
 */
import { Gauge, Registry } from "prom-client";

/** The version reported in build info and `/health`. */
export const VERSION = "0.1.0";

/**
 * A fresh registry carrying `<prefix>_build_info{version,deno,v8}` = 1, so dashboards can tell which
 * build is running on each node.
 */
export function createRegistry(prefix: string): Registry {
  const registry = new Registry();
  const info = new Gauge({
    name: `${prefix}_build_info`,
    help: "Build information; the value is always 1.",
    labelNames: ["version", "deno", "v8"] as const,
    registers: [registry],
    // Workers each report 1; merged across workers it must stay 1, not become the worker count.
    aggregator: "first",
  });
  info.set({ version: VERSION, deno: Deno.version.deno, v8: Deno.version.v8 }, 1);
  return registry;
}

/** Renders `registry` in the Prometheus text format as an HTTP response. */
export async function metricsResponse(registry: Registry): Promise<Response> {
  return new Response(await registry.metrics(), {
    headers: { "content-type": registry.contentType },
  });
}
