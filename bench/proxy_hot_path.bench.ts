/**
 * The proxy's per-request work outside the network: the forwarded request headers, the backend's response
 * headers, and the request metrics.
 */
import { forwardRequestHeaders, responseHeadersFromBackend } from "../proxy/headers.ts";
import { GoawayScanner } from "../proxy/h2_frames.ts";
import { FieldBlock } from "../proxy/http1_client.ts";
import { ProxyMetrics } from "../proxy/metrics.ts";
import { FINGERPRINT_HEADERS } from "./support/fingerprint_headers.ts";

/** What a browser sends, as `Deno.serve` hands it over. */
const incoming = new Request("https://example.com/", {
  headers: {
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-encoding": "gzip, deflate, br, zstd",
    "accept-language": "en-US,en;q=0.5",
    cookie: "session=0123456789abcdef; theme=dark",
    referer: "https://example.com/start",
  },
}).headers;

const fingerprints = FINGERPRINT_HEADERS;

const context = {
  clientAddress: "198.51.100.7",
  clientPort: 51234,
  proto: "https" as const,
  host: "example.com",
  // Built once per connection: requests share it.
  fingerprints: new FieldBlock(fingerprints),
  forwardedFor: "replace" as const,
};

Deno.bench(
  "forwardRequestHeaders (a HeaderList, as the backend client takes it)",
  { group: "request", baseline: true },
  () => {
    forwardRequestHeaders(incoming, context);
  },
);

// The difference to the one above is what fingerprinting adds to each request before serialization.
const withoutFingerprints = { ...context, fingerprints: undefined };
Deno.bench("forwardRequestHeaders, fingerprinting off", { group: "request" }, () => {
  forwardRequestHeaders(incoming, withoutFingerprints);
});

Deno.bench(
  "the same headers set on a Headers object (what the proxy did before)",
  { group: "request" },
  () => {
    const headers = new Headers();
    incoming.forEach((value, name) => headers.append(name, value));
    for (const [name, value] of fingerprints) headers.set(name, value);
  },
);

const backendHeaders: [string, string][] = [
  ["Content-Type", "application/json"],
  ["Content-Length", "1234"],
  ["Date", "Wed, 25 Nov 2026 14:00:00 GMT"],
  ["Connection", "keep-alive"],
  ["Keep-Alive", "timeout=5"],
];

Deno.bench("responseHeadersFromBackend, then the response", () => {
  new Response(null, { headers: responseHeadersFromBackend(backendHeaders) });
});

const metrics = new ProxyMetrics();
const labels = { method: "GET", status_code: "200", protocol: "HTTP/2", route: "example.com/" };

Deno.bench("request metrics (counter and histogram)", () => {
  metrics.requests.inc(labels);
  metrics.requestDuration.observe(labels, 0.0012);
});

/** HTTP/2 frames of `payload` bytes as one stream cut in `size`-byte reads, as the relay gets them. */
function serverReads(frames: number, payload: number, type: number, size = 16 * 1024): Uint8Array[] {
  const stream = new Uint8Array(frames * (9 + payload));
  for (let at = 0; at < stream.length; at += 9 + payload) {
    stream.set([payload >> 16, (payload >> 8) & 0xff, payload & 0xff, type, 0, 0, 0, 0, 1], at);
  }
  return Array.from(
    { length: Math.ceil(stream.length / size) },
    (_, i) => stream.subarray(i * size, (i + 1) * size),
  );
}

/** Feeds `reads` round and round to a scanner that has seen the server's SETTINGS, one read per call. */
function scanning(reads: Uint8Array[]): () => void {
  const scanner = new GoawayScanner(() => {});
  scanner.push(new Uint8Array([0, 0, 0, 4, 0, 0, 0, 0, 0]));
  let i = 0;
  return () => {
    scanner.push(reads[i]);
    i = (i + 1) % reads.length;
  };
}

// Per 16 KiB read of an HTTP/2 connection's server side (the GOAWAY counter in the relay).
Deno.bench(
  "GoawayScanner, a 16 KiB read of 16 KiB DATA frames",
  { group: "h2 read" },
  scanning(serverReads(64, 16384, 0)),
);
Deno.bench(
  "GoawayScanner, a 16 KiB read of 8-byte PING acks",
  { group: "h2 read" },
  scanning(serverReads(1024, 8, 6)),
);
