// `npm run bench:mutants`: mutation testing of the contracts. Mutates comparisons, arithmetic, conditions,
// revert/require guards and constants of VmRegistry, ProviderRegistry, the policy code and any other contract
// (not interfaces, governance or the token), draws a seeded sample, runs the covering tests against each
// mutant in scratch copies of the project, and writes bench/results/mutants.json and the "Mutation testing"
// section of docs/BENCHMARKS.md.
//
//   --count N    mutants that compile to run (default 150)    --seed S   sample seed (default 1)
//   --files G    only contracts matching glob G               --jobs J   parallel scratch copies (default 2)
//   --ids A,B    run exactly these mutants (ids from --list)  --list     print the sample, run nothing
//   --smoke      6 mutants, results to bench/results/mutants-smoke.json, docs untouched
//   --report     no run: re-read bench/results/mutants.json, apply bench/mutants-equivalent.json, rewrite it and the docs
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { mutantsOf, type Mutant } from "./mutants/operators.ts";
import { annotate, docsSection, loadAnnotations, summarize, type MutantRecord, type RunInfo, type Summary } from "./mutants/report.ts";
import { writeDocsSection } from "./lib/docs-section.ts";
import { buildScratch, evaluate, measureBaseline, testPlanFor, type TestPlan } from "./mutants/runner.ts";
import { MutantQueue, sample, type Sample } from "./mutants/sample.ts";
import { prepareScratch } from "./mutants/scratch.ts";

const ROOT = join(import.meta.dirname, "..");
const RESULTS = join(ROOT, "bench/results/mutants.json");
const SMOKE_RESULTS = join(ROOT, "bench/results/mutants-smoke.json");
const ANNOTATIONS = join(ROOT, "bench/mutants-equivalent.json");
const DOCS = join(ROOT, "docs/BENCHMARKS.md");
const SMOKE_COUNT = 6;
/** Interfaces, governance (OpenZeppelin wiring) and the token (OpenZeppelin ERC20) have nothing of ours to mutate. */
const NOT_MUTATED = /(^|\/)(interfaces|governance)\/|Token\.sol$/;

const { values: options } = parseArgs({
  options: {
    count: { type: "string", default: "150" },
    seed: { type: "string", default: "1" },
    files: { type: "string" },
    jobs: { type: "string", default: "2" },
    ids: { type: "string" },
    list: { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
    report: { type: "boolean", default: false },
  },
});

function globToRegExp(glob: string): RegExp {
  const pattern = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*\*\/|\*\*|\*|\?/g, (wildcard) => ({ "**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]" })[wildcard]!);
  return new RegExp(`^${pattern}$`);
}

/** The contracts to mutate, found at run time. */
function contractFiles(glob: string | undefined): string[] {
  const all = readdirSync(join(ROOT, "contracts"), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".sol"))
    .map((file) => `contracts/${file}`)
    .sort();
  return glob === undefined ? all.filter((file) => !NOT_MUTATED.test(file)) : all.filter((file) => globToRegExp(glob).test(file));
}

function draw(mutants: Mutant[]): Sample {
  if (options.ids === undefined) return sample(mutants, options.smoke ? SMOKE_COUNT : Number(options.count), Number(options.seed));
  const wanted = new Set(options.ids.split(","));
  return { chosen: mutants.filter((m) => wanted.has(m.id)), reserves: new Map() };
}

const sortedByPlace = (records: MutantRecord[]) => [...records].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);

function writeResults(path: string, summary: Summary): Summary {
  writeFileSync(path, JSON.stringify(summary, null, 2) + "\n");
  return summary;
}

const describe = (m: Mutant) => `${m.id} ${m.file}:${m.line} ${m.operator}\n    - ${m.original}\n    + ${m.mutated}`;

function commandLine(): string {
  const args = process.argv.slice(2).join(" ");
  if (process.env.npm_lifecycle_event === "bench:mutants") return `npm run bench:mutants${args ? ` -- ${args}` : ""}`;
  return `node bench/mutants.ts${args ? ` ${args}` : ""}`;
}

