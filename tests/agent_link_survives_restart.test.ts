/**
 * With HUGINN_EBPF_PIN_LINK, the program is attached through a BPF link pinned next to the maps, in the
 * XDP mode asked for: it keeps capturing while the agent is killed, a restarted agent adopts the link
 * (same link, same program), a changed configuration swaps the program behind the same link, SIGTERM
 * leaves it attached, and removing the pin detaches it for good. `/ready` still asks the kernel; switching
 * the option off or on replaces the other kind of attachment; and tc, which has no pinnable link with
 * libbpf 1.1, is refused.
 */
import assert from "node:assert/strict";
import { LINK_PIN } from "../shared/ebpf_abi.ts";
import { openSynMaps } from "../shared/syn_maps.ts";
import {
  get,
  isRoot,
  mountBpffs,
  pinnedLink,
  runAgentToExit,
  sample,
  startAgent,
  xdpProgramId,
} from "./support/agent.ts";
import { connectFrom, createNetns, type Netns, sh } from "./support/netns.ts";

const MODES = ["xdp-native", "xdp-skb"] as const;
type XdpMode = typeof MODES[number];
const other = (mode: XdpMode): XdpMode => mode === "xdp-native" ? "xdp-skb" : "xdp-native";

/** A network namespace, a bpffs and a listener; the agent's environment for them with a pinned link. */
async function setUp(prefix: string, mode: XdpMode) {
  const ns = await createNetns(prefix);
  let bpffs;
  try {
    bpffs = await mountBpffs();
  } catch (e) {
    await ns.destroy();
    throw e;
  }
  const listener = Deno.listen({ hostname: ns.hostV4, port: 0 });
  const pinPath = `${bpffs.dir}/huginn`;
  return {
    ns,
    listener,
    pinPath,
    linkPin: `${pinPath}/${LINK_PIN}`,
    env: {
      HUGINN_EBPF_INTERFACE: ns.hostIf,
      HUGINN_EBPF_DST_PORT: String(listener.addr.port),
      HUGINN_EBPF_CAPTURE: mode,
      HUGINN_EBPF_PIN_PATH: pinPath,
      HUGINN_EBPF_PIN_LINK: "true",
    },
    [Symbol.asyncDispose]: async () => {
      listener.close();
      await ns.destroy();
      await bpffs[Symbol.asyncDispose]();
    },
  };
}

/** Whether a new connection from the namespace gets its SYN recorded. */
async function captures(ns: Netns, listener: Deno.TcpListener, pinPath: string): Promise<boolean> {
  const peer = await connectFrom(ns, listener, ns.hostV4);
  const maps = openSynMaps(pinPath);
  try {
    return maps.lookup(peer) !== undefined;
  } finally {
    maps.close();
  }
}

const messages = (logs: Record<string, unknown>[]) => logs.map((l) => l.msg);

