/**
 * A running `tcpdump` writing a pcap file: started only once it says it is listening, so no packet of
 * the test is missed, and stopped with SIGINT so the file is complete. Needs root.
 *
 * @module
 */

/** A capture in progress; disposing it (or `stop`) ends it and flushes the file. */
export interface Tcpdump extends AsyncDisposable {
  stop(): Promise<void>;
}

/** Starts `tcpdump ARGS -w file` (ARGS: interface, filter and the like). */
export async function startTcpdump(args: string[], file: string): Promise<Tcpdump> {
  // -Z root: keep the right to write into the test's private directory; --immediate-mode -U: no batching.
  const child = new Deno.Command("tcpdump", {
    args: [...args, "-Z", "root", "--immediate-mode", "-U", "-w", file],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let banner = "";
  while (!banner.includes("listening on")) {
    const { value, done } = await stderr.read();
    if (done) throw new Error(`tcpdump exited before capturing:\n${banner}`);
    banner += value;
  }
  // Keep draining, so that its exit statistics do not meet a closed pipe.
  const drained = (async () => {
    while (!(await stderr.read()).done);
  })().catch(() => {});
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      try {
        child.kill("SIGINT");
      } catch {
        // Already exited.
      }
      await child.status;
      await drained;
    })();
  return { stop, [Symbol.asyncDispose]: stop };
}
