/**
 * Groups captured TCP segments into connections and puts the start of each client's byte stream back
 * in order, by sequence number, despite loss, reordering and retransmission.
 *
 * Only the first `STREAM_LIMIT` bytes of the client→server direction are kept: every fingerprint here
 * is computed from the connection's opening bytes.
 *
 * @module
 */

/** Client bytes kept per connection: the ClientHello buffering cap and the HTTP/2 capture cap. */
export const STREAM_LIMIT = 64 * 1024;

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

/** A TCP segment's addressing, control fields and payload, read from an IP packet. */
export interface Segment {
  source: string;
  destination: string;
  seq: number;
  ack: number;
  flags: number;
  payload: Uint8Array;
}

/** One TCP connection, named from the side that opened it. */
export interface Connection {
  /** `ip:port`, IPv6 as `[addr]:port`. */
  client: string;
  server: string;
  /** The client's first SYN, from its IP header, when the capture holds it. */
  syn?: Uint8Array;
  /** The client→server bytes, in order. */
  toServer: Reassembly;
}

/**
 * The TCP segment in an IP packet, bounded by the IP length fields; undefined for anything else,
 * including IP fragments and IPv6 packets with extension headers.
 */
export function parseSegment(ip: Uint8Array): Segment | undefined {
  const v = new DataView(ip.buffer, ip.byteOffset, ip.byteLength);
  let header: number, end: number, source: string, destination: string;
  if (ip.length >= 20 && ip[0] >> 4 === 4) {
    header = (ip[0] & 0x0f) * 4;
    if (header < 20 || ip[9] !== 6 || (v.getUint16(6) & 0x3fff) !== 0) return undefined;
    end = v.getUint16(2);
    source = ip.subarray(12, 16).join(".");
    destination = ip.subarray(16, 20).join(".");
  } else if (ip.length >= 40 && ip[0] >> 4 === 6) {
    if (ip[6] !== 6) return undefined;
    header = 40;
    end = 40 + v.getUint16(4);
    source = `[${ipv6Text(ip.subarray(8, 24))}]`;
    destination = `[${ipv6Text(ip.subarray(24, 40))}]`;
  } else return undefined;
  const tcp = ip.subarray(header, Math.min(end, ip.length));
  if (tcp.length < 20) return undefined;
  const dataOffset = (tcp[12] >> 4) * 4;
  if (dataOffset < 20 || dataOffset > tcp.length) return undefined;
  const t = new DataView(tcp.buffer, tcp.byteOffset, tcp.byteLength);
  return {
    source: `${source}:${t.getUint16(0)}`,
    destination: `${destination}:${t.getUint16(2)}`,
    seq: t.getUint32(4),
    ack: t.getUint32(8),
    flags: tcp[13],
    payload: tcp.subarray(dataOffset),
  };
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run of two or more zero groups as `::`. */
function ipv6Text(address: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((address[i] << 8) | address[i + 1]);
  let best = -1, bestLength = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j + 1;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLength).join(":")}`;
}

/** The first `STREAM_LIMIT` bytes of one direction of a TCP stream, in sequence order. */
export class Reassembly {
  /** Sequence number of byte 0, once known. */
  #base: number | undefined;
  #data = new Uint8Array(0);
  /** Bytes from 0 that are in place, with no gap. */
  #have = 0;
  /** Segments that arrived ahead of a gap, by stream offset. */
  #pending: { offset: number; bytes: Uint8Array }[] = [];
  #pendingBytes = 0;

  /** Sets the sequence number of the first data byte (the client's ISN + 1), if not set yet. */
  start(seq: number): void {
    this.#base ??= seq;
  }

  /** Adds a segment's payload. Bytes already in place win over retransmitted copies. */
  add(seq: number, payload: Uint8Array): void {
    if (payload.length === 0) return;
    // Without the SYN, the stream is taken to start at the first data seen.
    this.start(seq);
    let offset = (seq - this.#base!) >>> 0;
    // Sequence space wraps: an offset in the upper half is before byte 0 (e.g. a keep-alive probe).
    if (offset >= 2 ** 31) {
      const before = 2 ** 32 - offset;
      if (before >= payload.length) return;
      payload = payload.subarray(before);
      offset = 0;
    }
    if (offset >= STREAM_LIMIT) return;
    payload = payload.subarray(0, STREAM_LIMIT - offset);
    if (offset > this.#have) {
      if (this.#pendingBytes + payload.length <= STREAM_LIMIT) {
        this.#pending.push({ offset, bytes: payload.slice() });
        this.#pendingBytes += payload.length;
      }
      return;
    }
    this.#append(offset, payload);
    for (let i = this.#pending.findIndex((p) => p.offset <= this.#have); i >= 0;) {
      const [p] = this.#pending.splice(i, 1);
      this.#pendingBytes -= p.bytes.length;
      this.#append(p.offset, p.bytes);
      i = this.#pending.findIndex((p) => p.offset <= this.#have);
    }
  }

  /** The bytes in place from the start of the stream. */
  bytes(): Uint8Array {
    return this.#data.subarray(0, this.#have);
  }

  /** Copies the part of a segment at `offset <= have` that extends the stream. */
  #append(offset: number, bytes: Uint8Array): void {
    const fresh = bytes.subarray(this.#have - offset);
    if (fresh.length === 0) return;
    if (this.#have + fresh.length > this.#data.length) {
      const grown = new Uint8Array(Math.min(STREAM_LIMIT, Math.max(4096, 2 * (this.#have + fresh.length))));
      grown.set(this.bytes());
      this.#data = grown;
    }
    this.#data.set(fresh, this.#have);
    this.#have += fresh.length;
  }
}

/** Every connection seen, in order of first packet. */
export class Connections {
  readonly all: Connection[] = [];
  #byPair = new Map<string, { connection: Connection; isn?: number }>();

  /** Accounts one captured IP packet holding `segment`. */
  add(ip: Uint8Array, segment: Segment): void {
    const { source, destination, flags } = segment;
    const pair = source < destination ? `${source} ${destination}` : `${destination} ${source}`;
    const opening = (flags & (SYN | ACK | FIN | RST)) === SYN;
    let entry = this.#byPair.get(pair);
    // A SYN with a new ISN on a known address pair is a new connection (port reuse).
    if (!entry || (opening && entry.isn !== undefined && entry.isn !== segment.seq)) {
      // Without the SYN, a SYN-ACK still tells who the client is; otherwise assume the first sender.
      const fromServer = (flags & (SYN | ACK)) === (SYN | ACK);
      const connection = {
        client: fromServer ? destination : source,
        server: fromServer ? source : destination,
        toServer: new Reassembly(),
      };
      entry = { connection };
      this.#byPair.set(pair, entry);
      this.all.push(connection);
    }
    const { connection } = entry;
    if (source === connection.client) {
      if (opening) {
        entry.isn ??= segment.seq;
        connection.syn ??= ip.slice();
      }
      // A SYN's sequence number is consumed by the SYN itself; data (TCP Fast Open) follows it.
      const dataSeq = flags & SYN ? (segment.seq + 1) >>> 0 : segment.seq;
      if (flags & SYN) connection.toServer.start(dataSeq);
      connection.toServer.add(dataSeq, segment.payload);
    } else if ((flags & (SYN | ACK)) === (SYN | ACK)) {
      connection.toServer.start(segment.ack);
    }
  }
}