for (const mode of MODES) {
  Deno.test({
    name: `agent in ${mode} mode with a pinned link keeps capturing while down, and adopts the link again`,
    ignore: !isRoot,
    async fn() {
      await using t = await setUp("hfplnk", mode);
      const { ns, listener, pinPath, linkPin, env } = t;

      await using first = startAgent(env);
      await first.ready();
      const link = pinnedLink(linkPin);
      assert.equal(xdpProgramId(ns.hostIf, mode), link.programId, "attached in the mode asked for");
      assert.equal(xdpProgramId(ns.hostIf, other(mode)), 0);

      assert.notEqual((await first.stop("SIGKILL")).code, 0);
      assert.equal(xdpProgramId(ns.hostIf, mode), link.programId, "detached when the agent was killed");
      assert.ok(await captures(ns, listener, pinPath), "no SYN captured while the agent was down");

      await using second = startAgent(env);
      await second.ready();
      assert.deepEqual(pinnedLink(linkPin), link);
      assert.ok(messages(second.logs()).includes("adopting the pinned link, which runs this program"));
      assert.equal(sample((await get(`${second.url}/metrics`)).body, "huginn_ebpf_up"), 1);
      assert.equal((await second.stop("SIGTERM")).code, 0);
      assert.equal(xdpProgramId(ns.hostIf, mode), link.programId, "SIGTERM detached the pinned link");
      assert.ok(await captures(ns, listener, pinPath), "no SYN captured after SIGTERM");

      // Another configuration is another program: swapped in through the same link.
      await using third = startAgent({ ...env, HUGINN_EBPF_RATE_LIMIT_SYNS: "1000" });
      await third.ready();
      const updated = pinnedLink(linkPin);
      assert.equal(updated.id, link.id);
      assert.notEqual(updated.programId, link.programId);
      assert.equal(xdpProgramId(ns.hostIf, mode), updated.programId);
      assert.ok(messages(third.logs()).includes("updated the program of the pinned link"));
      assert.equal((await third.stop("SIGTERM")).code, 0);

      // Detaching for good: remove the pin. The kernel releases the link shortly after, not at once.
      await Deno.remove(linkPin);
      for (const deadline = Date.now() + 10_000; xdpProgramId(ns.hostIf, mode) !== 0;) {
        if (Date.now() > deadline) {
          throw new Error("the program stayed attached after its link pin was removed");
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(!(await captures(ns, listener, pinPath)), "a SYN was captured after the link was removed");
    },
  });
}

Deno.test({
  name: "/ready with a pinned link is 503 once the link is detached behind the agent's back",
  ignore: !isRoot,
  async fn() {
    await using t = await setUp("hfplnr", "xdp-skb");
    await using agent = startAgent(t.env);
    await agent.ready();
    await sh(["bpftool", "link", "detach", "pinned", t.linkPin]);
    const ready = await get(`${agent.url}/ready`);
    assert.equal(ready.status, 503);
    assert.match(JSON.parse(ready.body).reason, /not attached/);
    assert.equal((await agent.stop()).code, 0);
  },
});

Deno.test({
  name: "switching HUGINN_EBPF_PIN_LINK off and on again replaces the other kind of attachment",
  ignore: !isRoot,
  async fn() {
    await using t = await setUp("hfplno", "xdp-native");
    const attached = () => xdpProgramId(t.ns.hostIf, "xdp-native");
    await using pinned = startAgent(t.env);
    await pinned.ready();
    const link = pinnedLink(t.linkPin);
    assert.equal((await pinned.stop()).code, 0);

    // Off: the pinned link is detached and removed, and the program attached without a link.
    await using plain = startAgent({ ...t.env, HUGINN_EBPF_PIN_LINK: "false" });
    await plain.ready();
    await assert.rejects(Deno.stat(t.linkPin), Deno.errors.NotFound);
    const programId = plain.logs().find((l) => l.msg === "capturing SYNs")?.programId;
    assert.equal(attached(), programId);
    assert.notEqual(programId, link.programId);
    // Killed, it leaves that attachment behind.
    await plain.stop("SIGKILL");
    assert.equal(attached(), programId);

    // On again: the leftover makes way for a new pinned link.
    await using again = startAgent(t.env);
    await again.ready();
    const relinked = pinnedLink(t.linkPin);
    assert.equal(attached(), relinked.programId);
    assert.notEqual(relinked.programId, programId);
    assert.ok(again.logs().some((l) => l.msg === "replacing the XDP program attached to the interface"));
    assert.equal((await again.stop()).code, 0);
    assert.equal(attached(), relinked.programId);
  },
});

Deno.test("agent exits 2 with one line for HUGINN_EBPF_PIN_LINK with tc capture", async () => {
  const { code, lines } = await runAgentToExit({
    HUGINN_EBPF_INTERFACE: "lo",
    HUGINN_EBPF_DST_PORT: "443",
    HUGINN_EBPF_CAPTURE: "tc",
    HUGINN_EBPF_PIN_LINK: "true",
  });
  assert.equal(code, 2, lines.join("\n"));
  assert.equal(lines.length, 1, lines.join("\n"));
  const { msg } = JSON.parse(lines[0]);
  assert.ok(msg.startsWith('HUGINN_EBPF_PIN_LINK="true" is invalid: expected '), msg);
  assert.match(msg, /HUGINN_EBPF_CAPTURE=xdp-native or xdp-skb/);
  assert.match(msg, /libbpf 1\.3/);
});
