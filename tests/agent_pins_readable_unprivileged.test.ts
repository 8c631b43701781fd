/**
 * An unprivileged process (uid 10001, no capabilities, like the proxy's container) can open the agent's
 * pins read-only and look SYNs up through `shared/syn_maps.ts`, but cannot change them: an update on the
 * read-only fd fails with EPERM, and opening a pin for writing fails with EACCES.
 */
import assert from "node:assert/strict";
import { openSynMaps } from "../shared/syn_maps.ts";
import { isRoot, mountBpffs, startAgent } from "./support/agent.ts";
import { connectFrom, createNetns } from "./support/netns.ts";

const SHARED = new URL("../shared/", import.meta.url).href;

const PROBE = `
import { openSynMaps } from "${SHARED}syn_maps.ts";
import { BpfError, mapUpdate, objGet } from "${SHARED}libbpf.ts";
const [pinPath, address, port] = Deno.args;
const code = (f) => { try { f(); return "ok"; } catch (e) { return e instanceof BpfError ? e.code : String(e); } };
const maps = openSynMaps(pinPath);
const record = maps.lookup({ address, port: Number(port) });
const readOnly = objGet(pinPath + "/syn_v4", { readOnly: true });
console.log(JSON.stringify({
  uid: Deno.uid(),
  packet: record && Array.from(record.packet),
  update: code(() => mapUpdate(readOnly, new Uint8Array(8), new Uint8Array(136))),
  openForWriting: code(() => objGet(pinPath + "/syn_v4", { readOnly: false })),
}));
`;

Deno.test({
  name: "an unprivileged process looks SYNs up in the pinned maps but cannot update them",
  ignore: !isRoot,
  async fn() {
    await using ns = await createNetns("hfpunp");
    await using bpffs = await mountBpffs();
    using listener = Deno.listen({ hostname: ns.hostV4, port: 0 });
    const pinPath = `${bpffs.dir}/huginn`;
    await using agent = startAgent({
      HUGINN_EBPF_INTERFACE: ns.hostIf,
      HUGINN_EBPF_DST_PORT: String(listener.addr.port),
      HUGINN_EBPF_CAPTURE: "xdp-skb",
      HUGINN_EBPF_PIN_PATH: pinPath,
    });
    await agent.ready();
    const peer = await connectFrom(ns, listener, ns.hostV4);
    const maps = openSynMaps(pinPath);
    const expected = maps.lookup(peer);
    maps.close();
    assert.ok(expected);

    const home = await Deno.makeTempDir({ prefix: "hfp-unpriv-" });
    try {
      await Deno.chmod(home, 0o755);
      await Deno.writeTextFile(`${home}/probe.js`, PROBE);
      await Deno.chown(home, 10001, 10001);
      const out = await new Deno.Command("setpriv", {
        args: [
          "--reuid=10001",
          "--regid=10001",
          "--clear-groups",
          Deno.execPath(),
          "run",
          "--no-config",
          "--no-lock",
          "--allow-ffi",
          "--allow-sys=uid",
          `${home}/probe.js`,
          pinPath,
          peer.address,
          String(peer.port),
        ],
        cwd: home,
        env: { HOME: home, DENO_DIR: `${home}/deno`, DENO_NO_UPDATE_CHECK: "1" },
        clearEnv: true,
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.ok(out.success, stderr);
      const result = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.deepEqual(result, {
        uid: 10001,
        packet: Array.from(expected.packet),
        update: "EPERM",
        openForWriting: "EACCES",
      });
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});
