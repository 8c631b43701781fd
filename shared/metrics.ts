/**
 * Prometheus helpers shared by the agent and the proxy: one registry per process, build info, and the
 * text exposition response. Metric families themselves are defined next to the code that updates them.
 *
 * @module
 */
import { collectDefaultMetrics, Gauge, Registry } from "prom-client";

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

/** The `process_*` families prom-client reads from `/proc/self`. */
const PROC_FAMILIES = [
  "process_resident_memory_bytes",
  "process_virtual_memory_bytes",
  "process_heap_bytes",
  "process_open_fds",
  "process_max_fds",
];

function procReadable(): boolean {
  try {
    Deno.readTextFileSync("/proc/self/status");
    return true;
  } catch {
    return false;
  }
}

/**
 * Registers prom-client's `process_*` families on `registry`: CPU seconds, resident and virtual memory,
 * open and maximum file descriptors, start time. They describe the whole process, so the proxy registers
 * them once, on its main thread, not in each worker (whose snapshots are summed). The `nodejs_*` families
 * are dropped: they describe only the isolate that registers them, here the idle main thread.
 */
export function registerProcessMetrics(registry: Registry): void {
  // The event-loop monitor it starts wakes every 10 ms by default; its family is dropped anyway.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000 });
  for (const metric of registry.getMetricsAsArray()) {
    if (metric.name.startsWith("nodejs_")) registry.removeSingleMetric(metric.name);
  }
  if (procReadable()) return;
  // Deno lets only --allow-all read /proc/self (the plain-mode image runs without it), and prom-client
  // would then report zeros. Resident memory is the one figure Deno gives without it.
  for (const name of PROC_FAMILIES) registry.removeSingleMetric(name);
  new Gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    registers: [registry],
    collect() {
      this.set(Deno.memoryUsage().rss);
    },
  });
}

/** Renders `registry` in the Prometheus text format as an HTTP response. */
export async function metricsResponse(registry: Registry): Promise<Response> {
  return new Response(await registry.metrics(), {
    headers: { "content-type": registry.contentType },
  });
}
