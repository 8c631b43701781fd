/**
 * Token-bucket rate limiting. A bucket holds up to `burst` tokens and gains `requests_per_second` of
 * them each second; a request takes one or is refused. Buckets are keyed by the client address, a
 * header's value, the route, or a combination, and kept in a bounded map: a bucket that has refilled
 * is indistinguishable from a new one, so idle buckets are swept away, and the least recently used go
 * first when the map is full.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** A configured limit (`security.rate_limit` and its per-domain and per-route overrides). */
export interface RateLimitRule {
  requests_per_second: number;
  /** Defaults to `requests_per_second` rounded up. */
  burst?: number;
  /** `ip`, `route`, `header:<lower-case name>`. */
  key: readonly string[];
}

/** What a request's bucket key is made of. */
export interface RequestKeyParts {
  /** The client address (recovered from a PROXY header when there is one, never from a header). */
  ip: string;
  route: string;
  headers: Headers;
}

/** The outcome of `take`. */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterSecs: number };

/** Header values longer than this are keyed by their hash, so that clients cannot make keys large. */
const MAX_KEY_PART = 128;

interface Bucket {
  tokens: number;
  /** `performance.now()` when `tokens` was computed. */
  at: number;
}

/** Buckets kept per limiter unless told otherwise: with keys of at most `MAX_KEY_PART` each, tens of MB. */
export const DEFAULT_MAX_BUCKETS = 100_000;

/** One limit's buckets. */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #key: readonly string[];
  readonly #max: number;
  /** In least-recently-used order: `take` moves a bucket to the end. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(rule: RateLimitRule, maxBuckets = DEFAULT_MAX_BUCKETS) {
    this.#rate = rule.requests_per_second / 1000;
    this.#burst = rule.burst ?? Math.ceil(rule.requests_per_second);
    this.#key = rule.key;
    this.#max = maxBuckets;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /**
   * The bucket key of a request. A missing header falls back to the client address, so that leaving
   * the header out does not put a client into one bucket shared with every other client without it.
   */
  keyOf(parts: RequestKeyParts): string {
    return this.#key.map((k) => {
      if (k === "ip") return `ip=${parts.ip}`;
      if (k === "route") return `route=${parts.route}`;
      const value = parts.headers.get(k.slice(7));
      if (value === null) return `${k}@ip=${parts.ip}`;
      return `${k}=${
        value.length > MAX_KEY_PART ? createHash("sha256").update(value).digest("base64") : value
      }`;
    }).join("\n");
  }

  /** Takes a token from `key`'s bucket at time `now` (ms, `performance.now()`). */
  take(key: string, now = performance.now()): RateDecision {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.#burst, at: now };
      // Full: the least recently used bucket is the idlest. A sweep here would cost O(n) per new key.
      if (this.#buckets.size >= this.#max) this.#buckets.delete(this.#buckets.keys().next().value!);
    } else {
      this.#buckets.delete(key);
      bucket.tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.at) * this.#rate);
      bucket.at = now;
    }
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return {
      allowed: false,
      retryAfterSecs: Math.max(1, Math.ceil((1 - bucket.tokens) / this.#rate / 1000)),
    };
  }

  /** Drops the buckets that have refilled by `now`: forgetting them changes no decision. */
  sweep(now = performance.now()): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.at) * this.#rate >= this.#burst) this.#buckets.delete(key);
    }
  }
}
