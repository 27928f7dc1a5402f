// Scratch copies of the project for the mutation bench: one per parallel job, under the OS temp directory,
// with node_modules symlinked and Hardhat's artifacts and cache kept between mutants and between runs (so
// each mutant recompiles only the compilation jobs its file is part of). The working tree is never written.
import { spawn, execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export type Step = { ok: boolean; timedOut: boolean; ms: number; output: string };

/** Build outputs kept in a scratch copy from run to run; everything else is synced from the working tree. */
const KEPT = new Set(["node_modules", "artifacts", "cache", "types"]);
const OUTPUT_TAIL = 4_000;
const BUILD_OUTPUTS = ["artifacts", "cache"];
const BASELINE_BUILD = ".baseline-build";

const SCRATCH_ROOT = join(tmpdir(), "novacron-mutants");

/** Files git would commit: tracked ones and untracked ones it does not ignore. */
function projectFiles(root: string): string[] {
  const listing = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], { cwd: root, encoding: "utf8" });
  return listing.split("\0").filter((file) => file !== "" && existsSync(join(root, file)));
}

/** Copies another copy's artifacts and cache; Hardhat's compile cache is keyed by absolute path, so it is moved over. */
function seedBuildCache(dir: string, from: string): void {
  const cacheFile = join(dir, "cache/compile-cache.json");
  if (existsSync(join(dir, "cache")) || !existsSync(join(from, "cache/compile-cache.json"))) return;
  for (const kept of BUILD_OUTPUTS) cpSync(join(from, kept), join(dir, kept), { recursive: true });
  writeFileSync(cacheFile, readFileSync(cacheFile, "utf8").replaceAll(`${from}/`, `${dir}/`));
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One run per scratch copy: a second run at the same time would mutate the first one's files. */
function lockScratch(dir: string): void {
  const lock = `${dir}.lock`;
  try {
    writeFileSync(lock, String(process.pid), { flag: "wx" });
  } catch {
    const owner = Number(readFileSync(lock, "utf8"));
    if (isRunning(owner)) throw new Error(`${dir} is in use by process ${owner} (another bench:mutants run)`);
    writeFileSync(lock, String(process.pid));
  }
  process.on("exit", () => rmSync(lock, { force: true }));
}

/** Makes (or refreshes) scratch copy `index` of `root`; build outputs come from `seedFrom` if it has none yet. */
export function prepareScratch(root: string, index: number, seedFrom: string): string {
  const dir = join(SCRATCH_ROOT, `slot-${index}`);
  mkdirSync(dir, { recursive: true });
  lockScratch(dir);
  // A run stopped mid-mutant left a mutated build behind.
  if (existsSync(join(dir, BASELINE_BUILD))) restoreBuild(dir);
  for (const entry of readdirSync(dir)) if (!KEPT.has(entry)) rmSync(join(dir, entry), { recursive: true, force: true });
  for (const file of projectFiles(root)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(join(root, file), join(dir, file));
  }
  if (!existsSync(join(dir, "node_modules"))) symlinkSync(realpathSync(join(root, "node_modules")), join(dir, "node_modules"));
  seedBuildCache(dir, seedFrom);
  return dir;
}

/**
 * The unmutated build's outputs are kept aside and put back after each mutant: otherwise the next mutant's
 * compile would also rebuild the file the last one mutated (PolicyAccount through the IR pipeline: a minute).
 */
export function snapshotBuild(dir: string): void {
  for (const output of BUILD_OUTPUTS) {
    rmSync(join(dir, BASELINE_BUILD, output), { recursive: true, force: true });
    cpSync(join(dir, output), join(dir, BASELINE_BUILD, output), { recursive: true });
  }
}

export function restoreBuild(dir: string): void {
  for (const output of BUILD_OUTPUTS) {
    rmSync(join(dir, output), { recursive: true, force: true });
    cpSync(join(dir, BASELINE_BUILD, output), join(dir, output), { recursive: true });
  }
}

/** Runs `node args` in `cwd` (its own process group, killed whole on timeout); the CI test profile, no colours. */
export function runNode(cwd: string, args: string[], timeoutMs: number): Promise<Step> {
  const env: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1" };
  delete env.NOVACRON_TEST_PROFILE;
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let timedOut = false;
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-OUTPUT_TAIL);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(-child.pid!, "SIGKILL");
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ ok: code === 0 && !timedOut, timedOut, ms: Date.now() - started, output });
    });
  });
}

export function hardhat(cwd: string, args: string[], timeoutMs: number): Promise<Step> {
  return runNode(cwd, [join(cwd, "node_modules/hardhat/dist/src/cli.js"), ...args], timeoutMs);
}
