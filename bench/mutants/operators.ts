// Mutation operators on Solidity source text. Every mutant is one edit of the source; it is described by
// the source lines it touches, before and after, so a mutant reads (and is annotated) without line numbers.
import { basename } from "node:path";
import { matchBrackets, tokenize, type Token } from "./lexer.ts";

export type Operator = "relational" | "arithmetic" | "boolean" | "guard" | "constant";
export type Edit = { start: number; end: number; replacement: string };
export type Mutant = { id: string; file: string; line: number; operator: Operator; original: string; mutated: string; edit: Edit };

const RELATIONAL: Record<string, string[]> = {
  "<": ["<=", ">="],
  "<=": ["<", ">"],
  ">": [">=", "<="],
  ">=": [">", "<"],
  "==": ["!="],
  "!=": ["=="],
};
const ARITHMETIC: Record<string, string> = {
  "+": "-", "-": "+", "*": "/", "/": "*", "%": "*", "**": "*", "+=": "-=", "-=": "+=", "*=": "/=", "/=": "*=",
};
const ELEMENTARY_TYPE = /^(u?int\d*|bytes\d*|address|bool|string)$/;
/** Hex literals longer than this are hashes, selectors or addresses: off by one they do not compile or mean nothing. */
const MAX_HEX_DIGITS = 16;

type Source = { text: string; tokens: Token[]; pairs: Map<number, number>; skipped: Set<number> };
type Found = { operator: Operator; edit: Edit };

/** Token indices of `pragma` and `import` statements and of inline assembly blocks: never mutated. */
function skippedTokens(tokens: Token[], pairs: Map<number, number>): Set<number> {
  const skipped = new Set<number>();
  const skipThrough = (from: number, to: number) => {
    for (let i = from; i <= to; i++) skipped.add(i);
  };
  tokens.forEach((token, index) => {
    if (token.kind !== "ident") return;
    if (token.text === "pragma" || token.text === "import") skipThrough(index, statementEnd(tokens, pairs, index));
    if (token.text === "assembly") {
      const open = tokens.findIndex((t, i) => i > index && t.text === "{");
      skipThrough(index, pairs.get(open) ?? open);
    }
  });
  return skipped;
}

/** Index of the `;` ending the statement that starts at `from` (brackets jumped over). */
function statementEnd(tokens: Token[], pairs: Map<number, number>, from: number): number {
  let i = from;
  while (i < tokens.length && tokens[i]!.text !== ";") i = "([{".includes(tokens[i]!.text) && tokens[i]!.kind === "op" ? pairs.get(i)! + 1 : i + 1;
  return Math.min(i, tokens.length - 1);
}

function replaceToken(token: Token, replacement: string): Edit {
  return { start: token.start, end: token.end, replacement };
}

function isOperand(token: Token | undefined): boolean {
  if (token === undefined) return false;
  if (token.kind === "number") return true;
  if (token.kind === "ident") return !["return", "returns", "emit", "case"].includes(token.text);
  return token.text === ")" || token.text === "]";
}

function relational({ tokens }: Source, index: number): Found[] {
  const token = tokens[index]!;
  if (token.kind !== "op") return [];
  return (RELATIONAL[token.text] ?? []).map((to) => ({ operator: "relational", edit: replaceToken(token, to) }));
}

function arithmetic({ tokens }: Source, index: number): Found[] {
  const token = tokens[index]!;
  const to = token.kind === "op" ? ARITHMETIC[token.text] : undefined;
  if (to === undefined || !isOperand(tokens[index - 1])) return [];
  return [{ operator: "arithmetic", edit: replaceToken(token, to) }];
}

/** One comparison (its relational mutants include the negation) or `!x` (the `!` removal is the negation). */
function isSimpleCondition(condition: Token[]): boolean {
  if (condition.some((t) => ["&&", "||", "?"].includes(t.text))) return false;
  return condition[0]?.text === "!" || condition.filter((t) => t.kind === "op" && RELATIONAL[t.text] !== undefined).length === 1;
}

/** `&&` <-> `||`, `!x` -> `x`, `true` <-> `false`, and `if (c)` -> `if (!(c))` for compound conditions. */
function boolean({ text, tokens, pairs }: Source, index: number): Found[] {
  const token = tokens[index]!;
  const swap: Record<string, string> = { "&&": "||", "||": "&&", "!": "", true: "false", false: "true" };
  if (swap[token.text] !== undefined) return [{ operator: "boolean", edit: replaceToken(token, swap[token.text]!) }];
  if (token.text !== "if" || tokens[index + 1]?.text !== "(") return [];
  const close = pairs.get(index + 1)!;
  if (isSimpleCondition(tokens.slice(index + 2, close))) return [];
  const start = tokens[index + 2]!.start;
  const end = tokens[close - 1]!.end;
  return [{ operator: "boolean", edit: { start, end, replacement: `!(${text.slice(start, end)})` } }];
}

