// `npm test`: every suite, one after the other, then ONE closing line `N passed, N failed`
// (and `, N skipped`) that adds them all up. CI reads that line; the exit code is non-zero
// when any test failed or any suite ended without a summary we could read.
import { spawn } from "node:child_process";
import { HARDHAT_CLI, PROJECT_ROOT } from "./stack/hardhat.ts";

type Counts = { passed: number; failed: number; skipped: number };
type Suite = { name: string; command: string[]; parse: (output: string) => Counts | undefined };

// Colour codes would break the summary patterns below.
const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "");
const count = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);

const suites: Suite[] = [
  {
    name: "typecheck (tsc --noEmit, strict)",
    command: [process.execPath, "node_modules/typescript/bin/tsc", "-p", "tsconfig.json"],
    parse: () => ({ passed: 1, failed: 0, skipped: 0 }),
  },
  {
    name: "contracts (Solidity fuzz tests + mocha/chai/ethers)",
    command: [process.execPath, HARDHAT_CLI, "test"],
    parse: (output) => {
      const text = plain(output);
      if (!/^\d+ passing|^\d+ failing/m.test(text)) return undefined;
      return { passed: count(text, /^(\d+) passing/m), failed: count(text, /^(\d+) failing/m), skipped: count(text, /^(\d+) skipped/m) };
    },
  },
  {
    name: "daemon and stack (node:test, real Hardhat node, IPFS blocks and processes)",
    command: [process.execPath, "--test", "--test-reporter=spec", "--test-concurrency=1", "offchain-daemon/**/*.test.ts", "scripts/**/*.test.ts"],
    parse: (output) => {
      const text = plain(output);
      if (!/^ℹ pass \d+/m.test(text)) return undefined;
      // A cancelled test (its file crashed or timed out) is a failure too.
      return { passed: count(text, /^ℹ pass (\d+)/m), failed: count(text, /^ℹ fail (\d+)/m) + count(text, /^ℹ cancelled (\d+)/m), skipped: count(text, /^ℹ skipped (\d+)/m) + count(text, /^ℹ todo (\d+)/m) };
    },
  },
];

function run(suite: Suite): Promise<{ output: string; code: number | null }> {
  return new Promise((resolve) => {
    const [command, ...args] = suite.command;
    const child = spawn(command!, args, { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FORCE_COLOR: "0" } });
    let output = "";
    const tee = (chunk: Buffer, to: NodeJS.WriteStream) => {
      output += chunk.toString();
      to.write(chunk);
    };
    child.stdout.on("data", (chunk: Buffer) => tee(chunk, process.stdout));
    child.stderr.on("data", (chunk: Buffer) => tee(chunk, process.stderr));
    child.on("close", (code) => resolve({ output, code }));
  });
}

const only = process.argv.slice(2);
const total: Counts = { passed: 0, failed: 0, skipped: 0 };
const lines: string[] = [];
for (const suite of suites) {
  if (only.length > 0 && !only.some((word) => suite.name.startsWith(word))) continue;
  console.log(`\n=== ${suite.name}\n`);
  const started = Date.now();
  const { output, code } = await run(suite);
  let counts = suite.parse(output);
  if (suite.name.startsWith("typecheck") && code !== 0) counts = { passed: 0, failed: 1, skipped: 0 };
  if (counts === undefined) {
    // A suite that crashed before reporting counts as one failure, never as zero tests.
    counts = { passed: 0, failed: 1, skipped: 0 };
    lines.push(`${suite.name}: no summary (exit ${code}); counted as 1 failure`);
  } else if (code !== 0 && counts.failed === 0) {
    counts.failed = 1;
    lines.push(`${suite.name}: exited ${code} with no failed test; counted as 1 failure`);
  }
  total.passed += counts.passed;
  total.failed += counts.failed;
  total.skipped += counts.skipped;
  lines.push(`${suite.name}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

console.log(`\n${lines.join("\n")}`);
console.log(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exitCode = total.failed > 0 || total.passed === 0 ? 1 : 0;
