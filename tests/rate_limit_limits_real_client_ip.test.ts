/**
 * Requests over the rate limit get 429 with retry-after and are counted; the bucket is keyed by the
 * real client address, so a client rotating x-forwarded-for (which it is not trusted to set) is still
 * limited; header keys, route keys and per-route overrides each keep their own buckets.
 */
import assert from "node:assert/strict";
import { freePort, startProxy } from "./support/proxy_harness.ts";
import { httpRequest, rawExchange } from "./support/proxy_protocol_client.ts";

/** A backend that answers 200 "ok" to everything. */
function okBackend() {
  const port = freePort();
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, () => new Response("ok"));
  return { address: `127.0.0.1:${port}`, [Symbol.asyncDispose]: () => server.shutdown() };
}

Deno.test("rate limits: 429 with retry-after, keyed by the real client, per header and per route", async (t) => {
  await using backend = okBackend();
  const b = backend.address;
  // One request every 1000 s after the burst: no token comes back while the test runs.
  const slow = (burst: number, key: string[]) => ({ requests_per_second: 0.001, burst, key });
  await using proxy = await startProxy({
    security: { rate_limit: slow(3, ["ip"]) },
    backends: [{ address: b }],
    domains: [
      {
        host: "*",
        routes: [
          { prefix: "/", backend: b },
          { prefix: "/api", backend: b, rate_limit: slow(2, ["header:x-api-key"]) },
          { prefix: "/free", backend: b, rate_limit: false },
        ],
      },
      {
        host: "per-route.test",
        rate_limit: slow(1, ["route"]),
        routes: [{ prefix: "/", backend: b }, { prefix: "/b", backend: b }],
      },
    ],
  });
  /** One request on its own connection; `host` and other headers as given. */
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const out = await rawExchange(proxy.plainPort, [httpRequest(path, headers)]);
    const retryAfter = /\r\nretry-after: (\d+)\r\n/i.exec(out)?.[1] ?? null;
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1]), retryAfter };
  };

  await t.step("rotating x-forwarded-for does not escape the limit of the real address", async () => {
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      statuses.push((await get("/", { "x-forwarded-for": `198.51.100.${i}` })).status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429]);
    const refused = await get("/");
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.retryAfter) >= 1, `retry-after: ${refused.retryAfter}`);
  });
  await t.step("a header key: each API key has its own bucket", async () => {
    const codes = async (
      key: string,
    ) => [
      (await get("/api", { "x-api-key": key })).status,
      (await get("/api", { "x-api-key": key })).status,
      (await get("/api", { "x-api-key": key })).status,
    ];
    assert.deepEqual(await codes("k1"), [200, 200, 429]);
    assert.deepEqual(await codes("k2"), [200, 200, 429]);
  });
  await t.step("a route without a limit is never limited", async () => {
    for (let i = 0; i < 5; i++) assert.equal((await get("/free")).status, 200);
  });
  await t.step("a domain's route key: each route has its own bucket", async () => {
    const host = { host: "per-route.test" };
    assert.equal((await get("/", host)).status, 200);
    assert.equal((await get("/", host)).status, 429);
    assert.equal((await get("/b", host)).status, 200);
    assert.equal((await get("/b/c", host)).status, 429);
  });
  assert.equal(await proxy.metric("huginn_rate_limit_total", 'result="allowed"'), 3 + 4 + 2);
  assert.equal(await proxy.metric("huginn_rate_limit_total", 'result="rejected"'), 4 + 2 + 2);
});
