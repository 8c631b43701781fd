/**
 * Our JA3 string and hash equal tshark's `tls.handshake.ja3_full` / `tls.handshake.ja3` for every
 * ClientHello of `ja4_vectors.json` (spec section 7). The vectors are written as one text2pcap batch,
 * one packet each, and read back with a single tshark run.
 */
import { equal } from "node:assert/strict";
import { fingerprintClientHello } from "../shared/fingerprint.ts";

interface Vector {
  source: string;
  client_hello_record_hex: string;
}

const VECTORS = new URL("../../shared/fingerprint-vectors/", import.meta.url);
const vectors: Vector[] = JSON.parse(Deno.readTextFileSync(new URL("ja4_vectors.json", VECTORS)));

/** text2pcap's input format (`od -Ax -tx1` style): each packet restarts at offset 0. */
function hexdump(hex: string): string {
  const lines: string[] = [];
  for (let offset = 0; offset * 2 < hex.length; offset += 16) {
    const row = hex.slice(offset * 2, offset * 2 + 32).match(/../g) ?? [];
    lines.push(`${offset.toString(16).padStart(6, "0")} ${row.join(" ")}`);
  }
  return lines.join("\n") + "\n";
}

async function run(command: string, args: string[]): Promise<string> {
  const { success, stdout, stderr } = await new Deno.Command(command, { args, stdin: "null" }).output();
  const decoder = new TextDecoder();
  if (!success) throw new Error(`${command} failed: ${decoder.decode(stderr)}`);
  return decoder.decode(stdout);
}

Deno.test("JA3 string and hash match tshark on every vector", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ja3_matches_tshark_" });
  try {
    const text = `${dir}/hellos.txt`;
    const pcap = `${dir}/hellos.pcap`;
    await Deno.writeTextFile(text, vectors.map((v) => hexdump(v.client_hello_record_hex)).join(""));
    await run("text2pcap", ["-q", "-T", "50000,443", "-4", "10.0.0.1,10.0.0.2", text, pcap]);
    const fields = ["frame.number", "tls.handshake.ja3_full", "tls.handshake.ja3"];
    const out = await run("tshark", [
      "-r",
      pcap,
      "-Y",
      "tls.handshake.type == 1",
      "-T",
      "fields",
      ...fields.flatMap((f) => ["-e", f]),
    ]);
    const rows = out.trimEnd().split("\n").map((line) => line.split("\t"));
    equal(rows.length, vectors.length, "tshark saw one ClientHello per vector");
    for (const [frame, full, hash] of rows) {
      const i = Number(frame) - 1;
      const fp = fingerprintClientHello(
        Uint8Array.from(vectors[i].client_hello_record_hex.match(/../g) ?? [], (h) => parseInt(h, 16)),
      );
      if (!fp.ok) throw new Error(`vector ${i}: ${fp.error}`);
      equal(fp.value.ja3, full, `vector ${i} (${vectors[i].source})`);
      equal(fp.value.ja3_hash, hash, `vector ${i} (${vectors[i].source})`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
