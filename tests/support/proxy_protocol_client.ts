/**
 * A hand-written PROXY protocol client for tests: v1 and v2 headers built byte by byte (independently of
 * `proxy/proxy_protocol.ts`), and a raw exchange over a TCP connection.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";

const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** `PROXY TCP4|TCP6 src dst sport dport\r\n`. */
export function v1Header(src: string, srcPort: number, dst: string, dstPort: number): Uint8Array {
  const family = src.includes(":") ? "TCP6" : "TCP4";
  return new TextEncoder().encode(`PROXY ${family} ${src} ${dst} ${srcPort} ${dstPort}\r\n`);
}

function ipBytes(address: string): number[] {
  if (!address.includes(":")) return address.split(".").map(Number);
  const [head, tail = ""] = address.split("::");
  const groups = (s: string) => s === "" ? [] : s.split(":").map((g) => parseInt(g, 16));
  const h = groups(head);
  const t = address.includes("::") ? groups(tail) : [];
  const all = [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/** A v2 PROXY (or, with `local`, LOCAL) header over TCP4 or TCP6. */
export function v2Header(
  src: string,
  srcPort: number,
  dst: string,
  dstPort: number,
  local = false,
): Uint8Array {
  const v6 = src.includes(":");
  const body = [
    ...ipBytes(src),
    ...ipBytes(dst),
    srcPort >> 8,
    srcPort & 0xff,
    dstPort >> 8,
    dstPort & 0xff,
  ];
  return new Uint8Array([
    ...V2_SIGNATURE,
    local ? 0x20 : 0x21,
    local ? 0x00 : v6 ? 0x21 : 0x11,
    body.length >> 8,
    body.length & 0xff,
    ...body,
  ]);
}

/** An HTTP/1.1 request that closes the connection after the response. */
export function httpRequest(path: string, headers: Record<string, string> = {}): Uint8Array {
  const lines = Object.entries({ host: "test", connection: "close", ...headers }).map(([k, v]) =>
    `${k}: ${v}\r\n`
  );
  return new TextEncoder().encode(`GET ${path} HTTP/1.1\r\n${lines.join("")}\r\n`);
}

/**
 * Sends `parts` in order on a plain TCP connection (`localPort` pins the source port) and returns
 * everything received until the proxy closes; gives up after 10 s.
 */
export async function rawExchange(port: number, parts: Uint8Array[], localPort?: number): Promise<string> {
  const socket = net.connect({ host: "127.0.0.1", port, localPort });
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on("error", () => {});
    socket.on("connect", () => {
      for (const part of parts) socket.write(part);
    });
  });
  return Buffer.concat(chunks).toString();
}

/** Sends `header` in the clear, then `request` over TLS on the same connection; returns the response. */
export async function tlsExchange(port: number, header: Uint8Array, request: Uint8Array): Promise<string> {
  const raw = net.connect({ host: "127.0.0.1", port });
  await new Promise((r) => raw.once("connect", r));
  raw.write(header);
  const socket = tls.connect({ socket: raw, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  socket.on("error", () => {});
  socket.on("secureConnect", () => socket.write(request));
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  raw.destroy();
  return Buffer.concat(chunks).toString();
}
