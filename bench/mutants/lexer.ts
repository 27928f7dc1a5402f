// A small Solidity lexer for the mutation bench: enough to tell code from comments (NatSpec included) and
// string literals, and to split code into identifiers, numbers and operators. Comments are dropped and
// strings become single tokens, so nothing the mutators see can point inside either.

export type TokenKind = "ident" | "number" | "string" | "op";
export type Token = { kind: TokenKind; text: string; start: number; end: number };

/** Longest first, so `>>=` is one token and never `>` then `>=`. */
const OPERATORS = [
  ">>>=", "<<=", ">>=", ">>>", "**=", "**", "==", "!=", "<=", ">=", "&&", "||", "++", "--", "+=", "-=", "*=", "/=",
  "%=", "|=", "&=", "^=", "<<", ">>", "=>", "->", ":=",
];
const IDENT = /[A-Za-z_$][\w$]*/y;
const NUMBER = /0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d[\d_]*)?(?:[eE]-?\d+)?/y;

function skipComment(source: string, at: number): number {
  if (source.startsWith("//", at)) {
    const end = source.indexOf("\n", at);
    return end === -1 ? source.length : end;
  }
  const end = source.indexOf("*/", at + 2);
  return end === -1 ? source.length : end + 2;
}

function stringEnd(source: string, at: number): number {
  const quote = source[at];
  let i = at + 1;
  while (i < source.length && source[i] !== quote) i += source[i] === "\\" ? 2 : 1;
  return i + 1;
}

function matchAt(pattern: RegExp, source: string, at: number): string | undefined {
  pattern.lastIndex = at;
  return pattern.exec(source)?.[0];
}

export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const push = (kind: TokenKind, end: number) => {
    tokens.push({ kind, text: source.slice(i, end), start: i, end });
    i = end;
  };
  while (i < source.length) {
    const char = source[i]!;
    if (/\s/.test(char)) i++;
    else if (source.startsWith("//", i) || source.startsWith("/*", i)) i = skipComment(source, i);
    else if (char === '"' || char === "'") push("string", stringEnd(source, i));
    else if (/\d/.test(char)) push("number", i + matchAt(NUMBER, source, i)!.length);
    else if (/[A-Za-z_$]/.test(char)) push("ident", i + matchAt(IDENT, source, i)!.length);
    else push("op", i + (OPERATORS.find((op) => source.startsWith(op, i)) ?? char).length);
  }
  return tokens;
}

/** For every `(`, `[` and `{` token index, the index of the token that closes it (and back). */
export function matchBrackets(tokens: Token[]): Map<number, number> {
  const pairs = new Map<number, number>();
  const open: number[] = [];
  tokens.forEach((token, index) => {
    if (token.kind !== "op") return;
    if ("([{".includes(token.text)) open.push(index);
    else if (")]}".includes(token.text)) {
      const opener = open.pop();
      if (opener === undefined) return;
      pairs.set(opener, index);
      pairs.set(index, opener);
    }
  });
  return pairs;
}
