/**
 * End to end with the real eBPF agent: clients in a network namespace connect over a veth to a
 * dual-stack proxy, and the backend sees an `x-tcp-p0f` equal to the signature p0f 3.09b prints for the
 * same SYN on the same interface, for IPv4 and IPv6.
 */
import assert from "node:assert/strict";
import { isRoot, mountBpffs, startAgent } from "./support/agent.ts";
import { createNetns } from "./support/netns.ts";
import { startP0f } from "./support/p0f.ts";
import { freePort, parseEchoes, routeAllTo, startEcho, startProxy } from "./support/proxy_harness.ts";

Deno.test({
  name: "x-tcp-p0f through the real agent equals p0f's signature of the same SYN, IPv4 and IPv6",
  ignore: !isRoot,
  async fn() {
    await using ns = await createNetns("hfpprx");
    await using bpffs = await mountBpffs();
    const pinPath = `${bpffs.dir}/huginn`;
    await using echo = await startEcho();
    await using proxy = await startProxy(
      { ...routeAllTo(echo.address), fingerprint: { tcp_enabled: true } },
      { listenHost: "::", waitReady: false, env: { HUGINN_EBPF_PIN_PATH: pinPath } },
    );
    await using p0f = await startP0f(ns.hostIf, proxy.port);
    await using agent = startAgent({
      HUGINN_EBPF_INTERFACE: ns.hostIf,
      HUGINN_EBPF_DST_PORT: String(proxy.port),
      HUGINN_EBPF_CAPTURE: "xdp-skb",
      HUGINN_EBPF_PIN_PATH: pinPath,
    });
    await agent.ready();
    for (let i = 0; i < 100 && (await proxy.ops("/ready")).status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await proxy.ops("/ready")).status, 200, proxy.stderr());

    for (const host of [ns.hostV4, `[${ns.hostV6}]`]) {
      const clientPort = freePort();
      const out = await ns.run([
        "curl",
        "-sk",
        "--local-port",
        String(clientPort),
        `https://${host}:${proxy.port}/e2e`,
      ]);
      const [seen] = parseEchoes(out);
      assert.ok(seen, `no answer from ${host}: ${out}`);
      assert.equal(seen.headers["x-tcp-p0f"], await p0f.rawSig(clientPort), host);
      assert.ok(seen.headers["x-tls-ja4"], "the other fingerprints are there too");
    }
    assert.equal(await proxy.metric("huginn_tcp_syn_fingerprints_total", 'reason="hit"'), 2);
  },
});
