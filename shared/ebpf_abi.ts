/**
 * The binary interface between `bpf/capture.bpf.c` and user space, defined once: map and program names,
 * pin file names, key/value/filter layouts, counter indexes, and the pure functions that encode keys and
 * filters and decode captured values. `tests/ebpf_abi_matches_btf.test.ts` checks the compiled object's
 * BTF against every number here.
 *
 * Byte order: fields copied from the packet (addresses, ports) keep network byte order; numbers the
 * program computes (capture time, copied length, budgets, counters) or is given (the budget settings)
 * are in host byte order.
 *
 * @module
 */
import type { Peer, SynRecord } from "./syn_record.ts";

/** A field of a C struct: byte offset and size. */
export interface Field {
  offset: number;
  size: number;
}

/** A C struct as BTF describes it: name, total size, and its members. */
export interface Layout {
  name: string;
  size: number;
  fields: Record<string, Field>;
}

/** The key of the IPv4 SYN map: source address and source port as the node saw them. */
export const SYN_KEY_V4: Layout = {
  name: "syn_key_v4",
  size: 8,
  fields: { addr: { offset: 0, size: 4 }, port: { offset: 4, size: 2 }, pad: { offset: 6, size: 2 } },
};

/** The key of the IPv6 SYN map. */
export const SYN_KEY_V6: Layout = {
  name: "syn_key_v6",
  size: 20,
  fields: { addr: { offset: 0, size: 16 }, port: { offset: 16, size: 2 }, pad: { offset: 18, size: 2 } },
};

/** Largest copied header bytes: a 60-byte IPv4 header plus a 60-byte TCP header. */
export const SYN_PACKET_MAX = 120;

/** The value of both SYN maps. */
export const SYN_VALUE: Layout = {
  name: "syn_value",
  size: 136,
  fields: {
    captured_ns: { offset: 0, size: 8 },
    dst_port: { offset: 8, size: 2 },
    packet_len: { offset: 10, size: 2 },
    packet: { offset: 12, size: SYN_PACKET_MAX },
    pad: { offset: 132, size: 4 },
  },
};

/**
 * Which SYNs are recorded, the program's only read-only global: the destination (all zero = any) and
 * the per-source budget (`budget_syns` 0 = none).
 */
export const CAPTURE_FILTER: Layout = {
  name: "capture_filter",
  size: 32,
  fields: {
    dst_v6: { offset: 0, size: 16 },
    dst_v4: { offset: 16, size: 4 },
    dst_port: { offset: 20, size: 2 },
    pad: { offset: 22, size: 2 },
    budget_syns: { offset: 24, size: 4 },
    budget_window_ms: { offset: 28, size: 4 },
  },
};

/** The key of the budget map: the source address, IPv4 as `::ffff:a.b.c.d`, network order. */
export const SYN_BUDGET_KEY: Layout = {
  name: "syn_budget_key",
  size: 16,
  fields: { addr: { offset: 0, size: 16 } },
};

/** A source's budget: when its current window began, and how many SYNs passed in it (host order). */
export const SYN_BUDGET_VALUE: Layout = {
  name: "syn_budget_value",
  size: 16,
  fields: { window_start_ns: { offset: 0, size: 8 }, syns: { offset: 8, size: 8 } },
};

/** The global variable holding the filter, and the internal map libbpf creates for `.rodata`. */
export const FILTER_VARIABLE = "filter";
export const RODATA_MAP = ".rodata";

/** `enum bpf_map_type` values used by the object. */
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_MAP_TYPE_LRU_HASH = 9;

/** Counter indexes in the per-CPU array: a family's base plus the kind of event. */
export const COUNTER_KINDS = ["captured", "malformed", "insert_failed", "rate_limited"] as const;
export type CounterKind = typeof COUNTER_KINDS[number];
export const FAMILIES = ["ipv4", "ipv6"] as const;
export type Family = typeof FAMILIES[number];
export const COUNTER_COUNT = FAMILIES.length * COUNTER_KINDS.length;

/** Index of a counter in `syn_counters`. */
export function counterIndex(family: Family, kind: CounterKind): number {
  return FAMILIES.indexOf(family) * COUNTER_KINDS.length + COUNTER_KINDS.indexOf(kind);
}

