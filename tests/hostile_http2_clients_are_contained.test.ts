/**
 * Hostile HTTP/2 clients, over TLS with ALPN h2 and over h2c on the plain listener, meet the internal
 * server (`Deno.serve`, i.e. hyper and the h2 crate) behind the relay: rapid reset (CVE-2023-44487), a
 * CONTINUATION flood (CVE-2024-27316 style), an oversized header block and invalid HPACK end in a GOAWAY
 * and a close; SETTINGS and PING floods are answered frame for frame (RFC 9113 §6.5.3, §6.7) and the
 * idle connection is closed after `timeout.idle_secs`. Every GOAWAY is counted under the error code the
 * client received, and every idle close as one. Meanwhile an honest client sees no error, the proxy's
 * memory stays bounded, and no connection is left open.
 */
import assert from "node:assert/strict";
import {
  type AttackConn,
  concat,
  FLAG,
  FRAME,
  goawayCode,
  h2Frame,
  h2Settings,
  honestLoop,
  hpack,
  parseFrames,
  PREFACE,
  rawConnect,
  requestBlock,
  rssKiB,
  tlsConnect,
} from "./support/attack.ts";
import { type Proxy, routeAllTo, startEcho, startProxy } from "./support/proxy_harness.ts";
import { h2ErrorName } from "../proxy/h2_frames.ts";

const IDLE_SECS = 2;
/** How long an attacked connection may stay open after the attack: the idle timeout plus slack. */
const CLOSE_DEADLINE_MS = (IDLE_SECS + 8) * 1000;
const MEMORY_BOUND_KIB = 64 * 1024;
const STREAMS = 2000;
const FLOOD_FRAMES = 5000;

/** RFC 9113 §7 error codes. */
const ERR = { PROTOCOL: 0x1, COMPRESSION: 0x9, ENHANCE_YOUR_CALM: 0xb } as const;

const BAD_H2 = ["huginn_bad_client_input_total", 'kind="bad_h2_preface"'] as const;
const GOAWAY = "huginn_http2_goaway_sent_total";
const IDLE_CLOSED = ["huginn_connections_closed_total", 'reason="idle"'] as const;

/** Every `huginn_http2_goaway_sent_total` series, by its labels (`error_code="..."`). */
async function goaways(proxy: Proxy): Promise<Map<string, number>> {
  const { body } = await proxy.ops("/metrics");
  return new Map(
    [...body.matchAll(new RegExp(`^${GOAWAY}\\{(.*)\\} (\\S+)$`, "gm"))].map((m) => [m[1], Number(m[2])]),
  );
}

type Scheme = "https" | "http";

/** The frames of one attack, after the preface and an empty SETTINGS. */
const ATTACKS: Record<string, (scheme: Scheme) => Uint8Array[]> = {
  "rapid reset": (scheme) =>
    Array.from({ length: STREAMS }, (_, i) =>
      concat(
        h2Frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 2 * i + 1, requestBlock(scheme, "/reset")),
        h2Frame(FRAME.RST_STREAM, 0, 2 * i + 1, [0, 0, 0, 8]), // CANCEL
      )),
  "SETTINGS flood": () => Array.from({ length: FLOOD_FRAMES }, () => h2Settings([[0x4, 65535]])),
  "PING flood": () =>
    Array.from(
      { length: FLOOD_FRAMES },
      (_, i) => h2Frame(FRAME.PING, 0, 0, [0, 0, 0, 0, 0, 0, i >> 8, i & 255]),
    ),
  "CONTINUATION flood": (scheme) => [
    h2Frame(FRAME.HEADERS, 0, 1, requestBlock(scheme, "/continuation")),
    ...Array.from(
      { length: FLOOD_FRAMES },
      (_, i) => h2Frame(FRAME.CONTINUATION, 0, 1, hpack([[`x-c${i}`, "a".repeat(40)]])),
    ),
  ],
  "1 MiB header block": (scheme) => {
    const block = requestBlock(scheme, "/big", [["x-big", "a".repeat(1 << 20)]]);
    const frames = [h2Frame(FRAME.HEADERS, 0, 1, block.subarray(0, 16384))];
    for (let at = 16384; at < block.length; at += 16384) {
      const last = at + 16384 >= block.length;
      frames.push(
        h2Frame(FRAME.CONTINUATION, last ? FLAG.END_HEADERS : 0, 1, block.subarray(at, at + 16384)),
      );
    }
    return frames;
  },
  // Index 70 with an empty dynamic table (RFC 7541 §2.3.3).
  "invalid HPACK": () => [h2Frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, [0x80 | 70])],
};

/** What the proxy did with one attack. */
interface Outcome {
  closed: boolean;
  goaway: number | undefined;
  settingsAcks: number;
  pingAcks: number;
}

async function attack(proxy: Proxy, transport: "tls" | "h2c", frames: Uint8Array[]): Promise<Outcome> {
  using conn: AttackConn = transport === "tls"
    ? await tlsConnect(proxy.port)
    : await rawConnect(proxy.plainPort);
  // The server may close mid-attack: later writes fail, which is what is being tested.
  if (await conn.write(concat(PREFACE, h2Settings()))) {
    for (const f of frames) if (!await conn.write(f)) break;
  }
  const { bytes, closed } = await conn.received(CLOSE_DEADLINE_MS);
  const received = parseFrames(bytes);
  const acks = (type: number) => received.filter((f) => f.type === type && f.flags & FLAG.ACK).length;
  return {
    closed,
    goaway: goawayCode(received),
    settingsAcks: acks(FRAME.SETTINGS),
    pingAcks: acks(FRAME.PING),
  };
}

