/**
 * Loads `bpf/capture.bpf.o` with the configured capacity and filter, and pins its maps where the proxy
 * opens them. Pins that still match are reused, so a restarted agent keeps the same map IDs and the
 * proxies reading them keep working; pins whose layout or capacity changed are replaced.
 *
 * @module
 */
import { BpfError, BpfObject, closeFd, type MapInfo, mapInfo, objGet } from "../shared/libbpf.ts";
import {
  type CaptureFilter,
  COUNTERS_MAP,
  encodeFilter,
  type MapSpec,
  PINNED_MAPS,
  RODATA_MAP,
  SYN_MAP_V4,
  SYN_MAP_V6,
} from "../shared/ebpf_abi.ts";
import type { Logger } from "../shared/log.ts";
import { assertOnBpffs } from "./bpffs.ts";
import { AgentError } from "./errors.ts";

/** The committed object, found next to this module so the agent runs from any working directory. */
const OBJECT_PATH = new URL("../bpf/capture.bpf.o", import.meta.url).pathname;

export interface LoadOptions {
  pinPath: string;
  synMapMaxEntries: number;
  filter: CaptureFilter;
  log: Logger;
}

/** The loaded object and where its maps are pinned. */
export interface LoadedCapture {
  object: BpfObject;
  /** Pin file paths, in `PINNED_MAPS` order. */
  pins: string[];
  /** The fd of the per-CPU counters map. */
  countersFd: number;
}

/** The pin file of map `spec` under `pinPath`. */
function pinFile(pinPath: string, spec: MapSpec): string {
  return `${pinPath}/${spec.name}`;
}

function wanted(spec: MapSpec, synMapMaxEntries: number): MapSpec {
  const isSyn = spec === SYN_MAP_V4 || spec === SYN_MAP_V6;
  return isSyn ? { ...spec, maxEntries: synMapMaxEntries } : spec;
}

function describe(info: MapInfo | MapSpec): string {
  return `type ${info.type}, key ${info.keySize} B, value ${info.valueSize} B, ${info.maxEntries} entries`;
}

/**
 * Removes the pin at `path` when it is not a map of the wanted shape, so that load creates a new one.
 * libbpf would otherwise refuse to load with a pin it cannot reuse.
 */
function dropIncompatiblePin(path: string, spec: MapSpec, log: Logger): void {
  let fd: number;
  try {
    fd = objGet(path, { readOnly: true });
  } catch (e) {
    if (e instanceof BpfError && e.code === "ENOENT") return;
    if (e instanceof BpfError && e.code === "EINVAL") {
      // Not a BPF map (e.g. a stray program pin): nothing can reuse it.
      log.warn("replacing a pin that is not a map", { pin: path });
      Deno.removeSync(path);
      return;
    }
    throw e;
  }
  try {
    const info = mapInfo(fd);
    const same = info.type === spec.type && info.keySize === spec.keySize &&
      info.valueSize === spec.valueSize && info.maxEntries === spec.maxEntries;
    if (same) return;
    log.warn("replacing a pinned map whose layout or capacity changed; proxies will reopen it", {
      pin: path,
      was: describe(info),
      now: describe(spec),
      oldId: info.id,
    });
    Deno.removeSync(path);
  } finally {
    closeFd(fd);
  }
}

/** Loads the object, reusing or replacing the pins under `pinPath`. Throws AgentError for user mistakes. */
export function loadCapture({ pinPath, synMapMaxEntries, filter, log }: LoadOptions): LoadedCapture {
  assertOnBpffs(pinPath);
  Deno.mkdirSync(pinPath, { recursive: true });
  // The proxy runs unprivileged: it must be able to reach the pins.
  Deno.chmodSync(pinPath, 0o755);

  const specs = PINNED_MAPS.map((spec) => wanted(spec, synMapMaxEntries));
  const pins = specs.map((spec) => pinFile(pinPath, spec));
  specs.forEach((spec, i) => dropIncompatiblePin(pins[i], spec, log));
  const missing = missingPins(pins);

  const object = BpfObject.open(OBJECT_PATH);
  try {
    for (const [i, spec] of specs.entries()) {
      const map = object.map(spec.name);
      map.setMaxEntries(spec.maxEntries);
      map.setPinPath(pins[i]);
    }
    object.map(RODATA_MAP).setInitialValue(encodeFilter(filter));
    load(object);
  } catch (e) {
    object.close();
    throw e;
  }

  specs.forEach((spec, i) => {
    // bpffs creates pins 0600; 0644 lets an unprivileged proxy open them read-only.
    Deno.chmodSync(pins[i], 0o644);
    const info = mapInfo(object.map(spec.name).fd());
    log.info(!missing.includes(pins[i]) ? "reusing pinned map" : "pinned new map", {
      pin: pins[i],
      id: info.id,
      maxEntries: info.maxEntries,
    });
  });
  return { object, pins, countersFd: object.map(COUNTERS_MAP.name).fd() };
}

function load(object: BpfObject): void {
  try {
    object.load();
  } catch (e) {
    if (e instanceof BpfError && e.code === "EPERM") {
      throw new AgentError(
        "loading the eBPF program was not permitted: run the agent as root, or with the capabilities " +
          "CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8)",
        { cause: e },
      );
    }
    throw e;
  }
}

/** The pins of `pins` that do not exist (someone removed them, or the agent has not pinned yet). */
export function missingPins(pins: string[]): string[] {
  return pins.filter((pin) => {
    try {
      Deno.statSync(pin);
      return false;
    } catch {
      return true;
    }
  });
}
