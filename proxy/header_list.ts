/**
 * The header fields of a forwarded request, as an ordered list of lower-case name/value pairs. Deno's
 * `Headers` validates every value as a ByteString on each `set`/`append` and sorts and combines the
 * whole list on every iteration; the proxy builds one such list per request from values that are valid
 * already (the server parsed them, the proxy computed the rest), and serializes it once. The profile of
 * the keep-alive benchmark put a sixth of the proxy's CPU in `Headers` before this list replaced it.
 *
 * @module
 */

/** An ordered header list; names are lower case (they are lowered on the way in where they may not be). */
export class HeaderList implements Iterable<[string, string]> {
  readonly #fields: Array<[string, string]> = [];

  /** Adds a field after the others; `name` must be lower case already. */
  append(name: string, value: string): void {
    this.#fields.push([name, value]);
  }

  /** Replaces every field called `name` by one with `value`, in the place of the first. */
  set(name: string, value: string): void {
    name = name.toLowerCase();
    const at = this.#fields.findIndex(([n]) => n === name);
    if (at < 0) return void this.#fields.push([name, value]);
    this.#fields[at] = [name, value];
    this.#remove(name, at + 1);
  }

  delete(name: string): void {
    this.#remove(name.toLowerCase(), 0);
  }

  has(name: string): boolean {
    name = name.toLowerCase();
    return this.#fields.some(([n]) => n === name);
  }

  /** The values of `name` joined with ", " as `Headers.get` does, or null. */
  get(name: string): string | null {
    name = name.toLowerCase();
    const values = this.#fields.filter(([n]) => n === name).map(([, v]) => v);
    return values.length === 0 ? null : values.join(", ");
  }

  keys(): string[] {
    return this.#fields.map(([n]) => n);
  }

  [Symbol.iterator](): Iterator<[string, string]> {
    return this.#fields[Symbol.iterator]();
  }

  #remove(name: string, from: number) {
    for (let i = this.#fields.length - 1; i >= from; i--) {
      if (this.#fields[i][0] === name) this.#fields.splice(i, 1);
    }
  }
}
