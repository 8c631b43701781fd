/**
 * With `tcp_enabled`, the proxy finds each connection's SYN in the pinned maps at accept time and sends
 * its p0f signature. The maps are made here with bpftool in the agent's layout and filled with known
 * SYNs, so that hits, stale and foreign records, late map creation (/ready) and map replacement are all
 * exercised without the agent.
 */
import assert from "node:assert/strict";
import { mountBpffs } from "./support/agent.ts";
import {
  freePort,
  parseEchoes,
  type Proxy,
  routeAllTo,
  run,
  startEcho,
  startProxy,
} from "./support/proxy_harness.ts";
import { createSynMaps, putSyn, removeSynMaps } from "./support/syn_map_fixture.ts";

const vectors = JSON.parse(
  await Deno.readTextFile(new URL("../../shared/fingerprint-vectors/syn_vectors.json", import.meta.url)),
) as Array<{ ip_packet_hex: string; p0f_raw_sig: string }>;
const SYN = vectors.find((v) => v.ip_packet_hex.startsWith("45"))!;

/** Writes a SYN record for 127.0.0.1:`clientPort` the way the agent's program does. */
function putLoopbackSyn(pinPath: string, clientPort: number, dstPort: number, ageMs = 0) {
  return putSyn(pinPath, { address: "127.0.0.1", port: clientPort }, dstPort, SYN.ip_packet_hex, ageMs);
}

/** One request from 127.0.0.1:`clientPort`; returns the x-tcp-p0f the backend saw. */
async function p0fSeen(proxy: Proxy, clientPort: number): Promise<string | undefined> {
  const r = await run(["curl", "-sk", "--local-port", String(clientPort), proxy.url("/tcp")]);
  const [echo] = parseEchoes(r.stdout);
  assert.ok(echo, `no answer: ${r.stderr}`);
  return echo.headers["x-tcp-p0f"];
}

async function readyStatus(proxy: Proxy) {
  return (await proxy.ops("/ready")).status;
}

async function poll(check: () => Promise<boolean>) {
  for (let i = 0; i < 100 && !await check(); i++) await new Promise((r) => setTimeout(r, 100));
}

Deno.test({
  name: "x-tcp-p0f comes from the pinned SYN maps; /ready waits for them; replaced maps are reopened",
  ignore: Deno.uid() !== 0,
  async fn() {
    await using bpffs = await mountBpffs();
    const pinPath = bpffs.dir;
    await using echo = await startEcho();
    await using proxy = await startProxy(
      { ...routeAllTo(echo.address), fingerprint: { tcp_enabled: true, tcp_max_age_ms: 5000 } },
      { waitReady: false, env: { HUGINN_EBPF_PIN_PATH: pinPath } },
    );
    try {
      // Traffic flows before the maps exist; only readiness waits for them.
      await poll(async () => (await run(["curl", "-sk", proxy.url("/")])).code === 0);
      assert.equal(await p0fSeen(proxy, freePort()), undefined);
      assert.equal(await readyStatus(proxy), 503);
      assert.match((await proxy.ops("/ready")).body, /eBPF SYN maps not open/);

      await createSynMaps(pinPath);
      await poll(async () => await readyStatus(proxy) === 200);
      assert.equal(await readyStatus(proxy), 200);
      assert.match(await Deno.readTextFile(`/proc/${proxy.child.pid}/maps`), /libbpf/);

      const hit = freePort();
      await putLoopbackSyn(pinPath, hit, proxy.port);
      assert.equal(await p0fSeen(proxy, hit), SYN.p0f_raw_sig);

      const stale = freePort();
      await putLoopbackSyn(pinPath, stale, proxy.port, 60_000);
      assert.equal(await p0fSeen(proxy, stale), undefined, "a record older than tcp_max_age_ms is ignored");

      const foreign = freePort();
      await putLoopbackSyn(pinPath, foreign, proxy.port + 1);
      assert.equal(
        await p0fSeen(proxy, foreign),
        undefined,
        "a SYN to another port is not this connection's",
      );

      assert.equal(await proxy.metric("huginn_tcp_syn_fingerprints_total", 'reason="hit"'), 1);
      assert.equal(await proxy.metric("huginn_tcp_syn_fingerprints_total", 'reason="stale"'), 1);

      // The agent restarting re-creates its maps under the same pins: new map IDs, reopened.
      await removeSynMaps(pinPath);
      await createSynMaps(pinPath);
      let seen: string | undefined;
      await poll(async () => {
        const port = freePort();
        await putLoopbackSyn(pinPath, port, proxy.port);
        seen = await p0fSeen(proxy, port);
        return seen !== undefined;
      });
      assert.equal(seen, SYN.p0f_raw_sig);
    } finally {
      await proxy.stop();
      await removeSynMaps(pinPath);
    }
  },
});
