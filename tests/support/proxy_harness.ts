/**
 * Runs the real proxy and the echo backend as subprocesses on free loopback ports, with a throwaway
 * self-signed P-256 certificate, for tests that drive them with real clients. Everything is released
 * with `await using`, also when the test fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { stringify } from "smol-toml";
import { makeSelfSignedCertificate } from "../../tools/certificate.ts";
import { spawnCollecting } from "./spawn.ts";
import { startTcpdump } from "./tcpdump.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const decoder = new TextDecoder();

/** A TCP port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Runs a command to completion; returns its exit code and output. */
export async function run(cmd: string[], stdin?: Uint8Array | string): Promise<{
  code: number;
  stdout: string;
  stderr: string;
}> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin);
    await writer.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** A temporary directory, removed on dispose. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "huginn-proxy-test-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}) };
}

/** Makes a self-signed P-256 certificate for localhost, 127.0.0.1 and ::1 in `dir`. */
export async function makeCertificate(dir: string, name = "cert"): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/${name}.pem`;
  const key = `${dir}/${name}.key`;
  await makeSelfSignedCertificate(cert, key, { commonName: `${name}.localhost`, days: 2 });
  return { cert, key };
}

/** Waits until something accepts TCP connections on `port`, or `child` exits. */
async function waitForPort(port: number, child: Deno.ChildProcess, what: string, log: () => string) {
  let exited = false;
  child.status.then(() => exited = true);
  for (let i = 0; i < 300 && !exited; i++) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      // Linux lets a socket whose ephemeral port happens to be `port` connect to itself when nothing
      // listens there (a TCP simultaneous open), and free ports come from the ephemeral range.
      const self = conn.localAddr.port === port;
      conn.close();
      if (!self) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on ${port}:\n${log()}`);
}

/** A subprocess whose stderr is collected. */
export interface Process extends AsyncDisposable {
  child: Deno.ChildProcess;
  stderr(): string;
  /** Sends `signal` and waits for the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** Runs Deno with `args`; under `prlimit --nofile=N:N` when `openFiles` is given. */
function spawn(args: string[], env: Record<string, string> = {}, openFiles?: number): Process {
  const prefix = openFiles === undefined ? [] : ["prlimit", `--nofile=${openFiles}`];
  const p = spawnCollecting([...prefix, Deno.execPath(), ...args], {
    cwd: ROOT,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...env },
  });
  return {
    child: p.child,
    stderr: p.stderr,
    stop: p.stop,
    [Symbol.asyncDispose]: async () => void await p.terminate(),
  };
}

/** Starts `tools/echo_backend.ts` on a free port. */
export async function startEcho(): Promise<Process & { port: number; address: string }> {
  const port = freePort();
  const p = spawn(["run", "--allow-net", "--allow-env", "tools/echo_backend.ts", String(port)]);
  try {
    await waitForPort(port, p.child, "the echo backend", p.stderr);
  } catch (e) {
    await p[Symbol.asyncDispose]();
    throw e;
  }
  return Object.assign(p, { port, address: `127.0.0.1:${port}` });
}

/** A running proxy. */
export interface Proxy extends Process {
  /** The TLS listener's port. */
  port: number;
  /** The plain listener's port. */
  plainPort: number;
  metricsPort: number;
  /** The certificate the proxy serves (PEM path), for clients that verify it. */
  certPath: string;
  keyPath: string;
  /** The configuration file, written into a temporary directory. */
  configPath: string;
  /** `https://127.0.0.1:<port><path>` */
  url(path?: string): string;
  /** `GET http://127.0.0.1:<metricsPort><path>` → status and body. */
  ops(path: string): Promise<{ status: number; body: string }>;
  /** The value of metric `name{labels}` (labels as written in the exposition), or 0 when absent. */
  metric(name: string, labels?: string): Promise<number>;
  /**
   * The value of a metric once it equals `expected`, or its last value after 5 s: counters of closed
   * connections are updated just after the client sees the close.
   */
  metricSettles(name: string, labels: string, expected: number): Promise<number>;
}

/**
 * Starts the proxy with `config` (the TOML tables other than `listen`, `tls` and `telemetry`, which
 * the harness fills in with free ports and a fresh certificate; other `listen` and `tls` keys given are
 * merged in). Waits until it listens, and for `/ready` to answer 200 unless `waitReady` is false.
 */
