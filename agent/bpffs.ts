/**
 * Finds the filesystem a pin path lives on, so that pinning into a directory that is not on bpffs fails
 * with the mount command to run instead of libbpf's bare EINVAL.
 *
 * @module
 */
import { AgentError } from "./errors.ts";

/** A line of /proc/mounts: where and what. */
interface Mount {
  point: string;
  type: string;
}

/** /proc/mounts escapes space, tab, newline and backslash as octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct) => String.fromCharCode(parseInt(oct, 8)));
}

/** The mount containing absolute path `path` according to `mounts` (the text of /proc/mounts). */
function mountOf(path: string, mounts: string): Mount | undefined {
  let best: Mount | undefined;
  for (const line of mounts.split("\n")) {
    const fields = line.split(" ");
    if (fields.length < 3) continue;
    const point = unescape(fields[1]);
    const inside = point === "/" || path === point || path.startsWith(point + "/");
    // Later lines win on ties: a mount stacked on the same point hides the earlier one.
    if (inside && (!best || point.length >= best.point.length)) best = { point, type: fields[2] };
  }
  return best;
}

/** Throws an AgentError unless `pinPath` is on a bpffs mount. */
export function assertOnBpffs(pinPath: string): void {
  const mount = mountOf(pinPath, Deno.readTextFileSync("/proc/mounts"));
  if (mount?.type === "bpf") return;
  const where = mount ? `${mount.point} is ${mount.type}` : "no mount found";
  throw new AgentError(
    `HUGINN_EBPF_PIN_PATH=${pinPath} is not on a BPF filesystem (${where}): ` +
      `mount one with 'mount -t bpf bpf /sys/fs/bpf' (in Kubernetes, a hostPath volume of /sys/fs/bpf)`,
  );
}
