/**
 * The local stack behind the README's start command: an echo backend, the proxy on a TLS port with a
 * self-signed certificate made on first run, and — when this machine allows it (root, bpffs, libbpf) —
 * the eBPF agent on the loopback interface so that `x-tcp-p0f` shows up too. Ctrl-C stops everything.
 *
 * Usage: deno task start [--port 8443] [--plain]
 */

const root = new URL("../", import.meta.url).pathname;
const state = `${root}.local/stack`;
const deno = Deno.execPath();

const port = Number(flag("--port") ?? 8443);
const backendPort = 9000;
const metricsPort = 9090;
const agentMetricsPort = 9091;
const pinPath = "/sys/fs/bpf/huginn-local";

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

function say(msg: string) {
  console.error(`\x1b[1m==> ${msg}\x1b[0m`);
}

async function sh(cmd: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
      .output();
    return { ok: r.success, out: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr) };
  } catch (e) {
    return { ok: false, out: String(e) };
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Why TCP fingerprinting cannot run here, or undefined when it can. */
async function ebpfUnavailable(): Promise<string | undefined> {
  if (Deno.args.includes("--plain")) return "--plain was given";
  if (Deno.uid() !== 0) return "not running as root (the agent needs CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)";
  const mounts = await Deno.readTextFile("/proc/mounts");
  if (!/ \/sys\/fs\/bpf bpf /.test(mounts)) {
    const m = await sh(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"]);
    if (!m.ok) return `bpffs is not mounted at /sys/fs/bpf and mounting it failed: ${m.out.trim()}`;
  }
  if (
    !(await exists("/usr/lib/x86_64-linux-gnu/libbpf.so.1")) &&
    !(await exists("/lib/x86_64-linux-gnu/libbpf.so.1"))
  ) {
    return "libbpf.so.1 is not installed (apt-get install libbpf1)";
  }
  return undefined;
}

async function ensureCertificate(): Promise<{ cert: string; key: string }> {
  const cert = `${state}/cert.pem`;
  const key = `${state}/key.pem`;
  if (!(await exists(cert)) || !(await exists(key))) {
    say("making a self-signed certificate for localhost (first run)");
    const r = await sh([
      "openssl",
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "365",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
      "-keyout",
      key,
      "-out",
      cert,
    ]);
    if (!r.ok) throw new Error(`openssl failed: ${r.out}`);
  }
  return { cert, key };
}

async function waitReady(url: string, child: Deno.ChildProcess, what: string) {
  for (let i = 0; i < 150; i++) {
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    const exited = await Promise.race([
      child.status.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 200)),
    ]);
    if (exited) throw new Error(`${what} exited during start-up (see its log above)`);
  }
  throw new Error(`${what} did not become ready at ${url} within 30 s`);
}

await Deno.mkdir(state, { recursive: true });
const children: { name: string; child: Deno.ChildProcess }[] = [];
const spawn = (name: string, args: string[], env: Record<string, string> = {}) => {
  const child = new Deno.Command(deno, { args, env, cwd: root, stdin: "null" }).spawn();
  children.push({ name, child });
  return child;
};
const stopAll = async () => {
  for (const { child } of children.reverse()) {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
  }
  await Promise.allSettled(children.map((c) => c.child.status));
};
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, async () => {
    say("stopping");
    await stopAll();
    Deno.exit(0);
  });
}

try {
  const { cert, key } = await ensureCertificate();
  const unavailable = await ebpfUnavailable();
  const tcp = unavailable === undefined;

  say(`starting the echo backend on 127.0.0.1:${backendPort}`);
  spawn("backend", ["run", "--allow-net", "--allow-env", "tools/echo_backend.ts", String(backendPort)]);

  if (tcp) {
    say(`starting the eBPF agent on lo (xdp-skb), pins at ${pinPath}, metrics on :${agentMetricsPort}`);
    const agent = spawn("agent", ["task", "agent"], {
      HUGINN_EBPF_INTERFACE: "lo",
      HUGINN_EBPF_CAPTURE: "xdp-skb",
      HUGINN_EBPF_DST_PORT: String(port),
      HUGINN_EBPF_PIN_PATH: pinPath,
      HUGINN_EBPF_METRICS_PORT: String(agentMetricsPort),
    });
    await waitReady(`http://127.0.0.1:${agentMetricsPort}/ready`, agent, "the agent");
  } else {
    say(`TCP fingerprinting off, proxy in plain mode: ${unavailable}`);
  }

  const config = `${state}/huginn.toml`;
  await Deno.writeTextFile(
    config,
    `# Generated by 'deno task start'; see docs/configuration.md for every key.
[listen]
addrs = ["0.0.0.0:${port}", "[::]:${port}"]

[tls]
cert_path = "${cert}"
key_path = "${key}"

[fingerprint]
tcp_enabled = ${tcp}

[[backends]]
address = "127.0.0.1:${backendPort}"

[[domains]]
host = "*"
routes = [{ prefix = "/", backend = "127.0.0.1:${backendPort}" }]

[telemetry]
metrics_port = ${metricsPort}
`,
  );
  say(`starting the proxy on https://localhost:${port} (config ${config.replace(root, "")})`);
  const proxy = spawn("proxy", ["task", "proxy", config], { HUGINN_EBPF_PIN_PATH: pinPath });
  await waitReady(`http://127.0.0.1:${metricsPort}/ready`, proxy, "the proxy");

  console.log(`
The stack is up${tcp ? " with TCP (p0f) fingerprinting" : " in plain mode (no TCP fingerprints)"}. Try:

  curl -k https://localhost:${port}/

You should see JSON from the echo backend listing the headers it received, among them your client's
x-tls-ja4, x-tls-ja4-r, x-tls-ja4-o, x-tls-ja4-or, x-tls-ja4-s1, x-tls-ja4-s1r, x-tls-ja3, x-tls-ja3-hash,
x-http2-akamai (curl speaks HTTP/2 here)${
    tcp ? " and x-tcp-p0f" : ""
  }. Metrics: http://localhost:${metricsPort}/metrics
Press Ctrl-C to stop.`);

  const first = await Promise.race(
    children.map(async (c) => ({ name: c.name, status: await c.child.status })),
  );
  say(`${first.name} exited with status ${first.status.code}; stopping the stack`);
  await stopAll();
  Deno.exit(1);
} catch (e) {
  console.error(`start: ${e instanceof Error ? e.message : e}`);
  await stopAll();
  Deno.exit(1);
}
