/**
 * `/ready` reports the kernel's real state, not a flag: it turns 503 (with a reason) when someone detaches
 * the program behind the agent's back or deletes a pin, and `huginn_ebpf_up` follows. A signal makes the
 * agent detach and exit 0 while the pins stay for the proxies.
 */
import assert from "node:assert/strict";
import { get, isRoot, mountBpffs, sample, startAgent } from "./support/agent.ts";
import { createNetns, sh } from "./support/netns.ts";

/** The XDP program ids `ip` reports on `ifname` (none when nothing is attached). */
async function xdpIds(ifname: string): Promise<number[]> {
  const [link] = JSON.parse(await sh(["ip", "-j", "-d", "link", "show", "dev", ifname]));
  const xdp = link.xdp as { prog?: { id: number }; attached?: { prog?: { id: number } }[] } | undefined;
  if (!xdp) return [];
  return [xdp.prog?.id, ...(xdp.attached ?? []).map((a) => a.prog?.id)].filter((id): id is number => !!id);
}

const cases = [
  {
    mode: "xdp-native",
    detach: (dev: string) => sh(["ip", "link", "set", "dev", dev, "xdpdrv", "off"]),
    attached: async (dev: string) => (await xdpIds(dev)).length > 0,
    signal: "SIGTERM",
  },
  {
    mode: "xdp-skb",
    detach: (dev: string) => sh(["ip", "link", "set", "dev", dev, "xdpgeneric", "off"]),
    attached: async (dev: string) => (await xdpIds(dev)).length > 0,
    signal: "SIGINT",
  },
  {
    mode: "tc",
    detach: (dev: string) => sh(["tc", "filter", "del", "dev", dev, "ingress"]),
    attached: async (dev: string) =>
      (await sh(["tc", "filter", "show", "dev", dev, "ingress"])).trim() !== "",
    signal: "SIGTERM",
  },
] as const;

for (const { mode, detach, attached, signal } of cases) {
  Deno.test({
    name: `/ready in ${mode} mode is 200 only while the program is attached, and ${signal} detaches`,
    ignore: !isRoot,
    async fn() {
      await using ns = await createNetns("hfprdy");
      await using bpffs = await mountBpffs();
      const pinPath = `${bpffs.dir}/huginn`;
      await using agent = startAgent({
        HUGINN_EBPF_INTERFACE: ns.hostIf,
        HUGINN_EBPF_DST_PORT: "443",
        HUGINN_EBPF_CAPTURE: mode,
        HUGINN_EBPF_PIN_PATH: pinPath,
      });
      await agent.ready();
      assert.ok(await attached(ns.hostIf));
      assert.equal((await get(`${agent.url}/live`)).status, 200);
      assert.equal(JSON.parse((await get(`${agent.url}/health`)).body).status, "ok");
      const metrics = (await get(`${agent.url}/metrics`)).body;
      assert.equal(sample(metrics, "huginn_ebpf_up"), 1);
      assert.ok((sample(metrics, "process_resident_memory_bytes") ?? 0) > 0, "the agent reports its memory");

      await detach(ns.hostIf);
      const ready = await get(`${agent.url}/ready`);
      assert.equal(ready.status, 503);
      assert.match(JSON.parse(ready.body).reason, /not attached/);
      assert.equal(sample((await get(`${agent.url}/metrics`)).body, "huginn_ebpf_up"), 0);
      assert.equal((await get(`${agent.url}/live`)).status, 200);

      assert.equal((await agent.stop(signal)).code, 0);
      assert.ok(!(await attached(ns.hostIf)));
      for (const pin of ["syn_v4", "syn_v6", "syn_counters"]) {
        assert.equal((await Deno.stat(`${pinPath}/${pin}`)).mode! & 0o777, 0o644, pin);
      }
    },
  });
}

Deno.test({
  name: "/ready is 503 naming the pin when a pinned map is deleted, and SIGTERM leaves the program detached",
  ignore: !isRoot,
  async fn() {
    await using ns = await createNetns("hfprdy");
    await using bpffs = await mountBpffs();
    const pinPath = `${bpffs.dir}/huginn`;
    await using agent = startAgent({
      HUGINN_EBPF_INTERFACE: ns.hostIf,
      HUGINN_EBPF_DST_PORT: "443",
      HUGINN_EBPF_CAPTURE: "xdp-native",
      HUGINN_EBPF_PIN_PATH: pinPath,
    });
    await agent.ready();
    await Deno.remove(`${pinPath}/syn_v6`);
    const ready = await get(`${agent.url}/ready`);
    assert.equal(ready.status, 503);
    assert.match(JSON.parse(ready.body).reason, /syn_v6/);
    assert.equal((await agent.stop()).code, 0);
    assert.deepEqual(await xdpIds(ns.hostIf), []);
  },
});
