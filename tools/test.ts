/**
 * The whole test suite, as the README's test command and CI run it: formatting, lint, type check,
 * artifact reproducibility, the Rust unit tests of the parsers and every Deno test under `tests/`.
 * Each step's own output streams through; the last line counts every test that ran, in the form CI
 * reads: `N passed, N failed`.
 *
 * Usage: deno task test [--filter PATTERN] [test files...]
 */

interface Tally {
  passed: number;
  failed: number;
  skipped: number;
}

const root = new URL("../", import.meta.url).pathname;
const deno = Deno.execPath();
const tally: Tally = { passed: 0, failed: 0, skipped: 0 };
const failures: string[] = [];

/** Runs a command with output streamed and teed into a string, so counts can be read from it. */
async function run(
  label: string,
  cmd: string[],
  env: Record<string, string> = {},
): Promise<[boolean, string]> {
  console.log(`\n==> ${label}: ${cmd.join(" ")}`);
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Kept per stream: interleaving stdout and stderr chunks would split the summary lines we parse.
  const texts = { out: "", err: "" };
  const pump = async (stream: ReadableStream<Uint8Array>, sink: typeof Deno.stdout, key: "out" | "err") => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      texts[key] += decoder.decode(chunk, { stream: true });
      await sink.write(chunk);
    }
  };
  const [status] = await Promise.all([
    child.status,
    pump(child.stdout, Deno.stdout, "out"),
    pump(child.stderr, Deno.stderr, "err"),
  ]);
  const text = `${texts.out}\n${texts.err}`;
  return [status.success, text];
}

/** A step that is one test: it passes or fails as a whole. */
async function step(label: string, cmd: string[]) {
  const [ok] = await run(label, cmd);
  if (ok) tally.passed++;
  else {
    tally.failed++;
    failures.push(label);
  }
}

const args = Deno.args;
const onlyTests = args.length > 0;

if (!onlyTests) {
  await step("format", [deno, "fmt", "--check"]);
  await step("lint", [deno, "lint"]);
  await step("type check", [deno, "check", "."]);
  await step("artifacts reproduce", ["bash", "scripts/check-artifacts.sh"]);

  // The parsers' own unit tests, natively, with the same Debian toolchain that builds the wasm.
  const [cargoOk, cargoOut] = await run("rust unit tests", [
    "/usr/bin/cargo",
    "test",
    "--offline",
    "--lib",
    "--manifest-path",
    "wasm/Cargo.toml",
  ], {
    RUSTC: "/usr/bin/rustc",
  });
  let counted = false;
  for (const m of cargoOut.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/g)) {
    tally.passed += Number(m[1]);
    tally.failed += Number(m[2]);
    tally.skipped += Number(m[3]);
    counted = true;
  }
  if (!cargoOk || !counted) {
    tally.failed++;
    failures.push("rust unit tests");
  }
}

const testArgs = onlyTests ? args : ["tests/"];
const [denoOk, denoOut] = await run("deno tests", [deno, "test", "--allow-all", ...testArgs]);
const summary = denoOut.match(/\| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?/);
if (summary) {
  tally.passed += Number(summary[1]);
  tally.failed += Number(summary[3]);
  const ignored = denoOut.match(/\| (\d+) ignored/);
  if (ignored) tally.skipped += Number(ignored[1]);
}
if (!summary || (!denoOk && Number(summary[3]) === 0)) {
  tally.failed++;
  failures.push("deno tests (did not complete)");
}

if (failures.length > 0) console.log(`\nfailed steps: ${failures.join(", ")}`);
console.log(
  `\n${tally.passed} passed, ${tally.failed} failed${tally.skipped ? `, ${tally.skipped} skipped` : ""}`,
);
Deno.exit(tally.failed === 0 ? 0 : 1);
