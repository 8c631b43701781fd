/**
 * Attaches the XDP program through a BPF link pinned on bpffs, so that it stays attached while the agent
 * is stopped, killed or being upgraded: capture has no gap. A restarted agent adopts the pinned link when
 * the program behind it is the one it would attach (same code, maps and configuration); otherwise it
 * swaps its own program in through the link, which the kernel does atomically.
 *
 * Removing the pin detaches the program once no agent holds the link any more.
 *
 * @module
 */
import {
  BPF_LINK_TYPE_XDP,
  BpfError,
  closeFd,
  linkDetach,
  linkInfo,
  linkUpdate,
  mapFdById,
  mapInfo,
  mapLookup,
  objGet,
  objPin,
  programFdById,
  programId,
  programInfo,
  xdpDetach,
  xdpLinkCreate,
  xdpQueryId,
} from "../shared/libbpf.ts";
import { RODATA_MAP } from "../shared/ebpf_abi.ts";
import type { Logger } from "../shared/log.ts";

/** A link this process holds: its fd, and the kernel ids of the link and of the program behind it. */
export interface HeldLink {
  fd: number;
  id: number;
  programId: number;
}

/** Where and how to attach: the interface, the XDP mode flags, and the pin file of the link. */
export interface LinkTarget {
  pin: string;
  ifname: string;
  ifindex: number;
  flags: number;
}

/**
 * Attaches program `progFd` to the target through the link pinned there: adopts it when it already runs
 * the same program, updates it to `progFd` when not, or creates and pins a new one.
 */
export function attachPinnedLink(progFd: number, target: LinkTarget, log: Logger): HeldLink {
  const held = openPinnedLink(target, log);
  if (held) {
    if (sameProgram(held.programId, progFd)) {
      log.info("adopting the pinned link, which runs this program", {
        link: held.id,
        programId: held.programId,
      });
      return held;
    }
    try {
      linkUpdate(held.fd, progFd);
    } catch (e) {
      closeFd(held.fd);
      throw e;
    }
    const id = programId(progFd);
    log.info("updated the program of the pinned link", { link: held.id, was: held.programId, now: id });
    return { ...held, programId: id };
  }

  // A link cannot take over from a program attached without one: a leftover of an agent run without
  // HUGINN_EBPF_PIN_LINK is expected here, so it goes, as it would in that mode.
  const previous = xdpQueryId(target.ifindex, target.flags);
  if (previous !== 0) {
    log.warn("replacing the XDP program attached to the interface", { previous, ifname: target.ifname });
    const fd = programFdById(previous);
    try {
      xdpDetach(target.ifindex, fd, target.flags);
    } finally {
      closeFd(fd);
    }
  }
  const fd = xdpLinkCreate(target.ifindex, progFd, target.flags);
  try {
    objPin(fd, target.pin);
    const info = linkInfo(fd);
    log.info("pinned a new link", { pin: target.pin, link: info.id, programId: info.programId });
    return { fd, id: info.id, programId: info.programId };
  } catch (e) {
    closeFd(fd);
    throw e;
  }
}

/**
 * The link pinned at the target, when it still attaches a program to that interface in that mode.
 * Otherwise (another interface, the other mode, a device that has gone) it is detached and unpinned.
 */
function openPinnedLink(target: LinkTarget, log: Logger): HeldLink | undefined {
  const fd = openPin(target.pin);
  if (fd === undefined) return undefined;
  const info = linkInfo(fd);
  const current = info.type === BPF_LINK_TYPE_XDP && info.ifindex === target.ifindex &&
    xdpQueryId(target.ifindex, target.flags) === info.programId;
  if (current) return { fd, id: info.id, programId: info.programId };
  log.warn("replacing the pinned link: it is not attached to this interface in this mode", {
    pin: target.pin,
    link: info.id,
    ifindex: info.ifindex,
  });
  drop(fd, target.pin);
  return undefined;
}

/**
 * Detaches and removes the link pinned at `pin`, if any: the agent runs without HUGINN_EBPF_PIN_LINK
 * now, and a pinned link would keep a second copy of the program attached.
 */
export function removePinnedLink(pin: string, log: Logger): void {
  const fd = openPin(pin);
  if (fd === undefined) return;
  log.warn("detaching and removing the pinned link (HUGINN_EBPF_PIN_LINK is off)", {
    pin,
    link: linkInfo(fd).id,
  });
  drop(fd, pin);
}

function openPin(pin: string): number | undefined {
  try {
    // Links open read-write only.
    return objGet(pin, { readOnly: false });
  } catch (e) {
    if (e instanceof BpfError && e.code === "ENOENT") return undefined;
    throw e;
  }
}

/** Detaches the link behind `fd` at once (the pin alone would release it only later) and unpins it. */
function drop(fd: number, pin: string): void {
  try {
    linkDetach(fd);
  } catch {
    // Already detached: its device went away, or someone ran 'bpftool link detach'.
  } finally {
    closeFd(fd);
  }
  Deno.removeSync(pin);
}

/** Whether program `id` does exactly what `progFd` does; false when it is gone. */
function sameProgram(id: number, progFd: number): boolean {
  let fd;
  try {
    fd = programFdById(id);
  } catch {
    return false;
  }
  try {
    return identity(fd) === identity(progFd);
  } finally {
    closeFd(fd);
  }
}

/**
 * A program's instructions (its tag) and the maps it uses. Every load creates its own `.rodata` map, the
 * configuration, so that one counts by content; the others (the pinned maps) by id.
 */
function identity(progFd: number): string {
  const info = programInfo(progFd);
  const maps = info.mapIds.map((id) => {
    const fd = mapFdById(id);
    try {
      const map = mapInfo(fd);
      if (!map.name.endsWith(RODATA_MAP)) return `map ${id}`;
      const value = new Uint8Array(map.valueSize);
      mapLookup(fd, new Uint8Array(4), value);
      return `rodata ${value.join(",")}`;
    } finally {
      closeFd(fd);
    }
  });
  return [info.tag, ...maps.sort()].join("; ");
}
