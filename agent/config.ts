/**
 * The agent's configuration, from `HUGINN_EBPF_*` environment variables. The schema is exported so
 * that deployment manifests can be checked against the same rules the agent applies at start.
 *
 * @module
 */
import { z } from "zod";
import { LOG_LEVELS } from "../shared/log.ts";
import { parseIPv4, parseIPv6 } from "../shared/ebpf_abi.ts";

/** How the program is attached: native XDP (driver), generic XDP (kernel), or tc clsact ingress. */
export const CAPTURE_MODES = ["xdp-native", "xdp-skb", "tc"] as const;
export type CaptureMode = typeof CAPTURE_MODES[number];

/** Bounds of the SYN map capacity: below, a burst evicts SYNs before the proxy reads them. */
const MIN_SYN_MAP_ENTRIES = 128;
/** Above, each of the two maps would take hundreds of megabytes of kernel memory. */
const MAX_SYN_MAP_ENTRIES = 1_048_576;
/** A budget this high limits nothing a SYN map could hold anyway. */
const MAX_RATE_LIMIT_SYNS = 1_000_000;
/** One hour: longer windows would let a source's first burst speak for it far too long. */
const MAX_RATE_LIMIT_WINDOW_MS = 3_600_000;

const integer = (min: number, max: number) =>
  z.string().regex(/^\d{1,10}$/).transform(Number).pipe(z.number().min(min).max(max));

/** Each variable's rule and the words used to tell a user what it expects. */
const VARIABLES = {
  HUGINN_EBPF_INTERFACE: {
    schema: z.string().regex(/^[A-Za-z0-9_.:@-]{1,15}$/),
    expected: "the name of the network interface to capture on (1-15 characters, e.g. eth0)",
  },
  HUGINN_EBPF_DST_IP_V4: {
    schema: z.string().refine((s) => parseIPv4(s) !== undefined).default("0.0.0.0"),
    expected: "an IPv4 address the SYNs are sent to (0.0.0.0 = any)",
  },
  HUGINN_EBPF_DST_IP_V6: {
    schema: z.string().refine((s) => !s.includes("%") && parseIPv6(s) !== undefined).default("::"),
    expected: "an IPv6 address the SYNs are sent to (:: = any)",
  },
  HUGINN_EBPF_DST_PORT: {
    schema: integer(0, 65535),
    expected: "the TCP port the SYNs are sent to, an integer from 0 to 65535 (0 = any)",
  },
  HUGINN_EBPF_PIN_PATH: {
    schema: z.string().regex(/^\/[^\0]*[^/]$/).default("/sys/fs/bpf/huginn"),
    expected: "an absolute directory path on a bpffs mount, without a trailing slash",
  },
  HUGINN_EBPF_METRICS_ADDR: {
    schema: z.string().refine((s) => parseIPv4(s) !== undefined || parseIPv6(s) !== undefined)
      .default("0.0.0.0"),
    expected: "an IPv4 or IPv6 address to serve metrics and probes on",
  },
  HUGINN_EBPF_METRICS_PORT: {
    schema: integer(1, 65535).default(9091),
    expected: "a TCP port from 1 to 65535",
  },
  HUGINN_EBPF_CAPTURE: {
    schema: z.enum(CAPTURE_MODES).default("xdp-native"),
    expected: `one of ${CAPTURE_MODES.join(", ")}`,
  },
  HUGINN_EBPF_SYN_MAP_MAX_ENTRIES: {
    schema: integer(MIN_SYN_MAP_ENTRIES, MAX_SYN_MAP_ENTRIES).default(8192),
    expected: `an integer from ${MIN_SYN_MAP_ENTRIES} to ${MAX_SYN_MAP_ENTRIES}`,
  },
  HUGINN_EBPF_RATE_LIMIT_SYNS: {
    schema: integer(0, MAX_RATE_LIMIT_SYNS).default(0),
    expected:
      `an integer from 0 to ${MAX_RATE_LIMIT_SYNS}, SYNs recorded per source address and window (0 = no limit)`,
  },
  HUGINN_EBPF_RATE_LIMIT_WINDOW_MS: {
    schema: integer(1, MAX_RATE_LIMIT_WINDOW_MS).default(1000),
    expected: `an integer from 1 to ${MAX_RATE_LIMIT_WINDOW_MS}, the budget window in milliseconds`,
  },
  HUGINN_EBPF_PIN_LINK: {
    schema: z.enum(["true", "false"]).default("false").transform((s) => s === "true"),
    expected: "true or false; true only with HUGINN_EBPF_CAPTURE=xdp-native or xdp-skb (a tc attachment " +
      "can be pinned only as a tcx link, which needs Linux 6.6 and libbpf 1.3; this agent uses libbpf 1.1)",
  },
  HUGINN_EBPF_LOG_LEVEL: {
    schema: z.enum(LOG_LEVELS).default("info"),
    expected: `one of ${LOG_LEVELS.join(", ")}`,
  },
} as const;

type Variables = typeof VARIABLES;

/** The environment variables' schema: parse `Deno.env.toObject()` (or a manifest's env) with it. */
export const agentEnvSchema = z.object(
  Object.fromEntries(Object.entries(VARIABLES).map(([k, v]) => [k, v.schema])) as {
    [K in keyof Variables]: Variables[K]["schema"];
  },
).refine((e) => !(e.HUGINN_EBPF_PIN_LINK && e.HUGINN_EBPF_CAPTURE === "tc"), {
  path: ["HUGINN_EBPF_PIN_LINK"],
});

/** The validated configuration. */
export interface AgentConfig {
  interface: string;
  dstV4: string;
  dstV6: string;
  dstPort: number;
  pinPath: string;
  metricsAddr: string;
  metricsPort: number;
  capture: CaptureMode;
  synMapMaxEntries: number;
  rateLimitSyns: number;
  rateLimitWindowMs: number;
  pinLink: boolean;
  logLevel: typeof LOG_LEVELS[number];
}

/** The configuration, or one line naming the first bad variable, its value and what it expects. */
export function parseAgentEnv(
  env: Record<string, string | undefined>,
): { ok: true; config: AgentConfig } | { ok: false; message: string } {
  const result = agentEnvSchema.safeParse(env);
  if (!result.success) {
    const name = String(result.error.issues[0].path[0]) as keyof Variables;
    const value = env[name];
    const what = value === undefined ? `${name} is not set` : `${name}=${JSON.stringify(value)} is invalid`;
    return { ok: false, message: `${what}: expected ${VARIABLES[name].expected}` };
  }
  const e = result.data;
  return {
    ok: true,
    config: {
      interface: e.HUGINN_EBPF_INTERFACE,
      dstV4: e.HUGINN_EBPF_DST_IP_V4,
      dstV6: e.HUGINN_EBPF_DST_IP_V6,
      dstPort: e.HUGINN_EBPF_DST_PORT,
      pinPath: e.HUGINN_EBPF_PIN_PATH,
      metricsAddr: e.HUGINN_EBPF_METRICS_ADDR,
      metricsPort: e.HUGINN_EBPF_METRICS_PORT,
      capture: e.HUGINN_EBPF_CAPTURE,
      synMapMaxEntries: e.HUGINN_EBPF_SYN_MAP_MAX_ENTRIES,
      rateLimitSyns: e.HUGINN_EBPF_RATE_LIMIT_SYNS,
      rateLimitWindowMs: e.HUGINN_EBPF_RATE_LIMIT_WINDOW_MS,
      pinLink: e.HUGINN_EBPF_PIN_LINK,
      logLevel: e.HUGINN_EBPF_LOG_LEVEL,
    },
  };
}
