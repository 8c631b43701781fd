/**
 * Token buckets allow a burst, refill at the configured rate, say when to retry, key requests by
 * address, header and route, and stay bounded: refilled buckets are swept and the least recently used
 * is evicted when the map is full.
 */
import assert from "node:assert/strict";
import { RateLimiter } from "../proxy/rate_limit.ts";

Deno.test("a burst is allowed, then one request per 1/rate seconds", () => {
  const limiter = new RateLimiter({ requests_per_second: 2, burst: 3, key: ["ip"] });
  const results = [0, 0, 0, 0].map(() => limiter.take("a", 1000).allowed);
  assert.deepEqual(results, [true, true, true, false]);
  assert.deepEqual(limiter.take("a", 1000), { allowed: false, retryAfterSecs: 1 });
  assert.equal(limiter.take("a", 1499).allowed, false, "half a token is not enough");
  assert.equal(limiter.take("a", 1500).allowed, true);
  assert.equal(limiter.take("b", 1500).allowed, true, "another key has its own bucket");
  assert.equal(limiter.take("a", 100_000).allowed, true);
});

Deno.test("retry-after covers the wait for a whole token, in whole seconds", () => {
  const slow = new RateLimiter({ requests_per_second: 0.1, burst: 1, key: ["ip"] });
  assert.equal(slow.take("a", 0).allowed, true);
  assert.deepEqual(slow.take("a", 0), { allowed: false, retryAfterSecs: 10 });
  assert.deepEqual(slow.take("a", 4000), { allowed: false, retryAfterSecs: 6 });
});

Deno.test("the default burst is the rate rounded up", () => {
  const limiter = new RateLimiter({ requests_per_second: 2.5, key: ["ip"] });
  assert.deepEqual([0, 0, 0, 0].map(() => limiter.take("a", 0).allowed), [true, true, true, false]);
});

Deno.test("keys combine address, header and route; a missing header falls back to the address", () => {
  const limiter = new RateLimiter({ requests_per_second: 1, key: ["header:x-api-key", "route"] });
  const key = (ip: string, headers: HeadersInit, route = "a/") =>
    limiter.keyOf({ ip, route, headers: new Headers(headers) });
  assert.equal(key("192.0.2.1", { "x-api-key": "k1" }), key("192.0.2.2", { "X-Api-Key": "k1" }));
  assert.notEqual(key("192.0.2.1", { "x-api-key": "k1" }), key("192.0.2.1", { "x-api-key": "k2" }));
  assert.notEqual(key("192.0.2.1", { "x-api-key": "k1" }), key("192.0.2.1", { "x-api-key": "k1" }, "b/"));
  assert.notEqual(key("192.0.2.1", {}), key("192.0.2.2", {}));
  assert.notEqual(key("192.0.2.1", {}), key("192.0.2.1", { "x-api-key": "ip=192.0.2.1" }));
  const byIp = new RateLimiter({ requests_per_second: 1, key: ["ip"] });
  assert.equal(
    byIp.keyOf({ ip: "192.0.2.1", route: "a/", headers: new Headers({ "x-forwarded-for": "1.1.1.1" }) }),
    byIp.keyOf({ ip: "192.0.2.1", route: "b/", headers: new Headers() }),
  );
});

Deno.test("memory stays bounded: refilled buckets are swept, the least recently used evicted", () => {
  const limiter = new RateLimiter({ requests_per_second: 1, burst: 2, key: ["ip"] }, 3);
  for (const k of ["a", "b", "c"]) limiter.take(k, 0);
  limiter.take("a", 0); // a is now the most recently used, and empty
  limiter.take("d", 0); // full: b goes
  assert.equal(limiter.size, 3);
  assert.equal(limiter.take("a", 0).allowed, false, "a kept its state");
  assert.equal(limiter.take("b", 0).allowed, true, "b was forgotten: a fresh bucket");
  for (let i = 0; i < 10_000; i++) limiter.take(`flood-${i}`, 0);
  assert.equal(limiter.size, 3);
  limiter.sweep(10_000);
  assert.equal(limiter.size, 0, "every bucket has refilled after 10 s");
});

Deno.test("long header values are keyed by their hash, so keys stay small", () => {
  const limiter = new RateLimiter({ requests_per_second: 1, key: ["header:x-api-key"] });
  const key = (value: string) =>
    limiter.keyOf({ ip: "192.0.2.1", route: "a/", headers: new Headers({ "x-api-key": value }) });
  const long = "k".repeat(8000);
  assert.ok(key(long).length < 100);
  assert.equal(key(long), key(long));
  assert.notEqual(key(long), key(`${long}x`));
  assert.equal(key("short"), "header:x-api-key=short");
});
