/**
 * A thin typed layer over libbpf 1.1 (`libbpf.so.1`) and the few libc calls the project needs: those of
 * eBPF user space (closing fds, the boot clock) and the open-files limit the proxy sizes itself by. Every
 * `Deno.dlopen` of the project lives here. Functions map one-to-one onto C calls; libbpf failures become
 * `BpfError`s carrying the errno name, and policy (what to do about them) stays with the callers.
 *
 * The libraries are opened on first use, so importing this module never fails. Option structs are
 * written little-endian, the byte order of the targets the BPF object is built for (x86_64, arm64).
 *
 * @module
 */

const LIBBPF = "libbpf.so.1";
const LIBC = "libc.so.6";

const LIBBPF_SYMBOLS = {
  libbpf_set_print: { parameters: ["pointer"], result: "pointer" },
  libbpf_strerror: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  libbpf_get_error: { parameters: ["pointer"], result: "isize" },
  libbpf_num_possible_cpus: { parameters: [], result: "i32" },
  bpf_object__open_file: { parameters: ["buffer", "pointer"], result: "pointer" },
  bpf_object__load: { parameters: ["pointer"], result: "i32" },
  bpf_object__close: { parameters: ["pointer"], result: "void" },
  bpf_object__find_map_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_object__find_program_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_map__set_max_entries: { parameters: ["pointer", "u32"], result: "i32" },
  bpf_map__set_initial_value: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  bpf_map__set_pin_path: { parameters: ["pointer", "buffer"], result: "i32" },
  bpf_map__fd: { parameters: ["pointer"], result: "i32" },
  bpf_program__fd: { parameters: ["pointer"], result: "i32" },
  bpf_obj_get_opts: { parameters: ["buffer", "buffer"], result: "i32" },
  bpf_obj_get_info_by_fd: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_map_lookup_elem: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_map_update_elem: { parameters: ["i32", "buffer", "buffer", "u64"], result: "i32" },
  bpf_xdp_attach: { parameters: ["i32", "i32", "u32", "buffer"], result: "i32" },
  bpf_xdp_detach: { parameters: ["i32", "u32", "buffer"], result: "i32" },
  bpf_xdp_query_id: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  bpf_tc_hook_create: { parameters: ["buffer"], result: "i32" },
  bpf_tc_attach: { parameters: ["buffer", "buffer"], result: "i32" },
  bpf_tc_detach: { parameters: ["buffer", "buffer"], result: "i32" },
  bpf_tc_query: { parameters: ["buffer", "buffer"], result: "i32" },
  bpf_obj_pin: { parameters: ["i32", "buffer"], result: "i32" },
  bpf_prog_get_fd_by_id: { parameters: ["u32"], result: "i32" },
  bpf_map_get_fd_by_id: { parameters: ["u32"], result: "i32" },
  bpf_link_create: { parameters: ["i32", "i32", "u32", "buffer"], result: "i32" },
  bpf_link_update: { parameters: ["i32", "i32", "pointer"], result: "i32" },
  bpf_link_detach: { parameters: ["i32"], result: "i32" },
} as const;

const LIBC_SYMBOLS = {
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
} as const;

/** libbpf (or libc) could not be loaded; the message says what to install. */
export class LibraryMissingError extends Error {
  constructor(library: string, hint: string, options?: ErrorOptions) {
    super(`${library} not found: ${hint}`, options);
    this.name = "LibraryMissingError";
  }
}

let libbpf: Deno.DynamicLibrary<typeof LIBBPF_SYMBOLS>["symbols"] | undefined;
let libc: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"] | undefined;

function open<S extends Deno.ForeignLibraryInterface>(name: string, symbols: S, hint: string) {
  try {
    return Deno.dlopen(name, symbols).symbols;
  } catch (e) {
    throw new LibraryMissingError(name, hint, { cause: e });
  }
}

function bpf() {
  return libbpf ??= open(LIBBPF, LIBBPF_SYMBOLS, "apt-get install libbpf1");
}

