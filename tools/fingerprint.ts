/**
 * `deno task fingerprint FILE`: fingerprints every TCP connection in a pcap or pcapng capture.
 *
 * Prints one JSON line per connection, in order of first packet, with the fingerprints the proxy would
 * compute for it (p0f from the client's SYN; JA4 family, JA3, SNI and ALPN from its ClientHello; Akamai
 * from a cleartext HTTP/2 prior-knowledge stream). Fingerprints that cannot be computed are left out.
 * On a damaged file it prints what it read before the damage, then the error, and exits with status 1.
 *
 * @module
 */

import { akamai, clientHelloNeeded, fingerprintClientHello, p0fSignature } from "../shared/fingerprint.ts";
import { ipPacket, readCapture } from "./pcap.ts";
import { type Connection, Connections, parseSegment } from "./tcp_streams.ts";

const H2_PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const TLS_HANDSHAKE = 0x16;

/** The output line for one connection: addresses, then each fingerprint that could be computed. */
function describe(connection: Connection): Record<string, unknown> {
  const line: Record<string, unknown> = { client: connection.client, server: connection.server };
  if (connection.syn) {
    const p0f = p0fSignature(connection.syn);
    if (p0f.ok) line.p0f = p0f.value;
  }
  const stream = connection.toServer.bytes();
  if (stream[0] === TLS_HANDSHAKE && clientHelloNeeded(stream) === 0) {
    const tls = fingerprintClientHello(stream);
    if (tls.ok) {
      const { versions: _, alpn, ...fields } = tls.value;
      Object.assign(line, fields);
      if (alpn.length > 0) line.alpn = alpn;
    }
  } else if (startsWith(stream, H2_PREFACE)) {
    const h2 = akamai(stream);
    if (h2 !== "need_more" && h2.ok) line.akamai = h2.value;
  }
  return line;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

/** Reads `path` and writes the lines; returns the exit status. */
async function main(path: string): Promise<number> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    const reason = e instanceof Deno.errors.NotFound ? "no such file" : e instanceof Error ? e.message : e;
    console.error(`fingerprint: cannot read ${path}: ${reason}`);
    return 1;
  }
  const connections = new Connections();
  let error: string | undefined;
  for await (const item of readCapture(file.readable)) {
    if ("error" in item) {
      error = item.error;
      break;
    }
    const ip = ipPacket(item);
    const segment = ip && parseSegment(ip);
    if (segment) connections.add(ip, segment);
  }
  for (const connection of connections.all) console.log(JSON.stringify(describe(connection)));
  if (error === undefined) return 0;
  console.error(`fingerprint: ${path}: ${error}`);
  return 1;
}

if (import.meta.main) {
  if (Deno.args.length !== 1) {
    console.error("usage: deno task fingerprint FILE.pcap|FILE.pcapng");
    Deno.exit(2);
  }
  Deno.exit(await main(Deno.args[0]));
}
