/**
 * A SYN flood from one address does not cost other clients their TCP fingerprint: with the agent's
 * per-source budget (`HUGINN_EBPF_RATE_LIMIT_SYNS`) and a SYN map many times smaller than the flood,
 * clients connecting from another address of the same namespace while the flood runs all get an
 * `x-tcp-p0f` through the proxy, the flood is counted as rate limited, and the proxy stays ready.
 *
 * The flood is crafted IPv4 SYNs with zero checksums from a second address, sent through a packet socket
 * on the veth (see `synFloodFrame`); it is bounded: 100 rounds over 2,000 source ports.
 */
import assert from "node:assert/strict";
import { macOf, readySettles, SEND_SYN_FLOOD, synFloodFrame } from "./support/attack.ts";
import { get, isRoot, mountBpffs, sample, startAgent } from "./support/agent.ts";
import { createNetns } from "./support/netns.ts";
import { parseEchoes, routeAllTo, startEcho, startProxy } from "./support/proxy_harness.ts";

const SYN_MAP_ENTRIES = 256;
const BUDGET = 20;
const FLOOD_PORTS = 2000;
const FLOOD_ROUNDS = 100;
const HONEST_REQUESTS = 10;
/** A documentation address: the veth's /30 has no spare host, and the host never answers it. */
const FLOODER = "192.0.2.66";

Deno.test({
  name: "a SYN flood from one address leaves every other client its x-tcp-p0f",
  ignore: !isRoot,
  async fn() {
    await using ns = await createNetns("hfpsyn");
    await using bpffs = await mountBpffs();
    const pinPath = `${bpffs.dir}/huginn`;
    await using echo = await startEcho();
    await using proxy = await startProxy(
      { ...routeAllTo(echo.address), fingerprint: { tcp_enabled: true } },
      { listenHost: "0.0.0.0", waitReady: false, env: { HUGINN_EBPF_PIN_PATH: pinPath } },
    );
    await using agent = startAgent({
      HUGINN_EBPF_INTERFACE: ns.hostIf,
      HUGINN_EBPF_DST_PORT: String(proxy.port),
      HUGINN_EBPF_CAPTURE: "xdp-native",
      HUGINN_EBPF_PIN_PATH: pinPath,
      HUGINN_EBPF_SYN_MAP_MAX_ENTRIES: String(SYN_MAP_ENTRIES),
      HUGINN_EBPF_RATE_LIMIT_SYNS: String(BUDGET),
      HUGINN_EBPF_RATE_LIMIT_WINDOW_MS: "600000",
    });
    await agent.ready();
    assert.equal(await readySettles(proxy, 200), 200, proxy.stderr());

    await ns.run(["ip", "addr", "add", `${FLOODER}/32`, "dev", ns.nsIf]);
    const frame = synFloodFrame(await macOf(ns.hostIf), FLOODER, ns.hostV4, proxy.port);
    // On CPU 0 like the honest clients: the LRU map keeps recent entries on per-CPU lists, and entries
    // on another CPU's list are spared eviction, which would let the honest records survive by luck.
    const flood = ns.run([
      "taskset",
      "-c",
      "0",
      "python3",
      "-c",
      SEND_SYN_FLOOD,
      ns.nsIf,
      String(FLOOD_ROUNDS),
      frame.hex,
      String(frame.portOffset),
      "20000",
      String(FLOOD_PORTS),
    ]);
    let flooding = true;
    flood.finally(() => flooding = false);
    // The honest requests start once the flood is being rate limited, and end before it does.
    for (let limited = 0; limited === 0;) {
      await new Promise((r) => setTimeout(r, 20));
      limited = sample(
        (await get(`${agent.url}/metrics`)).body,
        "huginn_ebpf_syn_rate_limited_total",
        'family="ipv4"',
      )!;
    }
    const seen: Array<string | undefined> = [];
    for (let i = 0; i < HONEST_REQUESTS; i++) {
      const out = await ns.run([
        "taskset",
        "-c",
        "0",
        "curl",
        "-sk",
        `https://${ns.hostV4}:${proxy.port}/honest`,
      ]);
      seen.push(parseEchoes(out)[0]?.headers["x-tcp-p0f"]);
    }
    assert.ok(flooding, "the flood lasted as long as the honest requests");
    await flood;
    const metrics = (await get(`${agent.url}/metrics`)).body;
    const limited = sample(metrics, "huginn_ebpf_syn_rate_limited_total", 'family="ipv4"')!;
    console.log(
      `rate limited: ${limited}; honest x-tcp-p0f: ${seen.filter(Boolean).length}/${HONEST_REQUESTS}`,
    );
    assert.deepEqual(seen.filter((s) => s === undefined), [], JSON.stringify(seen));
    assert.equal(new Set(seen).size, 1, "one client, one signature");
    assert.ok(limited >= FLOOD_PORTS * FLOOD_ROUNDS - BUDGET - HONEST_REQUESTS, `rate limited: ${limited}`);
    assert.equal(await proxy.metric("huginn_tcp_syn_fingerprints_total", 'reason="hit"'), HONEST_REQUESTS);
    assert.equal((await proxy.ops("/ready")).status, 200);
  },
});
