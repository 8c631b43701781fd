/**
 * Global and per-route allow/deny lists (IPv4 and IPv6 CIDR) answer 403 to the clients they exclude,
 * deny winning over allow, and count each refusal. The clients' addresses are given with PROXY v1
 * headers from the trusted loopback, so that any address can be tried.
 */
import assert from "node:assert/strict";
import { parseEchoes, startEcho, startProxy } from "./support/proxy_harness.ts";
import { httpRequest, rawExchange, v1Header } from "./support/proxy_protocol_client.ts";

Deno.test("IP filters: global and per route, IPv4 and IPv6, deny wins, 403 counted", async () => {
  await using echo = await startEcho();
  const b = echo.address;
  await using proxy = await startProxy({
    listen: { proxy_protocol: "optional" },
    security: {
      trusted_proxies: ["127.0.0.1"],
      ip_filter: { deny: ["203.0.113.0/24", "2001:db8:bad::/48"] },
    },
    backends: [{ address: b }],
    domains: [{
      host: "*",
      routes: [
        { prefix: "/", backend: b },
        {
          prefix: "/admin",
          backend: b,
          ip_filter: { allow: ["10.0.0.0/8", "2001:db8::/32"], deny: ["10.0.0.66"] },
        },
      ],
    }],
  });
  const status = async (client: string, path: string) => {
    const header = v1Header(client, 40000, client.includes(":") ? "2001:db8::1" : "192.0.2.1", 443);
    const out = await rawExchange(proxy.plainPort, [header, httpRequest(path)]);
    const code = Number(out.match(/^HTTP\/1\.1 (\d{3})/)?.[1]);
    if (code === 200) assert.equal(parseEchoes(out)[0]?.path, path);
    return code;
  };

  assert.equal(await status("198.51.100.1", "/"), 200);
  assert.equal(await status("203.0.113.9", "/"), 403, "globally denied");
  assert.equal(await status("2001:db8:bad::1", "/"), 403, "globally denied, IPv6");
  assert.equal(await status("2001:db8:600d::1", "/"), 200);

  assert.equal(await status("10.1.2.3", "/admin/x"), 200, "in the route's allow list");
  assert.equal(await status("2001:db8:600d::1", "/admin"), 200, "in the route's allow list, IPv6");
  assert.equal(await status("198.51.100.1", "/admin"), 403, "not in the route's allow list");
  assert.equal(await status("10.0.0.66", "/admin"), 403, "denied inside the allowed block: deny wins");
  assert.equal(await status("2001:db8:bad::1", "/admin"), 403, "the global deny applies on every route");

  assert.equal(await proxy.metric("huginn_ip_filter_rejections_total", 'scope="global"'), 3);
  assert.equal(await proxy.metric("huginn_ip_filter_rejections_total", 'scope="route"'), 2);
});
