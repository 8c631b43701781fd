/**
 * The p0f signature of every shared SYN vector equals the `raw_sig` p0f 3.09b printed for it, except
 * where the spec (5.6) implements the documented meaning of a quirk instead of p0f's defect; hand-built
 * SYNs cover that defect for `opt+`, captures that stop after the TCP header, and every error kind.
 */
import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { p0fSignature } from "../shared/fingerprint.ts";

interface SynVector {
  source: string;
  ip_packet_hex: string;
  p0f_raw_sig: string;
}

const VECTORS_URL = new URL("../../shared/fingerprint-vectors/syn_vectors.json", import.meta.url);
const vectors: SynVector[] = JSON.parse(Deno.readTextFileSync(VECTORS_URL));

/** Spec 5.5: quirks print in this order. */
const QUIRK_ORDER = [
  "df",
  "id+",
  "id-",
  "ecn",
  "0+",
  "flow",
  "seq-",
  "ack+",
  "ack-",
  "uptr+",
  "urgf+",
  "pushf+",
  "ts1-",
  "ts2+",
  "opt+",
  "exws",
  "bad",
];

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.replaceAll(" ", "").match(/../g) ?? [], (b) => parseInt(b, 16));
}

/** `signature` with `quirk` added at its place in the fixed order. */
function withQuirk(signature: string, quirk: string): string {
  const fields = signature.split(":");
  const quirks = fields[6] === "" ? [] : fields[6].split(",");
  quirks.push(quirk);
  quirks.sort((a, b) => QUIRK_ORDER.indexOf(a) - QUIRK_ORDER.indexOf(b));
  fields[6] = quirks.join(",");
  return fields.join(":");
}

/** The TCP acknowledgment field of an IP packet. */
function ackField(packet: Uint8Array): number {
  const tcp = packet[0] >> 4 === 4 ? (packet[0] & 0x0f) * 4 : 40;
  return new DataView(packet.buffer, packet.byteOffset).getUint32(tcp + 8);
}

/**
 * The project's expected value: p0f 3.09b's, plus `ack+` where p0f misses it (ACK clear, ack ≠ 0).
 * All vectors are pure SYNs, so ACK and RST are clear.
 */
function expected(v: SynVector, packet: Uint8Array): string {
  return ackField(packet) !== 0 && !v.p0f_raw_sig.split(":")[6].split(",").includes("ack+")
    ? withQuirk(v.p0f_raw_sig, "ack+")
    : v.p0f_raw_sig;
}

Deno.test("the SYN vector file holds 101 entries, 3 of them with p0f's documented ack+ defect", () => {
  strictEqual(vectors.length, 101);
  const deviations = vectors.filter((v) => expected(v, fromHex(v.ip_packet_hex)) !== v.p0f_raw_sig);
  deepStrictEqual(deviations.map((v) => ackField(fromHex(v.ip_packet_hex))), [1, 0x02000000, 2]);
  deepStrictEqual(deviations.map((v) => expected(v, fromHex(v.ip_packet_hex))), [
    "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+,ack+:0",
    "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+,ack+:0",
    "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+,ack+:0",
  ]);
});

for (const [i, v] of vectors.entries()) {
  Deno.test(`vector ${i} (${v.source}): ${v.p0f_raw_sig}`, () => {
    const packet = fromHex(v.ip_packet_hex);
    deepStrictEqual(p0fSignature(packet), { ok: true, value: expected(v, packet) });
  });
}

/** An IPv4 SYN from 10.0.0.1 with TTL 64, DF, IP ID 1, window 64240 and the given TCP options. */
function ipv4Syn(options: string, payload = 0): Uint8Array {
  const opts = fromHex(options);
  const packet = new Uint8Array(40 + opts.length);
  packet.set(
    fromHex("45000000 00014000 40060000 0a000001 0a000002 9c4201bb 00003039 00000000 5002faf0 00000000"),
  );
  packet.set(opts, 40);
  const v = new DataView(packet.buffer);
  v.setUint16(2, packet.length + payload);
  packet[32] = ((20 + opts.length) / 4) << 4;
  return packet;
}

/** An IPv6 SYN with hop limit 64, window 64800 and the given TCP options. */
function ipv6Syn(options: string, payload = 0): Uint8Array {
  const opts = fromHex(options);
  const packet = new Uint8Array(60 + opts.length);
  packet.set(fromHex("60000000 00000640" + "fd00".padEnd(32, "0") + "fd00".padEnd(30, "0") + "01"));
  packet.set(fromHex("9c4201bb 00003039 00000000 5002fd20 00000000"), 40);
  packet.set(opts, 60);
  new DataView(packet.buffer).setUint16(4, 20 + opts.length + payload);
  packet[52] = ((20 + opts.length) / 4) << 4;
  return packet;
}

