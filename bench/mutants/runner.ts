// Runs one mutant in a scratch copy: compile the contracts, run the mocha tests that cover the file (stop at
// the first failure), and only if they all pass compile the Solidity tests and run the fuzz and invariant
// tests (CI profile). The mutated file and the unmutated build are restored whatever happens.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyEdit, type Mutant } from "./operators.ts";
import { hardhat, restoreBuild, runNode, snapshotBuild, type Step } from "./scratch.ts";

export type TestPlan = { name: string; mocha: string[]; solidity: string[] };
export type Timeouts = { mochaMs: number; solidityMs: number };
export type Outcome = {
  status: "killed" | "survived" | "noCompile";
  by?: "mocha" | "solidity";
  timedOut?: boolean;
  detail?: string;
  compileMs: number;
  testMs: number;
};

/** Generous: a compile of PolicyAccount through the IR pipeline takes minutes on a loaded machine. */
const COMPILE_TIMEOUT_MS = 30 * 60_000;
const MIN_TEST_TIMEOUT_MS = 120_000;
const TEST_TIMEOUT_FACTOR = 5;

/** Policy code is covered by test/policy; every other contract by test/contracts (the marketplace tests). */
export function testPlanFor(root: string, file: string): TestPlan {
  const dir = file.startsWith("contracts/policy/") ? "test/policy" : "test/contracts";
  const files = readdirSync(join(root, dir), { recursive: true, encoding: "utf8" }).map((f) => `${dir}/${f}`).sort();
  return { name: dir, mocha: files.filter((f) => f.endsWith(".test.ts")), solidity: files.filter((f) => f.endsWith(".t.sol")) };
}

const mocha = (dir: string, plan: TestPlan, timeoutMs: number) => hardhat(dir, ["test", "mocha", "--bail", "--no-compile", ...plan.mocha], timeoutMs);
const solidity = (dir: string, plan: TestPlan, timeoutMs: number) => hardhat(dir, ["test", "solidity", "--no-compile", ...plan.solidity], timeoutMs);

function failed(what: string, step: Step): Error {
  return new Error(`${what} failed${step.timedOut ? " (timed out)" : ""} on the unmutated code:\n${step.output}`);
}

/** Compiles everything, writes the generated ABI module the tests import, and keeps the build aside. */
export async function buildScratch(dir: string): Promise<void> {
  const compile = await hardhat(dir, ["compile", "--quiet"], COMPILE_TIMEOUT_MS);
  if (!compile.ok) throw failed("hardhat compile", compile);
  const abi = await runNode(dir, ["scripts/gen-abi.ts"], MIN_TEST_TIMEOUT_MS);
  if (!abi.ok) throw failed("scripts/gen-abi.ts", abi);
  snapshotBuild(dir);
}

/** Runs each plan's tests on the unmutated code (they must pass) and derives the timeouts from their times. */
export async function measureBaseline(dir: string, plans: TestPlan[]): Promise<Map<string, Timeouts & { ms: number }>> {
  const timeouts = new Map<string, Timeouts & { ms: number }>();
  const timeoutFor = (step: Step) => Math.max(MIN_TEST_TIMEOUT_MS, TEST_TIMEOUT_FACTOR * step.ms);
  for (const plan of plans) {
    const mochaRun = await mocha(dir, plan, COMPILE_TIMEOUT_MS);
    if (!mochaRun.ok) throw failed(`mocha ${plan.name}`, mochaRun);
    const solidityRun = await solidity(dir, plan, COMPILE_TIMEOUT_MS);
    if (!solidityRun.ok) throw failed(`solidity tests ${plan.name}`, solidityRun);
    timeouts.set(plan.name, { mochaMs: timeoutFor(mochaRun), solidityMs: timeoutFor(solidityRun), ms: mochaRun.ms + solidityRun.ms });
  }
  return timeouts;
}

/** The first failing test's title, as mocha and Hardhat's Solidity test reporter both print it (`1) title`). */
function firstFailure(step: Step): string | undefined {
  if (step.timedOut) return "timed out";
  const line = /^\s*1\) .+$/m.exec(step.output)?.[0];
  return line?.trim().slice(0, 160);
}

function killed(by: "mocha" | "solidity", step: Step, compileMs: number, testMs: number): Outcome {
  return { status: "killed", by, timedOut: step.timedOut || undefined, detail: firstFailure(step), compileMs, testMs };
}

/** Per mutant, the compiles skip typechain: the tests import its types only as types, which run without them. */
async function runMutant(dir: string, plan: TestPlan, timeouts: Timeouts): Promise<Outcome> {
  const contracts = await hardhat(dir, ["--no-typechain", "compile", "--no-tests", "--quiet"], COMPILE_TIMEOUT_MS);
  if (!contracts.ok) return { status: "noCompile", detail: contracts.timedOut ? "compile timed out" : undefined, compileMs: contracts.ms, testMs: 0 };
  const mochaRun = await mocha(dir, plan, timeouts.mochaMs);
  if (!mochaRun.ok) return killed("mocha", mochaRun, contracts.ms, mochaRun.ms);
  const tests = await hardhat(dir, ["--no-typechain", "compile", "--quiet"], COMPILE_TIMEOUT_MS);
  const compileMs = contracts.ms + tests.ms;
  if (!tests.ok) return { status: "noCompile", detail: "the Solidity tests do not compile against it", compileMs, testMs: mochaRun.ms };
  const solidityRun = await solidity(dir, plan, timeouts.solidityMs);
  if (!solidityRun.ok) return killed("solidity", solidityRun, compileMs, mochaRun.ms + solidityRun.ms);
  return { status: "survived", compileMs, testMs: mochaRun.ms + solidityRun.ms };
}

export async function evaluate(dir: string, mutant: Mutant, plan: TestPlan, timeouts: Timeouts): Promise<Outcome> {
  const path = join(dir, mutant.file);
  const original = readFileSync(path, "utf8");
  writeFileSync(path, applyEdit(original, mutant.edit));
  try {
    return await runMutant(dir, plan, timeouts);
  } finally {
    writeFileSync(path, original);
    restoreBuild(dir);
  }
}
