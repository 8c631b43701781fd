/**
 * Reads capture files: classic pcap (either byte order, µs or ns timestamps) and pcapng (SHB, IDB, EPB,
 * SPB; several sections and interfaces), and strips the link layer down to the IP packet.
 *
 * The reader streams, so a capture larger than memory can be read. It never throws for bad input: a
 * damaged file ends the sequence with a `CaptureError` after every frame read before the damage.
 *
 * @module
 */

/** A captured frame and the link type of the interface it was captured on. */
export interface Frame {
  linkType: number;
  data: Uint8Array;
}

/** Why a capture could not be read (further). */
export interface CaptureError {
  error: string;
}

/** Link types `ipPacket` understands. */
export const LINK_TYPES: ReadonlyMap<number, string> = new Map([
  [0, "BSD loopback"],
  [1, "Ethernet"],
  [101, "raw IP"],
  [113, "Linux cooked (SLL)"],
  [276, "Linux cooked v2 (SLL2)"],
]);

const PCAP_MICRO = 0xa1b2c3d4;
const PCAP_NANO = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BYTE_ORDER = 0x1a2b3c4d;
const PCAPNG_IDB = 1;
const PCAPNG_SPB = 3;
const PCAPNG_EPB = 6;
/** Larger records are taken as corruption rather than buffered (pcapng blocks hold a whole frame). */
const MAX_RECORD = 16 * 1024 * 1024;

/** Pulls exact byte counts out of a stream. */
class Reader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #pos = 0;
  /** Bytes consumed so far, for error messages. */
  offset = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** The next `n` bytes without consuming them; fewer only where the input ends. */
  async peek(n: number): Promise<Uint8Array> {
    while (this.#buf.length - this.#pos < n) {
      const { value, done } = await this.#reader.read();
      if (done) break;
      const rest = this.#buf.subarray(this.#pos);
      if (rest.length === 0) this.#buf = value;
      else {
        this.#buf = new Uint8Array(rest.length + value.length);
        this.#buf.set(rest);
        this.#buf.set(value, rest.length);
      }
      this.#pos = 0;
    }
    return this.#buf.subarray(this.#pos, this.#pos + n);
  }

  /** The next `n` bytes; fewer only where the input ends. */
  async read(n: number): Promise<Uint8Array> {
    const out = await this.peek(n);
    this.#pos += out.length;
    this.offset += out.length;
    return out;
  }

  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Every frame of a pcap or pcapng capture, in file order. The last item is a `CaptureError` when the
 * input is not a capture, uses an unsupported link type, or is damaged or truncated.
 */
export async function* readCapture(stream: ReadableStream<Uint8Array>): AsyncGenerator<Frame | CaptureError> {
  const reader = new Reader(stream);
  try {
    const magic = await reader.peek(4);
    if (magic.length < 4) {
      yield { error: "not a pcap or pcapng file (too short)" };
      return;
    }
    const be = view(magic).getUint32(0);
    const le = view(magic).getUint32(0, true);
    let error: CaptureError | undefined;
    if (be === PCAPNG_SHB) error = yield* readPcapng(reader);
    else if (le === PCAP_MICRO || le === PCAP_NANO) error = yield* readPcap(reader, true);
    else if (be === PCAP_MICRO || be === PCAP_NANO) error = yield* readPcap(reader, false);
    else error = { error: "not a pcap or pcapng file (unknown magic number)" };
    if (error) yield error;
  } catch (e) {
    // The file itself failed (e.g. EIO): not a format problem.
    yield { error: `read failed: ${e instanceof Error ? e.message : String(e)}` };
  } finally {
    await reader.cancel().catch(() => {});
  }
}

type Frames = AsyncGenerator<Frame, CaptureError | undefined>;

function unsupported(linkType: number): CaptureError {
  const supported = [...LINK_TYPES].map(([type, name]) => `${type} ${name}`).join(", ");
  return { error: `unsupported link type ${linkType} (supported: ${supported})` };
}

function truncated(what: string, at: number): CaptureError {
  return { error: `truncated file: ${what} at byte ${at} is cut short` };
}

function malformed(what: string, at: number): CaptureError {
  return { error: `malformed file: ${what} at byte ${at}` };
}

async function* readPcap(reader: Reader, littleEndian: boolean): Frames {
  const header = await reader.read(24);
  if (header.length < 24) return truncated("the pcap file header", 0);
  // The upper bits of the link-type field carry FCS information.
  const linkType = view(header).getUint32(20, littleEndian) & 0xffff;
  if (!LINK_TYPES.has(linkType)) return unsupported(linkType);
  for (let n = 1;; n++) {
    const at = reader.offset;
    const record = await reader.read(16);
    if (record.length === 0) return;
    if (record.length < 16) return truncated(`packet record ${n}`, at);
    const captured = view(record).getUint32(8, littleEndian);
    if (captured > MAX_RECORD) return malformed(`packet record ${n} claims ${captured} bytes`, at);
    const data = await reader.read(captured);
    if (data.length < captured) return truncated(`packet record ${n}`, at);
    yield { linkType, data };
  }
}

