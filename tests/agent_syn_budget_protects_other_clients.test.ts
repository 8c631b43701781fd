/**
 * One source flooding SYNs cannot push other clients' SYNs out of the LRU map when the per-source budget
 * is on: the flooder's records stop at the budget, the rest of its SYNs are counted as rate limited, and
 * every honest client's record survives. With the budget off (the default) the same flood evicts every
 * honest record, which is what the budget is for. A source's budget renews with each window, and bad
 * budget settings are refused.
 *
 * The flood is a burst of crafted SYNs from a second address of the namespace, each from another source
 * port, sent through a packet socket on the veth (`synFloodFrame`, whose zero checksums make the host drop
 * the SYNs after the capture hook has seen them, so it never answers the flooder).
 */
import assert from "node:assert/strict";
import { openSynMaps } from "../shared/syn_maps.ts";
import { get, isRoot, mountBpffs, runAgentToExit, sample, startAgent } from "./support/agent.ts";
import { macOf, SEND_SYN_FLOOD, synFloodFrame } from "./support/attack.ts";
import { createNetns, type Netns } from "./support/netns.ts";

const FAMILIES = ["ipv4", "ipv6"] as const;
type Family = typeof FAMILIES[number];

/** Small, so that a bounded flood is many times the map. */
const SYN_MAP_ENTRIES = 256;
const FLOOD_SYNS = 5000;
const FLOOD_FIRST_PORT = 20000;
const HONEST_CONNECTIONS = 8;
/**
 * Connects from inside `ns` to `address` on the listener's port and returns the peer the listener saw.
 * Like the flood, on CPU 0: the LRU map keeps recent entries on per-CPU lists, and entries waiting on
 * another CPU's list are spared eviction, which would make "the flood evicts them" a matter of luck.
 */
async function connectOnCpu0(ns: Netns, listener: Deno.TcpListener, address: string) {
  const client = ns.run([
    "taskset",
    "-c",
    "0",
    "bash",
    "-c",
    `exec 3<>/dev/tcp/${address}/${listener.addr.port}`,
  ]);
  const conn = await listener.accept();
  await client;
  conn.close();
  return { address: conn.remoteAddr.hostname, port: conn.remoteAddr.port };
}

/** The namespace's honest address of each family, and a second one, the flooder's. */
interface Addresses {
  honest: Record<Family, string>;
  flooder: Record<Family, string>;
  server: Record<Family, string>;
}

async function addFlooder(ns: Netns): Promise<Addresses> {
  // A documentation address for IPv4 (the veth's /30 has no spare host), the same /64 for IPv6. The host
  // never sends to either: it drops the flood's SYNs on their checksums. Deprecated (preferred_lft 0), the
  // IPv6 one is never picked as the honest client's source address.
  const flooder = { ipv4: "192.0.2.66", ipv6: ns.nsV6.replace(/::2$/, "::f1") };
  await ns.run(["ip", "addr", "add", `${flooder.ipv4}/32`, "dev", ns.nsIf]);
  await ns.run([
    "ip",
    "-6",
    "addr",
    "add",
    `${flooder.ipv6}/128`,
    "dev",
    ns.nsIf,
    "nodad",
    "preferred_lft",
    "0",
  ]);
  return {
    honest: { ipv4: ns.nsV4, ipv6: ns.nsV6 },
    flooder,
    server: { ipv4: ns.hostV4, ipv6: ns.hostV6 },
  };
}

/** What one run saw, per family. */
interface Outcome {
  honestKept: number;
  flooderRecords: number;
  rateLimited: number;
  captured: number;
}

/**
 * Honest clients connect over IPv4 and IPv6, then the flood arrives (before the proxy would look the
 * honest SYNs up), then the maps are read.
 */
async function floodAfterHonestClients(budget: number): Promise<Record<Family, Outcome>> {
  await using ns = await createNetns("hfpbud");
  await using bpffs = await mountBpffs();
  using listener = Deno.listen({ hostname: "::", port: 0 });
  const port = listener.addr.port;
  const addresses = await addFlooder(ns);
  const pinPath = `${bpffs.dir}/huginn`;
  await using agent = startAgent({
    HUGINN_EBPF_INTERFACE: ns.hostIf,
    HUGINN_EBPF_DST_PORT: String(port),
    HUGINN_EBPF_CAPTURE: "xdp-native",
    HUGINN_EBPF_PIN_PATH: pinPath,
    HUGINN_EBPF_SYN_MAP_MAX_ENTRIES: String(SYN_MAP_ENTRIES),
    HUGINN_EBPF_RATE_LIMIT_SYNS: String(budget),
    // One window for the whole test, so that the flooder's allowance is exactly one budget.
    HUGINN_EBPF_RATE_LIMIT_WINDOW_MS: "600000",
  });
  await agent.ready();

  const honest: { address: string; port: number }[] = [];
  for (const family of FAMILIES) {
    for (let i = 0; i < HONEST_CONNECTIONS; i++) {
      honest.push(await connectOnCpu0(ns, listener, addresses.server[family]));
    }
  }
  const mac = await macOf(ns.hostIf);
  const bursts = FAMILIES.flatMap((family) => {
    const { hex, portOffset } = synFloodFrame(mac, addresses.flooder[family], addresses.server[family], port);
    return [hex, String(portOffset), String(FLOOD_FIRST_PORT), String(FLOOD_SYNS)];
  });
  await ns.run(["taskset", "-c", "0", "python3", "-c", SEND_SYN_FLOOD, ns.nsIf, "1", ...bursts]);

  const metrics = (await get(`${agent.url}/metrics`)).body;
  const maps = openSynMaps(pinPath);
  try {
    const outcome = (family: Family): Outcome => {
      const isFamily = (address: string) => address.includes(".") === (family === "ipv4");
      let flooderRecords = 0;
      for (let p = FLOOD_FIRST_PORT; p < FLOOD_FIRST_PORT + FLOOD_SYNS; p++) {
        if (maps.lookup({ address: addresses.flooder[family], port: p })) flooderRecords++;
      }
      const labels = `family="${family}"`;
      return {
        honestKept: honest.filter((peer) => isFamily(peer.address) && maps.lookup(peer)).length,
        flooderRecords,
        rateLimited: sample(metrics, "huginn_ebpf_syn_rate_limited_total", labels)!,
        captured: sample(metrics, "huginn_ebpf_syn_captured_total", labels)!,
      };
    };
    return { ipv4: outcome("ipv4"), ipv6: outcome("ipv6") };
  } finally {
    maps.close();
  }
}

