/**
 * Attaches the capture program to an interface in one of three modes and answers, from the kernel's
 * own state, whether it is still attached there.
 *
 * @module
 */
import {
  BPF_TC_INGRESS,
  BpfError,
  type BpfObject,
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

/** The tc filter's handle ("HF") and priority on clsact ingress; a restart replaces its own filter. */
const TC_HANDLE = 0x4846;
const TC_PRIORITY = 1;

/** The program attached to an interface. */
export interface Attachment {
  mode: CaptureMode;
  programId: number;
  /** Asks the kernel whether this program is still the one attached; never throws. */
  isAttached(): boolean;
  /** Detaches this program, leaving alone anything that replaced it. */
  detach(): void;
}

/** The index of network interface `name`, or undefined when there is none (in this namespace). */
export function interfaceIndex(name: string): number | undefined {
  try {
    return Number(Deno.readTextFileSync(`/sys/class/net/${name}/ifindex`).trim());
  } catch {
    return undefined;
  }
}

/** Attaches the program for `mode` to interface `ifname` (index `ifindex`). */
export function attach(
  object: BpfObject,
  mode: CaptureMode,
  ifname: string,
  ifindex: number,
  log: Logger,
): Attachment {
  return mode === "tc" ? attachTc(object, ifindex) : attachXdp(object, mode, ifname, ifindex, log);
}

function attachXdp(
  object: BpfObject,
  mode: CaptureMode,
  ifname: string,
  ifindex: number,
  log: Logger,
): Attachment {
  const fd = object.programFd(PROGRAM_XDP);
  const id = programId(fd);
  const flags = mode === "xdp-native" ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
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
    detach: () => {
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
    detach: () => {
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
