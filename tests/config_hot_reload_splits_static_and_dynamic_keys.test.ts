/**
 * What a reload may apply: changes to backends, domains, header and security rules are dynamic; any
 * change to a static key is named so the reload can refuse it whole. Equal configurations hash equally
 * whatever their key order, and the printed configuration hides key paths at any depth.
 */
import assert from "node:assert/strict";
import { type Config, parseConfig } from "../proxy/config.ts";
import { configHash, redactedConfig, staticChanges, watchFile } from "../proxy/reload.ts";

const BASE = `
[tls]
cert_path = "/etc/huginn/cert.pem"
key_path = "/etc/huginn/key.pem"
[[backends]]
address = "127.0.0.1:9000"
[[domains]]
host = "*"
routes = [{ prefix = "/", backend = "127.0.0.1:9000" }]
`;

function config(extra = ""): Config {
  return parseConfig(BASE + extra, "toml");
}

Deno.test("dynamic changes pass, static ones are named", () => {
  const base = config();
  const dynamic = config(`
[headers.response]
hsts = "max-age=1"
[security]
trusted_proxies = ["10.0.0.0/8"]
ip_filter = { deny = ["192.0.2.0/24"] }
rate_limit = { requests_per_second = 5 }
`);
  assert.deepEqual(staticChanges(base, dynamic), []);
  assert.notEqual(configHash(base), configHash(dynamic));
  const routes = structuredClone(base);
  routes.domains[0].routes.push({ ...routes.domains[0].routes[0], prefix: "/x" });
  assert.deepEqual(staticChanges(base, routes), []);

  const fixed = config(`
[listen]
proxy_protocol = "require"
[timeout]
idle_secs = 5
[security]
max_connections = 5
[logging]
level = "debug"
`);
  assert.deepEqual(staticChanges(base, fixed), ["listen", "timeout", "logging", "security.max_connections"]);
  const tls = structuredClone(base);
  tls.tls.watch_delay_secs = 1;
  assert.deepEqual(staticChanges(base, tls), ["tls"]);
});

Deno.test("the hash ignores key order and the redaction reaches every key_path", () => {
  const a = config();
  const reordered = Object.fromEntries(Object.entries(structuredClone(a)).reverse()) as Config;
  assert.equal(configHash(a), configHash(reordered));
  assert.match(configHash(a), /^[0-9a-f]{16}$/);
  const nested = structuredClone(a) as Config & { tls: { certificates?: unknown } };
  nested.tls.certificates = [{ hosts: ["a.example"], cert_path: "/c.pem", key_path: "/secret/k.pem" }];
  const printed = JSON.stringify(redactedConfig(nested));
  assert.doesNotMatch(printed, /key\.pem|secret/);
  assert.match(printed, /"cert_path":"\/etc\/huginn\/cert\.pem"/);
  assert.equal((redactedConfig(a) as Config).tls.key_path, "<redacted>");
});

Deno.test("a file change is reported once, after the file has settled", async () => {
  const dir = await Deno.makeTempDir({ prefix: "huginn-watch-" });
  const path = `${dir}/huginn.toml`;
  await Deno.writeTextFile(path, "a");
  let changes = 0;
  const watch = watchFile(path, 50, () => changes++);
  try {
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(changes, 0, "nothing changed yet");
    await Deno.writeTextFile(path, "bb");
    for (let i = 0; i < 100 && changes === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(changes, 1);
  } finally {
    watch.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
