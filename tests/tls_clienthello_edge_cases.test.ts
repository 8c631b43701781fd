/**
 * Hand-built ClientHellos for every edge case of the spec (JA4 edge-case table 2.7, ALPN table 2.2,
 * GREASE, counts, duplicates, JA3 rules) and for every kind of bad input, through the real wasm.
 */
import { equal, ok } from "node:assert/strict";
import { createHash } from "node:crypto";
import { clientHelloNeeded, fingerprintClientHello, type TlsFingerprint } from "../shared/fingerprint.ts";

// ---- A small ClientHello builder --------------------------------------------------------------------

type Bytes = number[];
type Extension = [type: number, data: Bytes];

interface HelloSpec {
  legacyVersion?: number;
  ciphers?: number[];
  /** `null`: the hello ends after compression_methods, with no extensions block at all. */
  extensions?: Extension[] | null;
}

const u16 = (v: number): Bytes => [(v >> 8) & 0xff, v & 0xff];
const u24 = (v: number): Bytes => [(v >> 16) & 0xff, ...u16(v)];
const vec8 = (b: Bytes): Bytes => [b.length, ...b];
const vec16 = (b: Bytes): Bytes => [...u16(b.length), ...b];
const ascii = (s: string): Bytes => [...new TextEncoder().encode(s)];

const sni = (name: string): Extension => [0x0000, vec16([0, ...vec16(ascii(name))])];
const alpn = (...names: (string | Bytes)[]): Extension => [
  0x0010,
  vec16(names.flatMap((n) => vec8(typeof n === "string" ? ascii(n) : n))),
];
const versions = (...v: number[]): Extension => [0x002b, vec8(v.flatMap(u16))];
const sigalgs = (...v: number[]): Extension => [0x000d, vec16(v.flatMap(u16))];
const groups = (...v: number[]): Extension => [0x000a, vec16(v.flatMap(u16))];
const pointFormats = (...v: number[]): Extension => [0x000b, vec8(v)];
const empty = (type: number): Extension => [type, []];

/** The ClientHello handshake body. */
function body({ legacyVersion = 0x0303, ciphers = [0x1301], extensions = [] }: HelloSpec): Bytes {
  const hello = [
    ...u16(legacyVersion),
    ...new Array(32).fill(7),
    ...vec8([]),
    ...vec16(ciphers.flatMap(u16)),
  ];
  hello.push(...vec8([0]));
  if (extensions !== null) hello.push(...vec16(extensions.flatMap(([t, d]) => [...u16(t), ...vec16(d)])));
  return hello;
}

/** One handshake record holding a ClientHello with the given (possibly inconsistent) body. */
function recordOf(hello: Bytes, handshakeType = 0x01): Uint8Array {
  const handshake = [handshakeType, ...u24(hello.length), ...hello];
  return Uint8Array.from([0x16, 0x03, 0x01, ...u16(handshake.length), ...handshake]);
}

const record = (spec: HelloSpec) => recordOf(body(spec));

function fingerprint(spec: HelloSpec): TlsFingerprint {
  const fp = fingerprintClientHello(record(spec));
  if (!fp.ok) throw new Error(`no fingerprint: ${fp.error}`);
  return fp.value;
}

function sha256Part(s: string): string {
  return s === "" ? "000000000000" : createHash("sha256").update(s).digest("hex").slice(0, 12);
}

/** The hashed form of a raw JA4 (`a_b_c`, where c may contain `_`), computed independently. */
function hashed(raw: string): string {
  const [a, b, ...c] = raw.split("_");
  return `${a}_${sha256Part(b)}_${sha256Part(c.join("_"))}`;
}

/** Checks the raw forms and that the hashed forms and the JA3 hash agree with them. */
function check(fp: TlsFingerprint, want: { ja4_r: string; ja4_or?: string; ja3?: string }): void {
  equal(fp.ja4_r, want.ja4_r);
  equal(fp.ja4, hashed(fp.ja4_r));
  if (want.ja4_or !== undefined) equal(fp.ja4_or, want.ja4_or);
  equal(fp.ja4_o, hashed(fp.ja4_or));
  if (want.ja3 !== undefined) equal(fp.ja3, want.ja3);
  equal(fp.ja3_hash, createHash("md5").update(fp.ja3).digest("hex"));
}

// ---- JA4 edge cases (spec 2.7) ----------------------------------------------------------------------

