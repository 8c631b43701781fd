/**
 * The kernel program's parser, fed hand-built Ethernet frames through a packet socket on the veth: it
 * stores exactly the IP and TCP headers of SYNs behind zero, one or two VLAN tags (802.1Q, 802.1ad),
 * and skips what it must (SYN+ACK, IPv4 fragments, IPv6 extension headers, a third VLAN tag in the
 * frame), counting a cut-off TCP header as malformed. Frames are sent with their tags in the data, as a switch trunk
 * delivers them, so the parser (not the kernel's VLAN offload) has to walk them.
 */
import assert from "node:assert/strict";
import { parseIPv4, parseIPv6 } from "../shared/ebpf_abi.ts";
import { openSynMaps } from "../shared/syn_maps.ts";
import { get, isRoot, mountBpffs, sample, startAgent } from "./support/agent.ts";
import { createNetns, sh } from "./support/netns.ts";

const SYN = 0x02;
const ACK = 0x10;
const DONT_FRAGMENT = 0x4000;
const MORE_FRAGMENTS = 0x2000;
const DST_PORT = 8443;
/** MSS 1460, NOP, NOP, SACK permitted, NOP, window scale 7: 12 bytes. */
const OPTIONS = [2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7];

/** A TCP header with OPTIONS; checksums stay zero, since nothing checks them before the hook. */
function tcp(sport: number, flags: number): Uint8Array {
  const b = new Uint8Array(20 + OPTIONS.length);
  const v = new DataView(b.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, DST_PORT);
  v.setUint32(4, 0x12345678);
  b[12] = (b.length / 4) << 4;
  b[13] = flags;
  v.setUint16(14, 64240);
  b.set(OPTIONS, 20);
  return b;
}

function ipv4(src: string, dst: string, bodyLength: number, fragment = DONT_FRAGMENT): Uint8Array {
  const b = new Uint8Array(20);
  const v = new DataView(b.buffer);
  b[0] = 0x45;
  v.setUint16(2, 20 + bodyLength);
  v.setUint16(4, 0xabcd);
  v.setUint16(6, fragment);
  b[8] = 64;
  b[9] = 6;
  b.set(parseIPv4(src)!, 12);
  b.set(parseIPv4(dst)!, 16);
  return b;
}

function ipv6(src: string, dst: string, bodyLength: number, nextHeader = 6): Uint8Array {
  const b = new Uint8Array(40);
  const v = new DataView(b.buffer);
  b[0] = 0x60;
  v.setUint16(4, bodyLength);
  b[6] = nextHeader;
  b[7] = 64;
  b.set(parseIPv6(src)!, 8);
  b.set(parseIPv6(dst)!, 24);
  return b;
}

const concat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));

/** An Ethernet frame carrying `packet`, behind VLAN tags with the TPIDs `tags` (outermost first). */
function frame(dstMac: number[], etherType: number, packet: Uint8Array, tags: number[] = []): Uint8Array {
  const header = new Uint8Array(14 + 4 * tags.length);
  const v = new DataView(header.buffer);
  header.set(dstMac, 0);
  header.set([0x02, 0x68, 0x66, 0x70, 0, 1], 6);
  tags.forEach((tpid, i) => {
    v.setUint16(12 + 4 * i, tpid);
    v.setUint16(14 + 4 * i, 10 + i);
  });
  v.setUint16(12 + 4 * tags.length, etherType);
  return concat(header, packet);
}

/** Sends raw frames out of the interface argv[1] (python3: Deno has no AF_PACKET sockets). */
const SEND =
  "import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind((sys.argv[1],0))\n" +
  "for h in sys.argv[2:]: s.send(bytes.fromhex(h))";
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