Deno.test({
  name: "with a per-source SYN budget, a flood from one address leaves every other client's SYN recorded",
  ignore: !isRoot,
  async fn() {
    const budget = 20;
    const outcome = await floodAfterHonestClients(budget);
    for (const family of FAMILIES) {
      const seen = outcome[family];
      const what = `${family}: ${JSON.stringify(seen)}`;
      assert.equal(seen.honestKept, HONEST_CONNECTIONS, what);
      // XDP on a veth with one queue runs on one CPU at a time, so the budget holds exactly here.
      assert.equal(seen.flooderRecords, budget, what);
      assert.equal(seen.captured, HONEST_CONNECTIONS + budget, what);
      assert.ok(seen.rateLimited > 0 && seen.rateLimited <= FLOOD_SYNS - budget, what);
    }
  },
});

Deno.test({
  name: "without the budget (the default), the same flood evicts every other client's SYN",
  ignore: !isRoot,
  async fn() {
    const outcome = await floodAfterHonestClients(0);
    for (const family of FAMILIES) {
      const seen = outcome[family];
      const what = `${family}: ${JSON.stringify(seen)}`;
      assert.equal(seen.honestKept, 0, what);
      assert.ok(seen.flooderRecords > 0 && seen.flooderRecords <= SYN_MAP_ENTRIES, what);
      assert.equal(seen.rateLimited, 0, what);
    }
  },
});

Deno.test({
  name: "a source's SYN budget renews when its window has passed",
  ignore: !isRoot,
  async fn() {
    await using ns = await createNetns("hfpwin");
    await using bpffs = await mountBpffs();
    const addresses = await addFlooder(ns);
    const port = 8443;
    const budget = 5;
    const windowMs = 1000;
    const pinPath = `${bpffs.dir}/huginn`;
    await using agent = startAgent({
      HUGINN_EBPF_INTERFACE: ns.hostIf,
      HUGINN_EBPF_DST_PORT: String(port),
      HUGINN_EBPF_CAPTURE: "xdp-native",
      HUGINN_EBPF_PIN_PATH: pinPath,
      HUGINN_EBPF_RATE_LIMIT_SYNS: String(budget),
      HUGINN_EBPF_RATE_LIMIT_WINDOW_MS: String(windowMs),
    });
    await agent.ready();
    const mac = await macOf(ns.hostIf);
    const burst = (first: number) =>
      ns.run([
        "python3",
        "-c",
        SEND_SYN_FLOOD,
        ns.nsIf,
        "1",
        ...FAMILIES.flatMap((family) => {
          const frame = synFloodFrame(mac, addresses.flooder[family], addresses.server[family], port);
          return [frame.hex, String(frame.portOffset), String(first), String(2 * budget)];
        }),
      ]);
    const recorded = (first: number) => {
      const maps = openSynMaps(pinPath);
      try {
        return FAMILIES.map((family) => {
          let n = 0;
          for (let p = first; p < first + 2 * budget; p++) {
            if (maps.lookup({ address: addresses.flooder[family], port: p })) n++;
          }
          return n;
        });
      } finally {
        maps.close();
      }
    };

    // Each burst takes a few milliseconds, far inside one window; the pause is longer than a window.
    await burst(30000);
    assert.deepEqual(recorded(30000), [budget, budget]);
    await new Promise((r) => setTimeout(r, windowMs * 1.5));
    await burst(31000);
    assert.deepEqual(recorded(31000), [budget, budget]);
    const metrics = (await get(`${agent.url}/metrics`)).body;
    for (const family of FAMILIES) {
      assert.equal(sample(metrics, "huginn_ebpf_syn_rate_limited_total", `family="${family}"`), 2 * budget);
    }
  },
});

for (
  const [variable, value] of [
    ["HUGINN_EBPF_RATE_LIMIT_SYNS", "-1"],
    ["HUGINN_EBPF_RATE_LIMIT_SYNS", "1000001"],
    ["HUGINN_EBPF_RATE_LIMIT_WINDOW_MS", "0"],
    ["HUGINN_EBPF_RATE_LIMIT_WINDOW_MS", "1s"],
  ]
) {
  Deno.test(`agent exits 2 with one line for ${variable} ${JSON.stringify(value)}`, async () => {
    const { code, lines } = await runAgentToExit({
      HUGINN_EBPF_INTERFACE: "lo",
      HUGINN_EBPF_DST_PORT: "443",
      [variable]: value,
    });
    assert.equal(code, 2, lines.join("\n"));
    assert.equal(lines.length, 1, lines.join("\n"));
    const { msg } = JSON.parse(lines[0]);
    assert.ok(msg.startsWith(`${variable}=${JSON.stringify(value)} is invalid: expected `), msg);
  });
}
