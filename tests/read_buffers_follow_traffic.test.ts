import assert from "node:assert/strict";
import { MAX_READ, MIN_READ, ReadSize } from "../proxy/read_size.ts";

Deno.test("read buffers start small, grow while reads fill them, and stay within bounds", () => {
  const size = new ReadSize();
  assert.equal(size.buffer().length, MIN_READ);
  const seen = [];
  for (let i = 0; i < 10; i++) {
    const length = size.buffer().length;
    seen.push(length);
    size.update(length);
  }
  assert.deepEqual(seen.slice(0, 4), [MIN_READ, MIN_READ * 2, MIN_READ * 4, MAX_READ]);
  assert.equal(Math.max(...seen), MAX_READ);
});

Deno.test("read buffers shrink back once reads come back mostly empty, never below the minimum", () => {
  const size = new ReadSize();
  for (let i = 0; i < 5; i++) size.update(size.buffer().length);
  assert.equal(size.buffer().length, MAX_READ);
  // A read that half fills the buffer keeps its size: traffic, not yet idleness.
  size.update(MAX_READ / 2);
  assert.equal(size.buffer().length, MAX_READ);
  for (let i = 0; i < 10; i++) size.update(100);
  assert.equal(size.buffer().length, MIN_READ);
});
