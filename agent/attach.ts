/**
 * Attaches the capture program to an interface in one of three modes, for XDP optionally through a
 * pinned link that outlives the agent, and answers from the kernel's own state whether it is still
 * attached there.
 *
 * @module
 */
import {
  BPF_TC_INGRESS,
  BpfError,
  type BpfObject,
  closeFd,
  programId,
  tcAttach,
  tcDetach,
  type TcFilter,
  tcQueryId,
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_SKB_MODE,
  xdpAttach,
  xdpDetach,
  xdpQueryId,
} from "../shared/libbpf.ts";
import { PROGRAM_TC, PROGRAM_XDP } from "../shared/ebpf_abi.ts";
import type { Logger } from "../shared/log.ts";
import type { CaptureMode } from "./config.ts";
import { AgentError } from "./errors.ts";
import { attachPinnedLink, removePinnedLink } from "./pinned_link.ts";

/** The tc filter's handle ("HF") and priority on clsact ingress; a restart replaces its own filter. */
const TC_HANDLE = 0x4846;
const TC_PRIORITY = 1;

/** The program attached to an interface. */
export interface Attachment {
  mode: CaptureMode;
  programId: number;
  /** The pin of the link the program is attached through; it stays attached when the agent exits. */
  linkPin?: string;
  /** Asks the kernel whether this program is still the one attached; never throws. */
  isAttached(): boolean;
  /**
   * Ends this agent's hold on the program: detaches it, leaving alone anything that replaced it, unless
   * it is attached through a pinned link, which stays.
   */
  release(): void;
}

/** Where to attach: the interface, and the pin file of the link when attaching through one. */
export interface AttachTarget {
  mode: CaptureMode;
  ifname: string;
  ifindex: number;
  /** Attach through a link pinned at `linkPinPath` (XDP modes only); when false, a link pinned there goes. */
  pinLink: boolean;
  linkPinPath: string;
}

/** The index of network interface `name`, or undefined when there is none (in this namespace). */
export function interfaceIndex(name: string): number | undefined {
  try {
    return Number(Deno.readTextFileSync(`/sys/class/net/${name}/ifindex`).trim());
  } catch {
    return undefined;
  }
}

/** Attaches the program for the target's mode to its interface. */
export function attach(object: BpfObject, target: AttachTarget, log: Logger): Attachment {
  if (!target.pinLink) removePinnedLink(target.linkPinPath, log);
  if (target.mode === "tc") return attachTc(object, target.ifindex);
  return target.pinLink ? attachXdpLink(object, target, log) : attachXdp(object, target, log);
}

const xdpFlags = (mode: CaptureMode) => mode === "xdp-native" ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;

function attachXdpLink(object: BpfObject, target: AttachTarget, log: Logger): Attachment {
  const { mode, ifname, ifindex, linkPinPath } = target;
  const flags = xdpFlags(mode);
  let link;
  try {
    link = attachPinnedLink(object.programFd(PROGRAM_XDP), { pin: linkPinPath, ifname, ifindex, flags }, log);
  } catch (e) {
    throw explainXdpFailure(e, mode, ifname);
  }
  return {
    mode,
    programId: link.programId,
    linkPin: linkPinPath,
    isAttached: () => safely(() => xdpQueryId(ifindex, flags) === link.programId),
    // The pin keeps the link: closing this process's fd leaves the program attached.
    release: () => closeFd(link.fd),
  };
}

function attachXdp(object: BpfObject, { mode, ifname, ifindex }: AttachTarget, log: Logger): Attachment {
  const fd = object.programFd(PROGRAM_XDP);
  const id = programId(fd);
  const flags = xdpFlags(mode);
  const previous = xdpQueryId(ifindex, flags);
  // Only one XDP program per mode: a leftover of a killed agent is expected, anything else is worth a line.
  if (previous !== 0) log.warn("replacing the XDP program attached to the interface", { previous, ifname });
  try {
    xdpAttach(ifindex, fd, flags);
  } catch (e) {
    throw explainXdpFailure(e, mode, ifname);
  }
  return {
    mode,
    programId: id,
    isAttached: () => safely(() => xdpQueryId(ifindex, flags) === id),
    release: () => {
      try {
        xdpDetach(ifindex, fd, flags);
      } catch (e) {
        if (!(e instanceof BpfError && e.code === "EEXIST")) throw e;
        log.warn("another XDP program replaced ours; leaving it attached", { ifname });
      }
    },
  };
}

function explainXdpFailure(e: unknown, mode: CaptureMode, ifname: string): unknown {
  if (!(e instanceof BpfError)) return e;
  if (mode === "xdp-native" && e.code === "EOPNOTSUPP") {
    return new AgentError(
      `the driver of ${ifname} does not support native XDP: set HUGINN_EBPF_CAPTURE=xdp-skb ` +
        `(generic XDP) or HUGINN_EBPF_CAPTURE=tc`,
      { cause: e },
    );
  }
  if (e.code === "EEXIST") {
    return new AgentError(
      `${ifname} already has an XDP program attached in the other mode; detach it ` +
        `('ip link set dev ${ifname} xdp off') or choose that mode with HUGINN_EBPF_CAPTURE`,
      { cause: e },
    );
  }
  if (e.code === "EBUSY") {
    return new AgentError(
      `${ifname} has an XDP program attached through a BPF link that is not this agent's: find it with ` +
        `'bpftool link show' and detach it ('bpftool link detach id ID', or remove its pin)`,
      { cause: e },
    );
  }
  return e;
}

function attachTc(object: BpfObject, ifindex: number): Attachment {
  const fd = object.programFd(PROGRAM_TC);
  const id = programId(fd);
  const filter: TcFilter = { ifindex, attachPoint: BPF_TC_INGRESS, handle: TC_HANDLE, priority: TC_PRIORITY };
  tcAttach(filter, fd);
  return {
    mode: "tc",
    programId: id,
    isAttached: () => safely(() => tcQueryId(filter) === id),
    release: () => {
      if (tcQueryId(filter) === id) tcDetach(filter);
    },
  };
}

function safely(query: () => boolean): boolean {
  try {
    return query();
  } catch {
    return false;
  }
}
