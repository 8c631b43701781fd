/**
 * `deno task fingerprint` on real loopback captures: curl over TLS (HTTP/1.1 and HTTP/2 ALPN, with and
 * without SNI, IPv4 and IPv6) to a `Deno.listenTls` server and curl's prior-knowledge h2c to `Deno.serve`,
 * recorded by tcpdump on lo. The same capture as pcapng (one and two interfaces, two sections), as
 * nanosecond and big-endian pcap, with other link layers (raw IP, BSD loopback, QinQ-tagged Ethernet,
 * Linux cooked SLL and SLL2) and with the client's data cut into reordered, retransmitted and overlapping
 * segments gives the same line per connection, whose p0f equals `p0f -r`'s raw_sig and whose JA3 equals
 * tshark's. Damaged or missing files give a one-line error and status 1.
 */
import assert from "node:assert/strict";
import { makeSelfSignedCertificate } from "../tools/certificate.ts";
import { readCapture } from "../tools/pcap.ts";
import { startTcpdump } from "./support/tcpdump.ts";

const TOOL = new URL("../tools/fingerprint.ts", import.meta.url).pathname;

interface Line {
  client: string;
  server: string;
  p0f?: string;
  ja4?: string;
  ja3?: string;
  ja3_hash?: string;
  sni?: string;
  alpn?: string[];
  akamai?: string;
}

interface Run {
  code: number;
  lines: Line[];
  stderr: string;
}

/** Runs the tool as `deno task fingerprint` does, with read permission only. */
async function fingerprint(file: string): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", TOOL, file],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  const lines = text(out.stdout).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
  return { code: out.code, lines, stderr: text(out.stderr) };
}

async function run(cmd: string[]): Promise<string> {
  const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  if (!out.success) throw new Error(`${cmd.join(" ")} exited ${out.code}: ${text(out.stderr).trim()}`);
  return text(out.stdout);
}

/**
 * Waits (a few seconds at most) until tcpdump has written the traffic, which has ended: the file holds
 * the same number of frames on three reads in a row. Stopping tcpdump earlier would lose what it has not
 * yet taken from the kernel.
 */
async function untilWritten(file: string): Promise<void> {
  let last = -1;
  for (let tries = 0, stable = 0; tries < 50 && stable < 3; tries++) {
    await new Promise((r) => setTimeout(r, 100));
    let frames = 0;
    for await (const item of readCapture((await Deno.open(file)).readable)) if (!("error" in item)) frames++;
    stable = frames === last && frames > 0 ? stable + 1 : 0;
    last = frames;
  }
}

/** One HTTP/1.1 answer per connection; only the client's opening bytes matter here. */
async function answer(conn: Deno.TlsConn): Promise<void> {
  try {
    await conn.read(new Uint8Array(4096));
    await conn.write(new TextEncoder().encode("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"));
  } catch {
    // The client went away first.
  } finally {
    conn.close();
  }
}

/** The client port of an `ip:port` or `[ip]:port` endpoint. */
function port(endpoint: string): string {
  return endpoint.slice(endpoint.lastIndexOf(":") + 1);
}

/** `raw_sig` of every client SYN in `file` according to p0f 3.09b, by client port. */
async function p0fRawSigs(file: string, log: string): Promise<Map<string, string>> {
  await run(["p0f", "-r", file, "-o", log]);
  const sigs = new Map<string, string>();
  for (
    const match of (await Deno.readTextFile(log)).matchAll(/ mod=syn\|cli=[^|]*\/(\d+)\|.*\|raw_sig=(.*)/g)
  ) {
    sigs.set(match[1], match[2]);
  }
  return sigs;
}

/** tshark's JA3 string and hash of every ClientHello in `file`, by client port. */
async function tsharkJa3(file: string): Promise<Map<string, [string, string]>> {
  const fields = ["tcp.srcport", "tls.handshake.ja3_full", "tls.handshake.ja3"];
  const out = await run([
    "tshark",
    "-r",
    file,
    // Out-of-order reassembly is off by default; the resegmented capture needs it.
    "-o",
    "tcp.reassemble_out_of_order:TRUE",
    "-Y",
    "tls.handshake.type == 1",
    "-T",
    "fields",
    ...fields.flatMap((f) => ["-e", f]),
  ]);
  const ja3 = new Map<string, [string, string]>();
  for (const line of out.split("\n").filter((l) => l !== "")) {
    const [srcPort, full, hash] = line.split("\t");
    ja3.set(srcPort, [full, hash]);
  }
  return ja3;
}

