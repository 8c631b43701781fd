/**
 * The traffic keys (PROXY protocol, trusted proxies, IP filters, rate limits, health checks, header
 * rules) report each bad value with its path, the value and what is expected, like every other key.
 */
import assert from "node:assert/strict";
import { stringify } from "smol-toml";
import { ConfigError, parseConfig } from "../proxy/config.ts";

type Raw = Record<string, unknown>;

const BASE = {
  listen: { addrs: [], plain_addrs: ["127.0.0.1:8080"] },
  backends: [{ address: "127.0.0.1:9000" }],
  domains: [{ host: "*", routes: [{ prefix: "/", backend: "127.0.0.1:9000" }] }],
};

function issues(raw: Raw): string[] {
  try {
    parseConfig(stringify(raw), "toml");
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  assert.fail(`accepted: ${JSON.stringify(raw)}`);
}

const route = (extra: Raw) => ({
  domains: [{ host: "*", routes: [{ prefix: "/", backend: "127.0.0.1:9000", ...extra }] }],
});
const CIDR = "is not an IP address or CIDR block (10.0.0.0/8, 2001:db8::/32)";
const RPS = "is not a number in 0.001..1000000";

const CASES: Array<[Raw, string]> = [
  [
    { listen: { ...BASE.listen, proxy_protocol: "on" } },
    `listen.proxy_protocol: "on" is not one of off, optional, require`,
  ],
  [{ timeout: { proxy_protocol_secs: 0 } }, "timeout.proxy_protocol_secs: 0 is not an integer in 1..3600"],
  [{ security: { trusted_proxies: ["10.0.0.0/33"] } }, `security.trusted_proxies[0]: "10.0.0.0/33" ${CIDR}`],
  [
    { security: { ip_filter: { deny: ["example.com"] } } },
    `security.ip_filter.deny[0]: "example.com" ${CIDR}`,
  ],
  [
    route({ ip_filter: { allow: ["2001:db8::/129"] } }),
    `domains[0].routes[0].ip_filter.allow[0]: "2001:db8::/129" ${CIDR}`,
  ],
  [
    { security: { rate_limit: { requests_per_second: 0 } } },
    `security.rate_limit.requests_per_second: 0 ${RPS}`,
  ],
  [
    { security: { rate_limit: { burst: 1 } } },
    `security.rate_limit.requests_per_second: missing (expected a number in 0.001..1000000)`,
  ],
  [
    { security: { rate_limit: { requests_per_second: 1, key: ["cookie"] } } },
    `security.rate_limit.key[0]: "cookie" is not "ip", "route" or "header:<name>"`,
  ],
  [
    { security: { rate_limit: { requests_per_second: 1, key: ["ip", "ip"] } } },
    `security.rate_limit.key: ["ip","ip"] is not a list without repeats`,
  ],
  [
    route({ rate_limit: true }),
    "domains[0].routes[0].rate_limit: true is not false or a rate limit table (requests_per_second, burst, key)",
  ],
  [
    { backends: [{ address: "127.0.0.1:9000", health_check: { kind: "udp" } }] },
    `backends[0].health_check.kind: "udp" is not one of tcp, http`,
  ],
  [
    { backends: [{ address: "127.0.0.1:9000", health_check: { expected_status: 600 } }] },
    "backends[0].health_check.expected_status: 600 is not an integer in 100..599",
  ],
  [
    { backends: [{ address: "127.0.0.1:9000", health_check: { path: "health" } }] },
    `backends[0].health_check.path: "health" is not a path starting with "/" (no fragment or spaces)`,
  ],
  [route({ preserve_host: "no" }), `domains[0].routes[0].preserve_host: "no" is not true or false`],
  [
    { headers: { request: { remove: ["bad header"] } } },
    `headers.request.remove[0]: "bad header" is not a header name other than the fingerprint headers and x-fingerprint-spoofing-detected`,
  ],
];

Deno.test("each bad traffic value is reported with its path", () => {
  for (const [change, expected] of CASES) assert.deepEqual(issues({ ...BASE, ...change }), [expected]);
});

Deno.test("overrides accept false and full tables", () => {
  const config = parseConfig(
    stringify({
      ...BASE,
      security: { rate_limit: { requests_per_second: 2.5, key: ["ip", "header:X-Api-Key"] } },
      ...route({ rate_limit: false, ip_filter: { allow: ["::ffff:10.0.0.0/104"] } }),
    }),
    "toml",
  );
  assert.deepEqual(config.security.rate_limit, { requests_per_second: 2.5, key: ["ip", "header:x-api-key"] });
  assert.equal(config.domains[0].routes[0].rate_limit, false);
  assert.deepEqual(config.domains[0].routes[0].ip_filter, { allow: ["::ffff:10.0.0.0/104"], deny: [] });
});
