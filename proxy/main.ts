/**
 * The fingerprinting reverse proxy: `deno task proxy [CONFIG] [--validate | --print-effective-config]`,
 * the configuration path from the argument or `HUGINN_CONFIG_PATH`.
 *
 * The main thread loads the configuration, starts one worker per core (each binds every listener with
 * `SO_REUSEPORT`; see `worker.ts`), serves the operational endpoints with all workers' metrics merged,
 * reloads the configuration's dynamic parts on SIGHUP and when the file changes (see `reload.ts`), and
 * turns SIGTERM/SIGINT into a graceful shutdown: `/ready` goes 503, the workers stop accepting and
 * finish their requests in flight within `timeout.shutdown_secs`, then the process exits 0. At start it
 * raises its limit of open files to the hard one and caps client connections at what fits in it (see
 * `file_budget.ts`).
 *
 * `--print-effective-config` prints the configuration with every default filled in, as JSON, secrets
 * redacted. Exit codes: 0 success (or a valid configuration with `--validate`), 1 invalid configuration
 * or a failed start, 2 usage error.
 *
 * @module
 */
import { type FileLimit, getFileLimit, setFileLimit } from "../shared/libbpf.ts";
import { createLogger, type Logger } from "../shared/log.ts";
import { type Config, ebpfPinPath, formatConfigError, loadConfig } from "./config.ts";
import { ConnectionLimit } from "./connections.ts";
import { connectionsThatFit, FILES_PER_CONNECTION } from "./file_budget.ts";
import { aggregateMetrics, ConfigMetrics } from "./metrics.ts";
import { observabilityApp } from "./observability.ts";
import { configHash, redactedConfig, staticChanges, watchFile } from "./reload.ts";
import type { FromWorker, ToWorker } from "./worker.ts";
import type { Registry } from "prom-client";

const USAGE =
  "usage: deno task proxy [CONFIG] [--validate | --print-effective-config]   (or set HUGINN_CONFIG_PATH)";

/** How often the configuration file's mtime is polled for hot reload. */
const WATCH_INTERVAL_MS = 1000;

interface WorkerState {
  worker: Worker;
  listening: boolean;
  synReady: boolean;
  stopped: Promise<void>;
}

/**
 * Whether `Deno.listen` may be given `reusePort`: in Deno 2.9 that needs `--unstable-net` (or
 * `"unstable": ["net"]` in deno.json), and without it the call ends the process instead of throwing.
 * The flag also exposes `Deno.listenDatagram`, which is how it is detected.
 */
function reusePortAvailable(): boolean {
  return typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function";
}

/**
 * Raises the soft limit of open files to the hard one, as Go does at startup and nginx's
 * `worker_rlimit_nofile` does: the soft limit is often a shell's default of 1024. Deno 2.9's CLI does the
 * same before running any code; this does not rely on it. Returns the limit in force, or undefined when
 * it cannot be read.
 */
function raiseFileLimit(log: Logger): number | undefined {
  let limit: FileLimit;
  try {
    limit = getFileLimit();
  } catch (e) {
    log.warn("cannot read the limit of open files", { error: String(e) });
    return undefined;
  }
  if (limit.soft >= limit.hard) return limit.soft;
  try {
    setFileLimit({ soft: limit.hard, hard: limit.hard });
    return limit.hard;
  } catch (e) {
    log.warn("cannot raise the limit of open files", {
      soft: limit.soft,
      hard: limit.hard,
      error: String(e),
    });
    return limit.soft;
  }
}

/**
 * The cap on client connections: `security.max_connections`, or what fits in the limit of open files
 * when that is less, so that connections beyond it are refused on accept rather than failing deep in a
 * relay. The limit is read through FFI; without that permission (the plain image) the configured value
 * stands, and running out of descriptors costs single connections only.
 */
