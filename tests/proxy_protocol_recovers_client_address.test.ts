/**
 * Listeners read PROXY v1 and v2 headers from trusted peers (before the TLS handshake), and the client
 * they name is the one the backend hears about in x-forwarded-for and x-forwarded-port. `require` closes
 * a connection without a header, `optional` tells a direct client by its first bytes, `off` never looks;
 * a header from an untrusted peer closes the connection. x-forwarded-for sent by a client is kept only
 * when that client is a trusted proxy.
 */
import assert from "node:assert/strict";
import { parseEchoes, routeAllTo, startEcho, startProxy } from "./support/proxy_harness.ts";
import {
  httpRequest,
  rawExchange,
  tlsExchange,
  v1Header,
  v2Header,
} from "./support/proxy_protocol_client.ts";

const REQUEST = httpRequest("/pp", { "x-forwarded-for": "6.6.6.6" });

Deno.test("require: v1 and v2 headers, IPv4 and IPv6, plain and TLS; no header is refused", async (t) => {
  await using echo = await startEcho();
  await using proxy = await startProxy({
    ...routeAllTo(echo.address),
    listen: { proxy_protocol: "require" },
    security: { trusted_proxies: ["127.0.0.0/8", "::1"] },
  });
  const seen = async (header: Uint8Array) => {
    const [e] = parseEchoes(await rawExchange(proxy.plainPort, [header, REQUEST]));
    assert.ok(e, "the request was served");
    return [e.headers["x-forwarded-for"], e.headers["x-forwarded-port"]];
  };

  await t.step("v1 TCP4 and TCP6", async () => {
    assert.deepEqual(await seen(v1Header("192.0.2.1", 40000, "198.51.100.1", 443)), ["192.0.2.1", "40000"]);
    assert.deepEqual(await seen(v1Header("2001:db8::7", 40001, "2001:db8::1", 443)), [
      "2001:db8::7",
      "40001",
    ]);
  });
  await t.step("v2 TCP4 and TCP6", async () => {
    assert.deepEqual(await seen(v2Header("192.0.2.2", 40002, "198.51.100.1", 443)), ["192.0.2.2", "40002"]);
    assert.deepEqual(
      await seen(v2Header("2001:db8:0:0::8", 40003, "2001:db8::1", 443)),
      ["2001:db8::8", "40003"],
    );
  });
  await t.step("v2 LOCAL (the balancer's own check) is the peer itself, a trusted one", async () => {
    const [xff] = await seen(v2Header("0.0.0.0", 0, "0.0.0.0", 0, true));
    assert.equal(xff, "6.6.6.6, 127.0.0.1", "a trusted client's x-forwarded-for is appended to");
  });
  await t.step("the header comes before the ClientHello on a TLS listener", async () => {
    const out = await tlsExchange(proxy.port, v2Header("192.0.2.3", 40004, "198.51.100.1", 443), REQUEST);
    const [e] = parseEchoes(out);
    assert.ok(e, out);
    assert.equal(e.headers["x-forwarded-for"], "192.0.2.3");
    assert.match(
      e.headers["x-tls-ja4"] ?? "",
      /^t1[23][di]/,
      "the ClientHello after the header is fingerprinted",
    );
  });
  await t.step("no header, or a broken one, closes the connection unanswered", async () => {
    assert.equal(await rawExchange(proxy.plainPort, [REQUEST]), "");
    assert.equal(
      await rawExchange(proxy.plainPort, [new TextEncoder().encode("PROXY TCP4 1.2.3 x\r\n")]),
      "",
    );
    assert.equal(
      await proxy.metricSettles("huginn_bad_client_input_total", 'kind="missing_proxy_header"', 1),
      1,
    );
    assert.equal(await proxy.metricSettles("huginn_bad_client_input_total", 'kind="bad_proxy_header"', 1), 1);
  });
});

Deno.test("optional: direct clients and PROXY clients side by side; untrusted peers cannot send one", async (t) => {
  await using echo = await startEcho();
  await t.step("trusted peer", async () => {
    await using proxy = await startProxy({
      ...routeAllTo(echo.address),
      listen: { proxy_protocol: "optional" },
      security: { trusted_proxies: ["127.0.0.1"] },
    });
    const [direct] = parseEchoes(await rawExchange(proxy.plainPort, [REQUEST]));
    assert.equal(direct.headers["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
    const [proxied] = parseEchoes(
      await rawExchange(proxy.plainPort, [v1Header("192.0.2.9", 1, "192.0.2.10", 2), REQUEST]),
    );
    assert.equal(proxied.headers["x-forwarded-for"], "192.0.2.9");
    // A header split over several writes is still found.
    const header = v2Header("192.0.2.11", 3, "192.0.2.10", 2);
    const [split] = parseEchoes(
      await rawExchange(proxy.plainPort, [
        header.subarray(0, 5),
        header.subarray(5, 20),
        header.subarray(20),
        REQUEST,
      ]),
    );
    assert.equal(split?.headers["x-forwarded-for"], "192.0.2.11");
  });
  await t.step("untrusted peer", async () => {
    await using proxy = await startProxy({
      ...routeAllTo(echo.address),
      listen: { proxy_protocol: "optional" },
      security: { trusted_proxies: ["10.0.0.0/8"] },
    });
    assert.equal(
      await rawExchange(proxy.plainPort, [v1Header("192.0.2.9", 1, "192.0.2.10", 2), REQUEST]),
      "",
    );
    assert.equal(
      await rawExchange(proxy.plainPort, [v2Header("192.0.2.9", 1, "192.0.2.10", 2), REQUEST]),
      "",
    );
    assert.equal(
      await proxy.metricSettles("huginn_bad_client_input_total", 'kind="untrusted_proxy_peer"', 2),
      2,
    );
    const [direct] = parseEchoes(await rawExchange(proxy.plainPort, [REQUEST]));
    assert.equal(
      direct.headers["x-forwarded-for"],
      "127.0.0.1",
      "an untrusted client's x-forwarded-for is replaced",
    );
  });
});

Deno.test("require refuses untrusted peers; off never reads a header", async (t) => {
  await using echo = await startEcho();
  await t.step("require, untrusted", async () => {
    await using proxy = await startProxy({
      ...routeAllTo(echo.address),
      listen: { proxy_protocol: "require" },
      security: { trusted_proxies: ["192.0.2.0/24"] },
    });
    assert.equal(
      await rawExchange(proxy.plainPort, [v1Header("192.0.2.9", 1, "192.0.2.10", 2), REQUEST]),
      "",
    );
    assert.equal(
      await proxy.metricSettles("huginn_bad_client_input_total", 'kind="untrusted_proxy_peer"', 1),
      1,
    );
  });
  await t.step("off", async () => {
    await using proxy = await startProxy({
      ...routeAllTo(echo.address),
      security: { trusted_proxies: ["127.0.0.1"] },
    });
    const out = await rawExchange(proxy.plainPort, [v1Header("192.0.2.9", 1, "192.0.2.10", 2), REQUEST]);
    assert.deepEqual(parseEchoes(out), [], "the header is not HTTP: nothing reaches the backend");
    const [direct] = parseEchoes(await rawExchange(proxy.plainPort, [REQUEST]));
    assert.equal(direct.headers["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
  });
});
