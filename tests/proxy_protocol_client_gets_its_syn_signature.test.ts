/**
 * Behind a balancer speaking PROXY protocol v2, the SYN that matters is the client's, looked up by the
 * address, port and destination port the header names. The agent's maps are made here with bpftool and
 * given a SYN record for the recovered client only, as in `proxy_tcp_fingerprint_from_pinned_maps`.
 */
import assert from "node:assert/strict";
import { mountBpffs } from "./support/agent.ts";
import { parseEchoes, routeAllTo, startEcho, startProxy } from "./support/proxy_harness.ts";
import { httpRequest, rawExchange, tlsExchange, v2Header } from "./support/proxy_protocol_client.ts";
import { createSynMaps, putSyn } from "./support/syn_map_fixture.ts";

const vectors = JSON.parse(
  await Deno.readTextFile(new URL("../../shared/fingerprint-vectors/syn_vectors.json", import.meta.url)),
) as Array<{ ip_packet_hex: string; p0f_raw_sig: string }>;
const SYN_V4 = vectors.find((v) => v.ip_packet_hex.startsWith("45"))!;
const SYN_V6 = vectors.find((v) => v.ip_packet_hex.startsWith("6"))!;

Deno.test({
  name: "a PROXY v2 client gets the p0f signature of its own SYN, on plain and TLS listeners",
  ignore: Deno.uid() !== 0,
  async fn() {
    await using bpffs = await mountBpffs();
    const pinPath = bpffs.dir;
    await createSynMaps(pinPath);
    await using echo = await startEcho();
    await using proxy = await startProxy(
      {
        ...routeAllTo(echo.address),
        listen: { proxy_protocol: "require" },
        security: { trusted_proxies: ["127.0.0.1"] },
        fingerprint: { tcp_enabled: true },
      },
      { env: { HUGINN_EBPF_PIN_PATH: pinPath } },
    );
    const request = httpRequest("/syn");
    const p0f = async (header: Uint8Array, tls: boolean) => {
      const out = tls
        ? await tlsExchange(proxy.port, header, request)
        : await rawExchange(proxy.plainPort, [header, request]);
      const [echoed] = parseEchoes(out);
      assert.ok(echoed, out);
      return echoed.headers["x-tcp-p0f"];
    };

    const v4 = { address: "192.0.2.50", port: 41000 };
    await putSyn(pinPath, v4, 443, SYN_V4.ip_packet_hex);
    assert.equal(await p0f(v2Header(v4.address, v4.port, "198.51.100.1", 443), false), SYN_V4.p0f_raw_sig);

    const v6 = { address: "2001:db8::50", port: 41001 };
    await putSyn(pinPath, v6, 8443, SYN_V6.ip_packet_hex);
    assert.equal(await p0f(v2Header(v6.address, v6.port, "2001:db8::1", 8443), true), SYN_V6.p0f_raw_sig);

    // The same client, but the header says it connected to another port: not this connection's SYN.
    assert.equal(await p0f(v2Header(v4.address, v4.port, "198.51.100.1", 444), false), undefined);
    // The connection's own (loopback) address has no record: without the header there would be none.
    assert.equal(await p0f(v2Header("192.0.2.51", 41002, "198.51.100.1", 443), false), undefined);
    assert.equal(await proxy.metric("huginn_tcp_syn_fingerprints_total", 'reason="hit"'), 2);
    assert.equal(await proxy.metric("huginn_tcp_syn_fingerprints_total", 'reason="miss"'), 2);
  },
});