function c() {
  return libc ??= open(LIBC, LIBC_SYMBOLS, "a glibc-based system is required");
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  20: "ENOTDIR",
  22: "EINVAL",
  24: "EMFILE",
  28: "ENOSPC",
  34: "ERANGE",
  38: "ENOSYS",
  40: "ELOOP",
  71: "EPROTO",
  95: "EOPNOTSUPP",
  524: "ENOTSUPP",
  4000: "LIBBPF_ERRNO__LIBELF",
  4001: "LIBBPF_ERRNO__FORMAT",
  4002: "LIBBPF_ERRNO__KVERSION",
  4003: "LIBBPF_ERRNO__ENDIAN",
  4004: "LIBBPF_ERRNO__INTERNAL",
  4005: "LIBBPF_ERRNO__RELOC",
  4006: "LIBBPF_ERRNO__LOAD",
  4007: "LIBBPF_ERRNO__VERIFY",
  4008: "LIBBPF_ERRNO__PROG2BIG",
  4009: "LIBBPF_ERRNO__KVER",
  4010: "LIBBPF_ERRNO__PROGTYPE",
  4011: "LIBBPF_ERRNO__WRNGPID",
  4012: "LIBBPF_ERRNO__INVSEQ",
  4013: "LIBBPF_ERRNO__NLPARSE",
};

const ENOENT = 2;
const EEXIST = 17;
const EINVAL = 22;

/** The symbolic name of a (positive) errno or libbpf error code, e.g. `EPERM`. */
function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

/** A libbpf or bpf(2) call failed. `code` is the errno name, `errno` the positive number. */
export class BpfError extends Error {
  readonly op: string;
  readonly errno: number;
  readonly code: string;

