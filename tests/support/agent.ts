/**
 * Runs the real eBPF agent (`agent/main.ts`) as a subprocess for tests, with a private bpffs to pin into,
 * and always cleans up: `await using` kills a still-running agent and unmounts the bpffs. Also reads the
 * kernel state tests check the agent against: the XDP program of an interface, a pinned link.
 *
 * @module
 */
import {
  closeFd,
  linkInfo,
  objGet,
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_SKB_MODE,
  xdpQueryId,
} from "../../shared/libbpf.ts";
import { sh } from "./netns.ts";
import { spawnCollecting } from "./spawn.ts";

const AGENT = new URL("../../agent/main.ts", import.meta.url).pathname;

/** Whether the tests that load BPF programs can run here. */
export const isRoot = Deno.uid() === 0;

/** A bpffs mounted on a fresh temporary directory (world-traversable, so unprivileged tests can open pins). */
export interface Bpffs extends AsyncDisposable {
  dir: string;
}

export async function mountBpffs(): Promise<Bpffs> {
  const dir = await Deno.makeTempDir({ prefix: "hfp-bpffs-" });
  await Deno.chmod(dir, 0o755);
  await sh(["mount", "-t", "bpf", "bpf", dir]);
  return {
    dir,
    [Symbol.asyncDispose]: async () => {
      await sh(["umount", dir]).catch(() => {});
      await Deno.remove(dir).catch(() => {});
    },
  };
}

/** A TCP port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A running agent. */
export interface Agent extends AsyncDisposable {
  /** `http://127.0.0.1:<metrics port>` */
  url: string;
  /** Everything the agent wrote to stderr so far. */
  stderr(): string;
  /** The parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** Resolves when `/ready` answers 200; rejects with the agent's stderr if it exits first. Not for agents in another netns. */
  ready(): Promise<void>;
  /** Sends `signal` and waits for the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** The exit status, once the agent has exited by itself. */
  status: Promise<Deno.CommandStatus>;
}

/** How to run the agent: a command prefix (`["ip", "netns", "exec", name]`, `setpriv ...`) and Deno flags. */
export interface RunOptions {
  wrap?: string[];
  denoFlags?: string[];
}

/**
 * Starts the agent with `env` (plus a metrics port on 127.0.0.1 unless given). No `HUGINN_*` variable of
 * the test's own environment leaks in.
 */
export function startAgent(
  env: Record<string, string>,
  { wrap = [], denoFlags = ["-A"] }: RunOptions = {},
): Agent {
  const port = env.HUGINN_EBPF_METRICS_PORT ?? String(freePort());
  const fullEnv: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: Deno.env.get("HOME") ?? "/root",
    DENO_NO_UPDATE_CHECK: "1",
    HUGINN_EBPF_METRICS_ADDR: "127.0.0.1",
    HUGINN_EBPF_METRICS_PORT: port,
    ...env,
  };
  const denoDir = Deno.env.get("DENO_DIR");
  if (denoDir) fullEnv.DENO_DIR = denoDir;
  const cmd = [...wrap, Deno.execPath(), "run", ...denoFlags, AGENT];
  const p = spawnCollecting(cmd, { env: fullEnv, clearEnv: true });
  const { stderr, status } = p;
  const url = `http://127.0.0.1:${port}`;

  const agent: Agent = {
    url,
    stderr,
    logs: () =>
      stderr().split("\n").filter((l) => l.startsWith("{")).map((l) =>
        JSON.parse(l) as Record<string, unknown>
      ),
    status,
    async ready() {
      // A guard against hanging, not a timing assertion: the agent is ready within a second or two.
      for (const deadline = Date.now() + 30_000; !p.exited() && Date.now() < deadline;) {
        const code = await fetch(`${url}/ready`).then(
          async (r) => (await r.body?.cancel(), r.status),
          () => 0,
        );
        if (code === 200) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      const why = p.exited() ? `exited with status ${(await status).code}` : "was not ready after 30 s";
      throw new Error(`the agent ${why}:\n${stderr()}`);
    },
    stop: p.stop,
    [Symbol.asyncDispose]: async () => void await p.stop("SIGKILL"),
  };
  return agent;
}

/** Runs the agent to completion with `env` and returns its exit code and stderr lines. */
export async function runAgentToExit(env: Record<string, string>, options: RunOptions = {}) {
  await using agent = startAgent(env, options);
  const { code } = await agent.status;
  return { code, lines: agent.stderr().split("\n").filter((l) => l.trim() !== "") };
}

/** GETs `url` and returns status and body text. */
export async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

/** The value of metric sample `name{labels}` in Prometheus text, or undefined. */
export function sample(metrics: string, name: string, labels = ""): number | undefined {
  const prefix = labels ? `${name}{${labels}} ` : `${name} `;
  const line = metrics.split("\n").find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

/** The id of the XDP program on interface `ifname` in `mode` (`xdp-native` or `xdp-skb`), 0 when none. */
export function xdpProgramId(ifname: string, mode: "xdp-native" | "xdp-skb"): number {
  const ifindex = Number(Deno.readTextFileSync(`/sys/class/net/${ifname}/ifindex`));
  return xdpQueryId(ifindex, mode === "xdp-native" ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
}

/** The kernel ids of the link pinned at `path` and of the program behind it. */
export function pinnedLink(path: string): { id: number; programId: number } {
  const fd = objGet(path, { readOnly: false });
  try {
    const { id, programId } = linkInfo(fd);
    return { id, programId };
  } finally {
    closeFd(fd);
  }
}
