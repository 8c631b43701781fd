/**
 * Real HTTP/2 clients (nghttp and curl, prior-knowledge h2c) against a loopback server that records what
 * they send: the wasm gives the Akamai strings of spec section 4.5 for Debian 12's versions, and so does
 * an independent derivation from tshark's http2 dissector on a capture of the same bytes.
 */
import { deepStrictEqual } from "node:assert/strict";
import { akamai, MAX_INPUT } from "../shared/fingerprint.ts";

/** The server's side: an empty SETTINGS frame and a SETTINGS ACK, so that clients go on to their request. */
const SERVER_PREFACE = new Uint8Array([0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0]);

/** Runs `args` (with `PORT` replaced) and returns the bytes it sent up to its first complete header block. */
async function recordClient(args: string[]): Promise<Uint8Array> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String(listener.addr.port);
  const child = new Deno.Command(args[0], {
    args: args.slice(1).map((a) => a.replace("PORT", port)),
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    // If the client exits first, closing the listener rejects the pending accept: that gives null too.
    const accepted = listener.accept().catch(() => null);
    const conn = await Promise.race([accepted, child.status.then(() => null)]);
    if (conn === null) throw new Error(`${args[0]} exited without connecting`);
    try {
      await conn.write(SERVER_PREFACE);
      let bytes = new Uint8Array();
      const chunk = new Uint8Array(16 * 1024);
      while (akamai(bytes) === "need_more" && bytes.length < MAX_INPUT) {
        const n = await conn.read(chunk);
        if (n === null) break;
        const longer = new Uint8Array(bytes.length + n);
        longer.set(bytes);
        longer.set(chunk.subarray(0, n), bytes.length);
        bytes = longer;
      }
      return bytes;
    } finally {
      conn.close();
    }
  } finally {
    listener.close();
    try {
      child.kill();
    } catch {
      // Already exited.
    }
    await child.status;
  }
}

/** One HTTP/2 frame as tshark's JSON output shows it (`--no-duplicate-keys` turns repeats into arrays). */
interface TsharkFrame {
  "http2.type"?: string;
  "http2.flags"?: string;
  "http2.streamid"?: string;
  "http2.settings"?: Record<string, string> | Record<string, string>[];
  "http2.window_update.window_size_increment"?: string;
  "http2.exclusive"?: string;
  "http2.stream_dependency"?: string;
  "http2.headers.weight"?: string;
  "http2.header"?: { "http2.header.name": string } | { "http2.header.name": string }[];
}

function list<T>(x: T | T[] | undefined): T[] {
  return x === undefined ? [] : Array.isArray(x) ? x : [x];
}

/** The Akamai string derived from tshark's dissection of `bytes`, following spec 4.2 on its own. */
async function akamaiFromTshark(bytes: Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "akamai_real_clients_" });
  try {
    const lines = [];
    for (let at = 0; at < bytes.length; at += 16) {
      const hex = Array.from(bytes.subarray(at, at + 16), (b) => b.toString(16).padStart(2, "0"));
      lines.push(`${at.toString(16).padStart(6, "0")} ${hex.join(" ")}`);
    }
    await Deno.writeTextFile(`${dir}/bytes.txt`, lines.join("\n") + "\n");
    const pcap = await new Deno.Command("text2pcap", {
      args: ["-q", "-T", "50000,8080", "-4", "10.0.0.1,10.0.0.2", `${dir}/bytes.txt`, `${dir}/c.pcap`],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!pcap.success) throw new Error(new TextDecoder().decode(pcap.stderr));
    const dissect = await new Deno.Command("tshark", {
      args: [
        "-r",
        `${dir}/c.pcap`,
        "-d",
        "tcp.port==8080,http2",
        "-T",
        "json",
        "--no-duplicate-keys",
        "-J",
        "http2",
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!dissect.success) throw new Error("tshark failed");
    const packets = JSON.parse(new TextDecoder().decode(dissect.stdout));
    const frames: TsharkFrame[] = list(packets[0]._source.layers.http2).flatMap((
      l: { "http2.stream": unknown },
    ) => list(l["http2.stream"] as TsharkFrame | TsharkFrame[]));

    let settings: string | undefined;
    let windowUpdate: string | undefined;
    const priorities: string[] = [];
    for (const f of frames) {
      const type = f["http2.type"], stream = f["http2.streamid"], flags = Number(f["http2.flags"]);
      if (type === "4" && stream === "0" && !(flags & 1) && settings === undefined) {
        // Each parameter is its id plus one value field whose name depends on the id.
        settings = list(f["http2.settings"]).map((p) => {
          const value = Object.entries(p).find(([k]) => k !== "http2.settings.id")?.[1];
          return `${p["http2.settings.id"]}:${value}`;
        }).join(";");
      } else if (type === "8" && stream === "0" && windowUpdate === undefined) {
        windowUpdate = f["http2.window_update.window_size_increment"];
      } else if (type === "2") {
        const weight = Number(f["http2.headers.weight"]) + 1;
        priorities.push(`${stream}:${f["http2.exclusive"]}:${f["http2.stream_dependency"]}:${weight}`);
      } else if (type === "1") {
        if (!(flags & 4)) throw new Error("these clients send their first header block in one frame");
        const letters: Record<string, string> = {
          ":method": "m",
          ":authority": "a",
          ":scheme": "s",
          ":path": "p",
        };
        const ps = list(f["http2.header"]).map((h) => letters[h["http2.header.name"]]).filter(Boolean);
        return `${settings}|${windowUpdate ?? "00"}|${priorities.join(",") || "0"}|${ps.join(",")}`;
      }
    }
    throw new Error("tshark found no HEADERS frame");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const CLIENTS: { name: string; args: string[]; akamai: string }[] = [
  {
    name: "nghttp 1.52 (h2c prior knowledge)",
    args: ["nghttp", "-nv", "--timeout=10", "http://127.0.0.1:PORT/"],
    akamai: "3:100;4:65535|00|3:0:0:201,5:0:0:101,7:0:0:1,9:0:7:1,11:0:3:1|m,p,s,a",
  },
  {
    name: "nghttp 1.52 --no-dep",
    args: ["nghttp", "-nv", "--no-dep", "--timeout=10", "http://127.0.0.1:PORT/"],
    akamai: "3:100;4:65535|00|0|m,p,s,a",
  },
  {
    name: "curl 7.88.1 --http2-prior-knowledge",
    args: [
      "curl",
      "-s",
      "-o",
      "/dev/null",
      "--max-time",
      "10",
      "--http2-prior-knowledge",
      "http://127.0.0.1:PORT/",
    ],
    akamai: "3:100;4:33554432;2:0|33488897|0|m,p,s,a",
  },
];

for (const client of CLIENTS) {
  Deno.test(`${client.name}: the recorded bytes give the spec's Akamai string, as tshark confirms`, async () => {
    const bytes = await recordClient(client.args);
    deepStrictEqual(akamai(bytes), { ok: true, value: client.akamai });
    deepStrictEqual(await akamaiFromTshark(bytes), client.akamai);
  });
}
