/**
 * The destination filters decide what is captured: only SYNs to the configured port, and only to the
 * configured IPv4/IPv6 address when one is set. The counters count exactly the captured SYNs.
 */
import assert from "node:assert/strict";
import { openSynMaps } from "../shared/syn_maps.ts";
import { get, isRoot, mountBpffs, sample, startAgent } from "./support/agent.ts";
import { connectFrom, createNetns } from "./support/netns.ts";

/** Addresses nobody sends to. */
const NOWHERE_V4 = "198.51.100.1";
const NOWHERE_V6 = "fd68:6670:ffff::1";

for (const family of ["ipv4", "ipv6"] as const) {
  Deno.test({
    name: `agent with an ${family} destination filter captures only SYNs to that address and port`,
    ignore: !isRoot,
    async fn() {
      await using ns = await createNetns("hfpflt");
      await using bpffs = await mountBpffs();
      using wanted = Deno.listen({ hostname: "::", port: 0 });
      using other = Deno.listen({ hostname: "::", port: 0 });
      const [server, elsewhere] = family === "ipv4" ? [ns.hostV4, ns.hostV6] : [ns.hostV6, ns.hostV4];
      const pinPath = `${bpffs.dir}/huginn`;
      await using agent = startAgent({
        HUGINN_EBPF_INTERFACE: ns.hostIf,
        HUGINN_EBPF_DST_PORT: String(wanted.addr.port),
        HUGINN_EBPF_DST_IP_V4: family === "ipv4" ? ns.hostV4 : NOWHERE_V4,
        HUGINN_EBPF_DST_IP_V6: family === "ipv6" ? ns.hostV6 : NOWHERE_V6,
        HUGINN_EBPF_CAPTURE: "xdp-native",
        HUGINN_EBPF_PIN_PATH: pinPath,
      });
      await agent.ready();

      const maps = openSynMaps(pinPath);
      try {
        const captured = await connectFrom(ns, wanted, server);
        const otherPort = await connectFrom(ns, other, server);
        const otherAddress = await connectFrom(ns, wanted, elsewhere);
        assert.equal(maps.lookup(captured)?.dstPort, wanted.addr.port);
        assert.equal(maps.lookup(otherPort), undefined, "SYN to another port was captured");
        assert.equal(maps.lookup(otherAddress), undefined, "SYN to another address was captured");
      } finally {
        maps.close();
      }
      const metrics = (await get(`${agent.url}/metrics`)).body;
      for (const f of ["ipv4", "ipv6"]) {
        const expected = f === family ? 1 : 0;
        assert.equal(sample(metrics, "huginn_ebpf_syn_captured_total", `family="${f}"`), expected, metrics);
      }
    },
  });
}