Deno.test("no extensions block: count 00, ALPN 00, c zeros, legacy version, JA3 `769,47-53-10,,,`", () => {
  const fp = fingerprint({ legacyVersion: 0x0301, ciphers: [0x002f, 0x0035, 0x000a], extensions: null });
  check(fp, {
    ja4_r: "t10i030000_000a,002f,0035_",
    ja4_or: "t10i030000_002f,0035,000a_",
    ja3: "769,47-53-10,,,",
  });
  equal(fp.ja4, "t10i030000_" + sha256Part("000a,002f,0035") + "_000000000000");
  equal(fp.ja4_o.slice(-12), "000000000000");
  equal(fp.sni, undefined);
  equal(fp.alpn.length, 0);
  equal(fp.versions.length, 0);
});

Deno.test("an empty extensions block is the same as none", () => {
  const none = fingerprint({ ciphers: [0x002f], extensions: null });
  const emptyBlock = fingerprint({ ciphers: [0x002f], extensions: [] });
  equal(JSON.stringify(emptyBlock), JSON.stringify(none));
});

Deno.test("supported_versions: highest non-GREASE value; only GREASE or empty falls back to legacy_version", () => {
  const version = (spec: HelloSpec) => fingerprint(spec).ja4.slice(1, 3);
  equal(version({ extensions: [versions(0x0a0a, 0x0303, 0x0304, 0x0302)] }), "13");
  equal(version({ legacyVersion: 0x0302, extensions: [versions(0x1a1a, 0xfafa)] }), "11");
  equal(version({ legacyVersion: 0x0301, extensions: [versions()] }), "10");
  equal(version({ legacyVersion: 0x0301, extensions: [empty(0x002b)] }), "10");
  // The record-layer version (0x0301 in every record here) is never used.
  equal(version({ legacyVersion: 0x0303 }), "12");
  const fp = fingerprint({ extensions: [versions(0x2a2a, 0x0304, 0x0303)] });
  equal(fp.versions.join(","), [0x0304, 0x0303].join(","));
});

Deno.test("every version code, and 00 for unknown or draft versions", () => {
  const codes: [number, string][] = [
    [0x0304, "13"],
    [0x0303, "12"],
    [0x0302, "11"],
    [0x0301, "10"],
    [0x0300, "s3"],
    [0x0002, "s2"],
    [0xfeff, "d1"],
    [0xfefd, "d2"],
    [0xfefc, "d3"],
    [0x7f1c, "00"],
    [0x0305, "00"],
  ];
  for (const [v, code] of codes) {
    equal(fingerprint({ legacyVersion: v }).ja4.slice(1, 3), code, v.toString(16));
    equal(fingerprint({ extensions: [versions(v)] }).ja4.slice(1, 3), code, v.toString(16));
  }
});

Deno.test("SNI: present gives d whatever its content, absent gives i", () => {
  equal(fingerprint({ extensions: [] }).ja4[3], "i");
  for (const ext of [sni("example.com"), sni("192.0.2.1"), empty(0x0000), [0x0000, vec16([])] as Extension]) {
    const fp = fingerprint({ extensions: [ext] });
    equal(fp.ja4[3], "d");
    ok(fp.sni !== undefined);
  }
  equal(fingerprint({ extensions: [sni("example.com")] }).sni, "example.com");
  equal(fingerprint({ extensions: [empty(0x0000)] }).sni, "");
  // Hostile bytes come through unchanged (Latin-1, one char per byte).
  const raw = [0, 0xff, 0x0a, 0x5f];
  equal(fingerprint({ extensions: [[0x0000, vec16([0, ...vec16(raw)])]] }).sni, String.fromCharCode(...raw));
});

Deno.test("more than 99 ciphers or extensions: count 99, every value still listed", () => {
  const ciphers = Array.from({ length: 120 }, (_, i) => 0x0100 + i);
  const extensions = Array.from({ length: 105 }, (_, i): Extension => [0x0100 + i, []]);
  const fp = fingerprint({ ciphers, extensions });
  const hex = (v: number) => v.toString(16).padStart(4, "0");
  check(fp, {
    ja4_r: `t12i999900_${ciphers.map(hex).join(",")}_${extensions.map(([t]) => hex(t)).join(",")}`,
  });
  equal(fp.ja3.split(",")[1].split("-").length, 120);
  equal(fp.ja3.split(",")[2].split("-").length, 105);
});

Deno.test("duplicate extension types are counted and listed each time", () => {
  const fp = fingerprint({ extensions: [empty(0x0017), empty(0x0005), empty(0x0017), empty(0x0017)] });
  check(fp, {
    ja4_r: "t12i010400_1301_0005,0017,0017,0017",
    ja4_or: "t12i010400_1301_0017,0005,0017,0017",
    ja3: "771,4865,23-5-23-23,,",
  });
});

