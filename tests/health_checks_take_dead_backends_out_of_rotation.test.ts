/**
 * Health checks take a backend out of the round-robin after its unhealthy threshold (an HTTP check
 * seeing the wrong status, a TCP check refused) and bring it back after its healthy threshold; a route
 * with no healthy backend answers 502 at once, without trying one. The thresholds themselves are
 * exercised on the pure state function.
 */
import assert from "node:assert/strict";
import { type HealthCheckRule, type HealthState, nextHealth } from "../proxy/health_checks.ts";
import { freePort, type Proxy, startProxy } from "./support/proxy_harness.ts";

const RULE: HealthCheckRule = {
  kind: "tcp",
  path: "/",
  expected_status: 200,
  interval_secs: 1,
  timeout_secs: 1,
  healthy_threshold: 2,
  unhealthy_threshold: 3,
};

Deno.test("state changes only after the threshold of probes in a row", () => {
  let state: HealthState = { healthy: true, streak: 0 };
  const feed = (results: boolean[]) => results.map((ok) => (state = nextHealth(state, ok, RULE)).healthy);
  assert.deepEqual(
    feed([false, false, true, false, false]),
    [true, true, true, true, true],
    "a success resets",
  );
  assert.deepEqual(feed([false]), [false], "the third failure in a row");
  assert.deepEqual(feed([true, false, true]), [false, false, false]);
  assert.deepEqual(feed([true]), [true], "the second success in a row");
});

/** A backend named `name` whose /health answers `health.status`, restartable on its port. */
function backend(name: string, port = freePort()) {
  const health = { status: 200 };
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname === "/health") return new Response(null, { status: health.status });
    return new Response(name);
  });
  return { address: `127.0.0.1:${port}`, port, health, stop: () => server.shutdown() };
}

async function until(what: string, check: () => Promise<boolean>) {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`never: ${what}`);
}

async function names(proxy: Proxy, n: number): Promise<string[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`http://127.0.0.1:${proxy.plainPort}/`);
    out.push(r.status === 200 ? await r.text() : String(r.status));
    if (r.status !== 200) await r.body?.cancel();
  }
  return out;
}

Deno.test("unhealthy backends leave the rotation; none left is an immediate 502", async () => {
  const a = backend("a");
  let b = backend("b");
  const check = { interval_secs: 1, timeout_secs: 1, healthy_threshold: 1, unhealthy_threshold: 1 };
  try {
    await using proxy = await startProxy({
      backends: [
        {
          address: a.address,
          health_check: { ...check, kind: "http", path: "/health", expected_status: 200 },
        },
        { address: b.address, health_check: { ...check, kind: "tcp" } },
      ],
      domains: [{ host: "*", routes: [{ prefix: "/", backend: [a.address, b.address] }] }],
    });
    const healthy = (x: { address: string }) =>
      proxy.metric("huginn_backend_healthy", `backend="${x.address}"`);
    assert.deepEqual((await names(proxy, 4)).sort(), ["a", "a", "b", "b"]);

    a.health.status = 503;
    await until("a is unhealthy", async () => await healthy(a) === 0);
    assert.deepEqual(await names(proxy, 3), ["b", "b", "b"]);

    await b.stop();
    await until("b is unhealthy", async () => await healthy(b) === 0);
    assert.deepEqual(await names(proxy, 2), ["502", "502"]);
    assert.equal(await proxy.metric("huginn_no_healthy_backend_total", 'route="*/"'), 2);
    assert.equal(
      await proxy.metric("huginn_backend_errors_total", `backend="${b.address}",kind="connect"`),
      0,
      "no request was sent to a backend known dead",
    );

    a.health.status = 200;
    await until("a is healthy again", async () => await healthy(a) === 1);
    assert.deepEqual(await names(proxy, 2), ["a", "a"]);
    b = backend("b", b.port);
    await until("b is healthy again", async () => await healthy(b) === 1);
    assert.deepEqual((await names(proxy, 4)).sort(), ["a", "a", "b", "b"]);
  } finally {
    await a.stop();
    await b.stop().catch(() => {});
  }
});
