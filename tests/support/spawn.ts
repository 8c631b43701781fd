/**
 * Long-running child processes (the proxy, the agent, nginx, load generators) with their stderr collected
 * as they run, for the error messages of tests and benchmarks.
 *
 * @module
 */

/** A running child and what it has written to stderr. */
export interface Spawned {
  child: Deno.ChildProcess;
  /** Its stderr so far (the last `keep` characters, when given). */
  stderr(): string;
  /** The exit status, once stderr is drained too. */
  status: Promise<Deno.CommandStatus>;
  exited(): boolean;
  /** Sends `signal` unless it has exited, then waits for the exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** SIGTERM, SIGKILL if it is still there 5 s later, then waits for the exit. */
  terminate(): Promise<Deno.CommandStatus>;
}

/** Spawns `cmd` with stdin and stdout discarded and stderr collected. */
export function spawnCollecting(
  cmd: string[],
  options: { cwd?: string; env?: Record<string, string>; clearEnv?: boolean; keep?: number } = {},
): Spawned {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.clearEnv,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const drained = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      stderr += decoder.decode(chunk, { stream: true });
      if (options.keep !== undefined) stderr = stderr.slice(-options.keep);
    }
  })();
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    await drained;
    return s;
  });
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    if (!exited) child.kill(signal);
    return await status;
  };
  return {
    child,
    stderr: () => stderr,
    status,
    exited: () => exited,
    stop,
    async terminate() {
      if (exited) return await status;
      const timer = setTimeout(() => !exited && child.kill("SIGKILL"), 5000);
      const s = await stop("SIGTERM");
      clearTimeout(timer);
      return s;
    },
  };
}
