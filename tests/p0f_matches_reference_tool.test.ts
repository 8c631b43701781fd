/**
 * Real Linux SYNs, over IPv4 and IPv6, from a client stack varied through its sysctls and routes (no
 * timestamps, no window scaling, no SACK, ECN, another MSS, other TTLs): captured with tcpdump, every
 * SYN's signature equals the `raw_sig` that p0f 3.09b prints for the same capture file, and each variation
 * shows in the signature, so the comparison covers more than one stack.
 */
import assert from "node:assert/strict";
import { p0fSignature } from "../shared/fingerprint.ts";
import { ipPacket, readCapture } from "../tools/pcap.ts";
import { parseSegment } from "../tools/tcp_streams.ts";
import { createNetns, type Netns } from "./support/netns.ts";
import { startTcpdump } from "./support/tcpdump.ts";

/** The fields of a signature, by name. */
interface Signature {
  ittl: string;
  mss: string;
  olayout: string;
  quirks: string;
}

function fields(signature: string): Signature {
  const [, ittl, , mss, , olayout, quirks] = signature.split(":");
  return { ittl, mss, olayout, quirks };
}

interface Variant {
  name: string;
  /** Sysctls set inside the client's namespace for this variant only. */
  sysctls?: Record<string, string>;
  /** Route attributes (`ip route` syntax) towards the server for this variant only. */
  route?: string[];
  /** What the variation must change in the signature. */
  shows(s: Signature): boolean;
}

/** Both IPv4 and IPv6 use the net.ipv4.tcp_* settings; the IPv6 hop limit comes from the device. */
function ttl(ns: Netns, value: string): Record<string, string> {
  return {
    "net.ipv4.ip_default_ttl": value,
    "net.ipv6.conf.all.hop_limit": value,
    [`net.ipv6.conf.${ns.nsIf}.hop_limit`]: value,
  };
}

function variants(ns: Netns): Variant[] {
  return [
    { name: "defaults", shows: (s) => s.olayout === "mss,sok,ts,nop,ws" && s.ittl === "64+0" },
    {
      name: "no timestamps",
      sysctls: { "net.ipv4.tcp_timestamps": "0" },
      shows: (s) => !/\bts\b/.test(s.olayout),
    },
    {
      name: "no window scaling",
      sysctls: { "net.ipv4.tcp_window_scaling": "0" },
      shows: (s) => !/\bws\b/.test(s.olayout),
    },
    { name: "no SACK", sysctls: { "net.ipv4.tcp_sack": "0" }, shows: (s) => !/\bsok\b/.test(s.olayout) },
    {
      name: "ECN requested",
      sysctls: { "net.ipv4.tcp_ecn": "1" },
      shows: (s) => s.quirks.split(",").includes("ecn"),
    },
    {
      name: "MSS option only",
      sysctls: {
        "net.ipv4.tcp_timestamps": "0",
        "net.ipv4.tcp_window_scaling": "0",
        "net.ipv4.tcp_sack": "0",
      },
      shows: (s) => s.olayout === "mss",
    },
    {
      name: "route MTU 1280, advmss 1000",
      route: ["mtu", "1280", "advmss", "1000"],
      shows: (s) => s.mss === "1000",
    },
    { name: "TTL 30", sysctls: ttl(ns, "30"), shows: (s) => s.ittl === "30+2" },
    { name: "TTL 100", sysctls: ttl(ns, "100"), shows: (s) => s.ittl === "100+28" },
    { name: "TTL 200", sysctls: ttl(ns, "200"), shows: (s) => s.ittl === "200+?" },
  ];
}

