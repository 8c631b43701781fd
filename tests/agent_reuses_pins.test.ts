/**
 * A restarted agent reuses its pinned maps (same map IDs, captured SYNs still there), so proxies keep
 * reading them; a changed capacity replaces the SYN maps (new IDs, new capacity) and says so in the log.
 */
import assert from "node:assert/strict";
import { closeFd, mapInfo, objGet } from "../shared/libbpf.ts";
import { openSynMaps } from "../shared/syn_maps.ts";
import { isRoot, mountBpffs, startAgent } from "./support/agent.ts";
import { connectFrom, createNetns } from "./support/netns.ts";

function pinned(path: string) {
  const fd = objGet(path, { readOnly: true });
  try {
    return mapInfo(fd);
  } finally {
    closeFd(fd);
  }
}

Deno.test({
  name: "a restarted agent keeps the map IDs and records; a capacity change replaces the SYN maps",
  ignore: !isRoot,
  async fn() {
    await using ns = await createNetns("hfppin");
    await using bpffs = await mountBpffs();
    using listener = Deno.listen({ hostname: ns.hostV4, port: 0 });
    const pinPath = `${bpffs.dir}/huginn`;
    const run = async (maxEntries: number, during?: () => Promise<void>) => {
      await using agent = startAgent({
        HUGINN_EBPF_INTERFACE: ns.hostIf,
        HUGINN_EBPF_DST_PORT: String(listener.addr.port),
        HUGINN_EBPF_CAPTURE: "xdp-skb",
        HUGINN_EBPF_PIN_PATH: pinPath,
        HUGINN_EBPF_SYN_MAP_MAX_ENTRIES: String(maxEntries),
      });
      await agent.ready();
      await during?.();
      assert.equal((await agent.stop()).code, 0);
      const maps = openSynMaps(pinPath);
      const ids = { ...maps.ids(), counters: pinned(`${pinPath}/syn_counters`).id };
      maps.close();
      return { ids, logs: agent.logs() };
    };

    let peer = { address: "", port: 0 };
    const first = await run(4096, async () => {
      peer = await connectFrom(ns, listener, ns.hostV4);
    });
    const before = openSynMaps(pinPath);
    const record = before.lookup(peer);
    before.close();
    assert.ok(record, "the first agent captured nothing");

    const second = await run(4096);
    assert.deepEqual(second.ids, first.ids);
    assert.ok(second.logs.some((l) => l.msg === "reusing pinned map"));
    const after = openSynMaps(pinPath);
    assert.deepEqual(after.lookup(peer), record, "the record did not survive the restart");
    after.close();

    const third = await run(2048);
    assert.notEqual(third.ids.v4, first.ids.v4);
    assert.notEqual(third.ids.v6, first.ids.v6);
    assert.equal(third.ids.counters, first.ids.counters, "the counters map did not change, yet was replaced");
    assert.equal(pinned(`${pinPath}/syn_v4`).maxEntries, 2048);
    assert.equal(pinned(`${pinPath}/syn_v6`).maxEntries, 2048);
    const replaced = third.logs.filter((l) => String(l.msg).startsWith("replacing a pinned map"));
    assert.deepEqual(replaced.map((l) => l.pin), [`${pinPath}/syn_v4`, `${pinPath}/syn_v6`]);
  },
});
