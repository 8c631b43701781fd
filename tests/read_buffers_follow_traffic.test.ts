import assert from "node:assert/strict";
import { MAX_READ, MIN_READ, ReadSize } from "../proxy/read_size.ts";

Deno.test("read buffers start small, grow while reads fill them, and stay within bounds", () => {
  const reads = new ReadSize();
  assert.equal(reads.size, MIN_READ);
  const seen = [];
  for (let i = 0; i < 10; i++) {
    const length = reads.size;
    seen.push(length);
    reads.update(length);
  }
  assert.deepEqual(seen.slice(0, 4), [MIN_READ, MIN_READ * 2, MIN_READ * 4, MAX_READ]);
  assert.equal(Math.max(...seen), MAX_READ);
});

Deno.test("read buffers shrink back once reads come back mostly empty, never below the minimum", () => {
  const reads = new ReadSize();
  for (let i = 0; i < 5; i++) reads.update(reads.size);
  assert.equal(reads.size, MAX_READ);
  // A read that half fills the buffer keeps its size: traffic, not yet idleness.
  reads.update(MAX_READ / 2);
  assert.equal(reads.size, MAX_READ);
  for (let i = 0; i < 10; i++) reads.update(100);
  assert.equal(reads.size, MIN_READ);
});
