/**
 * Checks the process's effective capabilities before touching the kernel, so that a missing one is
 * named instead of surfacing as a bare EPERM from a later call.
 *
 * @module
 */
import { AgentError } from "./errors.ts";

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

/** The effective capability set from the text of /proc/<pid>/status. */
function effectiveCapabilities(status: string): bigint {
  const hex = status.match(/^CapEff:\s*([0-9a-f]+)$/m)?.[1];
  return hex === undefined ? 0n : BigInt(`0x${hex}`);
}

/**
 * The capabilities missing to load and attach the program: CAP_NET_ADMIN, plus CAP_BPF and CAP_PERFMON
 * (kernel 5.8 or later) or CAP_SYS_ADMIN, which implies both.
 */
function missingCapabilities(effective: bigint): string[] {
  const has = (cap: number) => (effective >> BigInt(cap) & 1n) === 1n;
  const missing: string[] = [];
  if (!has(CAP_NET_ADMIN)) missing.push("CAP_NET_ADMIN");
  if (!has(CAP_SYS_ADMIN)) {
    if (!has(CAP_BPF)) missing.push("CAP_BPF");
    if (!has(CAP_PERFMON)) missing.push("CAP_PERFMON");
  }
  return missing;
}

/** Reads /proc/self/status, which Deno grants only to --allow-all, like every path the agent needs. */
function procStatus(): string {
  try {
    return Deno.readTextFileSync("/proc/self/status");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotCapable)) throw e;
    throw new AgentError(
      "the agent must run with --allow-all (deno run -A agent/main.ts): Deno opens /proc and /sys, " +
        "where the agent finds its capabilities, mounts, interfaces and pins, only to --allow-all " +
        "(and FFI, which it needs, lifts the sandbox anyway)",
      { cause: e },
    );
  }
}

/** Throws an AgentError naming the capabilities this process lacks. */
export function assertCapabilities(): void {
  const missing = missingCapabilities(effectiveCapabilities(procStatus()));
  if (missing.length === 0) return;
  throw new AgentError(
    `missing capabilities ${missing.join(", ")}: run the agent as root, or grant CAP_BPF, CAP_PERFMON ` +
      "and CAP_NET_ADMIN (CAP_SYS_ADMIN instead of the first two on kernels before 5.8)",
  );
}
