/**
 * What the proxy pays per accepted connection to find its SYN: one `SynMaps.lookup` through FFI into a
 * pinned LRU hash map holding a few thousand entries. Needs root (to load the maps into a private bpffs);
 * elsewhere the benchmarks are registered as ignored.
 */
import { bootTimeNs, openSynMaps, type SynMaps } from "../shared/syn_maps.ts";
import type { Peer } from "../shared/syn_record.ts";
import { filledSynMaps } from "./support/syn_maps.ts";

const ENTRIES = 4096;
const isRoot = Deno.uid() === 0;

const v4Peer = (i: number): Peer => ({ address: `10.${i >> 8}.${i & 255}.7`, port: 30000 + i });
const v6Peer = (i: number): Peer => ({ address: `fd68:6670::${i.toString(16)}`, port: 30000 + i });

/** Both maps filled with ENTRIES records of a 60-byte SYN, open as the proxy opens them. */
function setUp(): { maps: SynMaps; cleanUp(): void } {
  const peers = Array.from({ length: ENTRIES }, (_, i) => [v4Peer(i), v6Peer(i)]).flat();
  const fixture = filledSynMaps(peers, new Uint8Array(60), 443);
  const maps = openSynMaps(fixture.pinPath);
  return {
    maps,
    cleanUp() {
      maps.close();
      fixture.cleanUp();
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
