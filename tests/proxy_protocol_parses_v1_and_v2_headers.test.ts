/**
 * The PROXY protocol parser reads v1 and v2 headers (IPv4, IPv6, LOCAL/UNKNOWN) byte-exactly, asks for
 * more bytes on every prefix, tells a direct client by its first bytes, and refuses malformed headers
 * with a typed problem instead of throwing.
 */
import assert from "node:assert/strict";
import { parseProxyHeader, type ProxyParse } from "../proxy/proxy_protocol.ts";

const enc = new TextEncoder();
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** A v2 header: version/command byte, family byte, then the address block (and TLVs). */
function v2(verCmd: number, family: number, body: number[]): Uint8Array {
  return new Uint8Array([...SIG, verCmd, family, body.length >> 8, body.length & 0xff, ...body]);
}

const V4_BODY = [192, 0, 2, 1, 198, 51, 100, 7, 0xc3, 0x50, 0x01, 0xbb]; // 192.0.2.1:50000 → 198.51.100.7:443
const V6_SRC = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
const V6_DST = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02];
const V6_BODY = [...V6_SRC, ...V6_DST, 0x04, 0xd2, 0x20, 0xfb]; // :1234 → :8443

function header(parse: ProxyParse) {
  assert.equal(parse.kind, "header", JSON.stringify(parse));
  return (parse as Extract<ProxyParse, { kind: "header" }>).header;
}

Deno.test("v1 TCP4, TCP6 and UNKNOWN lines give the client, its destination and the length", () => {
  const tcp4 = enc.encode("PROXY TCP4 192.0.2.1 198.51.100.7 50000 443\r\nGET / HTTP/1.1\r\n");
  assert.deepEqual(header(parseProxyHeader(tcp4)), {
    version: 1,
    length: 45,
    source: { address: "192.0.2.1", port: 50000 },
    destination: { address: "198.51.100.7", port: 443 },
  });
  const tcp6 = enc.encode("PROXY TCP6 2001:DB8:0:0::1 2001:db8::2 1234 8443\r\n\x16\x03\x01");
  assert.deepEqual(header(parseProxyHeader(tcp6)), {
    version: 1,
    length: tcp6.length - 3,
    source: { address: "2001:db8::1", port: 1234 },
    destination: { address: "2001:db8::2", port: 8443 },
  });
  assert.deepEqual(header(parseProxyHeader(enc.encode("PROXY UNKNOWN\r\n"))), { version: 1, length: 15 });
  assert.deepEqual(
    header(parseProxyHeader(enc.encode("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"))),
    { version: 1, length: 35 },
  );
});

Deno.test("v2 PROXY over TCP4 and TCP6, and LOCAL, with TLVs skipped", () => {
  const tlv = [0x04, 0x00, 0x02, 0xaa, 0xbb];
  const four = v2(0x21, 0x11, [...V4_BODY, ...tlv]);
  assert.deepEqual(header(parseProxyHeader(new Uint8Array([...four, 0x16, 0x03]))), {
    version: 2,
    length: 16 + 12 + 5,
    source: { address: "192.0.2.1", port: 50000 },
    destination: { address: "198.51.100.7", port: 443 },
  });
  assert.deepEqual(header(parseProxyHeader(v2(0x21, 0x21, V6_BODY))), {
    version: 2,
    length: 16 + 36,
    source: { address: "2001:db8::1", port: 1234 },
    destination: { address: "2001:db8::2", port: 8443 },
  });
  assert.deepEqual(header(parseProxyHeader(v2(0x20, 0x00, []))), { version: 2, length: 16 });
  assert.deepEqual(header(parseProxyHeader(v2(0x21, 0x00, []))), { version: 2, length: 16 });
});

Deno.test("every proper prefix of a header is incomplete; other first bytes are no header at all", () => {
  const headers = [
    enc.encode("PROXY TCP4 192.0.2.1 198.51.100.7 50000 443\r\n"),
    v2(0x21, 0x11, V4_BODY),
    v2(0x21, 0x21, V6_BODY),
  ];
  for (const h of headers) {
    for (let n = 0; n < h.length; n++) {
      assert.deepEqual(parseProxyHeader(h.subarray(0, n)), { kind: "incomplete" }, `${n} of ${h.length}`);
    }
  }
  for (
    const direct of ["GET / HTTP/1.1\r\n", "PRI * HTTP/2.0", "\x16\x03\x01\x02\x00", "PROX\x00", "\r\n\r\nx"]
  ) {
    assert.deepEqual(parseProxyHeader(enc.encode(direct)), { kind: "none" }, JSON.stringify(direct));
  }
});

Deno.test("malformed headers are refused with the problem named", () => {
  const cases: Array<[Uint8Array, string]> = [
    [enc.encode("PROXY TCP4 192.0.2.1 198.51.100.7 50000 443\n"), "bad_v1_line"],
    [enc.encode("PROXY TCP5 192.0.2.1 198.51.100.7 1 2\r\n"), "bad_v1_line"],
    [enc.encode("PROXY TCP4  192.0.2.1 198.51.100.7 1 2\r\n"), "bad_v1_line"],
    [enc.encode("PROXY TCP4 192.0.2.256 198.51.100.7 1 2\r\n"), "bad_v1_address"],
    [enc.encode("PROXY TCP4 2001:db8::1 198.51.100.7 1 2\r\n"), "bad_v1_address"],
    [enc.encode("PROXY TCP6 192.0.2.1 2001:db8::1 1 2\r\n"), "bad_v1_address"],
    [enc.encode("PROXY TCP4 192.0.2.1 198.51.100.7 65536 2\r\n"), "bad_v1_address"],
    [enc.encode("PROXY TCP4 192.0.2.1 198.51.100.7 01 2\r\n"), "bad_v1_address"],
    [enc.encode(`PROXY TCP4 ${"1".repeat(120)}`), "oversized_v1_line"],
    [v2(0x11, 0x11, V4_BODY), "bad_v2_version"],
    [v2(0x22, 0x11, V4_BODY), "bad_v2_command"],
    [v2(0x21, 0x12, V4_BODY), "bad_v2_family"],
    [v2(0x21, 0x11, V4_BODY.slice(0, 11)), "bad_v2_length"],
    [v2(0x21, 0x21, V4_BODY), "bad_v2_length"],
    [new Uint8Array([...SIG, 0x21, 0x11, 0xff, 0xff]), "oversized_v2_header"],
  ];
  for (const [bytes, problem] of cases) {
    assert.deepEqual(parseProxyHeader(bytes), { kind: "invalid", problem }, problem);
  }
});

Deno.test("random bytes after a signature never throw", () => {
  let x = 12345;
  const next = () => (x = (x * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let i = 0; i < 2000; i++) {
    const tail = Array.from({ length: next() % 64 }, next);
    for (const prefix of [SIG, [...enc.encode("PROXY ")]]) {
      const r = parseProxyHeader(new Uint8Array([...prefix, ...tail]));
      assert.ok(["incomplete", "header", "invalid"].includes(r.kind));
    }
  }
});
