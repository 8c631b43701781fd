/**
 * IP addresses and CIDR blocks, IPv4 and IPv6, for the trusted-proxy list and the allow/deny filters.
 * Addresses are compared as integers; an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack
 * socket reports for an IPv4 client) is the IPv4 address it carries, so one rule covers both spellings.
 *
 * @module
 */

/** An address as an integer of its family's width. */
export interface IpAddress {
  v6: boolean;
  value: bigint;
}

/** A CIDR block: the network with its host bits cleared, and the prefix length. */
export interface Cidr extends IpAddress {
  prefix: number;
}

const V4_MAPPED = 0xffffn << 32n;
const V4_MASK = 0xffffffffn;

function parseIPv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^(?:0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return undefined;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

/** The 16-bit groups of one side of `::`; an IPv4 tail counts as two groups. */
function groups(text: string, last: boolean): bigint[] | undefined {
  if (text === "") return [];
  const out: bigint[] = [];
  const parts = text.split(":");
  for (const [i, part] of parts.entries()) {
    if (last && i === parts.length - 1 && part.includes(".")) {
      const v4 = parseIPv4(part);
      if (v4 === undefined) return undefined;
      out.push(v4 >> 16n, v4 & 0xffffn);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
      out.push(BigInt(`0x${part}`));
    } else {
      return undefined;
    }
  }
  return out;
}

function parseIPv6(text: string): bigint | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = groups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1], true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill(0n), ...tail];
  return all.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/**
 * Parses an IPv4 dotted quad or an IPv6 address (without brackets; a `%zone` is ignored). IPv4-mapped
 * IPv6 addresses come back as IPv4. Returns `undefined` for anything else.
 */
export function parseIp(text: string): IpAddress | undefined {
  if (!text.includes(":")) {
    const v4 = parseIPv4(text);
    return v4 === undefined ? undefined : { v6: false, value: v4 };
  }
  const zone = text.indexOf("%");
  const v6 = parseIPv6(zone < 0 ? text : text.slice(0, zone));
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === V4_MAPPED >> 32n) return { v6: false, value: v6 & V4_MASK };
  return { v6: true, value: v6 };
}

/**
 * Parses `address/prefix` or a bare address (a block of one). Host bits below the prefix are cleared,
 * so `10.1.2.3/8` is `10.0.0.0/8`. Returns `undefined` when it is not a valid block.
 */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (ip === undefined) return undefined;
  // A mapped IPv4 block is written with an IPv6 prefix length; the block is IPv4 once parsed.
  const mapped = !ip.v6 && text.includes(":");
  const width = ip.v6 ? 128 : 32;
  let prefix = width;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(?:0|[1-9]\d{0,2})$/.test(p)) return undefined;
    prefix = Number(p) - (mapped ? 96 : 0);
    if (prefix < 0 || prefix > width) return undefined;
  }
  const host = BigInt(width - prefix);
  return { v6: ip.v6, value: (ip.value >> host) << host, prefix };
}

/** Whether `address` lies in `block`. */
function cidrContains(block: Cidr, address: IpAddress): boolean {
  if (block.v6 !== address.v6) return false;
  const host = BigInt((block.v6 ? 128 : 32) - block.prefix);
  return (address.value >> host) << host === block.value;
}

/** A set of CIDR blocks. */
export class CidrSet {
  readonly #blocks: Cidr[];

  /** Throws on an invalid block; configuration validation rejects those first. */
  constructor(blocks: readonly string[]) {
    this.#blocks = blocks.map((text) => {
      const block = parseCidr(text);
      if (block === undefined) throw new TypeError(`not a CIDR block: ${text}`);
      return block;
    });
  }

  get size(): number {
    return this.#blocks.length;
  }

  /** Whether `address` (text as a socket reports it) is in one of the blocks; never for a non-address. */
  has(address: string): boolean {
    if (this.#blocks.length === 0) return false;
    const ip = parseIp(address);
    return ip !== undefined && this.#blocks.some((block) => cidrContains(block, ip));
  }
}

/** Allow and deny lists of CIDR blocks: deny wins; a non-empty allow list admits only its blocks. */
export class IpFilter {
  readonly #allow: CidrSet;
  readonly #deny: CidrSet;

  constructor(rules: { allow: readonly string[]; deny: readonly string[] }) {
    this.#allow = new CidrSet(rules.allow);
    this.#deny = new CidrSet(rules.deny);
  }

  /** Whether a client at `address` may pass. */
  permits(address: string): boolean {
    if (this.#deny.has(address)) return false;
    return this.#allow.size === 0 || this.#allow.has(address);
  }
}
