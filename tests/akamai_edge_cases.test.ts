/**
 * Every frame-selection, framing and HPACK rule of the Akamai fingerprint (spec section 4), on hand-built
 * client byte streams run through the real wasm.
 */
import { deepStrictEqual } from "node:assert/strict";
import { akamai } from "../shared/fingerprint.ts";

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const DATA = 0x0, HEADERS = 0x1, PRIORITY = 0x2, SETTINGS = 0x4, PING = 0x6, WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;
const ACK = 0x1, END_STREAM = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY_FLAG = 0x20;

type Bytes = Uint8Array | number[];

function concat(...parts: Bytes[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function frame(type: number, flags: number, stream: number, ...payload: Bytes[]): Uint8Array {
  const body = concat(...payload);
  const n = body.length;
  return concat([n >>> 16, (n >>> 8) & 0xff, n & 0xff, type, flags], u32(stream), body);
}

function settings(...params: [number, number][]): Uint8Array {
  return frame(SETTINGS, 0, 0, ...params.map(([id, value]) => [id >>> 8, id & 0xff, ...u32(value)]));
}

function windowUpdate(stream: number, increment: number): Uint8Array {
  return frame(WINDOW_UPDATE, 0, stream, u32(increment));
}

function priority(stream: number, exclusive: boolean, dependsOn: number, weightOctet: number): Uint8Array {
  return frame(PRIORITY, 0, stream, u32((exclusive ? 0x8000_0000 : 0) | dependsOn), [weightOctet]);
}

function headers(stream: number, block: Bytes, flags = END_HEADERS | END_STREAM): Uint8Array {
  return frame(HEADERS, flags, stream, block);
}

/** HPACK string literal, not Huffman-coded (lengths < 127). */
function str(s: string): number[] {
  return [s.length, ...new TextEncoder().encode(s)];
}

/** HPACK literal field with a literal name: `0x40` incremental indexing, `0x00` without, `0x10` never. */
function literal(kind: 0x40 | 0x00 | 0x10, name: string, value: string): number[] {
  return [kind, ...str(name), ...str(value)];
}

/** Static-table indexed fields: :method GET, :authority (empty), :scheme https, :path /. */
const GET = 0x82, AUTHORITY = 0x81, HTTPS = 0x87, SLASH = 0x84;
const MASP = [GET, AUTHORITY, HTTPS, SLASH];
const CHROME_SETTINGS = settings([1, 65536], [2, 0], [4, 6291456], [6, 262144]);

function fp(...parts: Bytes[]): ReturnType<typeof akamai> {
  return akamai(concat(PREFACE, ...parts));
}

function ok(value: string) {
  return { ok: true, value };
}

const MALFORMED = { ok: false, error: "malformed" };

Deno.test("a Chrome-like preamble gives S, WU, P and PS", () => {
  deepStrictEqual(
    fp(CHROME_SETTINGS, windowUpdate(0, 15663105), headers(1, MASP)),
    ok("1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p"),
  );
});

Deno.test("SETTINGS: the first non-ACK frame on stream 0, in wire order, unknown ids and duplicates kept", () => {
  deepStrictEqual(
    fp(settings([3, 100], [0x1a1a, 7], [9, 1], [3, 5]), headers(1, MASP)),
    ok("3:100;6682:7;9:1;3:5|00|0|m,a,s,p"),
  );
  deepStrictEqual(fp(settings([3, 1]), settings([3, 2]), headers(1, MASP)), ok("3:1|00|0|m,a,s,p"));
  deepStrictEqual(fp(frame(SETTINGS, ACK, 0), settings([4, 9]), headers(1, MASP)), ok("4:9|00|0|m,a,s,p"));
  deepStrictEqual(fp(settings(), headers(1, MASP)), ok("|00|0|m,a,s,p"));
  deepStrictEqual(
    fp(frame(SETTINGS, 0, 1, [0, 3, ...u32(1)]), settings(), headers(1, MASP)),
    ok("|00|0|m,a,s,p"),
  );
  deepStrictEqual(fp(settings([4, 0xffff_ffff]), headers(1, MASP)), ok("4:4294967295|00|0|m,a,s,p"));
});

Deno.test("no SETTINGS before the first HEADERS gives no fingerprint", () => {
  deepStrictEqual(fp(headers(1, MASP), settings([3, 100])), MALFORMED);
  deepStrictEqual(fp(windowUpdate(0, 1), headers(1, MASP)), MALFORMED);
  deepStrictEqual(fp(frame(SETTINGS, ACK, 0), headers(1, MASP)), MALFORMED);
});

Deno.test("WINDOW_UPDATE: the first on stream 0 before HEADERS, top bit masked", () => {
  deepStrictEqual(fp(settings(), windowUpdate(3, 1000), headers(1, MASP)), ok("|00|0|m,a,s,p"));
  deepStrictEqual(
    fp(settings(), windowUpdate(3, 7), windowUpdate(0, 1000), windowUpdate(0, 2000), headers(1, MASP)),
    ok("|1000|0|m,a,s,p"),
  );
  deepStrictEqual(
    fp(settings(), windowUpdate(0, 0x8000_0000 | 1000), headers(1, MASP)),
    ok("|1000|0|m,a,s,p"),
  );
  deepStrictEqual(fp(settings(), windowUpdate(0, 0), headers(1, MASP)), ok("|0|0|m,a,s,p"));
  deepStrictEqual(fp(settings(), headers(1, MASP), windowUpdate(0, 1000)), ok("|00|0|m,a,s,p"));
});

Deno.test("PRIORITY: every frame before HEADERS, on any stream, weight + 1", () => {
  deepStrictEqual(
    fp(
      settings(),
      priority(3, false, 0, 200),
      priority(5, true, 3, 255),
      priority(7, false, 0x7fff_ffff, 0),
      headers(1, MASP),
      priority(9, false, 0, 1),
    ),
    ok("|00|3:0:0:201,5:1:3:256,7:0:2147483647:1|m,a,s,p"),
  );
});

Deno.test("HEADERS: PRIORITY and PADDED flags are stripped, and the priority fields are not part of P", () => {
  const prio = [...u32(0x8000_0000 | 11), 15];
  deepStrictEqual(
    fp(settings(), frame(HEADERS, END_HEADERS | PRIORITY_FLAG, 13, prio, MASP)),
    ok("|00|0|m,a,s,p"),
  );
  // The padding bytes would be an invalid HPACK index if they were decoded.
  deepStrictEqual(
    fp(settings(), frame(HEADERS, END_HEADERS | PADDED, 1, [3], MASP, [0x80, 0x80, 0x80])),
    ok("|00|0|m,a,s,p"),
  );
  deepStrictEqual(
    fp(settings(), frame(HEADERS, END_HEADERS | PADDED | PRIORITY_FLAG, 1, [2], prio, MASP, [0xff, 0xff])),
    ok("|00|0|m,a,s,p"),
  );
  deepStrictEqual(fp(settings(), frame(HEADERS, END_HEADERS | PADDED, 1, [0])), ok("|00|0|"));
  deepStrictEqual(fp(settings(), frame(HEADERS, END_HEADERS | PADDED, 1, [5], MASP)), MALFORMED);
  deepStrictEqual(fp(settings(), frame(HEADERS, END_HEADERS | PADDED, 1)), MALFORMED);
  deepStrictEqual(fp(settings(), frame(HEADERS, END_HEADERS | PRIORITY_FLAG, 1, [0, 0, 0, 0])), MALFORMED);
  deepStrictEqual(fp(settings(), headers(0, MASP)), MALFORMED);
});

Deno.test("CONTINUATION frames complete the header block; the fingerprint waits for END_HEADERS", () => {
  const first = frame(HEADERS, END_STREAM, 1, [GET, AUTHORITY]);
  const middle = frame(CONTINUATION, 0, 1, [HTTPS]);
  const last = frame(CONTINUATION, END_HEADERS, 1, [SLASH]);
  deepStrictEqual(fp(settings(), first), "need_more");
  deepStrictEqual(fp(settings(), first, middle), "need_more");
  deepStrictEqual(fp(settings(), first, middle, last), ok("|00|0|m,a,s,p"));
  // Nothing may come between a HEADERS frame and its CONTINUATIONs, which must be on the same stream.
  deepStrictEqual(fp(settings(), first, frame(PING, 0, 0, new Uint8Array(8)), last), MALFORMED);
  deepStrictEqual(fp(settings(), first, frame(CONTINUATION, END_HEADERS, 3, [SLASH])), MALFORMED);
  deepStrictEqual(fp(settings(), last, headers(1, MASP)), MALFORMED);
});

Deno.test("frames of other types before HEADERS are skipped", () => {
  deepStrictEqual(
    fp(
      frame(PING, 0, 0, new Uint8Array(8)),
      settings([2, 0]),
      frame(0xfa, 0xff, 0, [1, 2, 3]),
      frame(DATA, 0, 1, [9]),
      headers(1, MASP),
    ),
    ok("2:0|00|0|m,a,s,p"),
  );
});

Deno.test("PS: only m, a, s, p; :protocol and unknown pseudo-headers ignored; duplicates kept", () => {
  deepStrictEqual(
    fp(settings(), headers(1, [0x83, ...literal(0x00, ":protocol", "websocket"), HTTPS, SLASH, AUTHORITY])),
    ok("|00|0|m,s,p,a"),
  );
  deepStrictEqual(
    fp(
      settings(),
      headers(1, [GET, ...literal(0x10, ":foo", "x"), ...literal(0x00, "accept", "*/*"), SLASH]),
    ),
    ok("|00|0|m,p"),
  );
  deepStrictEqual(
    fp(settings(), headers(1, [GET, GET, SLASH, ...literal(0x00, ":path", "/x")])),
    ok("|00|0|m,m,p,p"),
  );
  deepStrictEqual(fp(settings(), headers(1, [0x90, 0xba])), ok("|00|0|")); // accept-encoding, user-agent
});

Deno.test("HPACK dynamic table: indexed fields and indexed names refer to earlier literals", () => {
  // 0xbe / 0xbf: indexed fields 62 (the newest entry) and 63. 0x7f 0x00: literal with incremental
  // indexing whose name is index 63 (63 does not fit the 6-bit prefix, hence the continuation octet).
  const block = [
    ...literal(0x40, ":path", "/a"),
    ...literal(0x40, "x-custom", "1"),
    0xbf, // :path
    0xbe, // x-custom
    0x7f,
    0x00,
    ...str("/b"), // :path again, now index 62
    0xbe,
  ];
  deepStrictEqual(fp(settings(), headers(1, block)), ok("|00|0|p,p,p,p"));
  deepStrictEqual(fp(settings(), headers(1, [0x44, ...str("/c"), 0xbe])), ok("|00|0|p,p")); // static name 4
  deepStrictEqual(fp(settings(), headers(1, [0x04, ...str("/c"), 0xbe])), MALFORMED); // not indexed
});

Deno.test("HPACK dynamic table size updates: at the start only, at most 4096, evicting entries", () => {
  const pathEntry = literal(0x40, ":path", "/a"); // 5 + 2 + 32 = 39 octets
  deepStrictEqual(fp(settings(), headers(1, [0x3f, 0xe1, 0x1f, ...pathEntry, 0xbe])), ok("|00|0|p,p")); // 4096
  deepStrictEqual(fp(settings(), headers(1, [0x3f, 0x08, ...pathEntry, 0xbe])), ok("|00|0|p,p")); // 39
  deepStrictEqual(fp(settings(), headers(1, [0x3f, 0x07, ...pathEntry, 0xbe])), MALFORMED); // 38: not kept
  deepStrictEqual(fp(settings(), headers(1, [0x20, ...pathEntry, 0xbe])), MALFORMED); // 0
  deepStrictEqual(fp(settings(), headers(1, [0x20, 0x3f, 0x08, ...pathEntry, 0xbe])), ok("|00|0|p,p"));
  deepStrictEqual(fp(settings(), headers(1, [0x3f, 0xe2, 0x1f, ...MASP])), MALFORMED); // 4097
  deepStrictEqual(fp(settings(), headers(1, [GET, 0x20, SLASH])), MALFORMED); // after a field
  // Two 39-octet entries in a 78-octet table; a third evicts the oldest, so index 64 is gone.
  const three = [0x3f, 0x2f, ...pathEntry, ...pathEntry, ...pathEntry];
  deepStrictEqual(fp(settings(), headers(1, [...three, 0xbf])), ok("|00|0|p,p,p,p"));
  deepStrictEqual(fp(settings(), headers(1, [...three, 0xc0])), MALFORMED);
});

Deno.test("HPACK Huffman strings: decoded, with EOS and padding validated (RFC 7541 §5.2)", () => {
  const huffmanPath = [0x84, 0xb9, 0x58, 0xd3, 0x3f]; // ":path", 4 octets
  const huffmanMethod = [0x85, 0xb9, 0x49, 0x53, 0x39, 0xe4]; // ":method", 5 octets
  const huffmanHost = [0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff];
  deepStrictEqual(
    // ":method: GET" with both strings Huffman-coded, then ":authority: www.example.com".
    fp(settings(), headers(1, [0x00, ...huffmanMethod, 0x83, 0xc5, 0x83, 0x7f, 0x41, ...huffmanHost])),
    ok("|00|0|m,a"),
  );
  deepStrictEqual(fp(settings(), headers(1, [0x40, ...huffmanPath, 0x81, 0x1f, 0xbe])), ok("|00|0|p,p"));
  // "a" (00011) padded with 000 instead of 111.
  deepStrictEqual(fp(settings(), headers(1, [0x04, 0x81, 0x18])), MALFORMED);
  // "a" followed by a whole octet of padding.
  deepStrictEqual(fp(settings(), headers(1, [0x04, 0x82, 0x1f, 0xff])), MALFORMED);
  // EOS (30 one-bits) inside the string.
  deepStrictEqual(fp(settings(), headers(1, [0x04, 0x84, 0xff, 0xff, 0xff, 0xff])), MALFORMED);
});

Deno.test("HPACK errors: index 0 or out of range, truncated integers and strings", () => {
  for (
    const block of [
      [0x80],
      [0xbe],
      [0xff, 0x00], // index 127
      [0x7f],
      [0x04, 0x05, 0x2f],
      [0x00, 0x85, 0xb9, 0x49],
      [0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    ]
  ) {
    deepStrictEqual(fp(settings(), headers(1, block)), MALFORMED, `block ${block}`);
  }
});

Deno.test("bad frame lengths give no fingerprint, even before the payload arrives", () => {
  const cases = [
    frame(SETTINGS, 0, 0, [0, 3, 0, 0, 0]),
    frame(SETTINGS, 0, 0, new Uint8Array(7)),
    frame(SETTINGS, ACK, 0, [0, 3, 0, 0, 0, 100]),
    frame(WINDOW_UPDATE, 0, 0, [0, 0, 1]),
    frame(WINDOW_UPDATE, 0, 0, [0, 0, 0, 1, 0]),
    frame(PRIORITY, 0, 1, [0, 0, 0, 0]),
    frame(PRIORITY, 0, 1, [0, 0, 0, 0, 0, 0]),
  ];
  for (const bad of cases) {
    deepStrictEqual(fp(settings(), bad, headers(1, MASP)), MALFORMED);
    deepStrictEqual(fp(settings(), bad.subarray(0, 9)), MALFORMED);
  }
});

Deno.test("the preface: a strict prefix needs more, anything else is not HTTP/2", () => {
  deepStrictEqual(akamai(new Uint8Array()), "need_more");
  deepStrictEqual(akamai(PREFACE.subarray(0, 10)), "need_more");
  deepStrictEqual(akamai(PREFACE), "need_more");
  const notH2 = { ok: false, error: "not_protocol" };
  deepStrictEqual(akamai(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n")), notH2);
  deepStrictEqual(akamai(new TextEncoder().encode("PRI * HTTP/1.1")), notH2);
  deepStrictEqual(akamai(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00])), notH2);
  deepStrictEqual(akamai(concat(PREFACE.subarray(0, 23), [0], CHROME_SETTINGS, headers(1, MASP))), notH2);
});

Deno.test("garbage after the preface is read as frames: bad ones fail, a huge one waits for the cap", () => {
  // An HTTP/1.1 request line reads as a frame of 0x474554 octets: only the caller's capture cap ends it.
  deepStrictEqual(fp(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n")), "need_more");
  deepStrictEqual(fp([0x00, 0x00, 0x01, SETTINGS, 0x00, 0x00, 0x00, 0x00, 0x00, 0xee]), MALFORMED);
  deepStrictEqual(fp(settings(), headers(1, [0x00, 0x7f])), MALFORMED);
});
