/**
 * TCP SYN fingerprints from the eBPF agent's pinned maps. This is the only proxy module that reaches
 * eBPF, and it loads `shared/syn_maps.ts` (libbpf over FFI) lazily, so that a proxy without
 * `tcp_enabled` never loads it.
 *
 * The agent may start after the proxy, restart, or re-create its maps: the source keeps trying to open
 * the pins every second, and reopens them when their map IDs change. Traffic never waits for it.
 *
 * @module
 */
import { p0fSignature } from "../shared/fingerprint.ts";
import type { Logger } from "../shared/log.ts";
import type { Peer, SynLookup } from "../shared/syn_record.ts";
import type { TCP_SYN_REASONS } from "./metrics.ts";

/** The agent's maps as the proxy sees them. */
export interface SynSource {
  /** Finds the SYN of a peer; `undefined` also while the maps are not open. */
  lookup: SynLookup;
  /** Whether the maps are open (`/ready` waits for this). */
  ready(): boolean;
  /** Now on CLOCK_BOOTTIME, the clock of `SynRecord.capturedNs`. */
  nowNs(): bigint;
  close(): void;
}

const RETRY_MS = 1000;

/** Opens the maps pinned under `pinPath`, retrying in the background while they are missing. */
export async function openSynSource(pinPath: string, log: Logger): Promise<SynSource> {
  const { openSynMaps, bootTimeNs } = await import("../shared/syn_maps.ts");
  type Maps = ReturnType<typeof openSynMaps>;
  let maps: Maps | undefined;
  let lastError = "";

  const refresh = () => {
    let fresh: Maps;
    try {
      fresh = openSynMaps(pinPath);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      if (maps !== undefined || error !== lastError) {
        log.warn("SYN maps unavailable", { pin_path: pinPath, error });
      }
      lastError = error;
      maps?.close();
      maps = undefined;
      return;
    }
    lastError = "";
    const [a, b] = [maps?.ids(), fresh.ids()];
    if (a !== undefined && a.v4 === b.v4 && a.v6 === b.v6) return fresh.close();
    maps?.close();
    maps = fresh;
    log.info("SYN maps opened", { pin_path: pinPath, v4_map_id: b.v4, v6_map_id: b.v6 });
  };

  refresh();
  const timer = setInterval(refresh, RETRY_MS);
  return {
    lookup: (peer) => maps?.lookup(peer),
    ready: () => maps !== undefined,
    nowNs: bootTimeNs,
    close() {
      clearInterval(timer);
      maps?.close();
      maps = undefined;
    },
  };
}

/** A SYN lookup's outcome: the `reason` label of `huginn_tcp_syn_fingerprints_total`, and the signature. */
export interface SynOutcome {
  reason: typeof TCP_SYN_REASONS[number];
  signature?: string;
}

/**
 * The p0f signature of the SYN that opened the connection from `peer` to `listenerPort`. A record for
 * another port (another service on the node, or a reused source port) is a miss; one older than
 * `maxAgeMs` is stale (the peer's port was reused since).
 */
export function synSignature(
  source: SynSource,
  peer: Peer,
  listenerPort: number,
  maxAgeMs: number,
): SynOutcome {
  const record = source.lookup(peer);
  if (record === undefined || record.dstPort !== listenerPort) return { reason: "miss" };
  if (source.nowNs() - record.capturedNs > BigInt(maxAgeMs) * 1_000_000n) return { reason: "stale" };
  const sig = p0fSignature(record.packet);
  return sig.ok ? { reason: "hit", signature: sig.value } : { reason: "malformed" };
}
