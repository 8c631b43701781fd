/**
 * Structured logs: one JSON object per line on stderr, filtered by level. Both the agent and the proxy
 * log this way so that a cluster's log pipeline can parse them without per-component rules.
 *
 * @module
 */

/** Log levels, least to most severe. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = typeof LOG_LEVELS[number];

/** A logger bound to one component. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const encoder = new TextEncoder();

/** Creates a logger for `component` that drops records below `level`. */
export function createLogger(component: string, level: LogLevel = "info"): Logger {
  const min = LOG_LEVELS.indexOf(level);
  const write = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LOG_LEVELS.indexOf(lvl) < min) return;
    const line = JSON.stringify({ ts: new Date().toISOString(), level: lvl, component, msg, ...fields });
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}
