/**
 * Raw-socket tools for tests that attack the running proxy: TLS record and HTTP/2 frame builders, a TLS
 * client (`node:tls`) over which hand-made HTTP/2 frames are sent, a reader that collects everything the
 * proxy answers until it closes, the resident memory of a process, and an honest curl loop that runs
 * alongside an attack and reports every failure it saw.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import tls from "node:tls";
import { parseIPv4, parseIPv6 } from "../../shared/ebpf_abi.ts";
import { parseEchoes, type Proxy, run } from "./proxy_harness.ts";

/** The HTTP/2 client connection preface (RFC 9113 §3.4). */
export const PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** HTTP/2 frame types (RFC 9113 §6). */
export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

/** HTTP/2 frame flags. */
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

/** Concatenates byte arrays, numbers lists and (UTF-8) strings. */
export function concat(...parts: Array<Uint8Array | number[] | string>): Uint8Array {
  return Buffer.concat(parts.map((p) => typeof p === "string" ? Buffer.from(p) : Buffer.from(p)));
}

/** A TLS record of `type` (22 handshake, 21 alert) around `payload`. */
export function tlsRecord(type: number, payload: Uint8Array, version = 0x0301): Uint8Array {
  return concat([type, version >> 8, version & 0xff, payload.length >> 8, payload.length & 0xff], payload);
}

/** One HTTP/2 frame. */
export function h2Frame(type: number, flags: number, stream: number, payload: Uint8Array | number[] = []) {
  const body = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  const n = body.length;
  return concat(
    [n >> 16, (n >> 8) & 0xff, n & 0xff, type, flags],
    [(stream >>> 24) & 0x7f, (stream >> 16) & 0xff, (stream >> 8) & 0xff, stream & 0xff],
    body,
  );
}

/** A SETTINGS frame with `pairs` of identifier and value. */
export function h2Settings(pairs: Array<[number, number]> = []): Uint8Array {
  const p = new Uint8Array(pairs.length * 6);
  const v = new DataView(p.buffer);
  pairs.forEach(([id, value], i) => {
    v.setUint16(i * 6, id);
    v.setUint32(i * 6 + 2, value);
  });
  return h2Frame(FRAME.SETTINGS, 0, 0, p);
}

/** An HPACK integer with an `prefixBits`-bit prefix, `first` holding the bits above the prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  for (value -= max; value >= 128; value >>= 7) out.push((value & 0x7f) | 0x80);
  out.push(value);
  return out;
}

/** An HPACK header block: every field a literal without indexing, new name, no Huffman (RFC 7541 §6.2.2). */
export function hpack(fields: Array<[string, string]>): Uint8Array {
  return concat(
    ...fields.flatMap(([name, value]) => {
      const [n, v] = [Buffer.from(name), Buffer.from(value)];
      return [[0x00], hpackInt(n.length, 7, 0), n, hpackInt(v.length, 7, 0), v];
    }),
  );
}

/** The header block of `GET path` on stream-level, with extra fields. */
export function requestBlock(scheme: "https" | "http", path: string, extra: Array<[string, string]> = []) {
  return hpack([
    [":method", "GET"],
    [":scheme", scheme],
    [":authority", "localhost"],
    [":path", path],
    ...extra,
  ]);
}

/** A parsed HTTP/2 frame header. */
export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Uint8Array;
}

/** Splits a byte stream into HTTP/2 frames; a partial last frame is left out. */
export function parseFrames(bytes: Uint8Array): Frame[] {
  const frames: Frame[] = [];
  for (let at = 0; at + 9 <= bytes.length;) {
    const length = (bytes[at] << 16) | (bytes[at + 1] << 8) | bytes[at + 2];
    if (at + 9 + length > bytes.length) break;
    const stream = new DataView(bytes.buffer, bytes.byteOffset + at + 5, 4).getUint32(0) & 0x7fffffff;
    frames.push({
      type: bytes[at + 3],
      flags: bytes[at + 4],
      stream,
      payload: bytes.subarray(at + 9, at + 9 + length),
    });
    at += 9 + length;
  }
  return frames;
}

/** The error code of the first GOAWAY among `frames`, or undefined. */
export function goawayCode(frames: Frame[]): number | undefined {
  const f = frames.find((f) => f.type === FRAME.GOAWAY);
  return f === undefined ? undefined : new DataView(f.payload.buffer, f.payload.byteOffset + 4).getUint32(0);
}

