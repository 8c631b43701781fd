/**
 * Cost of one p0f SYN signature through `shared/fingerprint.ts`, JS↔WASM crossing included (copying the
 * packet in, the call, reading the signature back). Target: at most 300 ns for a Linux SYN.
 */
import { p0fSignature } from "../shared/fingerprint.ts";

interface SynVector {
  source: string;
  ip_packet_hex: string;
  p0f_raw_sig: string;
}

const VECTORS_URL = new URL("../../shared/fingerprint-vectors/syn_vectors.json", import.meta.url);
const vectors: SynVector[] = JSON.parse(Deno.readTextFileSync(VECTORS_URL));

/** The first vector from `source` whose signature starts with `prefix`. */
function vector(source: string, prefix: string): Uint8Array {
  const v = vectors.find((v) => v.source === source && v.p0f_raw_sig.startsWith(prefix));
  if (!v) throw new Error(`no SYN vector ${source} ${prefix}`);
  const packet = Uint8Array.from(v.ip_packet_hex.match(/../g) ?? [], (b) => parseInt(b, 16));
  // Timing an error path by mistake would flatter the numbers.
  const result = p0fSignature(packet);
  if (!result.ok || result.value !== v.p0f_raw_sig) {
    throw new Error(`bench input fails: ${JSON.stringify(result)}`);
  }
  return packet;
}

const LINUX = vector("lo.pcap", "4:64+0:0:65495:mss*1,10:mss,sok,ts,nop,ws:df,id+:0");
const WINDOWS = vector("CVE-2018-6794.pcap", "4:128+0:0:1460:8192,8:mss,nop,ws,nop,nop,sok:df,id+:0");

Deno.bench("p0f: Linux loopback SYN (IPv4, mss/sok/ts/nop/ws)", { baseline: true }, () => {
  p0fSignature(LINUX);
});

Deno.bench("p0f: Windows SYN (IPv4, mss/nop/ws/nop/nop/sok)", () => {
  p0fSignature(WINDOWS);
});
