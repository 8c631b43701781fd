/**
 * Operator header rules: headers added to or removed from requests (towards the backend) and responses
 * (towards the client), at the global, domain and route levels, the more specific level winning. The
 * proxy's own fingerprint headers are out of reach: the configuration refuses rules naming them, and
 * `applyEdits` skips them anyway, so that backends can keep trusting them.
 *
 * @module
 */
import type { Config } from "./config.ts";
import { isProxyOwned } from "./headers.ts";

/** One level's rules, as configured. */
export type HeaderRules = Config["headers"];

/** Edits in the order they apply: deletions, then headers set (replacing any of the same name). */
export interface HeaderEdits {
  remove: readonly string[];
  set: ReadonlyArray<readonly [string, string]>;
}

/** The effective rules of one route. */
export interface RouteHeaderRules {
  request: HeaderEdits;
  response: HeaderEdits;
  /** `strict-transport-security`, for HTTPS responses only: browsers ignore it over plain HTTP. */
  hsts?: string;
}

/**
 * Merges `levels` (least specific first; absent levels skipped): a header a level adds undoes a less
 * specific level's removal of it, and a removal undoes a less specific addition.
 */
export function compileHeaderRules(levels: ReadonlyArray<HeaderRules | undefined>): RouteHeaderRules {
  const request = new Merge();
  const response = new Merge();
  let hsts: string | undefined;
  for (const level of levels) {
    if (level === undefined) continue;
    request.apply(level.request.add, level.request.remove);
    const add: Record<string, string> = { ...level.response.add };
    if (level.response.csp !== undefined) add["content-security-policy"] = level.response.csp;
    response.apply(add, level.response.remove);
    hsts = level.response.hsts ?? hsts;
  }
  return { request: request.edits(), response: response.edits(), ...(hsts !== undefined && { hsts }) };
}

class Merge {
  readonly #add = new Map<string, string>();
  readonly #remove = new Set<string>();

  apply(add: Record<string, string>, remove: readonly string[]) {
    for (const name of remove) {
      this.#add.delete(name);
      this.#remove.add(name);
    }
    for (const [name, value] of Object.entries(add)) {
      this.#remove.delete(name);
      this.#add.set(name, value);
    }
  }

  edits(): HeaderEdits {
    return { remove: [...this.#remove], set: [...this.#add] };
  }
}

/** What `applyEdits` needs of a header collection: `Headers` (responses) and `HeaderList` (requests). */
export interface EditableHeaders {
  delete(name: string): void;
  set(name: string, value: string): void;
}

/** Applies `edits` to `headers` in place, never touching a proxy-owned header. */
export function applyEdits(headers: EditableHeaders, edits: HeaderEdits): void {
  for (const name of edits.remove) if (!isProxyOwned(name)) headers.delete(name);
  for (const [name, value] of edits.set) if (!isProxyOwned(name)) headers.set(name, value);
}