/** Applies `variant` inside `ns`, runs `fn`, and puts the previous settings back. */
async function withVariant(ns: Netns, server: string, variant: Variant, fn: () => Promise<void>) {
  const saved: Record<string, string> = {};
  const host = server.includes(":") ? `${server}/128` : `${server}/32`;
  const family = server.includes(":") ? "-6" : "-4";
  try {
    for (const [key, value] of Object.entries(variant.sysctls ?? {})) {
      saved[key] ??= (await ns.run(["sysctl", "-n", key])).trim();
      await ns.run(["sysctl", "-qw", `${key}=${value}`]);
    }
    if (variant.route) {
      await ns.run(["ip", family, "route", "replace", host, "dev", ns.nsIf, ...variant.route]);
    }
    await fn();
  } finally {
    if (variant.route) await ns.run(["ip", family, "route", "del", host, "dev", ns.nsIf]).catch(() => "");
    for (const [key, value] of Object.entries(saved)) await ns.run(["sysctl", "-qw", `${key}=${value}`]);
  }
}

/** Each SYN in the capture, keyed by IP version and client port, with its signature. */
async function ourSignatures(file: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  using capture = await Deno.open(file);
  for await (const item of readCapture(capture.readable)) {
    if ("error" in item) throw new Error(item.error);
    const ip = ipPacket(item);
    const segment = ip && parseSegment(ip);
    if (!segment || (segment.flags & 0x17) !== 0x02) continue;
    const signature = p0fSignature(ip);
    assert.ok(signature.ok, `${segment.source}: ${JSON.stringify(signature)}`);
    result.set(`${ip[0] >> 4} ${segment.source.slice(segment.source.lastIndexOf(":") + 1)}`, signature.value);
  }
  return result;
}

/** Waits (a few seconds at most) until tcpdump, which writes each packet as it comes, has written `n` SYNs. */
async function waitForSyns(file: string, n: number): Promise<void> {
  for (let tries = 0; tries < 100; tries++) {
    // The last record may be half-written while we read.
    const seen = await ourSignatures(file).catch(() => new Map());
    if (seen.size >= n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Each `mod=syn` line of `p0f -r file`, keyed like `ourSignatures`. */
async function referenceSignatures(file: string, log: string): Promise<Map<string, string>> {
  const out = await new Deno.Command("p0f", {
    args: ["-r", file, "-o", log],
    stdout: "null",
    stderr: "piped",
  })
    .output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const result = new Map<string, string>();
  for (const line of (await Deno.readTextFile(log)).split("\n")) {
    const match = line.match(/ mod=syn\|cli=([^|]*)\/(\d+)\|.*\|raw_sig=([^|]*)$/);
    if (match) result.set(`${match[1].includes(":") ? 6 : 4} ${match[2]}`, match[3]);
  }
  return result;
}

Deno.test({
  name: "every SYN of a varied Linux client stack gets the raw_sig p0f 3.09b prints",
  ignore: Deno.uid() !== 0,
  async fn() {
    await using ns = await createNetns("hfpsyn");
    const dir = await Deno.makeTempDir({ prefix: "hfp-p0f-ref-" });
    try {
      // Dual-stack: one port for IPv4 and IPv6 clients.
      using listener = Deno.listen({ hostname: "::", port: 0 });
      const port = listener.addr.port;
      const file = `${dir}/syn.pcap`;
      const expected: { key: string; variant: Variant }[] = [];
      {
        await using _capture = await startTcpdump(["-i", ns.hostIf, `tcp dst port ${port}`], file);
        for (const variant of variants(ns)) {
          for (const server of [ns.hostV4, ns.hostV6]) {
            await withVariant(ns, server, variant, async () => {
              const client = ns.run(["bash", "-c", `exec 3<>/dev/tcp/${server}/${port}`]);
              const conn = await listener.accept();
              await client;
              conn.close();
              expected.push({ key: `${server.includes(":") ? 6 : 4} ${conn.remoteAddr.port}`, variant });
            });
          }
        }
        await waitForSyns(file, expected.length);
      }

      const ours = await ourSignatures(file);
      const reference = await referenceSignatures(file, `${dir}/p0f.log`);
      assert.deepEqual(
        [...ours].sort(),
        [...reference].sort(),
        "signatures differ from p0f's raw_sig",
      );
      for (const { key, variant } of expected) {
        const signature = ours.get(key);
        assert.ok(signature, `no SYN captured for ${variant.name} (${key})`);
        assert.ok(variant.shows(fields(signature)), `${variant.name} (${key}) does not show in ${signature}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
