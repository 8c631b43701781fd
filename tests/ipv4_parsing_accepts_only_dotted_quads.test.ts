/**
 * `parseIPv4` (SYN map keys, the agent's destination filter) accepts exactly the dotted quads the
 * earlier split-and-regex parser accepted, checked against that parser on hand-picked and random strings.
 */
import assert from "node:assert/strict";
import { parseIPv4 } from "../shared/ebpf_abi.ts";

/** The reference: four parts of 1 to 3 digits, each at most 255. */
function reference(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.map(Number);
}

function check(text: string) {
  const got = parseIPv4(text);
  assert.deepEqual(got && [...got], reference(text), JSON.stringify(text));
}

Deno.test("hand-picked addresses and near misses", () => {
  const cases = [
    "0.0.0.0",
    "255.255.255.255",
    "10.1.2.3",
    "010.001.0.7",
    "256.1.1.1",
    "1.2.3.999",
    "1.2.3",
    "1.2.3.4.",
    ".1.2.3.4",
    "1.2.3.4.5",
    "1..2.3",
    "1.2.3.0004",
    "1.2.3.-4",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4\n",
    "١.٢.٣.٤",
    "::ffff:1.2.3.4",
    "",
    ".",
    "...",
  ];
  for (const text of cases) check(text);
});

Deno.test("random strings over digits and dots agree with the reference", () => {
  const alphabet = "0123456789..x";
  for (let i = 0; i < 20000; i++) {
    let text = "";
    const length = Math.floor(Math.random() * 18);
    for (let j = 0; j < length; j++) text += alphabet[Math.floor(Math.random() * alphabet.length)];
    check(text);
  }
  for (let i = 0; i < 5000; i++) {
    const octets = Array.from({ length: 4 }, () => Math.floor(Math.random() * 300));
    check(octets.join("."));
  }
});
