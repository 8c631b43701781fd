/**
 * Active backend health checks: each backend with a `health_check` is probed every `interval_secs`
 * (a TCP connect, or an HTTP GET expecting one status) and changes state only after
 * `unhealthy_threshold` failures or `healthy_threshold` successes in a row, so that one lost probe does
 * not flap it. Backends start healthy: traffic flows from the first moment, and a dead one leaves the
 * rotation after its threshold of probes. Backends without a check are always healthy.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import type { Config } from "./config.ts";

/** A backend's `health_check` table. */
export type HealthCheckRule = NonNullable<Config["backends"][number]["health_check"]>;

/** Where a checked backend stands. */
export interface HealthState {
  healthy: boolean;
  /** Probe results in a row that disagree with `healthy`. */
  streak: number;
}

/** The state after a probe that succeeded (`ok`) or failed. Pure. */
export function nextHealth(state: HealthState, ok: boolean, rule: HealthCheckRule): HealthState {
  if (ok === state.healthy) return { healthy: state.healthy, streak: 0 };
  const streak = state.streak + 1;
  const threshold = state.healthy ? rule.unhealthy_threshold : rule.healthy_threshold;
  return streak >= threshold ? { healthy: ok, streak: 0 } : { healthy: state.healthy, streak };
}

/** One probe of `address`: whether it answered as `rule` expects within `timeout_secs`. */
export async function probe(address: string, rule: HealthCheckRule): Promise<boolean> {
  const signal = AbortSignal.timeout(rule.timeout_secs * 1000);
  if (rule.kind === "http") {
    try {
      const r = await fetch(`http://${address}${rule.path}`, { signal, redirect: "manual" });
      await r.body?.cancel();
      return r.status === rule.expected_status;
    } catch {
      return false;
    }
  }
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(address)!;
  try {
    const conn = await Deno.connect({ hostname: m[1], port: Number(m[2]), signal });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** Probes the checked backends of a configuration until stopped. */
export class HealthChecker {
  readonly #states = new Map<string, HealthState>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #stopped = false;

  /**
   * Starts probing. `onChange` hears every backend's state once at start (checked or not) and then each
   * change. `previous` carries the states of an earlier checker over a reload, so that a backend known
   * dead stays out of the rotation.
   */
  constructor(
    backends: Config["backends"],
    onChange: (address: string, healthy: boolean) => void,
    log: Logger,
    previous?: HealthChecker,
  ) {
    for (const { address, health_check: rule } of backends) {
      if (rule === undefined) {
        onChange(address, true);
        continue;
      }
      const state = { healthy: previous?.healthy(address) ?? true, streak: 0 };
      this.#states.set(address, state);
      onChange(address, state.healthy);
      const tick = async () => {
        const ok = await probe(address, rule);
        if (this.#stopped) return;
        const before = this.#states.get(address)!;
        const after = nextHealth(before, ok, rule);
        this.#states.set(address, after);
        if (after.healthy !== before.healthy) {
          log.warn(after.healthy ? "backend healthy again" : "backend unhealthy", { backend: address });
          onChange(address, after.healthy);
        }
        this.#schedule(tick, rule.interval_secs);
      };
      this.#schedule(tick, 0);
    }
  }

  /** Whether requests may go to `address`. */
  healthy(address: string): boolean {
    return this.#states.get(address)?.healthy ?? true;
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #schedule(tick: () => Promise<void>, secs: number) {
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      tick();
    }, secs * 1000);
    this.#timers.add(timer);
  }
}
