/**
 * End to end with the real eBPF agent: clients in a network namespace connect over a veth to a
 * dual-stack proxy, and the backend sees an `x-tcp-p0f` equal to the signature p0f 3.09b prints for the
 * same SYN on the same interface, for IPv4 and IPv6.
 */
import assert from "node:assert/strict";
import { isRoot, mountBpffs, startAgent } from "./support/agent.ts";
import { createNetns } from "./support/netns.ts";
import { freePort, parseEchoes, routeAllTo, startEcho, startProxy } from "./support/proxy_harness.ts";

/** p0f logging the SYNs to `port` on `iface`; `rawSig` waits for the line of one client port. */
async function startP0f(iface: string, port: number) {
  const dir = await Deno.makeTempDir({ prefix: "huginn-proxy-p0f-" });
  const log = `${dir}/p0f.log`;
  const child = new Deno.Command("p0f", {
    args: ["-i", iface, "-o", log, `tcp dst port ${port}`],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let banner = "";
  while (!banner.includes("Entered main event loop")) {
    const { value, done } = await stdout.read();
    if (done) throw new Error(`p0f exited before capturing:\n${banner}`);
    banner += value;
  }
  return {
    async rawSig(clientPort: number): Promise<string> {
      const pattern = new RegExp(`mod=syn\\|cli=[^|]*/${clientPort}\\|.*\\|raw_sig=([^|\\n]*)`);
      // A guard against hanging: p0f logs within milliseconds.
      for (let i = 0; i < 200; i++) {
        const match = (await Deno.readTextFile(log).catch(() => "")).match(pattern);
        if (match) return match[1];
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`p0f logged no SYN from port ${clientPort}:\n${await Deno.readTextFile(log)}`);
    },
    [Symbol.asyncDispose]: async () => {
      child.kill("SIGTERM");
      await stdout.cancel();
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

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
