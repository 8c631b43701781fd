/**
 * Hot reload: a changed configuration file (or SIGHUP) switches every worker to new routes while
 * requests keep flowing without a single failure; an invalid file and a change to a static key apply
 * nothing, are logged and counted; `--print-effective-config` prints the merged configuration with
 * key paths redacted.
 */
import assert from "node:assert/strict";
import { parse, stringify } from "smol-toml";
import { freePort, type Proxy, run, startProxy } from "./support/proxy_harness.ts";
import { httpRequest, rawExchange } from "./support/proxy_protocol_client.ts";

/** A backend that answers its name. */
function named(name: string) {
  const port = freePort();
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, () => new Response(name));
  return { address: `127.0.0.1:${port}`, [Symbol.asyncDispose]: () => server.shutdown() };
}

/** The parts of the configuration file the test edits. */
interface Editable {
  backends: Array<{ address: string }>;
  domains: Array<{ host: string; routes: Array<{ prefix: string; backend: string }> }>;
  timeout?: Record<string, number>;
  logging?: Record<string, string>;
}

/** Rewrites the proxy's configuration file with `change` applied. */
async function edit(proxy: Proxy, change: (c: Editable) => void) {
  const config = parse(await Deno.readTextFile(proxy.configPath)) as unknown as Editable;
  change(config);
  await Deno.writeTextFile(proxy.configPath, stringify(config));
}

/** The body of GET `path` on a new connection (so that any worker may take it), or the status line. */
async function answer(proxy: Proxy, path: string): Promise<string> {
  const out = await rawExchange(proxy.plainPort, [httpRequest(path)]);
  return out.startsWith("HTTP/1.1 200") ? out.slice(out.indexOf("\r\n\r\n") + 4) : out.split("\r\n")[0];
}

/** Polls until `n` answers in a row to `path` are `expected`; returns whether that happened. */
async function settles(proxy: Proxy, path: string, expected: string, n = 20): Promise<boolean> {
  for (let tries = 0, streak = 0; tries < 300; tries++) {
    streak = await answer(proxy, path) === expected ? streak + 1 : 0;
    if (streak === n) return true;
    if (streak === 0) await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function until(what: string, check: () => boolean | Promise<boolean>) {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`never: ${what}`);
}

/** Requests to `/` from 4 concurrent clients until `stop` (at most 5000); every failure recorded. */
function load(proxy: Proxy) {
  let stopped = false;
  const failures: string[] = [];
  let done = 0;
  const client = async () => {
    while (!stopped && done < 5000) {
      try {
        const r = await fetch(`http://127.0.0.1:${proxy.plainPort}/`);
        const body = await r.text();
        if (r.status !== 200 || body !== "a") failures.push(`${r.status} ${body}`);
      } catch (e) {
        failures.push(String(e));
      }
      done++;
    }
  };
  const clients = Promise.all([client(), client(), client(), client()]);
  return {
    async stop() {
      stopped = true;
      await clients;
      return { done, failures };
    },
  };
}

Deno.test("reloads switch every worker under load; invalid and static changes apply nothing", async (t) => {
  await using a = named("a");
  await using b = named("b");
  await using proxy = await startProxy({
    workers: 2,
    backends: [{ address: a.address }],
    domains: [{ host: "*", routes: [{ prefix: "/", backend: a.address }] }],
  });
  const hashOf = async () =>
    (await proxy.ops("/metrics")).body.match(/huginn_config_hash_info\{hash="(\w+)"\} 1/)?.[1];
  const reloads = (result: string) => proxy.metric("huginn_config_reloads_total", `result="${result}"`);
  const firstHash = await hashOf();
  assert.ok(firstHash);
  assert.ok(await proxy.metric("huginn_config_last_reload_timestamp_seconds") > 0);

  await t.step("a file change adds a route on both workers; no request fails meanwhile", async () => {
    const traffic = load(proxy);
    await edit(proxy, (c) => {
      c.backends.push({ address: b.address });
      c.domains[0].routes.push({ prefix: "/new", backend: b.address });
    });
    assert.ok(await settles(proxy, "/new", "b"), "the new route serves on every worker");
    const { done, failures } = await traffic.stop();
    assert.deepEqual(failures, []);
    assert.ok(done > 0);
    assert.equal(await reloads("applied"), 1);
    assert.notEqual(await hashOf(), firstHash);
    assert.match(proxy.stderr(), /"msg":"configuration reloaded","trigger":"file changed"/);
  });

  await t.step("SIGHUP reloads at once", async () => {
    await edit(
      proxy,
      (c) => c.domains[0].routes.find((r) => r.prefix === "/new")!.backend = a.address,
    );
    proxy.child.kill("SIGHUP");
    assert.ok(await settles(proxy, "/new", "a"));
    assert.match(proxy.stderr(), /"msg":"configuration reloaded","trigger":"SIGHUP"/);
  });

  await t.step("an invalid file keeps the running configuration and says why", async () => {
    const before = await reloads("invalid");
    await edit(proxy, (c) => c.domains[0].routes.push({ prefix: "/broken", backend: "127.0.0.1:1" }));
    proxy.child.kill("SIGHUP");
    await until("the invalid reload is counted", async () => await reloads("invalid") > before);
    assert.match(proxy.stderr(), /configuration reload failed; keeping the running configuration/);
    assert.match(proxy.stderr(), /is not a declared backend/);
    assert.equal(await answer(proxy, "/new"), "a");
  });

  await t.step("a static change is reported and nothing of the file is applied", async () => {
    const hash = await hashOf();
    await edit(proxy, (c) => {
      c.domains[0].routes = c.domains[0].routes.filter((r) => r.prefix !== "/broken");
      c.domains[0].routes.push({ prefix: "/later", backend: b.address });
      c.timeout = { idle_secs: 5 };
      c.logging = { level: "debug" };
    });
    const before = await reloads("restart_required");
    proxy.child.kill("SIGHUP");
    await until("the refused reload is counted", async () => await reloads("restart_required") > before);
    assert.match(
      proxy.stderr(),
      /"msg":"configuration change needs a restart; nothing applied".*"keys":\["timeout","logging"\]/,
    );
    assert.equal(await answer(proxy, "/later"), "a", "the dynamic part of that file was not applied either");
    assert.equal(await hashOf(), hash);
  });
});

Deno.test("--print-effective-config prints defaults filled in and key paths redacted", async () => {
  await using proxy = await startProxy({
    backends: [{ address: "127.0.0.1:9" }],
    domains: [{ host: "*", routes: [{ prefix: "/", backend: "127.0.0.1:9" }] }],
  });
  const r = await run([
    Deno.execPath(),
    "run",
    "-A",
    "proxy/main.ts",
    proxy.configPath,
    "--print-effective-config",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const printed = JSON.parse(r.stdout);
  assert.equal(printed.tls.key_path, "<redacted>");
  assert.equal(printed.tls.cert_path, proxy.certPath);
  assert.equal(printed.timeout.proxy_protocol_secs, 5);
  assert.deepEqual(printed.domains[0].routes[0].backend, ["127.0.0.1:9"]);
  assert.doesNotMatch(r.stdout, new RegExp(proxy.keyPath));
});