  constructor(op: string, errno: number) {
    const buf = new Uint8Array(128);
    bpf().libbpf_strerror(errno, buf, BigInt(buf.length));
    const text = cString(buf);
    super(`${op}: ${errnoName(errno)}${text ? ` (${text})` : ""}`);
    this.name = "BpfError";
    this.op = op;
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

const encoder = new TextEncoder();

function cStr(text: string): Uint8Array {
  return encoder.encode(text + "\0");
}

function cString(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(end < 0 ? buf : buf.subarray(0, end));
}

/** Throws a BpfError for a negative libbpf return value; returns non-negative values. */
function check(op: string, rc: number): number {
  if (rc < 0) throw new BpfError(op, -rc);
  return rc;
}

/** libbpf 1.x returns NULL and sets errno; `libbpf_get_error(NULL)` reads that errno for us. */
function checkPointer(op: string, ptr: Deno.PointerValue): Deno.PointerObject {
  if (ptr === null) throw new BpfError(op, -Number(bpf().libbpf_get_error(null)) || EINVAL);
  return ptr;
}

/**
 * Stops libbpf from printing its own diagnostics (plain text on stderr, including the verifier log);
 * they are only worth reading when debugging a failed load.
 */
export function silenceLibbpf(): void {
  bpf().libbpf_set_print(null);
}

/** The number of possible CPUs: the stride of per-CPU map values. */
export function possibleCpus(): number {
  return check("libbpf_num_possible_cpus", bpf().libbpf_num_possible_cpus());
}

/** A map of an opened, not necessarily loaded, object. */
export class BpfMap {
  constructor(readonly name: string, private readonly ptr: Deno.PointerObject) {}

  setMaxEntries(n: number): void {
    check(`set max_entries of ${this.name}`, bpf().bpf_map__set_max_entries(this.ptr, n));
  }

  /** Sets the initial contents of a global-data map (`.rodata`); `bytes` must be its exact size. */
  setInitialValue(bytes: Uint8Array): void {
    check(
      `set initial value of ${this.name}`,
      bpf().bpf_map__set_initial_value(this.ptr, bytes, BigInt(bytes.length)),
    );
  }

  /** Where load pins the map; an existing compatible pin there is reused instead of creating a map. */
  setPinPath(path: string): void {
    check(`set pin path of ${this.name}`, bpf().bpf_map__set_pin_path(this.ptr, cStr(path)));
  }

  /** The map's file descriptor; only valid after load. */
  fd(): number {
    return check(`fd of map ${this.name}`, bpf().bpf_map__fd(this.ptr));
  }
}

/** A BPF ELF object opened from a file. */
export class BpfObject {
  private ptr: Deno.PointerObject | null;

  private constructor(readonly path: string, ptr: Deno.PointerObject) {
    this.ptr = ptr;
  }

  static open(path: string): BpfObject {
    return new BpfObject(path, checkPointer(`open ${path}`, bpf().bpf_object__open_file(cStr(path), null)));
  }

  private handle(): Deno.PointerObject {
    if (!this.ptr) throw new Error(`BPF object ${this.path} is closed`);
    return this.ptr;
  }

  map(name: string): BpfMap {
    const ptr = bpf().bpf_object__find_map_by_name(this.handle(), cStr(name));
    return new BpfMap(name, checkPointer(`find map ${name} in ${this.path}`, ptr));
  }

  /** A program's file descriptor; only valid after load. */
  programFd(name: string): number {
    const ptr = bpf().bpf_object__find_program_by_name(this.handle(), cStr(name));
    const prog = checkPointer(`find program ${name} in ${this.path}`, ptr);
    return check(`fd of program ${name}`, bpf().bpf_program__fd(prog));
  }

  /** Creates (or reuses pinned) maps, loads the programs into the kernel, and pins new maps. */
  load(): void {
    check(`load ${this.path}`, bpf().bpf_object__load(this.handle()));
  }

  /** Closes every fd of the object; pinned maps and attached programs stay in the kernel. */
  close(): void {
    if (this.ptr) bpf().bpf_object__close(this.ptr);
    this.ptr = null;
  }
}

/** `BPF_F_RDONLY`: the fd may look up but not update. */
const BPF_F_RDONLY = 1 << 3;

/** Opens a pinned object (`bpf_obj_get_opts`), read-only when asked. */
export function objGet(path: string, opts: { readOnly: boolean }): number {
  const o = new Uint8Array(16);
  const view = new DataView(o.buffer);
  view.setBigUint64(0, BigInt(o.length), true);
  view.setUint32(8, opts.readOnly ? BPF_F_RDONLY : 0, true);
  return check(`open pin ${path}`, bpf().bpf_obj_get_opts(cStr(path), o));
}

/** Closes a file descriptor obtained from `objGet`. */
export function closeFd(fd: number): void {
  c().close(fd);
}

/** The fields of `struct bpf_map_info` this project uses. */
export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

/** `bpf_obj_get_info_by_fd` into `info`, which may carry input fields (buffer pointers and lengths). */
function objInfo(fd: number, info: Uint8Array): DataView {
  const len = new Uint32Array([info.length]);
  check(`get info of fd ${fd}`, bpf().bpf_obj_get_info_by_fd(fd, info, new Uint8Array(len.buffer)));
  return new DataView(info.buffer);
}

/** `bpf_obj_get_info_by_fd` on a map. */
export function mapInfo(fd: number): MapInfo {
  const v = objInfo(fd, new Uint8Array(88));
  return {
    type: v.getUint32(0, true),
    id: v.getUint32(4, true),
    keySize: v.getUint32(8, true),
    valueSize: v.getUint32(12, true),
    maxEntries: v.getUint32(16, true),
    flags: v.getUint32(20, true),
    name: cString(new Uint8Array(v.buffer, 24, 16)),
  };
}

/** The kernel's id of a loaded program. */
export function programId(fd: number): number {
  return objInfo(fd, new Uint8Array(8)).getUint32(4, true);
}

/** The fields of `struct bpf_prog_info` this project uses. */
export interface ProgramInfo {
  id: number;
  /** Hash of the instructions as loaded, map references blanked: equal for two loads of the same code. */
  tag: string;
  mapIds: number[];
}

/** `bpf_obj_get_info_by_fd` on a program, with the ids of the maps it uses (at most 16). */
export function programInfo(fd: number): ProgramInfo {
  const ids = new Uint32Array(16);
  const info = new Uint8Array(80);
  const view = new DataView(info.buffer);
  // Input fields: where the kernel may write map ids, and how many.
  view.setUint32(52, ids.length, true);
  view.setBigUint64(56, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(ids))), true);
  objInfo(fd, info);
  const count = view.getUint32(52, true);
  if (count > ids.length) throw new RangeError(`program of fd ${fd} uses ${count} maps, more than expected`);
  return {
    id: view.getUint32(4, true),
    tag: Array.from(info.subarray(8, 16), (b) => b.toString(16).padStart(2, "0")).join(""),
    mapIds: [...ids.subarray(0, count)],
  };
}

/** Opens the loaded program with kernel id `id` (ENOENT once it is gone). */
export function programFdById(id: number): number {
  return check(`open program id ${id}`, bpf().bpf_prog_get_fd_by_id(id));
}

/** Opens the map with kernel id `id` (ENOENT once it is gone). */
export function mapFdById(id: number): number {
  return check(`open map id ${id}`, bpf().bpf_map_get_fd_by_id(id));
}

