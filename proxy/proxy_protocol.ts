/**
 * Parses the PROXY protocol header (HAProxy's spec, versions 1 and 2) that a load balancer in front of
 * the proxy sends before the client's bytes, carrying the client's address and port. Pure: bytes in, a
 * typed outcome out, never an exception.
 *
 * @module
 */
import type { Peer } from "../shared/syn_record.ts";

/** A complete header. */
export interface ProxyHeader {
  version: 1 | 2;
  /** Bytes the header takes; the client's stream starts after them. */
  length: number;
  /**
   * The client and the address it connected to. Absent for a v1 `UNKNOWN` or a v2 `LOCAL` (the balancer's
   * own health check) and for non-TCP families: the connection's own addresses apply then.
   */
  source?: Peer;
  destination?: Peer;
}

/** Why a header was refused: logged, and counted as `huginn_bad_client_input_total{kind="bad_proxy_header"}`. */
export type ProxyHeaderProblem =
  | "bad_v1_line"
  | "bad_v1_address"
  | "oversized_v1_line"
  | "bad_v2_version"
  | "bad_v2_command"
  | "bad_v2_family"
  | "bad_v2_length"
  | "oversized_v2_header";

/** The outcome of looking at a connection's first bytes. */
export type ProxyParse =
  /** The bytes do not start with a PROXY signature. */
  | { kind: "none" }
  /** A prefix of a header (or of a signature): read more. */
  | { kind: "incomplete" }
  | { kind: "header"; header: ProxyHeader }
  | { kind: "invalid"; problem: ProxyHeaderProblem };

const V1_SIGNATURE = new TextEncoder().encode("PROXY ");
const V2_SIGNATURE = new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** The spec's bound on a v1 line, CRLF included. */
const V1_MAX = 107;
/** v2 allows 64 KiB of TLVs; no balancer sends more than a few hundred bytes, so more is refused. */
export const V2_MAX = 16 + 4096;

/** Whether `bytes` starts with `signature`, or could once more bytes arrive. */
function startsWith(bytes: Uint8Array, signature: Uint8Array): "yes" | "maybe" | "no" {
  const n = Math.min(bytes.length, signature.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== signature[i]) return "no";
  return n === signature.length ? "yes" : "maybe";
}

/**
 * Parses the header at the start of `bytes`. Returns `none` as soon as the bytes cannot be a PROXY
 * signature, so a caller that makes the header optional can tell a direct client after its first read.
 */
export function parseProxyHeader(bytes: Uint8Array): ProxyParse {
  const v2 = startsWith(bytes, V2_SIGNATURE);
  if (v2 === "yes") return parseV2(bytes);
  const v1 = startsWith(bytes, V1_SIGNATURE);
  if (v1 === "yes") return parseV1(bytes);
  return v1 === "maybe" || v2 === "maybe" ? { kind: "incomplete" } : { kind: "none" };
}

const PORT = /^(?:0|[1-9]\d{0,4})$/;
const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseV1(bytes: Uint8Array): ProxyParse {
  const end = bytes.indexOf(0x0a);
  if (end < 0) return bytes.length >= V1_MAX ? invalid("oversized_v1_line") : { kind: "incomplete" };
  if (end + 1 > V1_MAX) return invalid("oversized_v1_line");
  if (bytes[end - 1] !== 0x0d) return invalid("bad_v1_line");
  // The line is ASCII by the spec; anything else fails the checks below.
  const line = String.fromCharCode(...bytes.subarray(0, end - 1));
  const fields = line.split(" ");
  const length = end + 1;
  if (fields[1] === "UNKNOWN") return { kind: "header", header: { version: 1, length } };
  if (fields.length !== 6 || (fields[1] !== "TCP4" && fields[1] !== "TCP6")) return invalid("bad_v1_line");
  const [, family, src, dst, srcPort, dstPort] = fields;
  const validAddress = (a: string) => family === "TCP4" ? DOTTED_QUAD.test(a) : isIPv6(a);
  const validPort = (p: string) => PORT.test(p) && Number(p) <= 65535;
  if (!validAddress(src) || !validAddress(dst) || !validPort(srcPort) || !validPort(dstPort)) {
    return invalid("bad_v1_address");
  }
  const canonical = (a: string) => family === "TCP4" ? a : canonicalIPv6(a);
  return {
    kind: "header",
    header: {
      version: 1,
      length,
      source: { address: canonical(src), port: Number(srcPort) },
      destination: { address: canonical(dst), port: Number(dstPort) },
    },
  };
}

const LOCAL = 0x0;
const PROXY = 0x1;
const AF_UNSPEC = 0x0;
const TCP4 = 0x11;
const TCP6 = 0x21;
const UNIX_STREAM = 0x31;

function parseV2(bytes: Uint8Array): ProxyParse {
  if (bytes.length < 16) return { kind: "incomplete" };
  if (bytes[12] >> 4 !== 2) return invalid("bad_v2_version");
  const command = bytes[12] & 0x0f;
  if (command !== LOCAL && command !== PROXY) return invalid("bad_v2_command");
  const family = bytes[13];
  const length = 16 + ((bytes[14] << 8) | bytes[15]);
  if (length > V2_MAX) return invalid("oversized_v2_header");
  if (bytes.length < length) return { kind: "incomplete" };
  const body = bytes.subarray(16, length);
  if (command === LOCAL) return { kind: "header", header: { version: 2, length } };
  switch (family) {
    case TCP4:
      return endpoints(body, length, 4, (bytes) => bytes.join("."));
    case TCP6:
      return endpoints(body, length, 16, formatIPv6);
    // The spec lets a receiver accept these and use the connection's own addresses.
    case AF_UNSPEC:
    case UNIX_STREAM:
      return { kind: "header", header: { version: 2, length } };
    default:
      // Datagram families over a stream connection, or unknown ones.
      return invalid("bad_v2_family");
  }
}

/**
 * A TCP4 or TCP6 header's addresses: source and destination address of `size` bytes each, then source and
 * destination port; anything after them (TLVs) is skipped.
 */
function endpoints(
  body: Uint8Array,
  length: number,
  size: number,
  format: (address: Uint8Array) => string,
): ProxyParse {
  if (body.length < 2 * size + 4) return invalid("bad_v2_length");
  const port = (at: number) => (body[at] << 8) | body[at + 1];
  return {
    kind: "header",
    header: {
      version: 2,
      length,
      source: { address: format(body.subarray(0, size)), port: port(2 * size) },
      destination: { address: format(body.subarray(size, 2 * size)), port: port(2 * size + 2) },
    },
  };
}

function invalid(problem: ProxyHeaderProblem): ProxyParse {
  return { kind: "invalid", problem };
}

function isIPv6(text: string): boolean {
  return /^[0-9a-fA-F:.]+$/.test(text) && text.includes(":") && URL.canParse(`http://[${text}]/`);
}

/** The compressed form sockets report (`2001:db8::1`), so that filters and logs see one spelling. */
function canonicalIPv6(text: string): string {
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

function formatIPv6(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return canonicalIPv6(groups.join(":"));
}
