/**
 * The agent's Prometheus metrics. The kernel program counts in a per-CPU array; the counters here are
 * read from it at scrape time (summed over CPUs), so they survive agent restarts along with the pins.
 *
 * @module
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { COUNTER_KINDS, counterIndex, type CounterKind, FAMILIES, type Family } from "../shared/ebpf_abi.ts";
import { mapLookup, possibleCpus } from "../shared/libbpf.ts";
import { createRegistry, registerProcessMetrics } from "../shared/metrics.ts";

/** Counter values per family and kind. */
export type CounterValues = Record<Family, Record<CounterKind, number>>;

/** Sums every counter of the per-CPU map `fd` over the possible CPUs. */
export function readCounters(fd: number): CounterValues {
  const cpus = possibleCpus();
  // Per-CPU values are laid out one 8-byte slot per possible CPU.
  const values = new BigUint64Array(cpus);
  const bytes = new Uint8Array(values.buffer);
  const key = new Uint32Array(1);
  const read = (family: Family, kind: CounterKind) => {
    key[0] = counterIndex(family, kind);
    if (!mapLookup(fd, new Uint8Array(key.buffer), bytes)) return 0;
    return Number(values.reduce((sum, v) => sum + v, 0n));
  };
  const one = (family: Family) =>
    Object.fromEntries(COUNTER_KINDS.map((kind) => [kind, read(family, kind)])) as Record<
      CounterKind,
      number
    >;
  return { ipv4: one("ipv4"), ipv6: one("ipv6") };
}

/** What the metrics read when scraped. */
export interface MetricsSource {
  /** Current counters, or undefined before the maps exist. */
  counters(): CounterValues | undefined;
  /** Whether the agent is ready (pins present and program attached). */
  ready(): boolean;
}

const HELP: Record<CounterKind, [string, string]> = {
  captured: ["huginn_ebpf_syn_captured_total", "TCP SYNs copied into the SYN maps."],
  malformed: ["huginn_ebpf_syn_malformed_total", "IP or TCP headers too short or cut off, so not captured."],
  insert_failed: ["huginn_ebpf_syn_insert_failures_total", "SYNs the kernel failed to store in the SYN map."],
  rate_limited: [
    "huginn_ebpf_syn_rate_limited_total",
    "SYNs not recorded because their source address had used up its budget (HUGINN_EBPF_RATE_LIMIT_SYNS).",
  ],
};

/** A registry with build info, the `process_*` families, `huginn_ebpf_up` and the per-family SYN counters. */
export function createAgentRegistry(source: MetricsSource): Registry {
  const registry = createRegistry("huginn_ebpf");
  registerProcessMetrics(registry);
  new Gauge({
    name: "huginn_ebpf_up",
    help: "1 when the capture program is attached and its maps are pinned, else 0.",
    registers: [registry],
    collect() {
      this.set(source.ready() ? 1 : 0);
    },
  });
  for (const kind of COUNTER_KINDS) {
    const [name, help] = HELP[kind];
    new Counter({
      name,
      help,
      labelNames: ["family"] as const,
      registers: [registry],
      collect() {
        const counters = source.counters();
        // The kernel owns the totals: replace, never accumulate.
        this.reset();
        for (const family of FAMILIES) this.inc({ family }, counters?.[family][kind] ?? 0);
      },
    });
  }
  return registry;
}