export async function startProxy(
  config: Record<string, unknown>,
  opts: {
    waitReady?: boolean;
    env?: Record<string, string>;
    /** The address the listeners bind (`::` for dual-stack); 127.0.0.1 by default. */
    listenHost?: string;
    /** The proxy's limit of open files, soft and hard (`prlimit` execs the proxy: same pid). */
    openFiles?: number;
    /** Permission flags instead of `-A`, e.g. those of an image. */
    permissions?: string[];
  } = {},
): Promise<Proxy> {
  const dir = await tempDir();
  const { cert, key } = await makeCertificate(dir.path);
  const port = freePort();
  const plainPort = freePort();
  const metricsPort = freePort();
  const configPath = `${dir.path}/huginn.toml`;
  const host = opts.listenHost?.includes(":") ? `[${opts.listenHost}]` : opts.listenHost ?? "127.0.0.1";
  const full = {
    workers: 1,
    ...config,
    listen: {
      ...(config.listen as object),
      addrs: [`${host}:${port}`],
      plain_addrs: [`${host}:${plainPort}`],
    },
    tls: { cert_path: cert, key_path: key, ...(config.tls as object) },
    telemetry: { metrics_addr: "127.0.0.1", metrics_port: metricsPort },
  };
  await Deno.writeTextFile(configPath, stringify(full));
  const permissions = opts.permissions ?? ["-A"];
  const p = spawn(
    ["run", "--unstable-net", ...permissions, "proxy/main.ts", configPath],
    opts.env,
    opts.openFiles,
  );
  const ops = async (path: string) => {
    const r = await fetch(`http://127.0.0.1:${metricsPort}${path}`);
    return { status: r.status, body: await r.text() };
  };
  const proxy: Proxy = {
    ...p,
    port,
    plainPort,
    metricsPort,
    certPath: cert,
    keyPath: key,
    configPath,
    url: (path = "/") => `https://127.0.0.1:${port}${path}`,
    ops,
    async metric(name, labels = "") {
      const prefix = labels ? `${name}{${labels}} ` : `${name} `;
      const line = (await ops("/metrics")).body.split("\n").find((l) => l.startsWith(prefix));
      return line === undefined ? 0 : Number(line.slice(prefix.length));
    },
    async metricSettles(name, labels, expected) {
      let value = await proxy.metric(name, labels);
      for (let i = 0; i < 100 && value !== expected; i++) {
        await new Promise((r) => setTimeout(r, 50));
        value = await proxy.metric(name, labels);
      }
      return value;
    },
    [Symbol.asyncDispose]: async () => {
      await p[Symbol.asyncDispose]();
      await dir[Symbol.asyncDispose]();
    },
  };
  try {
    // Even when not waiting for readiness, the ports must be open: an early request would be refused.
    await waitForPort(metricsPort, p.child, "the proxy", p.stderr);
    if (opts.waitReady === false) return proxy;
    for (let i = 0; i < 300; i++) {
      if ((await ops("/ready")).status === 200) return proxy;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the proxy did not become ready:\n${p.stderr()}`);
  } catch (e) {
    await proxy[Symbol.asyncDispose]();
    throw e;
  }
}

/** A single-backend route table for `startProxy`: every host and path to `backend`. */
export function routeAllTo(backend: string): Record<string, unknown> {
  return {
    backends: [{ address: backend }],
    domains: [{ host: "*", routes: [{ prefix: "/", backend }] }],
  };
}

/** What the echo backend answers. */
export interface Echo {
  method: string;
  path: string;
  headers: Record<string, string>;
  body_bytes: number;
}

/** Parses every echo JSON object in `text` (several when a client printed several responses). */
export function parseEchoes(text: string): Echo[] {
  return [...text.matchAll(/\{"method".*?"body_bytes":\d+\}/g)].map((m) => JSON.parse(m[0]) as Echo);
}

/** Request header → field of `tools/fingerprint.ts` output, for every TLS fingerprint header. */
export const TLS_FIELDS = {
  "x-tls-ja4": "ja4",
  "x-tls-ja4-r": "ja4_r",
  "x-tls-ja4-o": "ja4_o",
  "x-tls-ja4-or": "ja4_or",
  "x-tls-ja4-s1": "ja4_s1",
  "x-tls-ja4-s1r": "ja4_s1r",
  "x-tls-ja3": "ja3",
  "x-tls-ja3-hash": "ja3_hash",
} as const;

/**
 * Asserts that the backend saw, in `echo`, exactly the TLS fingerprints the offline tool computes from a
 * capture of the same connection (`reference`).
 */
export function assertTlsHeadersMatch(echo: Echo, reference: Record<string, unknown>): void {
  for (const [header, field] of Object.entries(TLS_FIELDS)) {
    assert.equal(
      typeof reference[field],
      "string",
      `the capture has no ${field}: ${JSON.stringify(reference)}`,
    );
    assert.equal(echo.headers[header], reference[field], header);
  }
}

/** A `tcpdump` capture of loopback traffic to `port`, written to a file. */
export interface Capture extends AsyncDisposable {
  /** Stops the capture and returns the connections `deno task fingerprint` finds in it. */
  fingerprints(): Promise<Array<Record<string, unknown>>>;
}

/** Starts `tcpdump -i lo` for TCP port `port` and waits until it captures. Needs root. */
export async function captureLoopback(port: number): Promise<Capture> {
  const dir = await tempDir();
  const file = `${dir.path}/capture.pcap`;
  const tcpdump = await startTcpdump(["-i", "lo", "-n", "-s", "0", `tcp port ${port}`], file);
  return {
    async fingerprints() {
      await tcpdump.stop();
      const r = await run([Deno.execPath(), "run", "--allow-read", `${ROOT}tools/fingerprint.ts`, file]);
      if (r.code !== 0) throw new Error(`tools/fingerprint.ts failed: ${r.stderr}`);
      return r.stdout.trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
    },
    [Symbol.asyncDispose]: async () => {
      await tcpdump.stop();
      await dir[Symbol.asyncDispose]();
    },
  };
}