/** What the proxy sent on a connection before it closed (or before the deadline, with `closed` false). */
export interface Received {
  bytes: Uint8Array;
  closed: boolean;
}

/** A connection an attack writes to; `received` settles on close or after `deadlineMs`. */
export interface AttackConn extends Disposable {
  /** Writes all bytes; false when the proxy closed or stopped reading for `writeMs`. */
  write(bytes: Uint8Array): Promise<boolean>;
  /** Half-closes: the proxy reads EOF. */
  closeWrite(): Promise<void>;
  /** Settles once the proxy sent something, or closed, or after `deadlineMs`. */
  answered(deadlineMs: number): Promise<void>;
  /** Everything read so far, and whether the proxy has closed. */
  received(deadlineMs: number): Promise<Received>;
}

function collector() {
  const chunks: Uint8Array[] = [];
  let closed = false;
  let onClose = () => {};
  const closedP = new Promise<void>((r) => onClose = r);
  let onData = () => {};
  const dataP = new Promise<void>((r) => onData = r);
  const until = async (p: Promise<void>, ms: number) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([p, new Promise((r) => timer = setTimeout(r, ms))]);
    clearTimeout(timer);
  };
  return {
    push: (c: Uint8Array) => {
      chunks.push(c);
      onData();
    },
    close: () => {
      closed = true;
      onClose();
    },
    answered: (deadlineMs: number) => until(Promise.race([dataP, closedP]), deadlineMs),
    async received(deadlineMs: number): Promise<Received> {
      await until(closedP, deadlineMs);
      return { bytes: concat(...chunks), closed };
    },
  };
}

/** A raw TCP connection to `port` whose reads are collected in the background. */
export async function rawConnect(port: number, writeMs = 5000): Promise<AttackConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const c = collector();
  (async () => {
    const buf = new Uint8Array(16 * 1024);
    try {
      for (let n; (n = await conn.read(buf)) !== null;) c.push(buf.slice(0, n));
    } catch {
      // reset by the proxy: closed as well
    }
    c.close();
  })();
  return {
    async write(bytes) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<boolean>((r) => timer = setTimeout(() => r(false), writeMs));
      const wrote = (async () => {
        for (let rest = bytes; rest.length > 0;) rest = rest.subarray(await conn.write(rest));
        return true;
      })().catch(() => false);
      const ok = await Promise.race([wrote, stalled]);
      clearTimeout(timer);
      return ok;
    },
    closeWrite: () => conn.closeWrite().catch(() => {}),
    answered: c.answered,
    received: c.received,
    [Symbol.dispose]: () => {
      try {
        conn.close();
      } catch {
        // closed already
      }
    },
  };
}

/** A TLS connection to `port` offering `alpn`; rejects when the handshake fails. */
export function tlsConnect(port: number, alpn = ["h2"], writeMs = 5000): Promise<AttackConn> {
  const socket = tls.connect({ host: "127.0.0.1", port, ALPNProtocols: alpn, rejectUnauthorized: false });
  const c = collector();
  socket.on("data", (chunk: Uint8Array) => c.push(new Uint8Array(chunk)));
  socket.on("close", c.close);
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.once("secureConnect", () => {
      socket.on("error", () => {});
      resolve({
        write(bytes) {
          if (socket.destroyed) return Promise.resolve(false);
          if (socket.write(bytes)) return Promise.resolve(true);
          return new Promise<boolean>((r) => {
            const finish = (ok: boolean) => {
              clearTimeout(timer);
              socket.off("drain", drained).off("close", closed);
              r(ok);
            };
            const drained = () => finish(true);
            const closed = () => finish(false);
            const timer = setTimeout(() => finish(false), writeMs);
            socket.once("drain", drained).once("close", closed);
          });
        },
        closeWrite: () => new Promise<void>((r) => socket.end(r)),
        answered: c.answered,
        received: c.received,
        [Symbol.dispose]: () => socket.destroy(),
      });
    });
  });
}

/** Resident memory of process `pid` in KiB; the proxy's workers are threads, counted in it. */
export async function rssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]);
}

/** What an honest client saw while it ran. */
export interface Honest {
  ok: number;
  failed: string[];
}