/** A map of the object: its name (also its pin file name), type, sizes and default capacity. */
export interface MapSpec {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

/** The default capacity compiled into the object; the agent overrides it before load. */
export const SYN_MAP_DEFAULT_ENTRIES = 8192;

export const SYN_MAP_V4: MapSpec = {
  name: "syn_v4",
  type: BPF_MAP_TYPE_LRU_HASH,
  keySize: SYN_KEY_V4.size,
  valueSize: SYN_VALUE.size,
  maxEntries: SYN_MAP_DEFAULT_ENTRIES,
};

export const SYN_MAP_V6: MapSpec = {
  name: "syn_v6",
  type: BPF_MAP_TYPE_LRU_HASH,
  keySize: SYN_KEY_V6.size,
  valueSize: SYN_VALUE.size,
  maxEntries: SYN_MAP_DEFAULT_ENTRIES,
};

/**
 * Per-source SYN budgets. The capacity is fixed, not tied to the SYN maps': a source pushed out only
 * starts a fresh budget, and a flooding source, touched by each of its SYNs, stays in (docs/ebpf.md).
 */
export const BUDGET_MAP: MapSpec = {
  name: "syn_budget",
  type: BPF_MAP_TYPE_LRU_HASH,
  keySize: SYN_BUDGET_KEY.size,
  valueSize: SYN_BUDGET_VALUE.size,
  maxEntries: 8192,
};

/** Per-CPU `u64` counters, `u32` index. */
export const COUNTERS_MAP: MapSpec = {
  name: "syn_counters",
  type: BPF_MAP_TYPE_PERCPU_ARRAY,
  keySize: 4,
  valueSize: 8,
  maxEntries: COUNTER_COUNT,
};

/** Every map the agent pins, in pin order. */
export const PINNED_MAPS: readonly MapSpec[] = [SYN_MAP_V4, SYN_MAP_V6, BUDGET_MAP, COUNTERS_MAP];

/** The pin file of the XDP link, next to the maps, when the agent runs with `HUGINN_EBPF_PIN_LINK`. */
export const LINK_PIN = "link";

/** Program names (the C function names) per attach point. */
export const PROGRAM_XDP = "capture_xdp";
export const PROGRAM_TC = "capture_tc";

/** Whether this machine stores numbers little-endian, for the host-order fields. */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The 4 bytes of a dotted-quad IPv4 address (parts of 1 to 3 digits, at most 255), or undefined. */
export function parseIPv4(text: string): Uint8Array | undefined {
  const bytes = new Uint8Array(4);
  return writeIPv4(text, bytes, 0) ? bytes : undefined;
}

/**
 * Writes the 4 bytes of the dotted quad `text` at `out[at]`; false (with `out` partly written) when
 * `text` is not one. One pass over the char codes into the caller's buffer: the proxy parses every peer
 * address for its SYN key, and splitting, a regex per part and a fresh array cost ~0.6 us of the
 * per-connection fingerprint budget.
 */
function writeIPv4(text: string, out: Uint8Array, at: number): boolean {
  let part = 0;
  let digits = 0;
  let n = 0;
  for (let i = 0; i <= text.length; i++) {
    // A "." after the end closes the last part.
    const c = i < text.length ? text.charCodeAt(i) : 0x2e;
    if (c >= 0x30 && c <= 0x39) {
      if (++digits > 3) return false;
      n = n * 10 + c - 0x30;
    } else if (c === 0x2e && digits > 0 && n <= 255 && part < 4) {
      out[at + part++] = n;
      n = digits = 0;
    } else {
      return false;
    }
  }
  return part === 4;
}

/** Parses colon-separated hex groups; a dotted quad is allowed as the last group when `lastMayBeV4`. */
function hexGroups(text: string, lastMayBeV4: boolean): number[] | undefined {
  if (text === "") return [];
  const groups: number[] = [];
  const parts = text.split(":");
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (lastMayBeV4 && i === parts.length - 1 && part.includes(".")) {
      const v4 = parseIPv4(part);
      if (!v4) return undefined;
      groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
      groups.push(parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  return groups;
}

/**
 * The 16 bytes of an IPv6 address in text form (compressed, with an embedded IPv4 tail, or with a
 * `%zone` suffix, which is ignored), or undefined when `text` is not one.
 */
export function parseIPv6(text: string): Uint8Array | undefined {
  const zone = text.indexOf("%");
  const halves = (zone >= 0 ? text.slice(0, zone) : text).split("::");
  if (halves.length > 2) return undefined;
  const head = hexGroups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? hexGroups(halves[1], true) : [];
  if (!head || !tail) return undefined;
  const zeros = 8 - head.length - tail.length;
  if (halves.length === 2 ? zeros < 1 : zeros !== 0) return undefined;
  const bytes = new Uint8Array(16);
  [...head, ...new Array(halves.length === 2 ? zeros : 0).fill(0), ...tail].forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), else undefined. */
function mappedIPv4(v6: Uint8Array): Uint8Array | undefined {
  for (let i = 0; i < 10; i++) if (v6[i] !== 0) return undefined;
  return v6[10] === 0xff && v6[11] === 0xff ? v6.slice(12) : undefined;
}

/** A SYN map key: which map it belongs to, and its bytes. */
export interface SynKey {
  family: Family;
  bytes: Uint8Array;
}

/**
 * Writes the key for `peer` into `v4` (8 bytes) or `v6` (20 bytes) and says which one, or returns
 * undefined when the address is not an IP address or the port is out of range. An IPv4-mapped IPv6
 * address gives the IPv4 key, because the SYN on the wire was IPv4. Callers pass reusable, zeroed
 * buffers (the pad bytes are never written) so that a lookup allocates nothing but the parse.
 */
export function writeSynKey(peer: Peer, v4: Uint8Array, v6: Uint8Array): Family | undefined {
  if (!Number.isInteger(peer.port) || peer.port < 0 || peer.port > 0xffff) return undefined;
  const v4Addr = SYN_KEY_V4.fields.addr.offset;
  const v4Port = SYN_KEY_V4.fields.port.offset;
  // The common forms, IPv4 and IPv4-mapped on a dual-stack listener, are parsed straight into the key.
  const ok = writeIPv4(peer.address, v4, v4Addr) ||
    (/^::ffff:/i.test(peer.address) && writeIPv4(peer.address.slice(7), v4, v4Addr));
  if (!ok) {
    const addr6 = parseIPv6(peer.address);
    if (!addr6) return undefined;
    const mapped = mappedIPv4(addr6);
    if (!mapped) {
      v6.set(addr6, SYN_KEY_V6.fields.addr.offset);
      v6[SYN_KEY_V6.fields.port.offset] = peer.port >> 8;
      v6[SYN_KEY_V6.fields.port.offset + 1] = peer.port & 0xff;
      return "ipv6";
    }
    v4.set(mapped, v4Addr);
  }
  // Network byte order, as the program copies it from the TCP header.
  v4[v4Port] = peer.port >> 8;
  v4[v4Port + 1] = peer.port & 0xff;
  return "ipv4";
}

/** The key for `peer` in a fresh buffer, or undefined (see `writeSynKey`). */
export function synKey(peer: Peer): SynKey | undefined {
  const v4 = new Uint8Array(SYN_KEY_V4.size);
  const v6 = new Uint8Array(SYN_KEY_V6.size);
  const family = writeSynKey(peer, v4, v6);
  return family && { family, bytes: family === "ipv4" ? v4 : v6 };
}

/** Decodes a `syn_value`; `packet` is a copy, so the caller may reuse `value`. */
export function decodeSynValue(value: Uint8Array): SynRecord {
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const f = SYN_VALUE.fields;
  const len = Math.min(view.getUint16(f.packet_len.offset, HOST_LITTLE_ENDIAN), SYN_PACKET_MAX);
  return {
    capturedNs: view.getBigUint64(f.captured_ns.offset, HOST_LITTLE_ENDIAN),
    dstPort: view.getUint16(f.dst_port.offset),
    packet: value.slice(f.packet.offset, f.packet.offset + len),
  };
}

/**
 * Which SYNs the program records: destination addresses and port (`0.0.0.0`, `::` and 0 mean any), and
 * at most `budget.syns` per source address and window of `budget.windowMs` (no budget when absent or 0).
 */
export interface CaptureFilter {
  dstV4: string;
  dstV6: string;
  dstPort: number;
  budget?: { syns: number; windowMs: number };
}

const isU32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;

/** The `.rodata` bytes for `filter`; throws a RangeError naming the bad field. */
export function encodeFilter(filter: CaptureFilter): Uint8Array {
  const bytes = new Uint8Array(CAPTURE_FILTER.size);
  const view = new DataView(bytes.buffer);
  const f = CAPTURE_FILTER.fields;
  const v4 = parseIPv4(filter.dstV4);
  if (!v4) throw new RangeError(`dstV4: not an IPv4 address: ${filter.dstV4}`);
  const v6 = parseIPv6(filter.dstV6);
  if (!v6) throw new RangeError(`dstV6: not an IPv6 address: ${filter.dstV6}`);
  if (!Number.isInteger(filter.dstPort) || filter.dstPort < 0 || filter.dstPort > 0xffff) {
    throw new RangeError(`dstPort: not a port: ${filter.dstPort}`);
  }
  const { syns, windowMs } = filter.budget ?? { syns: 0, windowMs: 0 };
  if (!isU32(syns)) throw new RangeError(`budget.syns: not a u32: ${syns}`);
  if (!isU32(windowMs) || (syns > 0 && windowMs === 0)) {
    throw new RangeError(`budget.windowMs: not a positive u32: ${windowMs}`);
  }
  bytes.set(v6, f.dst_v6.offset);
  bytes.set(v4, f.dst_v4.offset);
  view.setUint16(f.dst_port.offset, filter.dstPort);
  view.setUint32(f.budget_syns.offset, syns, HOST_LITTLE_ENDIAN);
  view.setUint32(f.budget_window_ms.offset, windowMs, HOST_LITTLE_ENDIAN);
  return bytes;
}