Deno.test("signature_algorithms absent or empty: no `_` suffix; GREASE dropped, wire order kept", () => {
  check(fingerprint({ extensions: [empty(0x0017)] }), { ja4_r: "t12i010100_1301_0017" });
  check(fingerprint({ extensions: [empty(0x000d)] }), { ja4_r: "t12i010100_1301_000d" });
  check(fingerprint({ extensions: [sigalgs()] }), { ja4_r: "t12i010100_1301_000d" });
  check(fingerprint({ extensions: [sigalgs(0x3a3a)] }), { ja4_r: "t12i010100_1301_000d" });
  check(fingerprint({ extensions: [sigalgs(0x8a8a, 0x0804, 0x0403, 0xeeee, 0x0201)] }), {
    ja4_r: "t12i010100_1301_000d_0804,0403,eeee,0201",
  });
  // signature_algorithms_cert (0x0032) and delegated_credentials (0x0022) are not signature algorithms.
  const cert: Extension = [0x0032, vec16([0x04, 0x03])];
  const delegated: Extension = [0x0022, vec16([0x04, 0x03])];
  check(fingerprint({ extensions: [cert, delegated] }), { ja4_r: "t12i010200_1301_0022,0032" });
});

Deno.test("only SNI and ALPN: JA4 c is zeros, JA4_r c is empty, JA4_o still hashes its list", () => {
  const sniOnly = fingerprint({ extensions: [sni("a.example")] });
  check(sniOnly, { ja4_r: "t12d010100_1301_", ja4_or: "t12d010100_1301_0000" });
  equal(sniOnly.ja4.slice(-12), "000000000000");
  equal(sniOnly.ja4_o.slice(-12), "9af15b336e6a");
  const both = fingerprint({ extensions: [sni("a.example"), alpn("h2")] });
  check(both, { ja4_r: "t12d0102h2_1301_", ja4_or: "t12d0102h2_1301_0000,0010" });
  equal(both.ja4.slice(-12), "000000000000");
});

Deno.test("ECH (0xfe0d) counts as an extension, real or GREASE", () => {
  const ech: Extension = [0xfe0d, [0, 1, 2, 3]];
  check(fingerprint({ extensions: [ech, sni("public.example")] }), {
    ja4_r: "t12d010200_1301_fe0d",
    ja4_or: "t12d010200_1301_fe0d,0000",
    ja3: "771,4865,65037-0,,",
  });
});

Deno.test("a second ClientHello (after HelloRetryRequest) is ignored", () => {
  const first = record({ extensions: [sni("first.example"), alpn("h2")] });
  const second = record({ ciphers: [0x1302, 0x1303], extensions: [sni("second.example")] });
  const both = Uint8Array.from([...first, ...second]);
  equal(clientHelloNeeded(both), 0);
  equal(JSON.stringify(fingerprintClientHello(both)), JSON.stringify(fingerprintClientHello(first)));
});

// ---- ALPN (spec 2.2) --------------------------------------------------------------------------------

Deno.test("ALPN characters follow the JA4.md rule for every row of the spec's table", () => {
  const table: [string | Bytes, string][] = [
    ["h2", "h2"],
    ["http/1.1", "h1"],
    ["h3", "h3"],
    ["h", "hh"],
    [[0xab], "ab"],
    [[0x20], "20"],
    [[0xab, 0xcd], "ad"],
    [[0x20, 0x61], "21"],
    [[0x30, 0xab], "3b"],
    [[0x61, 0x20], "60"],
    [[0x30, 0x31, 0xab, 0xcd], "3d"],
    [[0x30, 0xab, 0xcd, 0x31], "01"],
    ["h ", "60"],
    [" h", "28"],
    ["  ", "20"],
    ["--", "2d"],
    [[0xba, 0xad], "bd"],
  ];
  for (const [name, chars] of table) {
    const fp = fingerprint({ extensions: [alpn(name, "h2")] });
    equal(fp.ja4.slice(8, 10), chars, JSON.stringify(name));
    equal(fp.ja4.length, 36);
  }
  // Case is kept, and only the first name counts.
  equal(fingerprint({ extensions: [alpn("H2", "h3")] }).ja4.slice(8, 10), "H2");
});

Deno.test("ALPN 00: no extension, an empty list, or an empty first name", () => {
  for (const extensions of [[], [alpn()], [empty(0x0010)], [alpn([], "h2")]]) {
    equal(fingerprint({ extensions }).ja4.slice(8, 10), "00");
  }
});

