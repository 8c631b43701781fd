/**
 * What fingerprinting adds to one new HTTP/2 TLS connection, all of it, as the listener does it: the SYN
 * lookup and p0f signature, the JA4 family and JA3 of the ClientHello, the Akamai fingerprint of the first
 * frames, the metrics each step records, and the serialized field block every request then copies
 * (`fingerprintFields`). With fingerprinting off none of this runs, so the total is the on/off difference
 * per connection. The client is a repeat one: the wasm's hash memo hits, as for most real connections;
 * `tls_fingerprint.bench.ts` has the ClientHello part for clients seen once.
 *
 * Needs root for the SYN maps (a private bpffs); elsewhere the SYN cases are registered as ignored.
 *
 * Run: deno bench -A bench/connection_fingerprints.bench.ts
 */
import { createLogger } from "../shared/log.ts";
import type { Peer } from "../shared/syn_record.ts";
import { type ConnectionContext, fingerprintFields } from "../proxy/connections.ts";
import { captureAkamai, tcpFingerprint, tlsFingerprint } from "../proxy/fingerprints.ts";
import { AkamaiCapture } from "../proxy/h2_capture.ts";
import { ProxyMetrics } from "../proxy/metrics.ts";
import { openSynSource, type SynSource } from "../proxy/tcp_syn.ts";
import { filledSynMaps, type SynMapsFixture } from "./support/syn_maps.ts";

const VECTORS = new URL("../../shared/fingerprint-vectors/", import.meta.url);
const fromHex = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
const vectors = (name: string) => JSON.parse(Deno.readTextFileSync(new URL(name, VECTORS)));

const CHROME_HELLO = fromHex(
  vectors("ja4_vectors.json").find((v: { source: string }) => v.source.includes("chrome-cloudflare"))
    .client_hello_record_hex,
);
const H2_PREAMBLE = fromHex(
  vectors("h2_vectors.json").find((v: { client: string }) => v.client.endsWith("h2 over TLS"))
    .client_to_server_hex,
);
const LINUX_SYN = fromHex(
  vectors("syn_vectors.json").find((v: { p0f_raw_sig: string }) => v.p0f_raw_sig.startsWith("4:64+0:0:65495"))
    .ip_packet_hex,
);

const PORT = 443;
const MAX_AGE_MS = 60_000;
const PEERS = 4096;
const peer = (i: number): Peer => ({ address: `10.${i >> 8}.${i & 255}.7`, port: 30000 + i });
let i = 0;
const nextPeer = () => peer(i = (i + 1) % PEERS);

const isRoot = Deno.uid() === 0;
let fixture: SynMapsFixture | undefined;
let syn: SynSource | undefined;
if (isRoot) {
  fixture = filledSynMaps(Array.from({ length: PEERS }, (_, i) => peer(i)), LINUX_SYN, PORT);
  syn = await openSynSource(fixture.pinPath, createLogger("bench", "error"));
  globalThis.addEventListener("unload", () => {
    syn!.close();
    fixture!.cleanUp();
  });
}
const metrics = new ProxyMetrics();

// Timing a failure by mistake would flatter the numbers.
if (tlsFingerprint(CHROME_HELLO, metrics).length !== 8) throw new Error("the hello does not fingerprint");
if (syn && tcpFingerprint(syn, peer(1), PORT, MAX_AGE_MS, metrics) === undefined) {
  throw new Error("no SYN record");
}

/** Everything one new connection costs with every fingerprint on; undefined without the SYN maps. */
function connection(): ConnectionContext["fingerprints"] {
  const ctx: Pick<ConnectionContext, "fingerprints" | "protocol" | "fingerprintFields"> = {
    fingerprints: [],
    protocol: "HTTP/2",
  };
  const p0f = syn && tcpFingerprint(syn, nextPeer(), PORT, MAX_AGE_MS, metrics);
  if (p0f !== undefined) ctx.fingerprints.push(["x-tcp-p0f", p0f]);
  ctx.fingerprints.push(...tlsFingerprint(CHROME_HELLO, metrics));
  captureAkamai(new AkamaiCapture(65536), H2_PREAMBLE, ctx, metrics);
  fingerprintFields(ctx);
  if (ctx.fingerprints.length !== (syn ? 10 : 9)) throw new Error("a fingerprint is missing");
  return ctx.fingerprints;
}

Deno.bench({ name: "every fingerprint of a new h2 TLS connection", group: "total", baseline: true }, () => {
  connection();
});

Deno.bench({ name: "TCP: SYN lookup + p0f + metrics", group: "parts", ignore: !isRoot }, () => {
  tcpFingerprint(syn!, nextPeer(), PORT, MAX_AGE_MS, metrics);
});
Deno.bench({ name: "TLS: JA4 family + JA3 + metrics", group: "parts" }, () => {
  tlsFingerprint(CHROME_HELLO, metrics);
});
Deno.bench({ name: "HTTP/2: Akamai capture + metrics", group: "parts" }, () => {
  captureAkamai(new AkamaiCapture(65536), H2_PREAMBLE, { fingerprints: [], protocol: "HTTP/2" }, metrics);
});
const fields = connection();
Deno.bench({ name: "field block for the requests", group: "parts" }, () => {
  fingerprintFields({ fingerprints: fields });
});
