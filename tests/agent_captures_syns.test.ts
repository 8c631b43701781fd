/**
 * The real agent, attached to a veth in each capture mode, records the SYNs of IPv4 and IPv6 connections
 * into the pinned maps; the proxy's reader finds them by the accepted peer's address and port; and the
 * captured bytes give exactly the signature p0f 3.09b prints for the same SYN on the same interface.
 */
import assert from "node:assert/strict";
import { p0fSignature } from "../shared/fingerprint.ts";
import { bootTimeNs, openSynMaps } from "../shared/syn_maps.ts";
import { get, isRoot, mountBpffs, sample, startAgent } from "./support/agent.ts";
import { connectFrom, createNetns } from "./support/netns.ts";
import { startP0f } from "./support/p0f.ts";

for (const mode of ["xdp-native", "xdp-skb", "tc"]) {
  Deno.test({
    name: `agent in ${mode} mode captures IPv4 and IPv6 SYNs that p0f fingerprints identically`,
    ignore: !isRoot,
    async fn() {
      await using ns = await createNetns("hfpcap");
      await using bpffs = await mountBpffs();
      // Dual-stack: IPv4 clients are accepted as IPv4-mapped IPv6 addresses, as a proxy on :: sees them.
      using listener = Deno.listen({ hostname: "::", port: 0 });
      const port = listener.addr.port;
      await using p0f = await startP0f(ns.hostIf, port);
      const pinPath = `${bpffs.dir}/huginn`;
      await using agent = startAgent({
        HUGINN_EBPF_INTERFACE: ns.hostIf,
        HUGINN_EBPF_DST_PORT: String(port),
        HUGINN_EBPF_CAPTURE: mode,
        HUGINN_EBPF_PIN_PATH: pinPath,
      });
      await agent.ready();

      const maps = openSynMaps(pinPath);
      try {
        for (const server of [ns.hostV4, ns.hostV6]) {
          const before = bootTimeNs();
          const peer = await connectFrom(ns, listener, server);
          const record = maps.lookup(peer);
          assert.ok(record, `no SYN recorded for ${peer.address} port ${peer.port}`);
          assert.equal(record.dstPort, port);
          assert.ok(record.capturedNs >= before && record.capturedNs <= bootTimeNs());
          assert.deepEqual(p0fSignature(record.packet), { ok: true, value: await p0f.rawSig(peer.port) });
        }
      } finally {
        maps.close();
      }

      const metrics = (await get(`${agent.url}/metrics`)).body;
      assert.ok(sample(metrics, "huginn_ebpf_syn_captured_total", 'family="ipv4"')! >= 1, metrics);
      assert.ok(sample(metrics, "huginn_ebpf_syn_captured_total", 'family="ipv6"')! >= 1, metrics);
      assert.equal(sample(metrics, "huginn_ebpf_syn_malformed_total", 'family="ipv4"'), 0);
      assert.equal(sample(metrics, "huginn_ebpf_up"), 1);
      assert.equal((await agent.stop()).code, 0);
    },
  });
}

Deno.test({
  name: "SYN map lookup takes IPv4 in dotted and IPv4-mapped form and ignores non-IP peers",
  ignore: !isRoot,
  async fn() {
    await using ns = await createNetns("hfpkey");
    await using bpffs = await mountBpffs();
    using listener = Deno.listen({ hostname: ns.hostV4, port: 0 });
    const port = listener.addr.port;
    const pinPath = `${bpffs.dir}/huginn`;
    await using agent = startAgent({
      HUGINN_EBPF_INTERFACE: ns.hostIf,
      HUGINN_EBPF_DST_PORT: String(port),
      HUGINN_EBPF_CAPTURE: "xdp-skb",
      HUGINN_EBPF_PIN_PATH: pinPath,
    });
    await agent.ready();
    const peer = await connectFrom(ns, listener, ns.hostV4);
    assert.equal(peer.address, ns.nsV4);
    const maps = openSynMaps(pinPath);
    try {
      const record = maps.lookup(peer);
      assert.ok(record);
      assert.deepEqual(maps.lookup({ address: `::ffff:${peer.address}`, port: peer.port }), record);
      assert.deepEqual(maps.lookup({ address: `::FFFF:${peer.address}`, port: peer.port }), record);
      assert.equal(maps.lookup({ address: peer.address, port: peer.port === 1 ? 2 : 1 }), undefined);
      for (const address of ["", "localhost", "/run/proxy.sock", "10.0.0.256", "1::2::3"]) {
        assert.equal(maps.lookup({ address, port: peer.port }), undefined, address);
      }
      assert.equal(maps.lookup({ address: peer.address, port: 70000 }), undefined);
    } finally {
      maps.close();
    }
  },
});
