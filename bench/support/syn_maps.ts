/**
 * The agent's real SYN maps for benchmarks: its capture object loaded into a private bpffs (so root is
 * needed), both maps filled with records as the program writes them.
 *
 * @module
 */
import { loadCapture } from "../../agent/loader.ts";
import { HOST_LITTLE_ENDIAN, SYN_MAP_V4, SYN_MAP_V6, SYN_VALUE, synKey } from "../../shared/ebpf_abi.ts";
import { mapUpdate } from "../../shared/libbpf.ts";
import { createLogger } from "../../shared/log.ts";
import { bootTimeNs } from "../../shared/syn_maps.ts";
import type { Peer } from "../../shared/syn_record.ts";

/** Pinned, filled SYN maps, and how to remove them. */
export interface SynMapsFixture {
  /** The pin directory, as `HUGINN_EBPF_PIN_PATH` names it. */
  pinPath: string;
  cleanUp(): void;
}

/**
 * Pins the agent's maps in a fresh bpffs and writes, for each of `peers`, a record of `packet` (an IP
 * packet from its first byte) sent to `dstPort`, captured now.
 */
export function filledSynMaps(peers: Peer[], packet: Uint8Array, dstPort: number): SynMapsFixture {
  const dir = Deno.makeTempDirSync({ prefix: "hfp-bench-bpffs-" });
  const sh = (cmd: string, ...args: string[]) => new Deno.Command(cmd, { args }).outputSync();
  if (!sh("mount", "-t", "bpf", "bpf", dir).success) throw new Error(`cannot mount bpffs on ${dir}`);
  const capture = loadCapture({
    pinPath: `${dir}/huginn`,
    synMapMaxEntries: 2 * peers.length,
    filter: { dstV4: "0.0.0.0", dstV6: "::", dstPort: 0 },
    log: createLogger("bench", "error"),
  });
  const value = new Uint8Array(SYN_VALUE.size);
  const view = new DataView(value.buffer);
  const f = SYN_VALUE.fields;
  view.setBigUint64(f.captured_ns.offset, bootTimeNs(), HOST_LITTLE_ENDIAN);
  view.setUint16(f.dst_port.offset, dstPort);
  view.setUint16(f.packet_len.offset, packet.length, HOST_LITTLE_ENDIAN);
  value.set(packet, f.packet.offset);
  for (const peer of peers) {
    const key = synKey(peer)!;
    const map = key.family === "ipv4" ? SYN_MAP_V4 : SYN_MAP_V6;
    mapUpdate(capture.object.map(map.name).fd(), key.bytes, value);
  }
  return {
    pinPath: `${dir}/huginn`,
    cleanUp() {
      capture.object.close();
      sh("umount", dir);
      Deno.removeSync(dir);
    },
  };
}