async function* readPcapng(reader: Reader): Frames {
  let littleEndian = true;
  /** The interfaces of the current section, by interface id. */
  let interfaces: { linkType: number; snapLength: number }[] = [];
  for (let n = 1;; n++) {
    const at = reader.offset;
    const head = await reader.read(8);
    if (head.length === 0) return;
    if (head.length < 8) return truncated(`block ${n}`, at);
    const isSection = view(head).getUint32(0) === PCAPNG_SHB;
    if (isSection) {
      // A section header sets the byte order of everything up to the next one.
      const order = await reader.read(4);
      if (order.length < 4) return truncated(`block ${n}`, at);
      if (view(order).getUint32(0, true) === PCAPNG_BYTE_ORDER) littleEndian = true;
      else if (view(order).getUint32(0) === PCAPNG_BYTE_ORDER) littleEndian = false;
      else return malformed(`section header ${n} without byte-order magic`, at);
      interfaces = [];
    }
    const type = view(head).getUint32(0, littleEndian);
    const length = view(head).getUint32(4, littleEndian);
    if (length < (isSection ? 28 : 12) || length % 4 !== 0 || length > MAX_RECORD) {
      return malformed(`block ${n} has length ${length}`, at);
    }
    const rest = await reader.read(length - (isSection ? 12 : 8));
    if (rest.length < length - (isSection ? 12 : 8)) return truncated(`block ${n}`, at);
    if (isSection) continue;
    const body = rest.subarray(0, rest.length - 4);
    const v = view(body);
    if (type === PCAPNG_IDB) {
      if (body.length < 8) return malformed(`interface block ${n}`, at);
      const linkType = v.getUint16(0, littleEndian);
      if (!LINK_TYPES.has(linkType)) return unsupported(linkType);
      interfaces.push({ linkType, snapLength: v.getUint32(4, littleEndian) });
    } else if (type === PCAPNG_EPB) {
      const iface = body.length >= 20 ? interfaces[v.getUint32(0, littleEndian)] : undefined;
      const captured = body.length >= 20 ? v.getUint32(12, littleEndian) : 0;
      if (!iface || captured > body.length - 20) return malformed(`packet block ${n}`, at);
      yield { linkType: iface.linkType, data: body.subarray(20, 20 + captured) };
    } else if (type === PCAPNG_SPB) {
      // A simple packet block belongs to the first interface and records only the original length.
      const iface = interfaces[0];
      if (!iface || body.length < 4) return malformed(`packet block ${n}`, at);
      const captured = Math.min(v.getUint32(0, littleEndian), iface.snapLength || Infinity, body.length - 4);
      yield { linkType: iface.linkType, data: body.subarray(4, 4 + captured) };
    }
  }
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
/** 802.1Q, 802.1ad and the pre-standard QinQ tag. */
const VLAN_TAGS = [0x8100, 0x88a8, 0x9100];

/** The IP packet inside a frame, or undefined when the frame carries something else. */
export function ipPacket(frame: Frame): Uint8Array | undefined {
  const { data } = frame;
  const v = view(data);
  let offset: number;
  let etherType: number | undefined;
  switch (frame.linkType) {
    case 0: // The address family is in the capturing host's byte order; the IP version nibble suffices.
      offset = 4;
      break;
    case 101:
      offset = 0;
      break;
    case 1:
      if (data.length < 14) return undefined;
      offset = 14;
      etherType = v.getUint16(12);
      for (let tags = 0; tags < 2 && VLAN_TAGS.includes(etherType) && data.length >= offset + 4; tags++) {
        etherType = v.getUint16(offset + 2);
        offset += 4;
      }
      break;
    case 113:
      if (data.length < 16) return undefined;
      offset = 16;
      etherType = v.getUint16(14);
      break;
    case 276:
      if (data.length < 20) return undefined;
      offset = 20;
      etherType = v.getUint16(0);
      break;
    default:
      return undefined;
  }
  if (data.length <= offset) return undefined;
  const version = data[offset] >> 4;
  if (etherType === undefined ? version !== 4 && version !== 6 : !matches(etherType, version)) {
    return undefined;
  }
  return data.subarray(offset);
}

function matches(etherType: number, version: number): boolean {
  return (etherType === ETHERTYPE_IPV4 && version === 4) || (etherType === ETHERTYPE_IPV6 && version === 6);
}
