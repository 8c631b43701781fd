/**
 * Live p0f on an interface: the reference the captured SYNs are compared with.
 *
 * @module
 */

/** p0f on `iface`, logging SYNs to port `port`; `rawSig` waits for the line of one client port. */
export async function startP0f(iface: string, port: number) {
  const dir = await Deno.makeTempDir({ prefix: "huginn-p0f-" });
  const log = `${dir}/p0f.log`;
  const child = new Deno.Command("p0f", {
    args: ["-i", iface, "-o", log, `tcp dst port ${port}`],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let banner = "";
  // p0f captures from the moment it prints this line.
  while (!banner.includes("Entered main event loop")) {
    const { value, done } = await stdout.read();
    if (done) throw new Error(`p0f exited before capturing:\n${banner}`);
    banner += value;
  }
  return {
    async rawSig(clientPort: number): Promise<string> {
      const pattern = new RegExp(`mod=syn\\|cli=[^|]*/${clientPort}\\|.*\\|raw_sig=([^|\\n]*)`);
      // A guard against hanging, not a timing assertion: p0f logs within milliseconds.
      for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
        const match = (await Deno.readTextFile(log).catch(() => "")).match(pattern);
        if (match) return match[1];
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`p0f logged no SYN from port ${clientPort}:\n${await Deno.readTextFile(log)}`);
    },
    [Symbol.asyncDispose]: async () => {
      child.kill("SIGTERM");
      await stdout.cancel();
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