/**
 * Honest HTTP/2 requests with curl, one every `pauseMs` or so, until `stop` settles (at most `max`); each
 * must reach the backend with its JA4. `url` is the proxy's HTTPS URL of a path the echo backend answers.
 * The pause keeps the number of TLS connections, and so the proxy's heap growth, small next to an attack.
 */
export async function honestLoop(
  url: string,
  stop: Promise<unknown>,
  max = 2000,
  pauseMs = 50,
): Promise<Honest> {
  let done = false;
  stop.finally(() => done = true);
  const result: Honest = { ok: 0, failed: [] };
  const path = new URL(url).pathname;
  for (let i = 0; i < max && (!done || result.ok === 0); i++) {
    const r = await run(["curl", "-sk", "--http2", "--max-time", "10", url]);
    const [echo] = parseEchoes(r.stdout);
    if (r.code === 0 && echo?.path === path && echo.headers["x-tls-ja4"]) result.ok++;
    else result.failed.push(`exit ${r.code}: ${r.stderr}${r.stdout.slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  return result;
}

/** The handshake bytes of TLS records (the payloads of every record in `bytes`, concatenated). */
function recordPayloads(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let at = 0; at + 5 <= bytes.length;) {
    const n = (bytes[at + 3] << 8) | bytes[at + 4];
    parts.push(bytes.subarray(at + 5, at + 5 + n));
    at += 5 + n;
  }
  return concat(...parts);
}

/** The same TLS handshake bytes re-framed into records of at most `size` payload bytes each. */
export function fragmentRecords(bytes: Uint8Array, size: number): Uint8Array {
  const handshake = recordPayloads(bytes);
  const version = (bytes[1] << 8) | bytes[2];
  const records: Uint8Array[] = [];
  for (let at = 0; at < handshake.length; at += size) {
    records.push(tlsRecord(0x16, handshake.subarray(at, at + size), version));
  }
  return concat(...records);
}

/** A TCP relay in front of the proxy that rewrites and re-segments each client's first flight. */
export interface Splitter extends AsyncDisposable {
  port: number;
  /** The first flights as they were sent on, one per connection. */
  sent: Uint8Array[];
}

/**
 * Listens on a loopback port and relays each connection to `target`, except that the client's
 * ClientHello (its first `helloLength(bytes) === 0` bytes) goes through `rewrite`, and is written in
 * `segment`-byte writes, each its own TCP segment (Nagle off, a timer tick between writes).
 */
export function splitter(
  target: number,
  segment: number,
  rewrite: (hello: Uint8Array) => Uint8Array,
  helloNeeded: (bytes: Uint8Array) => number | string,
): Splitter {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sent: Uint8Array[] = [];
  const open = new Set<Deno.Conn>();
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(16 * 1024);
    try {
      for (let n; (n = await from.read(buf)) !== null;) await to.write(buf.slice(0, n));
      await to.closeWrite();
    } catch {
      // either side closed
    }
  };
  const closeQuietly = (c: Deno.Conn) => {
    open.delete(c);
    try {
      c.close();
    } catch {
      // closed already
    }
  };
  const relay = async (client: Deno.TcpConn) => {
    open.add(client);
    let server: Deno.TcpConn | undefined;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: target });
      open.add(server);
      server.setNoDelay(true);
      let hello: Uint8Array = new Uint8Array(0);
      const buf = new Uint8Array(16 * 1024);
      while (helloNeeded(hello) !== 0) {
        const n = await client.read(buf);
        if (n === null) break;
        hello = concat(hello, buf.subarray(0, n));
      }
      const out = rewrite(hello);
      sent.push(out);
      for (let at = 0; at < out.length; at += segment) {
        await server.write(out.subarray(at, at + segment));
        await new Promise((r) => setTimeout(r, 0));
      }
      await Promise.all([pipe(client, server), pipe(server, client)]);
    } finally {
      // Also when the proxy closed mid-hello: the client must see it.
      closeQuietly(client);
      if (server) closeQuietly(server);
    }
  };
  (async () => {
    for await (const conn of listener) relay(conn).catch(() => {});
  })().catch(() => {});
  return {
    port: listener.addr.port,
    sent,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      for (const c of open) closeQuietly(c);
      await new Promise((r) => setTimeout(r, 0));
    },
  };
}

/** One HTTP/1.1 request over TLS (any certificate) to 127.0.0.1:`port`; returns the raw response. */
export function httpsOnce(port: number, request: string): Promise<string> {
  const socket = tls.connect({
    host: "127.0.0.1",
    port,
    ALPNProtocols: ["http/1.1"],
    rejectUnauthorized: false,
  });
  let text = "";
  return new Promise((resolve, reject) => {
    socket.on("secureConnect", () => socket.write(request));
    socket.on("data", (chunk: Uint8Array) => text += new TextDecoder().decode(chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(text));
  });
}

/** MSS 1460, NOP, NOP, SACK permitted, NOP, window scale 7. */
const FLOOD_TCP_OPTIONS = [2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7];

/**
 * An Ethernet frame with a TCP SYN from `src` to `dst`:`dstPort` (both IPv4 or both IPv6), for
 * `SEND_SYN_FLOOD`. The source port is filled in per SYN at `portOffset`; checksums stay zero, so the
 * host drops these SYNs after the capture hook (which runs before any checksum is checked) and never
 * answers the flooder.
 */
export function synFloodFrame(dstMac: Uint8Array, src: string, dst: string, dstPort: number) {
  const v6 = src.includes(":");
  const tcp = new Uint8Array(20 + FLOOD_TCP_OPTIONS.length);
  const t = new DataView(tcp.buffer);
  t.setUint16(2, dstPort);
  t.setUint32(4, 0x12345678);
  tcp[12] = (tcp.length / 4) << 4;
  tcp[13] = 0x02;
  t.setUint16(14, 64240);
  tcp.set(FLOOD_TCP_OPTIONS, 20);
  const ip = new Uint8Array(v6 ? 40 : 20);
  const i = new DataView(ip.buffer);
  if (v6) {
    ip[0] = 0x60;
    i.setUint16(4, tcp.length);
    ip[6] = 6;
    ip[7] = 64;
    ip.set(parseIPv6(src)!, 8);
    ip.set(parseIPv6(dst)!, 24);
  } else {
    ip[0] = 0x45;
    i.setUint16(2, ip.length + tcp.length);
    i.setUint16(6, 0x4000);
    ip[8] = 64;
    ip[9] = 6;
    ip.set(parseIPv4(src)!, 12);
    ip.set(parseIPv4(dst)!, 16);
  }
  const ethertype = v6 ? [0x86, 0xdd] : [0x08, 0x00];
  const frame = concat(dstMac, [0x02, 0x68, 0x66, 0x70, 0, 1, ...ethertype], ip, tcp);
  return {
    hex: Array.from(frame, (b) => b.toString(16).padStart(2, "0")).join(""),
    portOffset: 14 + ip.length,
  };
}

/**
 * A python3 script (Deno has no packet sockets) that sends, out of interface argv[1], argv[2] rounds of
 * bursts; each burst is four arguments (frame hex, port offset, first port, count): the frame once for
 * each source port `first` .. `first + count - 1`.
 */
export const SEND_SYN_FLOOD = `
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
rounds, args = int(sys.argv[2]), sys.argv[3:]
for _ in range(rounds):
    for i in range(0, len(args), 4):
        frame, offset, first, count = bytearray.fromhex(args[i]), int(args[i + 1]), int(args[i + 2]), int(args[i + 3])
        for port in range(first, first + count):
            frame[offset:offset + 2] = port.to_bytes(2, "big")
            s.send(frame)
`;

/** The MAC address of interface `ifname`. */
export async function macOf(ifname: string): Promise<Uint8Array> {
  const text = (await Deno.readTextFile(`/sys/class/net/${ifname}/address`)).trim();
  return new Uint8Array(text.split(":").map((x) => parseInt(x, 16)));
}

/** The proxy's `/ready` status, 0 while its operational endpoint is not listening yet. */
export function readyStatus(proxy: Proxy): Promise<number> {
  return proxy.ops("/ready").then((r) => r.status, () => 0);
}

/** Waits (at most 10 s, a guard against hanging) until `/ready` answers `status`; returns the last one. */
export async function readySettles(proxy: Proxy, status: number): Promise<number> {
  let last = await readyStatus(proxy);
  for (let i = 0; i < 100 && last !== status; i++) {
    await new Promise((r) => setTimeout(r, 100));
    last = await readyStatus(proxy);
  }
  return last;
}
