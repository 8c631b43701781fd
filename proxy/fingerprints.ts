/**
 * The fingerprints of one client connection, each computed once, as soon as its input is there: the TCP
 * SYN's at accept, the ClientHello's before the handshake, the HTTP/2 one from the first frames. Each
 * step counts and times itself; the headers they produce are what every request on the connection carries.
 *
 * @module
 */
import { fingerprintClientHello, type TlsFingerprint } from "../shared/fingerprint.ts";
import type { Peer } from "../shared/syn_record.ts";
import type { ConnectionContext } from "./connections.ts";
import type { AkamaiCapture } from "./h2_capture.ts";
import type { ProxyMetrics } from "./metrics.ts";
import { synSignature, type SynSource } from "./tcp_syn.ts";

/** The fingerprint headers of a ClientHello, in the order the proxy sends them. */
function tlsHeaders(fp: TlsFingerprint): Array<[string, string]> {
  return [
    ["x-tls-ja4", fp.ja4],
    ["x-tls-ja4-r", fp.ja4_r],
    ["x-tls-ja4-o", fp.ja4_o],
    ["x-tls-ja4-or", fp.ja4_or],
    ["x-tls-ja4-s1", fp.ja4_s1],
    ["x-tls-ja4-s1r", fp.ja4_s1r],
    ["x-tls-ja3", fp.ja3],
    ["x-tls-ja3-hash", fp.ja3_hash],
  ];
}

/**
 * The p0f signature of the SYN that opened the connection from `peer` to `synPort`, when the agent's
 * record is there and no older than `maxAgeMs`.
 */
export function tcpFingerprint(
  syn: SynSource,
  peer: Peer,
  synPort: number,
  maxAgeMs: number,
  metrics: ProxyMetrics,
): string | undefined {
  const start = performance.now();
  const outcome = synSignature(syn, peer, synPort, maxAgeMs);
  metrics.tcpSynFingerprints.inc({ reason: outcome.reason });
  if (outcome.signature !== undefined) {
    metrics.fingerprintDuration.observe({ kind: "tcp" }, (performance.now() - start) / 1000);
  }
  return outcome.signature;
}

/** The JA4 family and JA3 headers of a complete ClientHello; none when it is not a valid one. */
export function tlsFingerprint(hello: Uint8Array, metrics: ProxyMetrics): Array<[string, string]> {
  const start = performance.now();
  const fp = fingerprintClientHello(hello);
  if (!fp.ok) {
    // Complete but not a valid hello: the TLS engine will refuse it too; count what it was.
    metrics.badClientInput.inc({ kind: "malformed_client_hello" });
    return [];
  }
  metrics.fingerprintDuration.observe({ kind: "tls" }, (performance.now() - start) / 1000);
  metrics.tlsFingerprints.inc();
  return tlsHeaders(fp.value);
}

/**
 * Feeds a client chunk to the connection's HTTP/2 capture; once the first request's frames are in, adds
 * `x-http2-akamai` to the connection's fingerprints.
 */
export function captureAkamai(
  capture: AkamaiCapture,
  chunk: Uint8Array,
  ctx: Pick<ConnectionContext, "fingerprints" | "protocol">,
  metrics: ProxyMetrics,
): void {
  const start = performance.now();
  const outcome = capture.push(chunk);
  if (!outcome.done) return;
  if (outcome.value !== undefined) {
    metrics.fingerprintDuration.observe({ kind: "http2" }, (performance.now() - start) / 1000);
    metrics.http2Fingerprints.inc();
    ctx.fingerprints.push(["x-http2-akamai", outcome.value]);
  } else if (
    ctx.protocol === "HTTP/2" && (outcome.error === "malformed" || outcome.error === "truncated")
  ) {
    // The internal server refuses such a connection too; this makes it visible.
    metrics.badClientInput.inc({ kind: "bad_h2_preface" });
  }
}
