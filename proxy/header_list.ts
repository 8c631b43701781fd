/**
 * The header fields of a forwarded request, as an ordered list of lower-case name/value pairs. Deno's
 * `Headers` validates every value as a ByteString on each `set`/`append` and sorts and combines the
 * whole list on every iteration; the proxy builds one such list per request from values that are valid
 * already (the server parsed them, the proxy computed the rest), and serializes it once. The profile of
 * the keep-alive benchmark put a sixth of the proxy's CPU in `Headers` before this list replaced it.
 *
 * Fields every request of a connection carries (its fingerprints) come as one `FieldBlock`, serialized
 * once per connection; the list keeps it whole unless a `set` or `delete` names one of its fields.
 *
 * @module
 */
import { FieldBlock } from "./http1_client.ts";

/** An ordered header list; names are lower case (they are lowered on the way in where they may not be). */
export class HeaderList implements Iterable<readonly [string, string] | FieldBlock> {
  readonly #fields: Array<readonly [string, string] | FieldBlock> = [];

  /** Adds a field after the others; `name` must be lower case already. */
  append(name: string, value: string): void {
    this.#fields.push([name, value]);
  }

  /** Adds the fields of `block` after the others; their names must be lower case already. */
  appendBlock(block: FieldBlock): void {
    this.#fields.push(block);
  }

  /** Replaces every field called `name` by one with `value`, in the place of the first. */
  set(name: string, value: string): void {
    name = name.toLowerCase();
    this.#open(name);
    const at = this.#fields.findIndex((field) => isNamed(field, name));
    if (at < 0) return void this.#fields.push([name, value]);
    this.#fields[at] = [name, value];
    this.#remove(name, at + 1);
  }

  delete(name: string): void {
    name = name.toLowerCase();
    this.#open(name);
    this.#remove(name, 0);
  }

  has(name: string): boolean {
    name = name.toLowerCase();
    return this.#pairs().some(([n]) => n === name);
  }

  /** The values of `name` joined with ", " as `Headers.get` does, or null. */
  get(name: string): string | null {
    name = name.toLowerCase();
    const values = this.#pairs().filter(([n]) => n === name).map(([, v]) => v);
    return values.length === 0 ? null : values.join(", ");
  }

  keys(): string[] {
    return this.#pairs().map(([n]) => n);
  }

  /** The fields in order, blocks whole: the form the HTTP/1.1 client serializes. */
  [Symbol.iterator](): Iterator<readonly [string, string] | FieldBlock> {
    return this.#fields[Symbol.iterator]();
  }

  #pairs(): ReadonlyArray<readonly [string, string]> {
    return this.#fields.flatMap((field) => field instanceof FieldBlock ? field.fields : [field]);
  }

  /** Replaces a block holding a field called `name` by its fields, so that they can change one by one. */
  #open(name: string) {
    for (let i = 0; i < this.#fields.length; i++) {
      const field = this.#fields[i];
      if (field instanceof FieldBlock && field.fields.some(([n]) => n === name)) {
        this.#fields.splice(i, 1, ...field.fields);
      }
    }
  }

  #remove(name: string, from: number) {
    for (let i = this.#fields.length - 1; i >= from; i--) {
      if (isNamed(this.#fields[i], name)) this.#fields.splice(i, 1);
    }
  }
}

/** Whether `field` is a single field called `name` (blocks never are: `#open` them first). */
function isNamed(field: readonly [string, string] | FieldBlock, name: string): boolean {
  return !(field instanceof FieldBlock) && field[0] === name;
}
