/**
 * Header policy between client and backend. Backends trust the fingerprint headers only because the
 * proxy is the one that sets them: copies a client sent are removed and reported, never passed on.
 *
 * @module
 */
import { HeaderList } from "./header_list.ts";
import type { FieldBlock } from "./http1_client.ts";

/** The request headers carrying fingerprints, in the order spoofing reports list them. */
export const FINGERPRINT_HEADERS = [
  "x-tls-ja4",
  "x-tls-ja4-r",
  "x-tls-ja4-o",
  "x-tls-ja4-or",
  "x-tls-ja4-s1",
  "x-tls-ja4-s1r",
  "x-tls-ja3",
  "x-tls-ja3-hash",
  "x-http2-akamai",
  "x-tcp-p0f",
] as const;

/** Set on a forwarded request whose client sent any of the proxy's own headers; lists which. */
export const SPOOFING_HEADER = "x-fingerprint-spoofing-detected";

const PROXY_OWNED: readonly string[] = [...FINGERPRINT_HEADERS, SPOOFING_HEADER];
const PROXY_OWNED_INDEX = new Map(PROXY_OWNED.map((name, i) => [name, i]));

/** Whether `name` (lower case) is a fingerprint header or the spoofing report: only the proxy sets those. */
export function isProxyOwned(name: string): boolean {
  return PROXY_OWNED_INDEX.has(name);
}

/**
 * Connection-specific headers (RFC 9110 §7.6.1, plus the proxy's own credentials): they describe the
 * client's hop and must not reach the next one. `te` goes too: the proxy speaks to backends itself.
 */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "transfer-encoding",
  "upgrade",
  "proxy-authenticate",
  "proxy-authorization",
]);

/** Set from what the proxy saw; a client's values would be lies. */
const REPLACED = new Set(["x-forwarded-host", "x-forwarded-port", "x-forwarded-proto"]);

/** What the proxy knows about the client's request beyond its headers. */
export interface ForwardContext {
  clientAddress: string;
  clientPort: number;
  proto: "https" | "http";
  /** The host as the client sent it. */
  host: string;
  /** The fingerprint headers computed for this connection; undefined when fingerprinting is off. */
  fingerprints: FieldBlock | undefined;
  /**
   * What becomes of the client's `x-forwarded-for`: `append` the client address to it (the client is a
   * trusted proxy) or `replace` it with the client address (anyone else could write any address there).
   * Default `append`.
   */
  forwardedFor?: "append" | "replace";
}

/**
 * The headers to send to the backend for a request with `incoming` headers, and the proxy-owned header
 * names the client tried to set (lower case, in `FINGERPRINT_HEADERS` order, then `SPOOFING_HEADER`).
 */
export function forwardRequestHeaders(incoming: Headers, ctx: ForwardContext): {
  headers: HeaderList;
  spoofed: string[];
} {
  const headers = new HeaderList();
  // One pass that copies what may go on: cheaper than copying everything and deleting afterwards.
  const named = connectionNames(incoming.get("connection"));
  let owned = 0; // bit i set: the client sent PROXY_OWNED[i]
  let forwardedFor: string | undefined;
  // `forEach`, not `for…of`: Deno's Headers iterator costs several times more per header.
  incoming.forEach((value, name) => {
    const index = PROXY_OWNED_INDEX.get(name);
    // Checked before `connection`, so that naming a spoofed header there cannot hide it.
    if (index !== undefined) owned |= 1 << index;
    else if (HOP_BY_HOP.has(name) || named?.has(name)) return;
    else if (name === "x-forwarded-for") forwardedFor = value;
    else if (!REPLACED.has(name)) headers.append(name, value);
  });
  // None of the names below can be in the list yet: appending them is enough.
  const client = unmapIPv4(ctx.clientAddress);
  const keep = forwardedFor !== undefined && ctx.forwardedFor !== "replace";
  headers.append("x-forwarded-for", keep ? `${forwardedFor}, ${client}` : client);
  headers.append("x-forwarded-host", ctx.host);
  headers.append("x-forwarded-port", String(ctx.clientPort));
  headers.append("x-forwarded-proto", ctx.proto);
  const spoofed = owned === 0 ? [] : PROXY_OWNED.filter((_, i) => owned & (1 << i));
  if (spoofed.length > 0) headers.append(SPOOFING_HEADER, spoofed.join(", "));
  if (ctx.fingerprints !== undefined) headers.appendBlock(ctx.fingerprints);
  return { headers, spoofed };
}

/**
 * The backend's response header fields (name/value pairs, as the backend sent them) without the ones that
 * belong to the backend connection, in the form `new Response` takes without a second copy.
 */
export function responseHeadersFromBackend(fields: ReadonlyArray<[string, string]>): Array<[string, string]> {
  const connection = fields.filter(([name]) => name.toLowerCase() === "connection").map(([, v]) => v);
  const named = connectionNames(connection.length === 0 ? null : connection.join(","));
  return fields.filter(([name]) => {
    const lower = name.toLowerCase();
    return !HOP_BY_HOP.has(lower) && !named?.has(lower);
  });
}

/** The header names a `connection` value lists as hop-by-hop (RFC 9110 §7.6.1), lower case. */
function connectionNames(value: string | null): Set<string> | undefined {
  return value === null ? undefined : new Set(value.split(",").map((token) => token.trim().toLowerCase()));
}

/** Dual-stack sockets report IPv4 clients as `::ffff:a.b.c.d`; backends expect the plain IPv4 address. */
function unmapIPv4(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}
