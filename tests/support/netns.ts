/**
 * A throwaway network namespace joined to the host by a veth pair, with IPv4 and IPv6 addresses on both
 * ends, for tests that need real traffic on a real interface. Needs root. Use it with `await using`, so
 * the namespace (and with it both veth ends) is deleted even when the test fails:
 *
 * ```ts
 * await using ns = await createNetns("hfpagt");
 * await ns.run(["curl", `http://${ns.hostV4}:8080/`]);
 * ```
 *
 * Names and subnets derive from the process id and a counter, so parallel test processes do not clash.
 *
 * @module
 */

/** The namespace and the addresses of both veth ends. */
export interface Netns extends AsyncDisposable {
  /** Namespace name (`ip netns`). */
  name: string;
  /** The veth end in the test's own (host) namespace. */
  hostIf: string;
  /** The veth end inside the namespace. */
  nsIf: string;
  hostV4: string;
  nsV4: string;
  hostV6: string;
  nsV6: string;
  /** Runs a command inside the namespace; throws with its stderr when it exits non-zero. */
  run(cmd: string[]): Promise<string>;
  /** Starts a command inside the namespace; the caller owns the process. */
  spawn(cmd: string[], options?: Omit<Deno.CommandOptions, "args">): Deno.ChildProcess;
  /** Deletes the namespace and the veth pair; safe to call twice. */
  destroy(): Promise<void>;
}

let counter = 0;

/** Runs `cmd`, returns its stdout; throws with the command line and stderr on failure. */
export async function sh(cmd: string[]): Promise<string> {
  const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  if (!out.success) throw new Error(`${cmd.join(" ")} exited ${out.code}: ${text(out.stderr).trim()}`);
  return text(out.stdout);
}

/**
 * Creates namespace `<prefix><id>` with veth `<prefix><id>h` (host) / `<prefix><id>n` (inside), both up,
 * with 10.128.0.0/9 /30 and fd68:6670::/32 /64 subnets. `prefix` is at most 8 characters so that
 * interface names fit the kernel's 15.
 */
export async function createNetns(prefix = "hfp"): Promise<Netns> {
  if (!/^[a-z]{1,8}$/.test(prefix)) {
    throw new RangeError(`netns prefix must be 1-8 lowercase letters: ${prefix}`);
  }
  const id = (Deno.pid * 64 + counter++) % (1 << 21);
  const tag = `${prefix}${id.toString(36)}`;
  const v4 = (host: number) => {
    const a = (10 << 24) + (1 << 23) + id * 4 + host;
    return [a >>> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255].join(".");
  };
  const v6 = (host: number) => `fd68:6670:${(id >> 16).toString(16)}:${(id & 0xffff).toString(16)}::${host}`;
  const ns = {
    name: tag,
    hostIf: `${tag}h`,
    nsIf: `${tag}n`,
    hostV4: v4(1),
    nsV4: v4(2),
    hostV6: v6(1),
    nsV6: v6(2),
    run: (cmd: string[]) => sh(["ip", "netns", "exec", tag, ...cmd]),
    spawn: (cmd: string[], options: Omit<Deno.CommandOptions, "args"> = {}) =>
      new Deno.Command("ip", { ...options, args: ["netns", "exec", tag, ...cmd] }).spawn(),
    destroy: async () => {
      // Deleting the namespace deletes its veth end, which deletes the peer too.
      await sh(["ip", "netns", "del", tag]).catch(() => {});
      await sh(["ip", "link", "del", `${tag}h`]).catch(() => {});
    },
    [Symbol.asyncDispose]: () => ns.destroy(),
  };
  try {
    await sh(["ip", "netns", "add", tag]);
    await sh(["ip", "link", "add", ns.hostIf, "type", "veth", "peer", "name", ns.nsIf, "netns", tag]);
    await sh(["ip", "addr", "add", `${ns.hostV4}/30`, "dev", ns.hostIf]);
    // nodad: the addresses are usable at once instead of after duplicate address detection.
    await sh(["ip", "-6", "addr", "add", `${ns.hostV6}/64`, "dev", ns.hostIf, "nodad"]);
    await sh(["ip", "link", "set", ns.hostIf, "up"]);
    await sh(["ip", "-n", tag, "addr", "add", `${ns.nsV4}/30`, "dev", ns.nsIf]);
    await sh(["ip", "-n", tag, "-6", "addr", "add", `${ns.nsV6}/64`, "dev", ns.nsIf, "nodad"]);
    await sh(["ip", "-n", tag, "link", "set", ns.nsIf, "up"]);
    await sh(["ip", "-n", tag, "link", "set", "lo", "up"]);
  } catch (e) {
    await ns.destroy();
    throw e;
  }
  return ns;
}

/**
 * Connects from inside `ns` to `address` on the port of `listener` (listening in the host namespace),
 * accepts, closes, and returns the peer as the listener saw it: the key the SYN maps use.
 */
export async function connectFrom(
  ns: Netns,
  listener: Deno.TcpListener,
  address: string,
): Promise<{ address: string; port: number }> {
  const client = ns.run(["bash", "-c", `exec 3<>/dev/tcp/${address}/${listener.addr.port}`]);
  const conn = await listener.accept();
  await client;
  conn.close();
  return { address: conn.remoteAddr.hostname, port: conn.remoteAddr.port };
}
