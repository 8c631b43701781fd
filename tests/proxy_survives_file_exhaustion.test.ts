/**
 * The proxy survives running out of file descriptors. At start it caps client connections at what fits
 * in its limit of open files (3 per connection next to a reserve), warns about it once, and refuses the
 * connections beyond with `limit_exceeded`. When descriptors run out anyway (the limit lowered under a
 * running proxy stands in for backend connections beyond the reserve), the one connection that hit EMFILE
 * is refused and counted as `file_limit`, the worker serves its internal server again on a new port, and
 * the process, its open connections and later clients all go on.
 */
import assert from "node:assert/strict";
import {
  connectionsThatFit,
  FILES_PER_CONNECTION,
  isFileLimitError,
  reservedFiles,
} from "../proxy/file_budget.ts";
import { type AttackConn, tlsConnect } from "./support/attack.ts";
import { parseEchoes, type Proxy, routeAllTo, run, startEcho, startProxy } from "./support/proxy_harness.ts";

const enc = new TextEncoder();
/** Long enough that no held connection is closed while the test runs. */
const TIMEOUTS = { handshake_secs: 60, idle_secs: 300 };
const DEADLINE_MS = 10_000;

/** Requests `path` on `conn` (HTTP/1.1, keep-alive); returns how many answers to it arrived in all. */
async function request(conn: AttackConn, path: string): Promise<number> {
  const answers = ({ bytes }: { bytes: Uint8Array }) =>
    parseEchoes(new TextDecoder().decode(bytes)).filter((e) => e.path === path).length;
  const before = answers(await conn.received(0));
  if (!await conn.write(enc.encode(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`))) return before;
  for (const end = Date.now() + DEADLINE_MS; Date.now() < end;) {
    const r = await conn.received(50);
    if (answers(r) > before || r.closed) return answers(r);
  }
  return before;
}

/** An established TLS connection that has had one request answered and is now idle. */
async function idleConnection(proxy: Proxy): Promise<AttackConn> {
  const conn = await tlsConnect(proxy.port, ["http/1.1"]);
  assert.equal(await request(conn, "/held"), 1, "a connection within the limit is served");
  return conn;
}

/** Whether an honest client (curl, HTTP/2) gets through to the backend. */
async function honestRequest(proxy: Proxy, path: string): Promise<boolean> {
  const r = await run(["curl", "-sk", "--http2", "--max-time", "10", proxy.url(path)]);
  return parseEchoes(r.stdout)[0]?.path === path;
}

function openFiles(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/** Sets the soft limit of open files of process `pid` (the hard one stays, so it can be raised again). */
async function setOpenFiles(pid: number, soft: number | "hard") {
  const hard = /^Max open files\s+\d+\s+(\d+)/m.exec(await Deno.readTextFile(`/proc/${pid}/limits`))![1];
  const r = await run(["prlimit", `--pid=${pid}`, `--nofile=${soft === "hard" ? hard : soft}:`]);
  assert.equal(r.code, 0, r.stderr);
}

Deno.test("the connections that fit leave the reserve free, and nothing is refused without need", () => {
  // (20,000 - 64 - 2 * 16 - 20,000 / 8) / 3
  assert.equal(connectionsThatFit(20_000, 2), 5_801);
  assert.equal(connectionsThatFit(1_048_576, 2), 305_802);
  assert.equal(connectionsThatFit(Infinity, 4), Infinity);
  assert.equal(connectionsThatFit(64, 1), 1, "a tiny limit still serves someone");
  for (const workers of [1, 2, 8, 64]) {
    for (let limit = 1024; limit <= 1_048_576; limit *= 2) {
      const fits = connectionsThatFit(limit, workers);
      if (reservedFiles(limit, workers) + FILES_PER_CONNECTION > limit) {
        assert.equal(fits, 1, "a limit below the reserve still serves someone");
        continue;
      }
      const used = fits * FILES_PER_CONNECTION + reservedFiles(limit, workers);
      assert.ok(used <= limit, `${fits} connections overflow ${limit} files`);
      assert.ok(used + FILES_PER_CONNECTION > limit, `one more connection than ${fits} fits in ${limit}`);
    }
  }
});

Deno.test("running out of descriptors is recognised in Deno's errors, wrapped or not", () => {
  const emfile = Object.assign(new Error("Too many open files (os error 24)"), { code: "EMFILE" });
  assert.ok(isFileLimitError(emfile));
  // How Deno.serve's `finished` rejects when its accept fails.
  assert.ok(isFileLimitError(new Error("Http: Error: Too many open files (os error 24)")));
  assert.ok(isFileLimitError(new Error("relay failed", { cause: emfile })));
  assert.ok(!isFileLimitError(Object.assign(new Error("Connection refused"), { code: "ECONNREFUSED" })));
  assert.ok(!isFileLimitError("EMFILE"));
});

Deno.test("max_connections is capped at what fits in the open-files limit, and the rest is refused", async () => {
  const limit = 300;
  const fits = connectionsThatFit(limit, 1);
  await using echo = await startEcho();
  await using proxy = await startProxy(
    { ...routeAllTo(echo.address), workers: 1, timeout: TIMEOUTS, security: { max_connections: 1000 } },
    { openFiles: limit },
  );
  const warning = proxy.stderr().split("\n").filter((l) =>
    l.includes('"setting":"security.max_connections"')
  );
  assert.equal(warning.length, 1, proxy.stderr());
  assert.deepEqual(
    (({ value, open_files_limit, fits }) => ({ value, open_files_limit, fits }))(JSON.parse(warning[0])),
    { value: 1000, open_files_limit: limit, fits },
  );

  const held: AttackConn[] = [];
  try {
    for (let i = 0; i < fits; i++) held.push(await idleConnection(proxy));
    for (let i = 0; i < 3; i++) {
      await assert.rejects(tlsConnect(proxy.port, ["http/1.1"]), "a connection beyond the cap is refused");
    }
    assert.equal(
      await proxy.metricSettles("huginn_connections_rejected_total", 'reason="limit_exceeded"', 3),
      3,
    );
    assert.ok(openFiles(proxy.child.pid) <= limit);
    let served = 0;
    for (const conn of held) served += await request(conn, "/held") === 2 ? 1 : 0;
    assert.equal(served, fits, "every held connection is still served");

    held.pop()![Symbol.dispose]();
    assert.equal(await proxy.metricSettles("huginn_connections_active", "", fits - 1), fits - 1);
    assert.ok(await honestRequest(proxy, "/freed"), "a freed place is served at once");
  } finally {
    for (const conn of held) conn[Symbol.dispose]();
  }
  assert.equal(await proxy.metricSettles("huginn_connections_active", "", 0), 0);
  assert.ok(await honestRequest(proxy, "/after"), "served again once the connections closed");
  assert.equal((await proxy.ops("/ready")).status, 200);
});

/**
 * Lowers the soft limit of open files of process `pid` until exactly `free` descriptor numbers are left
 * below it (the limit bounds the numbers, not the count).
 */
async function leaveFree(pid: number, free: number) {
  const used = new Set([...Deno.readDirSync(`/proc/${pid}/fd`)].map((e) => Number(e.name)));
  let limit = 0;
  for (let left = free; used.has(limit) || left-- > 0; limit++);
  await setOpenFiles(pid, limit);
}

/** A proxy with `heldCount` idle connections open, for running out of descriptors under it. */
async function proxyWithHeldConnections(echo: string, heldCount: number) {
  const proxy = await startProxy({
    ...routeAllTo(echo),
    workers: 1,
    timeout: TIMEOUTS,
    security: { max_connections: 1000 },
  });
  const held: AttackConn[] = [];
  for (let i = 0; i < heldCount; i++) held.push(await idleConnection(proxy));
  return {
    proxy,
    held,
    /** Raises the limit again; then every held connection is still served, and so is a new client. */
    async recovers() {
      await setOpenFiles(proxy.child.pid, "hard");
      assert.ok(await honestRequest(proxy, "/during"), "served while the held connections are open");
      let served = 0;
      for (const conn of held) served += await request(conn, "/held") === 2 ? 1 : 0;
      assert.equal(served, heldCount, "the connections open before are still served");
      for (const conn of held) conn[Symbol.dispose]();
      assert.equal(await proxy.metricSettles("huginn_connections_active", "", 0), 0);
      assert.ok(await honestRequest(proxy, "/after"), "served again once the connections closed");
      assert.equal((await proxy.ops("/ready")).status, 200);
    },
    [Symbol.asyncDispose]: async () => {
      for (const conn of held) conn[Symbol.dispose]();
      await proxy[Symbol.asyncDispose]();
    },
  };
}

/** Opens a TLS connection and asks for `/extra`; true when the proxy closes it unanswered. */
async function refused(proxy: Proxy): Promise<boolean> {
  using conn = await tlsConnect(proxy.port, ["http/1.1"]);
  if (await request(conn, "/extra") !== 0) return false;
  return (await conn.received(DEADLINE_MS)).closed;
}

Deno.test("a connection whose relay meets EMFILE is refused and counted, and the worker goes on", async () => {
  await using echo = await startEcho();
  await using running = await proxyWithHeldConnections(echo.address, 20);
  const { proxy } = running;
  // Room for the client's socket, not for its relay.
  await leaveFree(proxy.child.pid, 1);
  for (let i = 0; i < 3; i++) assert.ok(await refused(proxy), `extra connection ${i} was served`);
  await running.recovers();
  assert.equal(await proxy.metric("huginn_connections_rejected_total", 'reason="file_limit"'), 3);
});

Deno.test("the internal server is served again on a new port after its accept meets EMFILE", async () => {
  await using echo = await startEcho();
  await using running = await proxyWithHeldConnections(echo.address, 20);
  const { proxy } = running;
  // Room for the client's socket and its relay, not for the internal server's end of the relay.
  await leaveFree(proxy.child.pid, 2);
  assert.ok(await refused(proxy), "the extra connection was served");
  const restarted = () => proxy.stderr().split("\n").filter((l) => l.includes("serving again on a new port"));
  for (let i = 0; i < 50 && restarted().length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(restarted().length, 1, proxy.stderr());
  await running.recovers();
});
