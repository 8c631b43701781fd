/**
 * The setup mistakes a user meets end the real agent with status 1 and one error line saying what to do:
 * no bpffs under the pin path, missing capabilities, a driver without native XDP, libbpf not installed,
 * Deno permissions short of --allow-all.
 */
import assert from "node:assert/strict";
import { isRoot, mountBpffs, runAgentToExit, type RunOptions } from "./support/agent.ts";
import { createNetns } from "./support/netns.ts";

/** The one error line of an agent that must fail at start. */
async function failure(env: Record<string, string>, options: RunOptions = {}): Promise<string> {
  const { code, lines } = await runAgentToExit({ HUGINN_EBPF_DST_PORT: "443", ...env }, options);
  assert.equal(code, 1, lines.join("\n"));
  const errors = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((l) =>
    l.level === "error"
  );
  assert.equal(errors.length, 1, lines.join("\n"));
  return errors[0].msg;
}

Deno.test({
  name: "agent with a pin path outside bpffs says how to mount bpffs",
  ignore: !isRoot,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "hfp-notbpf-" });
    try {
      const msg = await failure({ HUGINN_EBPF_INTERFACE: "lo", HUGINN_EBPF_PIN_PATH: `${dir}/huginn` });
      assert.match(msg, /not on a BPF filesystem/);
      assert.ok(msg.includes("mount -t bpf bpf /sys/fs/bpf"), msg);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "agent without CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN names the missing capabilities",
  ignore: !isRoot,
  async fn() {
    await using bpffs = await mountBpffs();
    // Still uid 0 (so it can read the Deno cache), but without the capabilities that matter.
    const drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-bpf,-perfmon,-net_admin,-sys_admin"];
    const msg = await failure(
      { HUGINN_EBPF_INTERFACE: "lo", HUGINN_EBPF_PIN_PATH: `${bpffs.dir}/huginn` },
      { wrap: drop },
    );
    assert.match(msg, /^missing capabilities CAP_NET_ADMIN, CAP_BPF, CAP_PERFMON: run the agent as root/);
  },
});

Deno.test({
  name: "agent on an interface without native XDP suggests xdp-skb",
  ignore: !isRoot,
  async fn() {
    // The loopback of a private namespace: its driver has no native XDP, and nothing else uses it.
    await using ns = await createNetns("hfperr");
    await using bpffs = await mountBpffs();
    const msg = await failure(
      {
        HUGINN_EBPF_INTERFACE: "lo",
        HUGINN_EBPF_CAPTURE: "xdp-native",
        HUGINN_EBPF_PIN_PATH: `${bpffs.dir}/huginn`,
      },
      { wrap: ["ip", "netns", "exec", ns.name] },
    );
    assert.match(msg, /does not support native XDP/);
    assert.ok(msg.includes("HUGINN_EBPF_CAPTURE=xdp-skb"), msg);
  },
});

Deno.test({
  name: "agent without a loadable libbpf says which package to install",
  ignore: !isRoot,
  async fn() {
    await using bpffs = await mountBpffs();
    const libbpf = Deno.realPathSync("/usr/lib/x86_64-linux-gnu/libbpf.so.1");
    // In a private mount namespace, hide libbpf behind an empty file; the host is unaffected.
    const hide = [
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      `mount --bind /dev/null ${libbpf} && exec "$@"`,
      "sh",
    ];
    const msg = await failure(
      { HUGINN_EBPF_INTERFACE: "lo", HUGINN_EBPF_PIN_PATH: `${bpffs.dir}/huginn` },
      { wrap: hide },
    );
    assert.equal(msg, "libbpf.so.1 not found: apt-get install libbpf1");
  },
});

Deno.test({
  name: "agent started without --allow-all says it needs it",
  ignore: !isRoot,
  async fn() {
    const flags = [
      "--allow-read",
      "--allow-write",
      "--allow-ffi",
      "--allow-env",
      "--allow-net",
      "--allow-sys",
    ];
    const msg = await failure({ HUGINN_EBPF_INTERFACE: "lo" }, { denoFlags: flags });
    assert.match(msg, /^the agent must run with --allow-all/);
  },
});
