/**
 * The whole boundary between the proxy core and eBPF: a captured SYN, and a function that finds the one
 * for a peer. The proxy core imports only these types; `shared/syn_maps.ts` implements the lookup over
 * the agent's pinned maps.
 *
 * @module
 */

/** A TCP SYN as the agent captured it. */
export interface SynRecord {
  /** Capture time, nanoseconds on CLOCK_BOOTTIME (the kernel's `bpf_ktime_get_boot_ns`). */
  capturedNs: bigint;
  /** Destination port of the SYN, so that a record for another service on the node can be ignored. */
  dstPort: number;
  /** The raw IP header and TCP header (options included), as `p0fSignature` takes them. */
  packet: Uint8Array;
}

/** A client's address and source port as the proxy accepted them. */
export interface Peer {
  /** IPv4 dotted quad or IPv6 text (an IPv4-mapped IPv6 address is looked up as IPv4). */
  address: string;
  port: number;
}

/** Finds the SYN that opened the connection from `peer`, or `undefined` when there is none. */
export type SynLookup = (peer: Peer) => SynRecord | undefined;
