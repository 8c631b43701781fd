/**
 * The proxy's read-only view of the agent's pinned SYN maps: find the SYN that opened a connection from
 * the peer's address and port. Opens the pins with `BPF_F_RDONLY`, which an unprivileged process may do
 * (kernel 6.5 or later, or CAP_BPF on older kernels) when the pin files are readable to it.
 *
 * @module
 */
import { BpfError, closeFd, type MapInfo, mapInfo, mapLookup, objGet } from "./libbpf.ts";
import {
  decodeSynValue,
  type MapSpec,
  SYN_KEY_V4,
  SYN_KEY_V6,
  SYN_MAP_V4,
  SYN_MAP_V6,
  SYN_VALUE,
  writeSynKey,
} from "./ebpf_abi.ts";
import type { Peer, SynRecord } from "./syn_record.ts";

/** The pinned maps could not be opened or are not what this build expects; names the pin path. */
export class SynMapsError extends Error {
  readonly pinPath: string;

  constructor(pinPath: string, message: string, options?: ErrorOptions) {
    super(`SYN maps at ${pinPath}: ${message}`, options);
    this.name = "SynMapsError";
    this.pinPath = pinPath;
  }
}

/** Open SYN maps. */
export interface SynMaps {
  /** The SYN captured for `peer`, or undefined when there is none or the address is not IP. */
  lookup(peer: Peer): SynRecord | undefined;
  /** Kernel map IDs: they change when the agent replaces the maps, which means reopen. */
  ids(): { v4: number; v6: number };
  close(): void;
}

/** Nanoseconds on CLOCK_BOOTTIME, comparable with `SynRecord.capturedNs` to ignore stale records. */
export { bootTimeNs } from "./libbpf.ts";

function openPin(pinPath: string, spec: MapSpec): { fd: number; info: MapInfo } {
  const path = `${pinPath}/${spec.name}`;
  let fd: number;
  try {
    fd = objGet(path, { readOnly: true });
  } catch (e) {
    if (e instanceof BpfError && e.code === "ENOENT") {
      throw new SynMapsError(
        pinPath,
        `${path} does not exist: is the eBPF agent running with this pin path?`,
        {
          cause: e,
        },
      );
    }
    throw new SynMapsError(pinPath, `cannot open ${path}: ${(e as Error).message}`, { cause: e });
  }
  const info = mapInfo(fd);
  if (info.type !== spec.type || info.keySize !== spec.keySize || info.valueSize !== spec.valueSize) {
    closeFd(fd);
    throw new SynMapsError(
      pinPath,
      `${path} has type ${info.type}, key ${info.keySize} B, value ${info.valueSize} B; this build expects ` +
        `type ${spec.type}, key ${spec.keySize} B, value ${spec.valueSize} B (agent and proxy versions differ)`,
    );
  }
  return { fd, info };
}

/** Opens the pinned IPv4 and IPv6 SYN maps under `pinPath` read-only. Throws SynMapsError. */
export function openSynMaps(pinPath: string): SynMaps {
  const v4 = openPin(pinPath, SYN_MAP_V4);
  let v6;
  try {
    v6 = openPin(pinPath, SYN_MAP_V6);
  } catch (e) {
    closeFd(v4.fd);
    throw e;
  }
  // Reused for every lookup: the proxy calls this once per accepted connection.
  const key4 = new Uint8Array(SYN_KEY_V4.size);
  const key6 = new Uint8Array(SYN_KEY_V6.size);
  const value = new Uint8Array(SYN_VALUE.size);
  let open = true;
  return {
    lookup(peer) {
      if (!open) throw new SynMapsError(pinPath, "lookup after close");
      const family = writeSynKey(peer, key4, key6);
      if (family === undefined) return undefined;
      const found = family === "ipv4" ? mapLookup(v4.fd, key4, value) : mapLookup(v6.fd, key6, value);
      return found ? decodeSynValue(value) : undefined;
    },
    ids: () => ({ v4: v4.info.id, v6: v6.info.id }),
    close() {
      if (!open) return;
      open = false;
      closeFd(v4.fd);
      closeFd(v6.fd);
    },
  };
}