/** Pins the map, program or link behind `fd` at `path` on bpffs. */
export function objPin(fd: number, path: string): void {
  check(`pin ${path}`, bpf().bpf_obj_pin(fd, cStr(path)));
}

/** Copies the value for `key` into `value`: true when found, false when absent; throws otherwise. */
export function mapLookup(fd: number, key: Uint8Array, value: Uint8Array): boolean {
  const rc = bpf().bpf_map_lookup_elem(fd, key, value);
  if (rc === -ENOENT) return false;
  check("map lookup", rc);
  return true;
}

/** Inserts or replaces the value for `key` (`BPF_ANY`). */
export function mapUpdate(fd: number, key: Uint8Array, value: Uint8Array): void {
  check("map update", bpf().bpf_map_update_elem(fd, key, value, 0n));
}

/** `XDP_FLAGS_*` from linux/if_link.h. */
export const XDP_FLAGS_SKB_MODE = 1 << 1;
export const XDP_FLAGS_DRV_MODE = 1 << 2;

/** Attaches `progFd` as the XDP program of `ifindex` in the mode given by `flags`, replacing any. */
export function xdpAttach(ifindex: number, progFd: number, flags: number): void {
  check(`attach XDP to ifindex ${ifindex}`, bpf().bpf_xdp_attach(ifindex, progFd, flags, null));
}

/** Detaches the XDP program of `ifindex`, but only while it is still `progFd` (EEXIST otherwise). */
export function xdpDetach(ifindex: number, progFd: number, flags: number): void {
  // A non-zero old_prog_fd makes libbpf pass XDP_FLAGS_REPLACE, so another program is never removed.
  const opts = new Uint8Array(16);
  const view = new DataView(opts.buffer);
  view.setBigUint64(0, BigInt(opts.length), true);
  view.setInt32(8, progFd, true);
  check(`detach XDP from ifindex ${ifindex}`, bpf().bpf_xdp_detach(ifindex, flags, opts));
}

/** The id of the XDP program attached to `ifindex` in the mode of `flags`, 0 when none. */
export function xdpQueryId(ifindex: number, flags: number): number {
  const id = new Uint32Array(1);
  check(`query XDP of ifindex ${ifindex}`, bpf().bpf_xdp_query_id(ifindex, flags, new Uint8Array(id.buffer)));
  return id[0];
}

/** `BPF_XDP` of `enum bpf_attach_type`, and `BPF_LINK_TYPE_XDP` of `enum bpf_link_type`. */
const BPF_XDP = 37;
export const BPF_LINK_TYPE_XDP = 6;

/** Attaches `progFd` to `ifindex` through a new XDP link, in the mode of `flags`; returns the link's fd. */
export function xdpLinkCreate(ifindex: number, progFd: number, flags: number): number {
  // struct bpf_link_create_opts cut after `flags`: libbpf reads only what `sz` covers.
  const opts = new Uint8Array(16);
  const view = new DataView(opts.buffer);
  view.setBigUint64(0, BigInt(opts.length), true);
  view.setUint32(8, flags, true);
  return check(
    `create XDP link on ifindex ${ifindex}`,
    bpf().bpf_link_create(progFd, ifindex, BPF_XDP, opts),
  );
}

/** Swaps the program behind a link atomically: packets see the old program or the new one, never none. */
export function linkUpdate(linkFd: number, progFd: number): void {
  check("update link", bpf().bpf_link_update(linkFd, progFd, null));
}

/** Detaches a link from its hook now, whoever else still holds or pins it. */
export function linkDetach(linkFd: number): void {
  check("detach link", bpf().bpf_link_detach(linkFd));
}

/** The fields of `struct bpf_link_info` this project uses; `ifindex` is 0 once an XDP link's device is gone. */
export interface LinkInfo {
  type: number;
  id: number;
  programId: number;
  ifindex: number;
}

/** `bpf_obj_get_info_by_fd` on a link. */
export function linkInfo(fd: number): LinkInfo {
  const v = objInfo(fd, new Uint8Array(24));
  return {
    type: v.getUint32(0, true),
    id: v.getUint32(4, true),
    programId: v.getUint32(8, true),
    ifindex: v.getUint32(16, true),
  };
}

/** `enum bpf_tc_attach_point`. */
export const BPF_TC_INGRESS = 1;
const BPF_TC_F_REPLACE = 1;

