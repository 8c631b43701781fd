import assert from "node:assert/strict";
import {
  FINGERPRINT_HEADERS,
  type ForwardContext,
  forwardRequestHeaders,
  responseHeadersFromBackend,
  SPOOFING_HEADER,
} from "../proxy/headers.ts";
import { FieldBlock } from "../proxy/http1_client.ts";

const CTX: ForwardContext = {
  clientAddress: "203.0.113.7",
  clientPort: 51234,
  proto: "https",
  host: "Example.com:8443",
  fingerprints: new FieldBlock([
    ["x-tls-ja4", "t13d1516h2_8daaf6152771_d8a2da3f94cd"],
    ["x-http2-akamai", "1:65536;4:6291456|15663105|0|m,a,s,p"],
  ]),
};

/** Alternating upper and lower case, so that no header arrives in the case it is declared in. */
function mixedCase(name: string, seed: number): string {
  return [...name].map((c, i) => (i + seed) % 2 ? c.toUpperCase() : c).join("");
}

Deno.test("every client-sent fingerprint header is removed, and reported in the fixed order", () => {
  const incoming = new Headers();
  // Reverse order, each twice in different case, so that neither arrival order nor case leaks through.
  for (const name of [SPOOFING_HEADER, ...FINGERPRINT_HEADERS].reverse()) {
    incoming.append(mixedCase(name, 0), "forged-1");
    incoming.append(mixedCase(name, 1), "forged-2");
  }
  const { headers, spoofed } = forwardRequestHeaders(incoming, { ...CTX, fingerprints: undefined });
  assert.deepEqual(spoofed, [...FINGERPRINT_HEADERS, SPOOFING_HEADER]);
  assert.equal(headers.get(SPOOFING_HEADER), [...FINGERPRINT_HEADERS, SPOOFING_HEADER].join(", "));
  for (const name of FINGERPRINT_HEADERS) assert.equal(headers.get(name), null, name);
});

Deno.test("a subset is reported in the fixed order; the proxy's own values replace forged ones", () => {
  const incoming = new Headers([
    ["X-TCP-P0F", "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0"],
    ["x-tls-ja4", "forged"],
    ["X-Http2-Akamai", "forged"],
  ]);
  const { headers, spoofed } = forwardRequestHeaders(incoming, CTX);
  assert.deepEqual(spoofed, ["x-tls-ja4", "x-http2-akamai", "x-tcp-p0f"]);
  assert.equal(headers.get(SPOOFING_HEADER), "x-tls-ja4, x-http2-akamai, x-tcp-p0f");
  assert.equal(headers.get("x-tls-ja4"), "t13d1516h2_8daaf6152771_d8a2da3f94cd");
  assert.equal(headers.get("x-http2-akamai"), "1:65536;4:6291456|15663105|0|m,a,s,p");
  assert.equal(headers.get("x-tcp-p0f"), null);
});

Deno.test("the spoofing header alone is spoofing too", () => {
  const { headers, spoofed } = forwardRequestHeaders(new Headers({ [SPOOFING_HEADER]: "" }), CTX);
  assert.deepEqual(spoofed, [SPOOFING_HEADER]);
  assert.equal(headers.get(SPOOFING_HEADER), SPOOFING_HEADER);
});

Deno.test("an honest request carries no spoofing header", () => {
  const { headers, spoofed } = forwardRequestHeaders(new Headers({ accept: "*/*" }), CTX);
  assert.deepEqual(spoofed, []);
  assert.equal(headers.has(SPOOFING_HEADER), false);
});

Deno.test("naming a forged header in connection does not hide it", () => {
  const incoming = new Headers({ connection: "X-TLS-JA3", "x-tls-ja3": "forged" });
  const { headers, spoofed } = forwardRequestHeaders(incoming, CTX);
  assert.deepEqual(spoofed, ["x-tls-ja3"]);
  assert.equal(headers.get(SPOOFING_HEADER), "x-tls-ja3");
});

Deno.test("hop-by-hop headers go, with every header connection names; end-to-end ones stay", () => {
  const incoming = new Headers([
    ["Connection", "keep-alive, X-Hop-One"],
    ["connection", " x-hop-two ,, bad name"],
    ["x-hop-one", "1"],
    ["X-Hop-Two", "2"],
    ["keep-alive", "timeout=5"],
    ["proxy-connection", "keep-alive"],
    ["te", "trailers"],
    ["transfer-encoding", "chunked"],
    ["upgrade", "websocket"],
    ["proxy-authorization", "Basic cHJveHk6c2VjcmV0"],
    ["proxy-authenticate", "Basic"],
    ["accept", "text/html"],
    ["authorization", "Bearer t"],
    ["cookie", "a=1"],
    ["content-type", "application/json"],
  ]);
  const { headers } = forwardRequestHeaders(incoming, { ...CTX, fingerprints: undefined });
  assert.deepEqual([...headers.keys()], [
    "accept",
    "authorization",
    "content-type",
    "cookie",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
  ]);
});

Deno.test("x-forwarded-*: for is appended, host/port/proto describe the client's request", () => {
  const incoming = new Headers([
    ["x-forwarded-for", "198.51.100.1"],
    ["X-Forwarded-For", "198.51.100.2"],
    ["x-forwarded-host", "evil.example"],
    ["x-forwarded-port", "1"],
    ["x-forwarded-proto", "gopher"],
  ]);
  const { headers } = forwardRequestHeaders(incoming, CTX);
  assert.equal(headers.get("x-forwarded-for"), "198.51.100.1, 198.51.100.2, 203.0.113.7");
  assert.equal(headers.get("x-forwarded-host"), "Example.com:8443");
  assert.equal(headers.get("x-forwarded-port"), "51234");
  assert.equal(headers.get("x-forwarded-proto"), "https");

  const plain = forwardRequestHeaders(new Headers(), {
    ...CTX,
    proto: "http",
    clientAddress: "::ffff:192.0.2.1",
  });
  assert.equal(plain.headers.get("x-forwarded-for"), "192.0.2.1");
  assert.equal(plain.headers.get("x-forwarded-proto"), "http");
  const v6 = forwardRequestHeaders(new Headers(), { ...CTX, clientAddress: "2001:db8::1" });
  assert.equal(v6.headers.get("x-forwarded-for"), "2001:db8::1");
});

Deno.test("the client's headers object is left untouched", () => {
  const incoming = new Headers({ connection: "close", "x-tls-ja4": "forged", accept: "*/*" });
  forwardRequestHeaders(incoming, CTX);
  assert.deepEqual([...incoming], [["accept", "*/*"], ["connection", "close"], ["x-tls-ja4", "forged"]]);
});

Deno.test("response headers lose hop-by-hop headers and keep every set-cookie", () => {
  const backend: [string, string][] = [
    ["Connection", "close, X-Backend-Hop"],
    ["x-backend-hop", "1"],
    ["Connection", "x-second-hop"],
    ["X-Second-Hop", "2"],
    ["Keep-Alive", "timeout=5"],
    ["transfer-encoding", "chunked"],
    ["upgrade", "h2c"],
    ["proxy-authenticate", "Basic"],
    ["Set-Cookie", "a=1; Path=/"],
    ["set-cookie", "b=2; Path=/"],
    ["content-type", "text/plain"],
  ];
  const headers = new Headers(responseHeadersFromBackend(backend));
  assert.deepEqual([...headers.keys()], ["content-type", "set-cookie", "set-cookie"]);
  assert.deepEqual(headers.getSetCookie(), ["a=1; Path=/", "b=2; Path=/"]);
});