Deno.test("the ALPN field lists every name as raw bytes", () => {
  const fp = fingerprint({ extensions: [alpn("h2", [0xba, 0xad], "http/1.1")] });
  equal(JSON.stringify(fp.alpn), JSON.stringify(["h2", "\xba\xad", "http/1.1"]));
});

// ---- GREASE and JA3 ---------------------------------------------------------------------------------

Deno.test("GREASE is dropped from every list; look-alikes such as 0xeeee are kept", () => {
  const fp = fingerprint({
    ciphers: [0x0a0a, 0x1301, 0xeeee, 0x00ff, 0x5600, 0xfafa],
    extensions: [
      empty(0x1a1a),
      groups(0x2a2a, 0x001d, 0xefef),
      pointFormats(0),
      sigalgs(0x4a4a, 0x0403),
      versions(0x5a5a, 0x0304),
      empty(0xdada),
    ],
  });
  check(fp, {
    ja4_r: "t13i040400_00ff,1301,5600,eeee_000a,000b,000d,002b_0403",
    ja4_or: "t13i040400_1301,eeee,00ff,5600_000a,000b,000d,002b_0403",
    ja3: "771,4865-61166-255-22016,10-11-13-43,29-61423,0",
  });
});

Deno.test("JA3 uses the last supported_groups and ec_point_formats when they repeat", () => {
  const fp = fingerprint({
    extensions: [groups(0x0017), pointFormats(1), groups(0x001d, 0x0018), pointFormats(0, 2)],
  });
  equal(fp.ja3, "771,4865,10-11-10-11,29-24,0-2");
});

Deno.test("JA3 keeps the legacy version in decimal and the wire order of everything", () => {
  const fp = fingerprint({
    legacyVersion: 0x0303,
    ciphers: [0xc02b, 0x0005, 0x1301],
    extensions: [empty(0x0017), sni("x"), empty(0xff01), groups(0x0100, 0x0017), pointFormats(0)],
  });
  equal(fp.ja3, "771,49195-5-4865,23-0-65281-10-11,256-23,0");
});

Deno.test("JA4_s1 drops ticket, PSK and padding from the count and from c", () => {
  const fp = fingerprint({
    extensions: [sni("x"), empty(0x0023), sigalgs(0x0403), empty(0x0015), [0x0029, [0, 0]], empty(0x0017)],
  });
  check(fp, { ja4_r: "t12d010600_1301_000d,0015,0017,0023,0029_0403" });
  equal(fp.ja4_s1r, "t12d010300_1301_000d,0017_0403");
  equal(fp.ja4_s1, hashed(fp.ja4_s1r));
  const onlyUnstable = fingerprint({ extensions: [sni("x"), empty(0x0015)] });
  equal(onlyUnstable.ja4_s1r, "t12d010100_1301_");
  equal(onlyUnstable.ja4_s1.slice(-12), "000000000000");
});

// ---- Bad input --------------------------------------------------------------------------------------

Deno.test("truncated input asks for more, then completes", () => {
  const full = record({ extensions: [sni("example.com"), alpn("h2")] });
  // At least the rest of the record header and the handshake header.
  equal(clientHelloNeeded(new Uint8Array()), 9);
  equal(clientHelloNeeded(full.subarray(0, 3)), 6);
  for (let n = 0; n < full.length; n++) {
    const needed = clientHelloNeeded(full.subarray(0, n));
    ok(typeof needed === "number" && needed > 0 && n + needed <= full.length);
    const fp = fingerprintClientHello(full.subarray(0, n));
    ok(!fp.ok);
  }
  equal(clientHelloNeeded(full), 0);
});

Deno.test("a declared length running past its structure is malformed", () => {
  const good = body({ extensions: [sni("example.com"), alpn("h2")] });
  const cipherLength = 2 + 32 + 1;
  const extensionsLength = cipherLength + 2 + 2 + 2;
  const cases: [string, Bytes][] = [
    ["cipher list past the hello", patch(good, cipherLength, u16(0x0100))],
    ["odd cipher list length", patch(good, cipherLength, u16(1))],
    ["extensions block past the hello", patch(good, extensionsLength, u16(0x0200))],
    ["extension data past the block", patch(good, extensionsLength + 4, u16(0x0100))],
    ["server_name list past its extension", patch(good, extensionsLength + 6, u16(0x00ff))],
    ["host name past its list", patch(good, extensionsLength + 9, u16(0x00ff))],
    ["ALPN name past its list", [...good.slice(0, -3), 0x05, ...ascii("h2")]],
    ["session id past the hello", patch(good, 2 + 32, [0xff])],
    ["hello shorter than its random", good.slice(0, 20)],
    ["half an extension header", [
      ...patch(good, extensionsLength, u16(good.length - extensionsLength - 1)),
      0,
    ]],
  ];
  for (const [what, hello] of cases) {
    const input = recordOf(hello);
    equal(clientHelloNeeded(input), 0, what);
    const fp = fingerprintClientHello(input);
    equal(fp.ok ? "ok" : fp.error, "malformed", what);
  }
  const broken = (ext: Extension) => fingerprintClientHello(record({ extensions: [ext] }));
  for (
    const ext of [[0x002b, [4, 3, 4]], [0x000d, [0, 3, 4, 3, 1]], [0x000a, [0, 9]], [0x000b, [
      3,
      0,
    ]]] as Extension[]
  ) {
    const fp = broken(ext);
    equal(fp.ok ? "ok" : fp.error, "malformed", ext[0].toString(16));
  }
});