function connectionCap(config: Config, workers: number, log: Logger): number {
  const max = config.security.max_connections;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    log.info("no FFI permission: security.max_connections is not checked against the limit of open files", {
      max_connections: max,
    });
    return max;
  }
  const limit = raiseFileLimit(log);
  if (limit === undefined) return max;
  const fits = connectionsThatFit(limit, workers);
  if (fits >= max) return max;
  log.warn(
    `security.max_connections = ${max} does not fit in the limit of ${limit} open files; ` +
      `using ${fits}: raise the limit (ulimit -n, LimitNOFILE=, the container's nofile ulimit) or lower the setting`,
    {
      setting: "security.max_connections",
      value: max,
      open_files_limit: limit,
      fits,
      files_per_connection: FILES_PER_CONNECTION,
    },
  );
  return fits;
}

function spawnWorker(
  index: number,
  start: Omit<Extract<ToWorker, { type: "start" }>, "index" | "type">,
  log: Logger,
) {
  const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
  let stopped!: () => void;
  const state: WorkerState = {
    worker,
    listening: false,
    synReady: false,
    stopped: new Promise((r) => stopped = r),
  };
  worker.addEventListener("message", (e: MessageEvent<FromWorker>) => {
    const msg = e.data;
    if (msg.type === "status") Object.assign(state, { listening: msg.listening, synReady: msg.synReady });
    else if (msg.type === "stopped") stopped();
    else if (msg.type === "failed") {
      const hint = !start.reusePort && /in use/i.test(msg.error)
        ? "0.0.0.0 and [::] on one port, or several workers, need SO_REUSEPORT: run Deno with --unstable-net"
        : undefined;
      log.error("worker failed to start", { worker: index, error: msg.error, hint });
      Deno.exit(1);
    }
  });
  worker.addEventListener("error", (e) => {
    e.preventDefault();
    log.error("worker crashed", { worker: index, error: e.message });
    Deno.exit(1);
  });
  worker.postMessage({ ...start, type: "start", index } satisfies ToWorker);
  return state;
}

/**
 * Collects every worker's metrics snapshot, merges them, and appends the main thread's `own` families as
 * they are: summing is only for what each worker counts, and merging would drop `process_start_time_seconds`.
 */
async function collectMetrics(workers: WorkerState[], nextId: () => number, own: Registry): Promise<string> {
  const snapshots = await Promise.all(workers.map(({ worker }) => {
    const id = nextId();
    return new Promise<unknown[]>((resolve) => {
      const onMessage = (e: MessageEvent<FromWorker>) => {
        if (e.data.type !== "metrics" || e.data.id !== id) return;
        worker.removeEventListener("message", onMessage);
        resolve(e.data.json);
      };
      worker.addEventListener("message", onMessage);
      worker.postMessage({ type: "metrics", id } satisfies ToWorker);
    });
  }));
  return await aggregateMetrics(snapshots) + await own.metrics();
}

/**
 * Re-reads the configuration file and hands its dynamic parts to every worker. An invalid file, or one
 * that changes a static part, applies nothing: the running configuration stays whole.
 */
function reloader(
  path: string,
  initial: Config,
  workers: WorkerState[],
  metrics: ConfigMetrics,
  log: Logger,
) {
  let current = initial;
  let running: Promise<void> = Promise.resolve();
  const reload = async (trigger: string) => {
    let next: Config;
    try {
      next = await loadConfig(path);
    } catch (e) {
      metrics.reloads.inc({ result: "invalid" });
      log.error("configuration reload failed; keeping the running configuration", {
        trigger,
        error: formatConfigError(e),
      });
      return;
    }
    const changed = staticChanges(current, next);
    if (changed.length > 0) {
      metrics.reloads.inc({ result: "restart_required" });
      log.error("configuration change needs a restart; nothing applied", { trigger, keys: changed });
      return;
    }
    const hash = configHash(next);
    if (hash === configHash(current)) return void metrics.reloads.inc({ result: "unchanged" });
    current = next;
    for (const { worker } of workers) worker.postMessage({ type: "reload", config: next } satisfies ToWorker);
    metrics.reloads.inc({ result: "applied" });
    metrics.applied(hash);
    log.info("configuration reloaded", { trigger, hash });
  };
  // One reload at a time, in order: a signal during a file-triggered reload runs after it.
  return (trigger: string) => running = running.then(() => reload(trigger));
}

