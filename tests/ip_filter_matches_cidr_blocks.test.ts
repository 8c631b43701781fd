/**
 * CIDR blocks match IPv4 and IPv6 addresses by prefix, IPv4-mapped IPv6 addresses count as IPv4, and
 * the allow/deny filter lets deny win.
 */
import assert from "node:assert/strict";
import { CidrSet, IpFilter, parseCidr, parseIp } from "../proxy/ip_filter.ts";

Deno.test("addresses parse in every spelling and nothing else does", () => {
  assert.deepEqual(parseIp("192.0.2.1"), { v6: false, value: 0xc0000201n });
  assert.deepEqual(parseIp("::ffff:192.0.2.1"), { v6: false, value: 0xc0000201n });
  assert.deepEqual(parseIp("::ffff:c000:201"), { v6: false, value: 0xc0000201n });
  assert.deepEqual(parseIp("2001:db8::1"), parseIp("2001:0DB8:0:0:0:0:0:1"));
  assert.deepEqual(parseIp("::1"), { v6: true, value: 1n });
  assert.deepEqual(parseIp("::"), { v6: true, value: 0n });
  assert.deepEqual(parseIp("fe80::1%eth0"), parseIp("fe80::1"));
  for (
    const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "01.2.3.4",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "g::1",
      "localhost",
      "1:2:3:4:5:6:7::8",
    ]
  ) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});

Deno.test("blocks clear their host bits and reject bad prefixes", () => {
  assert.deepEqual(parseCidr("10.1.2.3/8"), { v6: false, value: 0x0a000000n, prefix: 8 });
  assert.deepEqual(parseCidr("192.0.2.7"), { v6: false, value: 0xc0000207n, prefix: 32 });
  assert.deepEqual(parseCidr("2001:db8::/32"), { v6: true, value: 0x20010db8n << 96n, prefix: 32 });
  assert.deepEqual(parseCidr("::ffff:10.0.0.0/104"), { v6: false, value: 0x0a000000n, prefix: 8 });
  for (
    const bad of [
      "10.0.0.0/33",
      "2001:db8::/129",
      "10.0.0.0/",
      "10.0.0.0/08",
      "10.0.0.0/-1",
      "x/8",
      "::ffff:10.0.0.0/95",
    ]
  ) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
});

Deno.test("a set matches by prefix, per family, whatever the spelling", () => {
  const set = new CidrSet(["10.0.0.0/8", "192.0.2.128/25", "2001:db8::/32", "::1"]);
  for (const yes of ["10.255.0.1", "::ffff:10.1.1.1", "192.0.2.200", "2001:db8:ffff::5", "::1", "0:0::1"]) {
    assert.ok(set.has(yes), yes);
  }
  for (const no of ["11.0.0.1", "192.0.2.127", "2001:db9::1", "::2", "not an address", ""]) {
    assert.ok(!set.has(no), no);
  }
  assert.ok(new CidrSet(["0.0.0.0/0"]).has("203.0.113.9"));
  assert.ok(!new CidrSet(["0.0.0.0/0"]).has("2001:db8::1"), "an IPv4 block never holds an IPv6 address");
  assert.ok(new CidrSet(["::/0"]).has("2001:db8::1"));
  assert.throws(() => new CidrSet(["10.0.0.0/40"]), TypeError);
});

Deno.test("deny wins over allow; an empty allow list admits everyone not denied", () => {
  const open = new IpFilter({ allow: [], deny: ["192.0.2.0/24"] });
  assert.ok(open.permits("198.51.100.1"));
  assert.ok(!open.permits("192.0.2.9"));
  const closed = new IpFilter({ allow: ["192.0.2.0/24", "2001:db8::/32"], deny: ["192.0.2.9"] });
  assert.ok(closed.permits("192.0.2.8"));
  assert.ok(closed.permits("2001:db8::8"));
  assert.ok(!closed.permits("192.0.2.9"), "denied inside an allowed block");
  assert.ok(!closed.permits("198.51.100.1"), "not in the allow list");
});
