/**
 * The agent's SYN maps made with bpftool, in the layout of `shared/ebpf_abi.ts`, and filled with known
 * SYN records: lets proxy tests exercise TCP fingerprinting (hits, stale and foreign records, map
 * replacement, PROXY-protocol clients) without running the agent.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { HOST_LITTLE_ENDIAN, SYN_MAP_V4, SYN_MAP_V6, SYN_VALUE, synKey } from "../../shared/ebpf_abi.ts";
import { bootTimeNs } from "../../shared/syn_maps.ts";
import type { Peer } from "../../shared/syn_record.ts";
import { sh } from "./netns.ts";

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0"));

/** Creates both SYN maps, pinned under `pinPath` as the agent names them. */
export async function createSynMaps(pinPath: string): Promise<void> {
  for (const spec of [SYN_MAP_V4, SYN_MAP_V6]) {
    await sh([
      "bpftool",
      "map",
      "create",
      `${pinPath}/${spec.name}`,
      "type",
      "lru_hash",
      "key",
      String(spec.keySize),
      "value",
      String(spec.valueSize),
      "entries",
      String(spec.maxEntries),
      "name",
      spec.name,
    ]);
  }
}

/** Unpins both SYN maps (the kernel frees them once nothing holds them). */
export async function removeSynMaps(pinPath: string): Promise<void> {
  for (const spec of [SYN_MAP_V4, SYN_MAP_V6]) await Deno.remove(`${pinPath}/${spec.name}`).catch(() => {});
}

/**
 * Writes the SYN `packetHex` from `peer` to `dstPort` the way the agent's program does, captured
 * `ageMs` ago.
 */
export async function putSyn(pinPath: string, peer: Peer, dstPort: number, packetHex: string, ageMs = 0) {
  const value = new Uint8Array(SYN_VALUE.size);
  const view = new DataView(value.buffer);
  const f = SYN_VALUE.fields;
  const packet = Buffer.from(packetHex, "hex");
  view.setBigUint64(f.captured_ns.offset, bootTimeNs() - BigInt(ageMs) * 1_000_000n, HOST_LITTLE_ENDIAN);
  view.setUint16(f.dst_port.offset, dstPort);
  view.setUint16(f.packet_len.offset, packet.length, HOST_LITTLE_ENDIAN);
  value.set(packet, f.packet.offset);
  const key = synKey(peer)!;
  const map = key.family === "ipv4" ? SYN_MAP_V4 : SYN_MAP_V6;
  await sh([
    "bpftool",
    "map",
    "update",
    "pinned",
    `${pinPath}/${map.name}`,
    "key",
    "hex",
    ...hex(key.bytes),
    "value",
    "hex",
    ...hex(value),
  ]);
}
