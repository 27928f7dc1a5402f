// Deterministic, stratified sampling: each file gets a share of the sample proportional to how many mutants
// it has (at least one), drawn from a seeded shuffle, and the sample runs in a seeded order; the rest of each
// file's shuffle is kept in reserve to replace mutants that do not compile, so `count` mutants run.
import { seededRandom } from "../lib/random.ts";
import type { Mutant } from "./operators.ts";

function shuffled<T>(items: T[], next: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

/** Largest-remainder apportionment of `count` over the group sizes; each group gets one at least if `count` allows. */
function quotas(sizes: number[], count: number): number[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  const exact = sizes.map((size) => (size * count) / total);
  const floor = count >= sizes.length ? 1 : 0;
  const result = exact.map((share, i) => Math.min(sizes[i]!, Math.max(floor, Math.floor(share))));
  const byRemainder = exact.map((share, i) => ({ i, rest: share - Math.floor(share) })).sort((a, b) => b.rest - a.rest);
  for (const { i } of byRemainder) {
    if (result.reduce((a, b) => a + b, 0) >= count) break;
    if (result[i]! < sizes[i]!) result[i]!++;
  }
  return result;
}

export type Sample = { chosen: Mutant[]; reserves: Map<string, Mutant[]> };

export function sample(mutants: Mutant[], count: number, seed: number): Sample {
  const next = seededRandom(seed);
  const files = [...new Set(mutants.map((m) => m.file))].sort();
  const groups = files.map((file) => shuffled(mutants.filter((m) => m.file === file), next));
  const shares = quotas(groups.map((g) => g.length), Math.min(count, mutants.length));
  return {
    chosen: shuffled(groups.flatMap((group, i) => group.slice(0, shares[i])), next),
    reserves: new Map(files.map((file, i) => [file, groups[i]!.slice(shares[i])])),
  };
}

/** The mutants still to run, files mixed: a run stopped early is still a sample of every file. */
export class MutantQueue {
  private readonly pending: Mutant[];
  private readonly reserves: Map<string, Mutant[]>;
  constructor(drawn: Sample) {
    this.pending = [...drawn.chosen];
    this.reserves = new Map([...drawn.reserves].map(([file, mutants]) => [file, [...mutants]]));
  }
  next(): Mutant | undefined {
    return this.pending.shift();
  }
  /** Draws the next reserve mutant of the same file in place of one that did not compile. */
  replace(mutant: Mutant): Mutant | undefined {
    const replacement = this.reserves.get(mutant.file)?.shift();
    if (replacement) this.pending.unshift(replacement);
    return replacement;
  }
}
