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
  #last: Uint8Array | undefined;

  /** The size of the next read's buffer. */
  get size(): number {
    return this.#size;
  }

  /**
   * Reads the next chunk of `conn`; null at EOF. Each read gets a fresh buffer, since callers hand chunks
   * on, unless `reuse` says that nothing holds the previous chunk any more (it was copied or written out):
   * its buffer then takes the read, if still of the right size. A fresh 2 KiB buffer costs about a
   * microsecond in Deno, more than the rest of a relay step's JavaScript.
   */
  async read(conn: Deno.Conn, reuse = false): Promise<Uint8Array | null> {
    const buf = reuse && this.#last?.length === this.#size ? this.#last : new Uint8Array(this.#size);
    // The pending read holds it anyway: keeping it costs no memory.
    this.#last = buf;
    const n = await conn.read(buf);
    if (n === null) return null;
    this.update(n);
    return buf.subarray(0, n);
  }

  /** Records that a read returned `n` bytes: a full buffer doubles, a mostly empty one halves. */
  update(n: number): void {
    if (n === this.#size) this.#size = Math.min(this.#size * 2, MAX_READ);
    else if (n <= this.#size / 4) this.#size = Math.max(this.#size / 2, MIN_READ);
  }
}