/** Scratch copy 0 is built and runs the baseline; the others start from its build cache. */
async function prepareScratchCopies(jobs: number, plans: TestPlan[]) {
  const seconds = (since: number) => `${Math.round((Date.now() - since) / 1000)} s`;
  const dirs: string[] = [];
  for (let i = 0; i < jobs; i++) {
    const started = Date.now();
    dirs.push(prepareScratch(ROOT, i, i === 0 ? ROOT : dirs[0]!));
    await buildScratch(dirs[i]!);
    console.log(`scratch copy ${dirs[i]} built in ${seconds(started)}`);
  }
  const started = Date.now();
  const baseline = await measureBaseline(dirs[0]!, plans);
  console.log(`the unmutated code passes ${plans.map((p) => p.name).join(" and ")} in ${seconds(started)}`);
  return { dirs, baseline };
}

function outcomeText(record: MutantRecord): string {
  const how = record.status === "killed" ? ` by ${record.by}${record.detail ? `: ${record.detail}` : ""}` : record.detail ? ` (${record.detail})` : "";
  return `${record.status}${how} in ${(record.ms / 1000).toFixed(1)} s`;
}

async function run(drawn: Sample): Promise<void> {
  const plans = new Map(drawn.chosen.map((m) => testPlanFor(ROOT, m.file)).map((plan) => [plan.name, plan]));
  const jobs = Math.max(1, Math.min(Number(options.jobs), drawn.chosen.length));
  const startedAt = new Date();
  const { dirs, baseline } = await prepareScratchCopies(jobs, [...plans.values()]);
  const baselineTestMs = Object.fromEntries([...baseline].map(([name, b]) => [name, b.ms]));
  const info = (): RunInfo => ({ command: commandLine(), seed: Number(options.seed), requested: drawn.chosen.length, jobs, startedAt, wallMs: Date.now() - startedAt.getTime(), baselineTestMs });
  const annotations = loadAnnotations(ANNOTATIONS);
  const resultsPath = options.smoke ? SMOKE_RESULTS : RESULTS;
  const queue = new MutantQueue(drawn);
  const records: MutantRecord[] = [];
  const save = (complete: boolean) => writeResults(resultsPath, summarize(sortedByPlace(records), info(), complete));

  const worker = async (dir: string) => {
    for (let mutant = queue.next(); mutant !== undefined; mutant = queue.next()) {
      const plan = testPlanFor(ROOT, mutant.file);
      const started = Date.now();
      const outcome = await evaluate(dir, mutant, plan, baseline.get(plan.name)!);
      if (outcome.status === "noCompile") queue.replace(mutant);
      const { edit: _edit, ...described } = mutant;
      const record = annotate({ ...described, ...outcome, ms: Date.now() - started }, annotations);
      records.push(record);
      console.log(`[${records.length}] ${describe(mutant)}\n    ${outcomeText(record)}`);
      save(false);
    }
  };
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  await Promise.all(dirs.map(worker));
  const summary = save(true);
  if (!options.smoke && options.ids === undefined) writeDocsSection(DOCS, docsSection(summary));
  const { mutants: _all, ...headline } = summary;
  console.log(JSON.stringify(headline, null, 2));
}

/** `--report`: the last run's results with today's annotations, in the JSON and in the docs. */
function report(): void {
  const previous = JSON.parse(readFileSync(RESULTS, "utf8")) as Summary;
  const annotations = loadAnnotations(ANNOTATIONS);
  const records = previous.mutants.map((record) => annotate(record, annotations));
  const { command, seed, requested, jobs, timing } = previous;
  const info: RunInfo = { command, seed, requested, jobs, startedAt: new Date(previous.startedAt), wallMs: timing.wallMs, baselineTestMs: timing.baselineTestMs };
  const summary = summarize(records, info, previous.complete);
  writeResults(RESULTS, summary);
  writeDocsSection(DOCS, docsSection(summary));
  console.log(`${RESULTS} and ${DOCS}: ${summary.killed} of ${summary.total} killed, ${summary.equivalent} of ${summary.survived} survivors marked equivalent`);
}

if (options.report) {
  report();
  process.exit(0);
}
const files = contractFiles(options.files);
const mutants = files.flatMap((file) => mutantsOf(file, readFileSync(join(ROOT, file), "utf8")));
const drawn = draw(mutants);
console.log(`${mutants.length} mutants in ${files.length} files; ${drawn.chosen.length} drawn`);
if (options.list) for (const mutant of drawn.chosen) console.log(describe(mutant));
else await run(drawn);