/** `bytes` with `value` written at `at`. */
function patch(bytes: Bytes, at: number, value: Bytes): Bytes {
  const copy = [...bytes];
  copy.splice(at, value.length, ...value);
  return copy;
}

Deno.test("a first handshake message other than ClientHello is malformed", () => {
  const serverHello = recordOf(body({}), 0x02);
  equal(clientHelloNeeded(serverHello), "malformed");
  equal(clientHelloNeeded(serverHello.subarray(0, 9)), "malformed");
  const fp = fingerprintClientHello(serverHello);
  equal(fp.ok ? "ok" : fp.error, "malformed");
});

Deno.test("a non-handshake or empty record before the hello is complete is malformed", () => {
  const full = record({ extensions: [sni("example.com")] });
  const firstPart = Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0x10, ...full.subarray(5, 21)]);
  const rest = full.subarray(21);
  const restRecord = [0x03, 0x01, ...u16(rest.length), ...rest];
  const interleaved = Uint8Array.from([...firstPart, 0x17, ...restRecord]);
  equal(clientHelloNeeded(Uint8Array.from([...firstPart, 0x16, ...restRecord])), 0);
  equal(clientHelloNeeded(interleaved), "malformed");
  equal(clientHelloNeeded(Uint8Array.from([...firstPart, 0x16, 0x03, 0x01, 0x00, 0x00])), "malformed");
  const fp = fingerprintClientHello(interleaved);
  equal(fp.ok ? "ok" : fp.error, "malformed");
});

Deno.test("a hello larger than 64 KiB is over the limit", () => {
  const huge = Uint8Array.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, ...u24(0x10000), 0x03, 0x03]);
  equal(clientHelloNeeded(huge), "over_limit");
  const fp = fingerprintClientHello(new Uint8Array(64 * 1024 + 1).fill(0x16));
  equal(fp.ok ? "ok" : fp.error, "over_limit");
  // The largest hello that fits is accepted: 64 KiB minus the headers, in four records.
  const padding = 65536 - 4 * 5 - 4 - body({ extensions: [[0x0015, []]] }).length;
  const big = body({ extensions: [[0x0015, new Array(padding).fill(0)]] });
  const handshake = [0x01, ...u24(big.length), ...big];
  const records: number[] = [];
  for (let i = 0; i < handshake.length; i += 16384) {
    const chunk = handshake.slice(i, i + 16384);
    records.push(0x16, 0x03, 0x01, ...u16(chunk.length), ...chunk);
  }
  equal(records.length, 65536);
  equal(clientHelloNeeded(Uint8Array.from(records)), 0);
  ok(fingerprintClientHello(Uint8Array.from(records)).ok);
  const needed = clientHelloNeeded(Uint8Array.from(records.slice(0, 100)));
  ok(typeof needed === "number" && needed > 0 && 100 + needed <= records.length);
});

Deno.test("input that is not TLS is not_protocol; an SSLv2 hello is unsupported", () => {
  for (const text of ["GET / HTTP/1.1\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "SSH-2.0-OpenSSH_9.2\r\n"]) {
    equal(clientHelloNeeded(Uint8Array.from(ascii(text))), "not_protocol", text);
    const fp = fingerprintClientHello(Uint8Array.from(ascii(text)));
    equal(fp.ok ? "ok" : fp.error, "not_protocol", text);
  }
  // SSLv2-format CLIENT-HELLO (RFC 6101 appendix E.2): 2-byte length with the high bit set, type 1.
  const sslv2 = Uint8Array.from([0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]);
  equal(clientHelloNeeded(sslv2), "unsupported");
  const fp = fingerprintClientHello(sslv2);
  equal(fp.ok ? "ok" : fp.error, "unsupported");
});
