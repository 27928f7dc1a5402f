// The benchmarks each own one "## " section of docs/BENCHMARKS.md and rewrite only that one.
import { existsSync, readFileSync, writeFileSync } from "node:fs";

/** Replaces the section that starts with `section`'s first line (its "## " heading), or appends it. */
export function writeDocsSection(path: string, section: string): void {
  const heading = section.slice(0, section.indexOf("\n"));
  if (!heading.startsWith("## ")) throw new Error(`a docs section starts with a "## " heading, not ${JSON.stringify(heading)}`);
  const body = section.endsWith("\n") ? section : `${section}\n`;
  const docs = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n";
  const start = docs.indexOf(`${heading}\n`);
  if (start === -1) return writeFileSync(path, `${docs.trimEnd()}\n\n${body}`);
  const next = docs.indexOf("\n## ", start + heading.length);
  writeFileSync(path, docs.slice(0, start) + body + (next === -1 ? "" : docs.slice(next)));
}