Deno.test("hostile HTTP/2 clients get GOAWAY or their answers, and an honest client sees no error", async (t) => {
  await using echo = await startEcho();
  await using proxy = await startProxy({ ...routeAllTo(echo.address), timeout: { idle_secs: IDLE_SECS } });
  const pid = proxy.child.pid;
  const rssBefore = await rssKiB(pid);
  let attacksDone!: () => void;
  const honest = honestLoop(proxy.url("/honest"), new Promise<void>((r) => attacksDone = r));
  const badH2 = () => proxy.metric(...BAD_H2);
  const observed: string[] = [];
  try {
    for (const [name, frames] of Object.entries(ATTACKS)) {
      for (const transport of ["tls", "h2c"] as const) {
        await t.step(`${name} over ${transport}`, async () => {
          const before = await badH2();
          const goawaysBefore = await goaways(proxy);
          const idleBefore = await proxy.metric(...IDLE_CLOSED);
          const seen = await attack(proxy, transport, frames(transport === "tls" ? "https" : "http"));
          const what = JSON.stringify(seen);
          observed.push(`${name} over ${transport}: ${what}`);
          assert.ok(seen.closed, `closed: ${what}`);
          if (name === "SETTINGS flood") {
            assert.equal(seen.goaway, undefined, what);
            assert.equal(seen.settingsAcks, FLOOD_FRAMES + 1, what);
          } else if (name === "PING flood") {
            assert.equal(seen.goaway, undefined, what);
            assert.equal(seen.pingAcks, FLOOD_FRAMES, what);
          } else if (name === "invalid HPACK") {
            // RFC 9113 §4.3 asks for COMPRESSION_ERROR; the h2 crate answers this one with PROTOCOL_ERROR.
            assert.ok(seen.goaway === ERR.COMPRESSION || seen.goaway === ERR.PROTOCOL, what);
          } else {
            assert.equal(seen.goaway, ERR.ENHANCE_YOUR_CALM, what);
          }
          // Only a malformed first request is counted (as `bad_h2_preface`); GOAWAYs of the server are not.
          if (name === "invalid HPACK") {
            assert.equal(await proxy.metricSettles(BAD_H2[0], BAD_H2[1], before + 1), before + 1);
          } else if (name !== "CONTINUATION flood") {
            // (A CONTINUATION flood is counted only when the server closes before 64 KiB were captured,
            // which depends on how the bytes were segmented: not asserted.)
            assert.equal(await badH2(), before);
          }
          if (seen.goaway === undefined) {
            // Answered frame for frame and closed by the idle timer: no GOAWAY counted, one idle close.
            // (At least: a refused TLS connection of an earlier step may be closed by the timer too, see below.)
            assert.ok(await proxy.metricSettles(...IDLE_CLOSED, idleBefore + 1) >= idleBefore + 1, what);
            assert.deepEqual(await goaways(proxy), goawaysBefore);
          } else {
            // Counted once, under the code the client received, and under no other.
            const label = `error_code="${h2ErrorName(seen.goaway)}"`;
            const expected = goawaysBefore.get(label)! + 1;
            assert.equal(await proxy.metricSettles(GOAWAY, label, expected), expected, what);
            assert.deepEqual(await goaways(proxy), new Map(goawaysBefore).set(label, expected));
          }
        });
      }
    }
  } finally {
    attacksDone();
  }
  const { ok, failed } = await honest;
  console.log(observed.join("\n"));
  console.log(`honest requests: ${ok}; proxy RSS ${rssBefore} KiB -> ${await rssKiB(pid)} KiB`);
  assert.deepEqual(failed, [], "the honest client saw no error");
  assert.ok(ok > 0);
  // A handful of requests of the rapid reset reach the backend before their reset: never all of them.
  const forwarded = await proxy.metric("huginn_backend_requests_total", `backend="${echo.address}"`);
  console.log(`reset requests forwarded: ${forwarded - ok} of ${2 * STREAMS}`);
  assert.ok(forwarded - ok < STREAMS / 10, `${forwarded - ok} reset requests were forwarded`);
  assert.equal(await proxy.metricSettles("huginn_connections_active", "", 0), 0);
  const grown = (await rssKiB(pid)) - rssBefore;
  assert.ok(grown < MEMORY_BOUND_KIB, `the proxy grew by ${grown} KiB`);
});

Deno.test({
  name: "a TLS connection the HTTP/2 server refused is released at once, not by the idle timeout",
  async fn() {
    await using echo = await startEcho();
    await using proxy = await startProxy({ ...routeAllTo(echo.address), timeout: { idle_secs: 600 } });
    for (let i = 0; i < 10; i++) {
      const seen = await attack(proxy, "tls", ATTACKS["rapid reset"]("https"));
      assert.equal(seen.goaway, ERR.ENHANCE_YOUR_CALM, JSON.stringify(seen));
    }
    assert.equal(await proxy.metricSettles("huginn_connections_active", "", 0), 0);
  },
});