const OPTIONS = "020405b4 01030307 0402 080a 000003e8 00000000 00000000";
const SIGNATURE = "4:64+0:0:1460:mss*44,7:mss,nop,ws,sok,ts,eol+3:df,id+:0";

Deno.test("hand-built SYNs give the expected signatures", () => {
  deepStrictEqual(p0fSignature(ipv4Syn(OPTIONS)), { ok: true, value: SIGNATURE });
  deepStrictEqual(p0fSignature(ipv6Syn("020405a0 01030307")), {
    ok: true,
    value: "6:64+0:0:1440:mss*45,7:mss,nop,ws::0",
  });
});

Deno.test("opt+ is raised when the only non-zero byte after EOL is the last one (p0f 3.09b misses it)", () => {
  deepStrictEqual(p0fSignature(ipv4Syn("020405b4 00000001")), {
    ok: true,
    value: "4:64+0:0:1460:mss*44,0:mss,eol+3:df,id+,opt+:0",
  });
  // The same bytes without the trailing one: no quirk.
  deepStrictEqual(p0fSignature(ipv4Syn("020405b4 00000000")), {
    ok: true,
    value: "4:64+0:0:1460:mss*44,0:mss,eol+3:df,id+:0",
  });
});

Deno.test("a capture that stops after the TCP header takes the payload class from the IP length", () => {
  // The agent's capture of a SYN that carries data (TCP Fast Open): headers only, lengths claim more.
  deepStrictEqual(p0fSignature(ipv4Syn(OPTIONS, 100)), { ok: true, value: SIGNATURE.replace(/0$/, "+") });
  deepStrictEqual(p0fSignature(ipv6Syn("020405a0 01030307", 1)), {
    ok: true,
    value: "6:64+0:0:1440:mss*45,7:mss,nop,ws::+",
  });
  // Ethernet padding after a short SYN is beyond the IP length and is not payload.
  const padded = new Uint8Array(60);
  padded.set(ipv4Syn(""));
  deepStrictEqual(p0fSignature(padded), { ok: true, value: "4:64+0:0:0:64240,0::df,id+:0" });
});

Deno.test("each kind of bad input gives its typed error", () => {
  const syn = ipv4Syn(OPTIONS);
  const v6 = ipv6Syn("020405a0 01030307");
  const edit = (packet: Uint8Array, at: number, value: number) => {
    const copy = packet.slice();
    copy[at] = value;
    return copy;
  };
  const cases: [string, Uint8Array, string][] = [
    ["empty", new Uint8Array(), "truncated"],
    ["IP version 5", edit(syn, 0, 0x55), "not_protocol"],
    ["IPv4 UDP", edit(syn, 9, 17), "not_protocol"],
    ["IPv6 UDP", edit(v6, 6, 17), "not_protocol"],
    ["IPv4 header cut", syn.subarray(0, 19), "truncated"],
    ["IPv6 header cut", v6.subarray(0, 39), "truncated"],
    ["TCP header cut", syn.subarray(0, 39), "truncated"],
    ["TCP options cut", syn.subarray(0, syn.length - 1), "truncated"],
    ["IP total length shorter than the headers", edit(syn, 3, syn.length - 4), "truncated"],
    ["IPv6 payload length shorter than the TCP header", edit(v6, 5, 20), "truncated"],
    ["IHL 4", edit(syn, 0, 0x44), "malformed"],
    ["data offset 4", edit(syn, 32, 0x40), "malformed"],
    ["IPv4 fragment (MF)", edit(syn, 6, 0x60), "unsupported"],
    ["IPv4 fragment (offset)", edit(syn, 7, 0x01), "unsupported"],
    ["IPv6 hop-by-hop header first", edit(v6, 6, 0), "unsupported"],
    ["IPv6 fragment header first", edit(v6, 6, 44), "unsupported"],
    ["SYN+ACK", edit(syn, 33, 0x12), "unsupported"],
    ["SYN+RST", edit(syn, 33, 0x06), "unsupported"],
    ["SYN+FIN", edit(syn, 33, 0x03), "unsupported"],
    ["bare ACK", edit(syn, 33, 0x10), "unsupported"],
  ];
  for (const [name, packet, error] of cases) {
    deepStrictEqual(p0fSignature(packet), { ok: false, error }, name);
  }
});
