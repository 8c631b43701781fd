/**
 * What the proxy pays per accepted connection to find its SYN: one `SynMaps.lookup` through FFI into a
 * pinned LRU hash map holding a few thousand entries. Needs root (to load the maps into a private bpffs);
 * elsewhere the benchmarks are registered as ignored.
 */
import { loadCapture } from "../agent/loader.ts";
import { HOST_LITTLE_ENDIAN, SYN_MAP_V4, SYN_MAP_V6, SYN_VALUE, synKey } from "../shared/ebpf_abi.ts";
import { mapUpdate } from "../shared/libbpf.ts";
import { createLogger } from "../shared/log.ts";
import { bootTimeNs, openSynMaps, type SynMaps } from "../shared/syn_maps.ts";
import type { Peer } from "../shared/syn_record.ts";

const ENTRIES = 4096;
const isRoot = Deno.uid() === 0;

const v4Peer = (i: number): Peer => ({ address: `10.${i >> 8}.${i & 255}.7`, port: 30000 + i });
const v6Peer = (i: number): Peer => ({ address: `fd68:6670::${i.toString(16)}`, port: 30000 + i });

/** Loads the maps into a private bpffs and fills both with ENTRIES records of a 60-byte SYN. */
function setUp(): { maps: SynMaps; cleanUp(): void } {
  const dir = Deno.makeTempDirSync({ prefix: "hfp-bench-bpffs-" });
  const sh = (cmd: string, ...args: string[]) => new Deno.Command(cmd, { args }).outputSync();
  if (!sh("mount", "-t", "bpf", "bpf", dir).success) throw new Error(`cannot mount bpffs on ${dir}`);
  const capture = loadCapture({
    pinPath: `${dir}/huginn`,
    synMapMaxEntries: 2 * ENTRIES,
    filter: { dstV4: "0.0.0.0", dstV6: "::", dstPort: 0 },
    log: createLogger("bench", "error"),
  });
  const value = new Uint8Array(SYN_VALUE.size);
  const view = new DataView(value.buffer);
  view.setBigUint64(SYN_VALUE.fields.captured_ns.offset, bootTimeNs(), HOST_LITTLE_ENDIAN);
  view.setUint16(SYN_VALUE.fields.dst_port.offset, 443);
  view.setUint16(SYN_VALUE.fields.packet_len.offset, 60, HOST_LITTLE_ENDIAN);
  const v4 = capture.object.map(SYN_MAP_V4.name).fd();
  const v6 = capture.object.map(SYN_MAP_V6.name).fd();
  for (let i = 0; i < ENTRIES; i++) {
    mapUpdate(v4, synKey(v4Peer(i))!.bytes, value);
    mapUpdate(v6, synKey(v6Peer(i))!.bytes, value);
  }
  const maps = openSynMaps(`${dir}/huginn`);
  return {
    maps,
    cleanUp() {
      maps.close();
      capture.object.close();
      sh("umount", dir);
      Deno.removeSync(dir);
    },
  };
}

const env = isRoot ? setUp() : undefined;
if (env) globalThis.addEventListener("unload", () => env.cleanUp());

let i = 0;
const next = () => (i = (i + 1) % ENTRIES);
const lookup = (peer: Peer) => {
  if (!env!.maps.lookup(peer)) throw new Error(`no entry for ${peer.address}`);
};

Deno.bench({ name: "SynMaps.lookup, IPv4 hit", group: "lookup", baseline: true, ignore: !isRoot }, () => {
  lookup(v4Peer(next()));
});
Deno.bench({ name: "SynMaps.lookup, IPv4-mapped IPv6 hit", group: "lookup", ignore: !isRoot }, () => {
  const peer = v4Peer(next());
  lookup({ address: `::ffff:${peer.address}`, port: peer.port });
});
Deno.bench({ name: "SynMaps.lookup, IPv6 hit", group: "lookup", ignore: !isRoot }, () => {
  lookup(v6Peer(next()));
});
Deno.bench({ name: "SynMaps.lookup, miss", group: "lookup", ignore: !isRoot }, () => {
  if (env!.maps.lookup({ address: "198.51.100.1", port: next() + 1 })) throw new Error("unexpected entry");
});
Deno.bench({ name: "bootTimeNs", ignore: !isRoot }, () => {
  bootTimeNs();
});
