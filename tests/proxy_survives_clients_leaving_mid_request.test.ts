/**
 * Clients that go away while their requests are still in flight (HTTP/2 clients killed mid-request,
 * alone and under load) must not take the proxy down. The internal server settles such requests as
 * failed; the benchmark harness saw that failure end a worker, and with it the process, as an
 * unhandled rejection (not reproduced by this test on its own, which guards the general case).
 */
import assert from "node:assert/strict";
import { parseEchoes, run, startEcho, startProxy } from "./support/proxy_harness.ts";

Deno.test("h2 clients killed with requests in flight leave the proxy serving", async () => {
  // A backend that holds every request for a while, so the clients leave before the answers.
  let held = 0;
  const slow = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async () => {
    held++;
    await new Promise((r) => setTimeout(r, 1500));
    return new Response("late\n");
  });
  await using echo = await startEcho();
  await using proxy = await startProxy({
    backends: [{ address: `127.0.0.1:${slow.addr.port}` }, { address: echo.address }],
    domains: [{
      host: "*",
      routes: [
        { prefix: "/slow", backend: `127.0.0.1:${slow.addr.port}` },
        { prefix: "/", backend: echo.address },
      ],
    }],
  });
  try {
    for (let round = 0; round < 3; round++) {
      const before = held;
      const client = new Deno.Command("nghttp", {
        args: ["-n", "-m", "8", proxy.url("/slow")],
        stdout: "null",
        stderr: "null",
      }).spawn();
      while (held < before + 8) await new Promise((r) => setTimeout(r, 10));
      client.kill("SIGKILL");
      await client.status;
    }
    // And under load: h2load killed while hundreds of its streams are in flight.
    const load = new Deno.Command("h2load", {
      args: ["-n", "1000000", "-c", "16", "-m", "20", proxy.url("/")],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await new Promise((r) => setTimeout(r, 1500));
    load.kill("SIGKILL");
    await load.status;
    // Give the internal server time to notice the resets and settle the requests.
    await new Promise((r) => setTimeout(r, 2000));
    const out = await run(["curl", "-sk", "--http2", proxy.url("/after")]);
    assert.equal(parseEchoes(out.stdout)[0]?.path, "/after", out.stdout + out.stderr);
    assert.equal((await proxy.ops("/ready")).status, 200);
  } finally {
    await slow.shutdown();
  }
});