/** The same capture as big-endian pcap: classic pcap must read the same either way round. */
function toBigEndian(pcap: Uint8Array): Uint8Array {
  const out = pcap.slice();
  const src = new DataView(pcap.buffer, pcap.byteOffset, pcap.byteLength);
  const dst = new DataView(out.buffer);
  const swap32 = (at: number) => dst.setUint32(at, src.getUint32(at, true));
  const swap16 = (at: number) => dst.setUint16(at, src.getUint16(at, true));
  [0, 8, 12, 16, 20].forEach(swap32);
  [4, 6].forEach(swap16);
  for (let at = 24; at + 16 <= pcap.length; at += 16 + src.getUint32(at + 8, true)) {
    [at, at + 4, at + 8, at + 12].forEach(swap32);
  }
  return out;
}

/**
 * The same Ethernet capture with each frame's 14-byte Ethernet header replaced by `header(frame)`, under
 * another link type: the link layers tcpdump on lo cannot produce.
 */
function relink(pcap: Uint8Array, linkType: number, header: (frame: Uint8Array) => number[]): Uint8Array {
  const v = new DataView(pcap.buffer, pcap.byteOffset, pcap.byteLength);
  const parts: Uint8Array[] = [pcap.slice(0, 24)];
  new DataView(parts[0].buffer).setUint32(20, linkType, true);
  for (let at = 24; at + 16 <= pcap.length;) {
    const captured = v.getUint32(at + 8, true);
    const frame = pcap.subarray(at + 16, at + 16 + captured);
    const prefix = header(frame);
    const record = pcap.slice(at, at + 16);
    const rv = new DataView(record.buffer);
    rv.setUint32(8, captured - 14 + prefix.length, true);
    rv.setUint32(12, v.getUint32(at + 12, true) - 14 + prefix.length, true);
    parts.push(record, Uint8Array.from(prefix), frame.subarray(14));
    at += 16 + captured;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/** Link-layer headers tcpdump on lo cannot produce: link type and the header for an Ethernet frame. */
const RELINKED: Record<string, [number, (frame: Uint8Array) => number[]]> = {
  "raw IP": [101, () => []],
  // The address family in the capturing host's byte order (2 = AF_INET, 24 = BSD's AF_INET6).
  "BSD loopback": [0, (f) => [f[12] === 0x08 ? 2 : 24, 0, 0, 0]],
  // An 802.1ad service tag, then an 802.1Q customer tag, then the original EtherType.
  "Ethernet with QinQ tags": [
    1,
    (f) => [...f.subarray(0, 12), 0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20, f[12], f[13]],
  ],
  // Packet type 0 (to us), ARPHRD_LOOPBACK, a 6-byte address padded to 8, the EtherType.
  "Linux cooked (SLL)": [113, (f) => [0, 0, 3, 4, 0, 6, ...f.subarray(6, 12), 0, 0, f[12], f[13]]],
  // The EtherType, reserved, interface index 1, ARPHRD_LOOPBACK, packet type 0, address length 6, address.
  "Linux cooked v2 (SLL2)": [
    276,
    (f) => [f[12], f[13], 0, 0, 0, 0, 0, 1, 3, 4, 0, 6, ...f.subarray(6, 12), 0, 0],
  ],
};

/** A pcap file from records (16-byte header + frame each) after the 24-byte file header of `like`. */
function pcapOf(like: Uint8Array, records: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(24 + records.reduce((n, r) => n + r.length, 0));
  out.set(like.subarray(0, 24));
  records.reduce((at, r) => (out.set(r, at), at + r.length), 24);
  return out;
}

/**
 * The same Ethernet capture with every client data segment to `ports` of more than 30 bytes cut in three
 * pieces sent as: third, first, first again, then the second widened to overlap both neighbours.
 */
function resegment(pcap: Uint8Array, ports: number[]): Uint8Array {
  const v = new DataView(pcap.buffer, pcap.byteOffset, pcap.byteLength);
  const records: Uint8Array[] = [];
  for (let at = 24; at + 16 <= pcap.length;) {
    const captured = v.getUint32(at + 8, true);
    const record = pcap.subarray(at, at + 16 + captured);
    at += 16 + captured;
    const frame = record.subarray(16);
    const ipv4 = frame[14] >> 4 === 4;
    const ipHeader = ipv4 ? (frame[14] & 0x0f) * 4 : 40;
    const tcp = 14 + ipHeader;
    const fv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const payload = frame.subarray(tcp + (frame[tcp + 12] >> 4) * 4);
    if (!ports.includes(fv.getUint16(tcp + 2)) || payload.length <= 30) {
      records.push(record);
      continue;
    }
    const piece = (from: number, to: number) => {
      const headers = frame.subarray(0, frame.length - payload.length);
      const out = new Uint8Array(16 + headers.length + to - from);
      out.set(record.subarray(0, 16));
      out.set(headers, 16);
      out.set(payload.subarray(from, to), 16 + headers.length);
      const ov = new DataView(out.buffer);
      ov.setUint32(8, out.length - 16, true);
      ov.setUint32(12, out.length - 16, true);
      if (ipv4) ov.setUint16(16 + 16, ipHeader + headers.length - tcp + to - from);
      else ov.setUint16(16 + 18, headers.length - tcp + to - from);
      ov.setUint32(16 + tcp + 4, fv.getUint32(tcp + 4) + from);
      return out;
    };
    const third = Math.floor(payload.length / 3);
    records.push(
      piece(2 * third, payload.length),
      piece(0, third),
      piece(0, third),
      piece(third - 5, 2 * third + 5),
    );
  }
  return pcapOf(pcap, records);
}

Deno.test({
  name: "the fingerprint tool reports every connection of real captures, in every supported format",
  ignore: Deno.uid() !== 0,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "hfp-fingerprint-tool-" });
    try {
      await makeSelfSignedCertificate(`${dir}/cert.pem`, `${dir}/key.pem`, {
        commonName: "localhost",
        days: 1,
      });
      const tls = Deno.listenTls({
        hostname: "::",
        port: 0,
        cert: await Deno.readTextFile(`${dir}/cert.pem`),
        key: await Deno.readTextFile(`${dir}/key.pem`),
        alpnProtocols: ["http/1.1"],
      });
      const answering: Promise<void>[] = [];
      const serving = (async () => {
        for await (const conn of tls) answering.push(answer(conn));
      })().catch(() => {});
      const h2c = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("ok"));
      const tlsPort = tls.addr.port;
      const h2cPort = h2c.addr.port;

      const file = `${dir}/lo.pcap`;
      try {
        await using _tcpdump = await startTcpdump(
          ["-i", "lo", `tcp port ${tlsPort} or tcp port ${h2cPort}`],
          file,
        );
        const curl = ["curl", "-sk", "-o", "/dev/null", "--max-time", "10"];
        await run([...curl, "--http2", `https://localhost:${tlsPort}/`]);
        await run([...curl, "--http1.1", `https://127.0.0.1:${tlsPort}/`]);
        await run([...curl, "--http2", `https://[::1]:${tlsPort}/`]);
        await run([...curl, "--http2-prior-knowledge", `http://127.0.0.1:${h2cPort}/`]);
        await untilWritten(file);
      } finally {
        tls.close();
        await serving;
        await Promise.all(answering);
        await h2c.shutdown();
      }

      const lo = await fingerprint(file);
      assert.equal(lo.code, 0, lo.stderr);
      assert.deepEqual(
        lo.lines.map((l) => [l.client.replace(/:\d+$/, ""), l.server]),
        [
          ["127.0.0.1", `127.0.0.1:${tlsPort}`],
          ["127.0.0.1", `127.0.0.1:${tlsPort}`],
          ["[::1]", `[::1]:${tlsPort}`],
          ["127.0.0.1", `127.0.0.1:${h2cPort}`],
        ],
      );
      const [withSni, http11, ipv6, cleartext] = lo.lines;
      assert.equal(withSni.sni, "localhost");
      assert.deepEqual(withSni.alpn, ["h2", "http/1.1"]);
      assert.equal(http11.sni, undefined);
      assert.deepEqual(http11.alpn, ["http/1.1"]);
      assert.deepEqual(ipv6.alpn, ["h2", "http/1.1"]);
      for (const line of [withSni, http11, ipv6]) {
        assert.match(line.ja4 ?? "", /^t13[di]\d{4}(h2|h1)_[0-9a-f]{12}_[0-9a-f]{12}$/);
        assert.equal(line.akamai, undefined);
      }
      assert.equal(cleartext.ja4, undefined);
      assert.match(cleartext.akamai ?? "", /^[0-9:;]*\|\d+\|[0-9:,]+\|m,p,s,a$/);

      const rawSigs = await p0fRawSigs(file, `${dir}/p0f.log`);
      const ja3 = await tsharkJa3(file);
      assert.equal(rawSigs.size, 4);
      assert.equal(ja3.size, 3);
      for (const line of lo.lines) {
        assert.equal(line.p0f, rawSigs.get(port(line.client)), `p0f of ${line.client}`);
        const expected = ja3.get(port(line.client));
        assert.deepEqual(line.ja3 && [line.ja3, line.ja3_hash], expected, `JA3 of ${line.client}`);
      }

      // The same traffic in the other formats reads the same.
      await run(["editcap", "-F", "pcapng", file, `${dir}/lo.pcapng`]);
      await run(["editcap", "-F", "nsecpcap", file, `${dir}/lo-ns.pcap`]);
      const pcap = await Deno.readFile(file);
      await Deno.writeFile(`${dir}/lo-be.pcap`, toBigEndian(pcap));
      for (const name of ["lo.pcapng", "lo-ns.pcap", "lo-be.pcap"]) {
        assert.deepEqual(await fingerprint(`${dir}/${name}`), lo, name);
      }
      await Deno.writeFile(`${dir}/resegmented.pcap`, resegment(pcap, [tlsPort, h2cPort]));
      assert.deepEqual(await tsharkJa3(`${dir}/resegmented.pcap`), ja3, "tshark on the resegmented file");
      assert.deepEqual(await fingerprint(`${dir}/resegmented.pcap`), lo, "resegmented");
      for (const [name, [linkType, header]] of Object.entries(RELINKED)) {
        await Deno.writeFile(`${dir}/relinked.pcap`, relink(pcap, linkType, header));
        // tshark decoding the rewritten file alike shows the headers are built right.
        assert.deepEqual(await tsharkJa3(`${dir}/relinked.pcap`), ja3, `tshark on ${name}`);
        assert.deepEqual(await fingerprint(`${dir}/relinked.pcap`), lo, name);
      }
      // Every packet twice, from two interfaces of different link types; then two sections in one file.
      const [linkType, header] = RELINKED["Linux cooked v2 (SLL2)"];
      await Deno.writeFile(`${dir}/sll2.pcap`, relink(pcap, linkType, header));
      await run(["mergecap", "-F", "pcapng", "-w", `${dir}/two-interfaces.pcapng`, file, `${dir}/sll2.pcap`]);
      assert.deepEqual(await fingerprint(`${dir}/two-interfaces.pcapng`), lo, "two interfaces");
      const section = await Deno.readFile(`${dir}/lo.pcapng`);
      const sections = new Uint8Array(2 * section.length);
      sections.set(section);
      sections.set(section, section.length);
      await Deno.writeFile(`${dir}/two-sections.pcapng`, sections);
      assert.deepEqual(await fingerprint(`${dir}/two-sections.pcapng`), lo, "two sections");

      // A file cut inside a packet record: the connections read so far, then the error.
      const cut = `${dir}/cut.pcap`;
      await Deno.writeFile(cut, pcap.subarray(0, pcap.length - 10));
      const truncated = await fingerprint(cut);
      assert.equal(truncated.code, 1);
      assert.deepEqual(truncated.lines.map((l) => l.client), lo.lines.map((l) => l.client));
      assert.match(
        truncated.stderr,
        /^fingerprint: .*cut\.pcap: truncated file: packet record \d+ at byte \d+ is cut short\n$/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("the fingerprint tool rejects what it cannot read with one line and status 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hfp-fingerprint-tool-" });
  try {
    const cases: [string, Uint8Array | undefined, RegExp][] = [
      ["missing.pcap", undefined, /^fingerprint: cannot read .*missing\.pcap: no such file$/m],
      [
        "garbage.pcap",
        new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        /not a pcap or pcapng file/,
      ],
      ["empty.pcap", new Uint8Array(), /not a pcap or pcapng file/],
      // A classic pcap header for link type 147 (user-defined), no packets.
      [
        "dlt147.pcap",
        Uint8Array.from([
          0xd4,
          0xc3,
          0xb2,
          0xa1,
          2,
          0,
          4,
          0,
          ...new Array(8).fill(0),
          0,
          0,
          4,
          0,
          147,
          0,
          0,
          0,
        ]),
        /unsupported link type 147/,
      ],
      ["header-only.pcap", Uint8Array.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]), /truncated file/],
    ];
    for (const [name, bytes, error] of cases) {
      if (bytes) await Deno.writeFile(`${dir}/${name}`, bytes);
      const result = await fingerprint(`${dir}/${name}`);
      assert.equal(result.code, 1, name);
      assert.deepEqual(result.lines, [], name);
      assert.match(result.stderr, error, name);
      assert.equal(result.stderr.trim().split("\n").length, 1, name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