/** Removes a `revert` or `require`: `if (c) revert E();` goes, `if (c) { revert ...` gets `false`. */
function guard(source: Source, index: number): Found[] {
  const { tokens, pairs } = source;
  const token = tokens[index]!;
  const isRequire = (token.text === "require" || token.text === "assert") && tokens[index + 1]?.text === "(";
  if (token.kind !== "ident" || (token.text !== "revert" && !isRequire)) return [];
  const end = statementEnd(tokens, pairs, index);
  const remove = (from: number): Found[] => [{ operator: "guard", edit: { start: tokens[from]!.start, end: tokens[end]!.end, replacement: "" } }];
  if (isRequire) return remove(index);
  const before = tokens[index - 1]!;
  const ifOpen = before.text === "{" ? pairs.get(index - 2) : before.text === ")" ? pairs.get(index - 1) : undefined;
  if (ifOpen === undefined || tokens[ifOpen - 1]?.text !== "if") return remove(index);
  const conditionEnd = before.text === "{" ? index - 3 : index - 2;
  const falseCondition: Found[] = [{ operator: "guard", edit: { start: tokens[ifOpen + 1]!.start, end: tokens[conditionEnd]!.end, replacement: "false" } }];
  return before.text === "{" || tokens[end + 1]?.text === "else" ? falseCondition : remove(ifOpen - 1);
}

function literalValue(text: string): bigint | undefined {
  const digits = text.replaceAll("_", "");
  if (/^0x/i.test(digits)) return digits.length - 2 <= MAX_HEX_DIGITS ? BigInt(digits) : undefined;
  const match = /^(\d+)(?:e(\d+))?$/i.exec(digits);
  return match ? BigInt(match[1]!) * 10n ** BigInt(match[2] ?? 0) : undefined;
}

function formatLike(original: string, value: bigint): string {
  if (!/^0x/i.test(original)) return value.toString();
  return "0x" + value.toString(16).padStart(original.replaceAll("_", "").length - 2, "0");
}

/** A literal plus one (one mutant per literal: they outnumber the other operators otherwise); not array sizes in types (`uint256[8]`). */
function constant({ tokens }: Source, index: number): Found[] {
  const token = tokens[index]!;
  if (token.kind !== "number") return [];
  const isTypeSize = tokens[index - 1]?.text === "[" && ELEMENTARY_TYPE.test(tokens[index - 2]?.text ?? "");
  const value = literalValue(token.text);
  if (value === undefined || isTypeSize) return [];
  return [{ operator: "constant", edit: replaceToken(token, formatLike(token.text, value + 1n)) }];
}

const collapse = (text: string) => text.replace(/\s+/g, " ").trim();

function describe(id: string, file: string, text: string, { operator, edit }: Found): Mutant {
  const lineStart = text.lastIndexOf("\n", edit.start - 1) + 1;
  const newline = text.indexOf("\n", edit.end);
  const lineEnd = newline === -1 ? text.length : newline;
  const line = text.slice(0, edit.start).split("\n").length;
  const mutated = text.slice(lineStart, edit.start) + edit.replacement + text.slice(edit.end, lineEnd);
  return { id, file, line, operator, original: collapse(text.slice(lineStart, lineEnd)), mutated: collapse(mutated), edit };
}

const MUTATORS = [relational, arithmetic, boolean, guard, constant];

/** Every mutant of one file, in source order; ids are the file's name and the mutant's rank in it. */
export function mutantsOf(file: string, text: string): Mutant[] {
  const tokens = tokenize(text);
  const pairs = matchBrackets(tokens);
  const source: Source = { text, tokens, pairs, skipped: skippedTokens(tokens, pairs) };
  const found = tokens.flatMap((_, index) => (source.skipped.has(index) ? [] : MUTATORS.flatMap((mutator) => mutator(source, index))));
  const name = basename(file, ".sol");
  return found.map((f, i) => describe(`${name}-${i + 1}`, file, text, f));
}

export function applyEdit(text: string, { start, end, replacement }: Edit): string {
  return text.slice(0, start) + replacement + text.slice(end);
}
