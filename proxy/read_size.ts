/**
 * How big a connection's next read buffer should be. A pending `read` holds its buffer until bytes
 * arrive, so an idle connection costs one buffer per direction for as long as it stays open: small
 * buffers keep 10,000 idle connections cheap, and a buffer that a read filled grows so that bulk
 * transfers still move in large chunks.
 *
 * @module
 */

/** The smallest read buffer: a typical request or response head fits. */
export const MIN_READ = 2 * 1024;
/** The largest: one TLS record's worth of plaintext. */
export const MAX_READ = 16 * 1024;

/** Tracks one direction of one connection. */
export class ReadSize {
  #size = MIN_READ;

  /** A fresh buffer for the next read (callers hand chunks on, so buffers are not reused). */
  buffer(): Uint8Array {
    return new Uint8Array(this.#size);
  }

  /** Records that a read returned `n` bytes: a full buffer doubles, a mostly empty one halves. */
  update(n: number): void {
    if (n === this.#size) this.#size = Math.min(this.#size * 2, MAX_READ);
    else if (n <= this.#size / 4) this.#size = Math.max(this.#size / 2, MIN_READ);
  }
}
