// The mutation bench's outputs: bench/results/mutants.json and the "Mutation testing" section of
// docs/BENCHMARKS.md. A survivor an engineer has judged equivalent is listed in bench/mutants-equivalent.json
// (file, original, mutated, reason) and shows that reason as its note.
import { existsSync, readFileSync } from "node:fs";
import type { Mutant, Operator } from "./operators.ts";
import type { Outcome } from "./runner.ts";

export type MutantRecord = Omit<Mutant, "edit"> & Outcome & { id: string; ms: number; note?: string };
export type Annotation = { file: string; original: string; mutated: string; reason: string };
export type RunInfo = { command: string; seed: number; requested: number; jobs: number; startedAt: Date; wallMs: number; baselineTestMs: Record<string, number> };

type Tally = { mutants: number; killed: number; survived: number; noCompile: number };
const DOCS_HEADING = "## Mutation testing";

const keyOf = (m: { file: string; original: string; mutated: string }) => [m.file, m.original, m.mutated].join("\u0000");

export function loadAnnotations(path: string): Map<string, string> {
  if (!existsSync(path)) return new Map();
  const annotations = JSON.parse(readFileSync(path, "utf8")) as Annotation[];
  return new Map(annotations.map((a) => [keyOf(a), a.reason]));
}

/** The record with the note bench/mutants-equivalent.json has for it now (a survivor's only). */
export function annotate({ note: _previous, ...record }: MutantRecord, annotations: Map<string, string>): MutantRecord {
  const note = record.status === "survived" ? annotations.get(keyOf(record)) : undefined;
  return note === undefined ? record : { ...record, note };
}

function tally(records: MutantRecord[]): Tally {
  const count = (status: Outcome["status"]) => records.filter((r) => r.status === status).length;
  return { mutants: count("killed") + count("survived"), killed: count("killed"), survived: count("survived"), noCompile: count("noCompile") };
}

function tallyBy<K extends string>(records: MutantRecord[], key: (r: MutantRecord) => K): Array<{ name: K } & Tally> {
  const names = [...new Set(records.map(key))].sort();
  return names.map((name) => ({ name, ...tally(records.filter((r) => key(r) === name)) }));
}

const percent = (part: number, whole: number) => (whole === 0 ? 0 : Math.round((1000 * part) / whole) / 10);
const mean = (values: number[]) => (values.length === 0 ? 0 : Math.round(values.reduce((a, b) => a + b, 0) / values.length));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

export function summarize(records: MutantRecord[], run: RunInfo, complete: boolean) {
  const total = tally(records);
  const survivors = records.filter((r) => r.status === "survived");
  const equivalent = survivors.filter((r) => r.note !== undefined).length;
  const times = records.map((r) => r.ms);
  return {
    command: run.command,
    seed: run.seed,
    requested: run.requested,
    jobs: run.jobs,
    startedAt: run.startedAt.toISOString(),
    complete,
    total: total.mutants,
    killed: total.killed,
    survived: total.survived,
    noCompile: total.noCompile,
    equivalent,
    killRate: percent(total.killed, total.mutants),
    killRateExcludingEquivalent: percent(total.killed, total.mutants - equivalent),
    timing: {
      wallMs: run.wallMs,
      wallPerMutantMs: records.length === 0 ? 0 : Math.round(run.wallMs / records.length),
      perMutantMs: { mean: mean(times), median: median(times), max: Math.max(0, ...times) },
      meanCompileMs: mean(records.map((r) => r.compileMs)),
      meanTestMs: mean(records.map((r) => r.testMs)),
      baselineTestMs: run.baselineTestMs,
    },
    files: tallyBy(records, (r) => r.file),
    operators: tallyBy<Operator>(records, (r) => r.operator),
    survivors: survivors.map(({ file, line, operator, original, mutated, note }) => ({ file, line, operator, original, mutated, note })),
    mutants: records,
  };
}

export type Summary = ReturnType<typeof summarize>;

const code = (text: string) => (text === "" ? "(removed)" : "`" + text.replaceAll("|", "\\|") + "`");
const minutes = (ms: number) => `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;

function tallyTable(by: string, rows: Array<{ name: string } & Tally>, total: Tally): string[] {
  const row = (name: string, t: Tally) => `| ${name} | ${t.mutants} | ${t.killed} | ${t.survived} | ${percent(t.killed, t.mutants)} % | ${t.noCompile} |`;
  const header = [`| ${by} | mutants | killed | survived | kill rate | did not compile (discarded) |`, "| --- | --- | --- | --- | --- | --- |"];
  return [...header, ...rows.map((r) => row(r.name, r)), row("**total**", total)];
}

function survivorTable(summary: Summary): string[] {
  if (summary.survivors.length === 0) return ["No survivors."];
  const row = (s: Summary["survivors"][number]) => `| ${s.file}:${s.line} | ${s.operator} | ${code(s.original)} | ${code(s.mutated)} | ${s.note ?? "no test yet"} |`;
  return ["| where | operator | original | mutated | note |", "| --- | --- | --- | --- | --- |", ...summary.survivors.map(row)];
}

export function docsSection(summary: Summary): string {
  const total = { mutants: summary.total, killed: summary.killed, survived: summary.survived, noCompile: summary.noCompile };
  const { timing } = summary;
  return [
    DOCS_HEADING,
    "",
    `\`${summary.command}\` (seed ${summary.seed}, ${summary.jobs} parallel scratch copies). Measured ${summary.startedAt.slice(0, 10)} on this machine.`,
    "Each mutant is one edit of a contract (a relational or arithmetic operator swapped, a condition negated or `&&`/`||`",
    "swapped, a `revert`/`require` removed, a constant off by one); it is compiled in a scratch copy and the tests that",
    "cover its file run against it (mocha with `--bail`, then the Solidity fuzz and invariant tests, CI profile).",
    "Killed: a test failed or timed out. Mutants that do not compile are discarded and replaced from the same file.",
    "",
    `Killed ${summary.killed} of ${summary.total} (${summary.killRate} %; ${summary.killRateExcludingEquivalent} % without the ${summary.equivalent} marked equivalent in bench/mutants-equivalent.json). ` +
      `Wall time ${minutes(timing.wallMs)}; per mutant ${Math.round(timing.perMutantMs.mean / 1000)} s on average (median ${Math.round(timing.perMutantMs.median / 1000)} s, ` +
      `compile ${Math.round(timing.meanCompileMs / 1000)} s, tests ${Math.round(timing.meanTestMs / 1000)} s), ` +
      `${Math.round(timing.wallPerMutantMs / 1000)} s of wall time per mutant with ${summary.jobs} running at once.`,
    ...(summary.complete ? [] : ["", `Partial: this run stopped after ${summary.total} of the ${summary.requested} mutants drawn.`]),
    "",
    ...tallyTable("file", summary.files, total),
    "",
    ...tallyTable("operator", summary.operators, total),
    "",
    "Survivors: each gets a test that kills it, or an entry in bench/mutants-equivalent.json saying why it is equivalent",
    '(`{ "file", "original", "mutated", "reason" }`, the texts as in bench/results/mutants.json); `npm run bench:mutants -- --report`',
    "then rewrites this section and the JSON from the last run without running anything.",
    "",
    ...survivorTable(summary),
    "",
  ].join("\n");
}

