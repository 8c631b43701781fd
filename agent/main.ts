/**
 * The eBPF agent: loads the SYN capture program, pins its maps for the proxy, attaches it to one
 * interface, and serves probes and metrics until SIGTERM or SIGINT. Pins outlive the agent so that
 * proxies keep reading the same maps across restarts; with HUGINN_EBPF_PIN_LINK, so does the attachment.
 *
 * Run it with `--allow-all`: it reads /proc and /sys, which Deno grants to nothing less.
 *
 * Exit status: 0 after a signal, 1 when it cannot load or attach, 2 for invalid configuration.
 *
 * @module
 */
import { LINK_PIN } from "../shared/ebpf_abi.ts";
import { createLogger } from "../shared/log.ts";
import { LibraryMissingError, silenceLibbpf } from "../shared/libbpf.ts";
import { attach, type Attachment, interfaceIndex } from "./attach.ts";
import { assertCapabilities } from "./capabilities.ts";
import { parseAgentEnv } from "./config.ts";
import { AgentError } from "./errors.ts";
import { loadCapture, type LoadedCapture, missingPins } from "./loader.ts";
import { createAgentRegistry, readCounters } from "./metrics.ts";
import { createApp, type Readiness } from "./server.ts";

const parsed = parseAgentEnv(Deno.env.toObject());
if (!parsed.ok) {
  createLogger("ebpf-agent").error(parsed.message);
  Deno.exit(2);
}
const config = parsed.config;
const log = createLogger("ebpf-agent", config.logLevel);

/** One log line a user can act on, then exit 1. */
function fail(e: unknown): never {
  if (e instanceof AgentError || e instanceof LibraryMissingError) log.error(e.message);
  else log.error("agent failed", { error: String(e), stack: e instanceof Error ? e.stack : undefined });
  Deno.exit(1);
}

try {
  assertCapabilities();
} catch (e) {
  fail(e);
}
const ifindex = interfaceIndex(config.interface);
if (ifindex === undefined) {
  log.error(
    `HUGINN_EBPF_INTERFACE=${JSON.stringify(config.interface)} is invalid: ` +
      "expected an existing network interface of this node (see 'ip link')",
  );
  Deno.exit(2);
}

let capture: LoadedCapture | undefined;
let attachment: Attachment | undefined;
let stopping = false;

function readiness(): Readiness {
  if (stopping) return { ready: false, reason: "shutting down" };
  if (!capture || !attachment) return { ready: false, reason: "loading" };
  const missing = missingPins(attachment.linkPin ? [...capture.pins, attachment.linkPin] : capture.pins);
  if (missing.length > 0) return { ready: false, reason: `pins missing: ${missing.join(", ")}` };
  if (!attachment.isAttached()) {
    return { ready: false, reason: `program not attached to ${config.interface} (${config.capture})` };
  }
  return { ready: true };
}

const registry = createAgentRegistry({
  counters: () => capture && readCounters(capture.countersFd),
  ready: () => readiness().ready,
});

// Serve first, so that liveness answers (and readiness says why not) while the program loads.
let server: Deno.HttpServer;
try {
  server = Deno.serve({
    hostname: config.metricsAddr,
    port: config.metricsPort,
    onListen: ({ hostname, port }) => log.info("serving probes and metrics", { hostname, port }),
  }, createApp(readiness, registry).fetch);
} catch (e) {
  fail(new AgentError(`cannot serve on ${config.metricsAddr}:${config.metricsPort}: ${e}`, { cause: e }));
}

try {
  if (config.logLevel !== "debug") silenceLibbpf();
  capture = loadCapture({
    pinPath: config.pinPath,
    synMapMaxEntries: config.synMapMaxEntries,
    filter: {
      dstV4: config.dstV4,
      dstV6: config.dstV6,
      dstPort: config.dstPort,
      budget: { syns: config.rateLimitSyns, windowMs: config.rateLimitWindowMs },
    },
    log,
  });
  attachment = attach(capture.object, {
    mode: config.capture,
    ifname: config.interface,
    ifindex,
    pinLink: config.pinLink,
    linkPinPath: `${config.pinPath}/${LINK_PIN}`,
  }, log);
} catch (e) {
  fail(e);
}
log.info("capturing SYNs", {
  interface: config.interface,
  mode: config.capture,
  programId: attachment.programId,
  linkPin: attachment.linkPin,
  dstV4: config.dstV4,
  dstV6: config.dstV6,
  dstPort: config.dstPort,
  rateLimitSyns: config.rateLimitSyns,
  rateLimitWindowMs: config.rateLimitWindowMs,
});

async function shutdown(signal: Deno.Signal): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info(
    attachment?.linkPin
      ? "stopping: the program stays attached through the pinned link; keeping the pins"
      : "stopping: detaching the program, keeping the pins",
    { signal },
  );
  try {
    attachment?.release();
  } catch (e) {
    log.error("detach failed", { error: String(e) });
  }
  capture?.object.close();
  await server.shutdown();
  Deno.exit(0);
}

for (const signal of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(signal, () => shutdown(signal));