function run(config: Config, pinPath: string | undefined, path: string) {
  const log = createLogger("proxy", config.logging.level);
  let count = config.workers;
  // Also with one worker: an IPv4 and an IPv6 wildcard on the same port only bind together with it.
  const reusePort = reusePortAvailable();
  if (count > 1 && !reusePort) {
    log.warn("SO_REUSEPORT unavailable (run Deno with --unstable-net); using one worker", { workers: count });
    count = 1;
  }
  const connections = ConnectionLimit.buffer(connectionCap(config, count, log));
  const start = { config, connections, reusePort, pinPath };
  const workers = Array.from({ length: count }, (_, i) => spawnWorker(i, start, log));
  let stopping = false;
  let metricsId = 0;
  const configMetrics = new ConfigMetrics();
  configMetrics.applied(configHash(config));
  const reload = reloader(path, config, workers, configMetrics, log);
  Deno.addSignalListener("SIGHUP", () => reload("SIGHUP"));
  const watch = watchFile(path, WATCH_INTERVAL_MS, () => reload("file changed"));

  const app = observabilityApp({
    notReady() {
      if (stopping) return "shutting down";
      if (!workers.every((w) => w.listening)) return "listeners starting";
      if (pinPath !== undefined && !workers.every((w) => w.synReady)) return "eBPF SYN maps not open";
      return undefined;
    },
    metrics: () => collectMetrics(workers, () => ++metricsId, configMetrics.registry),
  });
  const { metrics_addr: hostname, metrics_port: port } = config.telemetry;
  try {
    Deno.serve({ hostname, port, onListen: () => {} }, app.fetch);
  } catch (e) {
    log.error("cannot serve the operational endpoints", { address: `${hostname}:${port}`, error: String(e) });
    Deno.exit(1);
  }
  log.info("proxy starting", {
    workers: count,
    listen: config.listen.addrs,
    plain: config.listen.plain_addrs,
    metrics: `${hostname}:${port}`,
    tcp_fingerprinting: pinPath !== undefined,
  });

  const stop = async (signal: Deno.Signal) => {
    if (stopping) return;
    stopping = true;
    watch.stop();
    log.info("shutting down", { signal, grace_secs: config.timeout.shutdown_secs });
    for (const { worker } of workers) worker.postMessage({ type: "shutdown" } satisfies ToWorker);
    // Workers enforce the grace period themselves; this only guards against a stuck one.
    const backstop = new Promise((r) => setTimeout(r, (config.timeout.shutdown_secs + 5) * 1000));
    await Promise.race([Promise.all(workers.map((w) => w.stopped)), backstop]);
    log.info("stopped");
    Deno.exit(0);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(signal, () => stop(signal));
}

if (import.meta.main) {
  const validate = Deno.args.includes("--validate");
  const print = Deno.args.includes("--print-effective-config");
  const args = Deno.args.filter((a) => a !== "--validate" && a !== "--print-effective-config");
  if (args.length > 1 || args.some((a) => a.startsWith("-"))) {
    console.error(USAGE);
    Deno.exit(2);
  }
  const path = args[0] ?? Deno.env.get("HUGINN_CONFIG_PATH");
  if (path === undefined || path === "") {
    console.error(`no configuration file given\n${USAGE}`);
    Deno.exit(2);
  }
  let config: Config;
  let pinPath: string | undefined;
  try {
    config = await loadConfig(path);
    if (config.fingerprint.tcp_enabled) pinPath = ebpfPinPath();
  } catch (e) {
    console.error(formatConfigError(e));
    Deno.exit(1);
  }
  if (print) {
    console.log(JSON.stringify(redactedConfig(config), null, 2));
    Deno.exit(0);
  }
  if (validate) {
    console.log(`configuration OK: ${path}`);
    Deno.exit(0);
  }
  run(config, pinPath, path);
}