/** Which tc filter: the clsact hook of an interface, and the filter's handle and priority there. */
export interface TcFilter {
  ifindex: number;
  attachPoint: number;
  handle: number;
  priority: number;
}

function tcHook(f: TcFilter): Uint8Array {
  const hook = new Uint8Array(24);
  const view = new DataView(hook.buffer);
  view.setBigUint64(0, BigInt(hook.length), true);
  view.setInt32(8, f.ifindex, true);
  view.setUint32(12, f.attachPoint, true);
  return hook;
}

function tcOpts(f: TcFilter, progFd = 0, flags = 0): Uint8Array {
  const opts = new Uint8Array(32);
  const view = new DataView(opts.buffer);
  view.setBigUint64(0, BigInt(opts.length), true);
  view.setInt32(8, progFd, true);
  view.setUint32(12, flags, true);
  view.setUint32(20, f.handle, true);
  view.setUint32(24, f.priority, true);
  return opts;
}

/** Creates the clsact qdisc of the filter's interface unless it exists, then attaches `progFd` there. */
export function tcAttach(f: TcFilter, progFd: number): void {
  const rc = bpf().bpf_tc_hook_create(tcHook(f));
  if (rc !== -EEXIST) check(`create clsact on ifindex ${f.ifindex}`, rc);
  check(
    `attach tc filter to ifindex ${f.ifindex}`,
    bpf().bpf_tc_attach(tcHook(f), tcOpts(f, progFd, BPF_TC_F_REPLACE)),
  );
}

/** Removes the filter; the clsact qdisc stays, since other filters may use it. */
export function tcDetach(f: TcFilter): void {
  check(`detach tc filter from ifindex ${f.ifindex}`, bpf().bpf_tc_detach(tcHook(f), tcOpts(f)));
}

/** The id of the program behind the filter, 0 when there is no such filter. */
export function tcQueryId(f: TcFilter): number {
  const opts = tcOpts(f);
  const rc = bpf().bpf_tc_query(tcHook(f), opts);
  if (rc === -ENOENT || rc === -EINVAL) return 0;
  check(`query tc filter of ifindex ${f.ifindex}`, rc);
  return new DataView(opts.buffer).getUint32(16, true);
}

const CLOCK_BOOTTIME = 7;
const timespec = new BigInt64Array(2);
const timespecBytes = new Uint8Array(timespec.buffer);

/** Nanoseconds on CLOCK_BOOTTIME, the clock of the kernel's `bpf_ktime_get_boot_ns`. */
export function bootTimeNs(): bigint {
  if (c().clock_gettime(CLOCK_BOOTTIME, timespecBytes) !== 0) {
    throw new Error("clock_gettime(CLOCK_BOOTTIME) failed");
  }
  return timespec[0] * 1_000_000_000n + timespec[1];
}

/** `RLIMIT_NOFILE`: 7 on x86_64 and arm64 (asm-generic). */
const RLIMIT_NOFILE = 7;
const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/** A limit of open files; `Infinity` stands for `RLIM_INFINITY`. */
export interface FileLimit {
  soft: number;
  hard: number;
}

function rlimValue(v: bigint): number {
  return v === RLIM_INFINITY ? Infinity : Number(v);
}

function rlimRaw(n: number): bigint {
  return n === Infinity ? RLIM_INFINITY : BigInt(n);
}

/** The process's limit of open files (`getrlimit(RLIMIT_NOFILE)`). */
export function getFileLimit(): FileLimit {
  const rlimit = new BigUint64Array(2);
  if (c().getrlimit(RLIMIT_NOFILE, new Uint8Array(rlimit.buffer)) !== 0) {
    throw new Error("getrlimit(RLIMIT_NOFILE) failed");
  }
  return { soft: rlimValue(rlimit[0]), hard: rlimValue(rlimit[1]) };
}

/** Sets the process's limit of open files (`setrlimit(RLIMIT_NOFILE)`); raising `hard` needs privilege. */
export function setFileLimit(limit: FileLimit): void {
  const rlimit = new BigUint64Array([rlimRaw(limit.soft), rlimRaw(limit.hard)]);
  if (c().setrlimit(RLIMIT_NOFILE, new Uint8Array(rlimit.buffer)) !== 0) {
    throw new Error(`setrlimit(RLIMIT_NOFILE, ${limit.soft}:${limit.hard}) failed`);
  }
}