for (const mode of ["xdp-native", "xdp-skb", "tc"]) {
  Deno.test({
    name: `agent in ${mode} mode stores the headers of tagged and untagged SYNs and skips the rest`,
    ignore: !isRoot,
    async fn() {
      await using ns = await createNetns("hfpfrm");
      await using bpffs = await mountBpffs();
      const pinPath = `${bpffs.dir}/huginn`;
      await using agent = startAgent({
        HUGINN_EBPF_INTERFACE: ns.hostIf,
        HUGINN_EBPF_DST_PORT: String(DST_PORT),
        HUGINN_EBPF_CAPTURE: mode,
        HUGINN_EBPF_PIN_PATH: pinPath,
      });
      await agent.ready();
      const [link] = JSON.parse(await sh(["ip", "-j", "link", "show", "dev", ns.hostIf]));
      const mac = (link.address as string).split(":").map((x) => parseInt(x, 16));
      const v4 = (sport: number, { flags = SYN, fragment = DONT_FRAGMENT, payload = 0 } = {}) => {
        const header = tcp(sport, flags);
        const headers = concat(ipv4(ns.nsV4, ns.hostV4, header.length + payload, fragment), header);
        return { headers, packet: concat(headers, new Uint8Array(payload)) };
      };
      const v6 = (sport: number, hopByHop = false) => {
        const header = tcp(sport, SYN);
        // Hop-by-hop options: next header TCP, length 0 (8 bytes), one PadN option.
        const extension = hopByHop ? new Uint8Array([6, 0, 1, 4, 0, 0, 0, 0]) : new Uint8Array();
        const ip = ipv6(ns.nsV6, ns.hostV6, extension.length + header.length, hopByHop ? 0 : 6);
        return concat(ip, extension, header);
      };
      const IPV4 = 0x0800, IPV6 = 0x86dd, CTAG = 0x8100, STAG = 0x88a8;

      // What is sent, and the bytes the map must then hold for that source port (undefined: nothing).
      const cases: { sport: number; family: "ipv4" | "ipv6"; frame: Uint8Array; stored?: Uint8Array }[] = [
        {
          sport: 40001,
          family: "ipv4",
          frame: frame(mac, IPV4, v4(40001).packet),
          stored: v4(40001).headers,
        },
        {
          sport: 40002,
          family: "ipv4",
          frame: frame(mac, IPV4, v4(40002).packet, [CTAG]),
          stored: v4(40002).headers,
        },
        {
          sport: 40003,
          family: "ipv4",
          frame: frame(mac, IPV4, v4(40003).packet, [STAG, CTAG]),
          stored: v4(40003).headers,
        },
        { sport: 40004, family: "ipv6", frame: frame(mac, IPV6, v6(40004), [CTAG]), stored: v6(40004) },
        // A SYN carrying data (TCP Fast Open): only the headers are stored.
        {
          sport: 40005,
          family: "ipv4",
          frame: frame(mac, IPV4, v4(40005, { payload: 16 }).packet),
          stored: v4(40005, { payload: 16 }).headers,
        },
        { sport: 40006, family: "ipv4", frame: frame(mac, IPV4, v4(40006, { flags: SYN | ACK }).packet) },
        {
          sport: 40007,
          family: "ipv4",
          frame: frame(mac, IPV4, v4(40007, { fragment: MORE_FRAGMENTS }).packet),
        },
        { sport: 40008, family: "ipv6", frame: frame(mac, IPV6, v6(40008, true)) },
        // Three tags: too deep for XDP. Before tc, the kernel has already moved the outer tag into the
        // socket buffer's metadata, so tc sees two and captures the SYN.
        {
          sport: 40009,
          family: "ipv4",
          frame: frame(mac, IPV4, v4(40009).packet, [STAG, CTAG, CTAG]),
          stored: mode === "tc" ? v4(40009).headers : undefined,
        },
        // The frame ends 10 bytes into the TCP header: malformed.
        { sport: 40010, family: "ipv4", frame: frame(mac, IPV4, v4(40010).packet.subarray(0, 30)) },
      ];
      await ns.run(["python3", "-c", SEND, ns.nsIf, ...cases.map((c) => hex(c.frame))]);

      const maps = openSynMaps(pinPath);
      try {
        for (const { sport, family, stored } of cases) {
          const record = maps.lookup({ address: family === "ipv4" ? ns.nsV4 : ns.nsV6, port: sport });
          assert.deepEqual(record?.packet, stored, `source port ${sport}`);
          if (record) assert.equal(record.dstPort, DST_PORT);
        }
      } finally {
        maps.close();
      }
      const metrics = (await get(`${agent.url}/metrics`)).body;
      const count = (name: string, family: string) =>
        sample(metrics, `huginn_ebpf_syn_${name}_total`, `family="${family}"`);
      assert.equal(count("captured", "ipv4"), mode === "tc" ? 5 : 4, metrics);
      assert.equal(count("captured", "ipv6"), 1, metrics);
      assert.equal(count("malformed", "ipv4"), 1, metrics);
      assert.equal(count("malformed", "ipv6"), 0, metrics);
    },
  });
}
