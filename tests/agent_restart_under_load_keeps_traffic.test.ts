/**
 * The eBPF agent is SIGKILLed and restarted while clients in a network namespace keep sending requests
 * through the proxy: no request fails, and TCP fingerprints resume. With `HUGINN_EBPF_PIN_LINK=true`
 * the program stays attached while no agent runs, so every request has its `x-tcp-p0f`: capture has no
 * gap. When the restarted agent replaces the maps (another capacity), the proxy notices the new map IDs
 * (it polls the pins every second, `proxy/tcp_syn.ts`) and fingerprints resume on the new maps. The
 * proxy's `/ready`, which follows whether it has the maps open, stays 200 throughout: the pins outlive
 * the agent.
 */
import assert from "node:assert/strict";
import { readySettles, readyStatus } from "./support/attack.ts";
import { type Agent, isRoot, mountBpffs, startAgent } from "./support/agent.ts";
import { createNetns, type Netns } from "./support/netns.ts";
import { parseEchoes, type Proxy, routeAllTo, startEcho, startProxy } from "./support/proxy_harness.ts";

/** A guard against a load that never ends. */
const MAX_REQUESTS = 400;

interface Sample {
  ok: boolean;
  p0f: string | undefined;
  ready: number;
}

/** Requests from inside `ns`, one connection each, until `stop()` is called; records every outcome. */
function load(ns: Netns, proxy: Proxy) {
  const samples: Sample[] = [];
  let stopped = false;
  const done = (async () => {
    for (let i = 0; i < MAX_REQUESTS && !stopped; i++) {
      const out = await ns.run([
        "curl",
        "-sk",
        "--max-time",
        "10",
        `https://${ns.hostV4}:${proxy.port}/load${i}`,
      ])
        .catch((e) => String(e));
      const [echo] = parseEchoes(out);
      samples.push({
        ok: echo?.path === `/load${i}`,
        p0f: echo?.headers["x-tcp-p0f"],
        ready: await readyStatus(proxy),
      });
    }
  })();
  /** Resolves once `n` more requests have been made. */
  const after = async (n: number) => {
    const target = samples.length + n;
    while (samples.length < target && !stopped) await new Promise((r) => setTimeout(r, 20));
  };
  return {
    samples,
    after,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

async function setUp(pinPath: string) {
  const echo = await startEcho();
  const proxy = await startProxy(
    { ...routeAllTo(echo.address), fingerprint: { tcp_enabled: true } },
    { listenHost: "0.0.0.0", waitReady: false, env: { HUGINN_EBPF_PIN_PATH: pinPath } },
  );
  return { echo, proxy };
}

function agentEnv(ns: Netns, proxy: Proxy, pinPath: string, extra: Record<string, string>) {
  return {
    HUGINN_EBPF_INTERFACE: ns.hostIf,
    HUGINN_EBPF_DST_PORT: String(proxy.port),
    HUGINN_EBPF_CAPTURE: "xdp-native",
    HUGINN_EBPF_PIN_PATH: pinPath,
    ...extra,
  };
}

Deno.test({
  name: "with a pinned link, SIGKILL and restart of the agent: every request succeeds with its x-tcp-p0f",
  ignore: !isRoot,
  async fn() {
    await using ns = await createNetns("hfprst");
    await using bpffs = await mountBpffs();
    const pinPath = `${bpffs.dir}/huginn`;
    const { echo, proxy } = await setUp(pinPath);
    await using _echo = echo;
    await using _proxy = proxy;
    const env = agentEnv(ns, proxy, pinPath, { HUGINN_EBPF_PIN_LINK: "true" });
    let agent: Agent = startAgent(env);
    try {
      await agent.ready();
      assert.equal(await readySettles(proxy, 200), 200, proxy.stderr());
      const traffic = load(ns, proxy);
      try {
        await traffic.after(5);
        await agent.stop("SIGKILL");
        await traffic.after(10); // no agent running
        agent = startAgent(env);
        await agent.ready();
        await traffic.after(10);
      } finally {
        await traffic.stop();
      }
      const { samples } = traffic;
      assert.deepEqual(samples.filter((s) => !s.ok || s.p0f === undefined || s.ready !== 200), [], "no gap");
      assert.equal(new Set(samples.map((s) => s.p0f)).size, 1, "one client, one signature");
      // The maps were reused: the proxy opened them once.
      assert.equal(proxy.stderr().split("SYN maps opened").length - 1, 1, proxy.stderr());
    } finally {
      await agent[Symbol.asyncDispose]();
    }
  },
});

Deno.test({
  name: "an agent restarted with new maps: no request fails and the proxy resumes on the new maps",
  ignore: !isRoot,
  async fn() {
    await using ns = await createNetns("hfprsm");
    await using bpffs = await mountBpffs();
    const pinPath = `${bpffs.dir}/huginn`;
    const { echo, proxy } = await setUp(pinPath);
    await using _echo = echo;
    await using _proxy = proxy;
    let agent: Agent = startAgent(agentEnv(ns, proxy, pinPath, { HUGINN_EBPF_SYN_MAP_MAX_ENTRIES: "8192" }));
    try {
      await agent.ready();
      assert.equal(await readySettles(proxy, 200), 200, proxy.stderr());
      const traffic = load(ns, proxy);
      let restartedAt = 0;
      try {
        await traffic.after(5);
        await agent.stop("SIGKILL");
        await traffic.after(5);
        // Another capacity: the agent replaces both maps, with new IDs.
        agent = startAgent(agentEnv(ns, proxy, pinPath, { HUGINN_EBPF_SYN_MAP_MAX_ENTRIES: "4096" }));
        await agent.ready();
        restartedAt = traffic.samples.length;
        // The proxy polls the pins every second: a few requests may miss until it has reopened.
        while (proxy.stderr().split("SYN maps opened").length - 1 < 2 && traffic.samples.length < 300) {
          await traffic.after(1);
        }
        await traffic.after(10);
      } finally {
        await traffic.stop();
      }
      const { samples } = traffic;
      assert.deepEqual(
        samples.filter((s) => !s.ok || s.ready !== 200),
        [],
        "no failed request, always ready",
      );
      assert.equal(proxy.stderr().split("SYN maps opened").length - 1, 2, "reopened once, on the new IDs");
      const last = samples.slice(-10);
      assert.deepEqual(last.filter((s) => s.p0f === undefined), [], "fingerprints resumed");
      const missed = samples.slice(restartedAt).filter((s) => s.p0f === undefined).length;
      console.log(`requests: ${samples.length}; without x-tcp-p0f after the restart: ${missed}`);
      assert.ok(agent.stderr().includes("replacing a pinned map"), agent.stderr());
    } finally {
      await agent[Symbol.asyncDispose]();
    }
  },
});
