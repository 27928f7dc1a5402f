// The value lint of a PolicyAccount policy file (docs/policy.md, "Value lint"): for every class, the most one call of
// that class can move out of the account, compared with what the account's transfer class allows.
//
// Pure and environment-neutral on purpose (viem and plain TypeScript; no Hardhat, no Node built-ins, no ethers): it
// reads the JSON policy as written (`PolicyJson`) and is meant to move into the client library as it is.
//
// Audit finding 2 (issue 9): a 1-of-3 class allowed `approve(VmRegistry, any amount)` and `requestVm(any deposit)`,
// so one signer could move the whole balance to a provider it controls, bypassing the 2-of-3 + 1 h transfer rule.
import { parseAbiItem, type AbiFunction, type AbiParameter } from "viem";

import type * as Policy from "./policy.ts";

// The parts of a policy file the lint reads (a type-only import: the lint depends on nothing of the compiler at
// run time).
export type ConditionJson = Pick<Policy.ConditionJson, "arg" | "value" | "set"> & { op: string };
export type RuleJson = Pick<Policy.RuleJson, "target" | "function"> & { conditions?: ConditionJson[] };
export type ClassJson = Pick<Policy.ClassJson, "name" | "signers" | "threshold" | "delay"> & { rules: RuleJson[] };
export type PolicyJson = { classes: ClassJson[] };

/** An upper bound on an amount, in the asset's smallest unit, or none. */
export type Bound = bigint | "unbounded";

/** Asset key of ETH sent with a call (`msg.value`). */
export const ETH = "ETH";
/** Asset key of a value-moving argument whose token the lint cannot know (a function it does not know). */
export const ANY_ASSET = "*";
/** How many calls one operation may batch (`Limit.Calls`); one operation of a class moves at most this many times a call. */
export const MAX_CALLS_PER_OPERATION = 8;

export interface LintOptions {
  /** Escrow contracts (by target as written in the policy) and the token their deposits are pulled in.
   * Default `{ VmRegistry: "CreditToken" }`. */
  escrowToken?: Record<string, string>;
  /** Targets without a payable function: ETH sent to them reverts, so their rules move no ETH.
   * Default: VmRegistry, CreditToken, ProviderRegistry (and always `self`). */
  nonPayable?: string[];
  /** How amounts of an asset are printed. Default: CreditToken as NCC and ETH, both with 18 decimals. */
  units?: Record<string, { symbol: string; decimals: number }>;
}

/** One way a rule moves value: an argument of the call (or the ETH sent with it) and its bound. */
export interface ValueMove {
  /** The token moved (a policy target such as `CreditToken`), `ETH`, or `*` (unknown). */
  asset: string;
  /** Index of the rule in its class. */
  rule: number;
  /** The rule's function, canonical (`approve(address,uint256)`). */
  function: string;
  /** What moves it, e.g. `approve(amount)`, `requestVm(deposit)`, `topUp(msg.value)`. */
  via: string;
  bound: Bound;
  /** True when the function is not in the known list and the argument was picked by its name (see {@link AMOUNT_LIKE}). */
  heuristic: boolean;
}

export interface ClassValue {
  name: string;
  threshold: number;
  signers: number;
  /** Seconds. */
  delay: number;
  moves: ValueMove[];
  /** The most one call of the class moves, per asset (the maximum over its rules). */
  maxPerCall: Record<string, Bound>;
}

/** A class with a rule on `transfer(address,uint256)` of a token, and the most one such transfer moves. */
export interface TransferClass {
  class: string;
  asset: string;
  bound: Bound;
}

export interface LintWarning {
  class: string;
  rule: number;
  function: string;
  via: string;
  asset: string;
  bound: Bound;
  /** The transfer class whose limit is exceeded (absent for unbounded ETH, which no transfer rule covers). */
  reference?: { class: string; bound: Bound };
  message: string;
}

export interface PolicyLint {
  classes: ClassValue[];
  transfers: TransferClass[];
  warnings: LintWarning[];
}

// ------------------------------------------------------------------ what moves value

/** Known value-moving functions by canonical signature: which top-level arguments move value, and whether the asset
 * is the target itself (a token) or the token the target escrows (VmRegistry's deposits). */
const KNOWN: Record<string, { args: number[]; kind: "token" | "escrow" }> = {
  // ERC-20 and common extensions: the target is the token.
  "transfer(address,uint256)": { args: [1], kind: "token" },
  "approve(address,uint256)": { args: [1], kind: "token" },
  "transferFrom(address,address,uint256)": { args: [2], kind: "token" },
  "increaseAllowance(address,uint256)": { args: [1], kind: "token" },
  "burn(uint256)": { args: [0], kind: "token" },
  "burnFrom(address,uint256)": { args: [1], kind: "token" },
  "transferAndCall(address,uint256)": { args: [1], kind: "token" },
  "transferAndCall(address,uint256,bytes)": { args: [1], kind: "token" },
  "transferFromAndCall(address,address,uint256)": { args: [2], kind: "token" },
  "transferFromAndCall(address,address,uint256,bytes)": { args: [2], kind: "token" },
  "approveAndCall(address,uint256)": { args: [1], kind: "token" },
  "approveAndCall(address,uint256,bytes)": { args: [1], kind: "token" },
  // VmRegistry: each pulls its deposit (or amount) from the caller.
  "requestVm(address,bytes32,(uint32,uint32,uint32),uint256)": { args: [3], kind: "escrow" },
  "requestVm(address,bytes32,(uint32,uint32,uint32),uint256,uint256)": { args: [4], kind: "escrow" },
  "requestVmWithPermit(address,bytes32,(uint32,uint32,uint32),uint256,uint256,uint8,bytes32,bytes32)": { args: [3], kind: "escrow" },
  "openOrder(bytes32,(uint32,uint32,uint32),bytes32[],uint256,uint256)": { args: [4], kind: "escrow" },
  "topUp(uint256,uint256)": { args: [1], kind: "escrow" },
  "migrateVm(uint256,address,bytes32[],uint256,uint256)": { args: [4], kind: "escrow" },
};

/** Known functions that move no value although an argument name looks like an amount (`bid`'s price is an offer). */
const KNOWN_NO_VALUE = new Set(["bid(uint256,uint256)"]);

/**
 * The heuristic for functions not in the known list: every unsigned integer argument whose name looks like an amount,
 * and every unnamed one, is taken to move value of the target's token (or of the token the target escrows). A price
 * per second is not an amount: what a VM can cost is bounded by the deposit it is given.
 */
export const AMOUNT_LIKE = /amount|value|deposit|wad|stake|fund|payment|budget|allowance|collateral|assets|shares|sum|qty|quantity/i;

const DEFAULT_ESCROW: Record<string, string> = { VmRegistry: "CreditToken" };
const DEFAULT_NON_PAYABLE = ["VmRegistry", "CreditToken", "ProviderRegistry"];
const DEFAULT_UNITS: Record<string, { symbol: string; decimals: number }> = {
  CreditToken: { symbol: "NCC", decimals: 18 },
  [ETH]: { symbol: "ETH", decimals: 18 },
};

// ------------------------------------------------------------------ ABI helpers (viem's parser)

function canonicalType(p: AbiParameter): string {
  if (p.type.startsWith("tuple")) {
    const components = (p as { components?: readonly AbiParameter[] }).components ?? [];
    return `(${components.map(canonicalType).join(",")})${p.type.slice(5)}`;
  }
  return p.type;
}

function isDynamic(p: AbiParameter): boolean {
  if (p.type === "string" || p.type === "bytes" || p.type.endsWith("[]")) return true;
  const fixed = /^(.*)\[(\d+)\]$/.exec(p.type);
  if (fixed !== null) return isDynamic({ ...p, type: fixed[1]! } as AbiParameter);
  if (p.type === "tuple") return ((p as { components?: readonly AbiParameter[] }).components ?? []).some(isDynamic);
  return false;
}

function headWords(p: AbiParameter): number {
  if (isDynamic(p)) return 1;
  const fixed = /^(.*)\[(\d+)\]$/.exec(p.type);
  if (fixed !== null) return Number(fixed[2]) * headWords({ ...p, type: fixed[1]! } as AbiParameter);
  if (p.type === "tuple") return ((p as { components?: readonly AbiParameter[] }).components ?? []).reduce((n, c) => n + headWords(c), 0);
  return 1;
}

function parseFunction(signature: string): AbiFunction | undefined {
  try {
    const item = parseAbiItem(`function ${signature.trim()}` as string) as unknown as AbiFunction;
    return item.type === "function" ? item : undefined;
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ bounds from conditions

function numeric(value: string | number | undefined): bigint | undefined {
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 ? BigInt(value) : undefined;
  if (typeof value !== "string") return undefined;
  const v = value.trim();
  if (/^\d[\d_]*$/.test(v)) return BigInt(v.replaceAll("_", ""));
  if (/^0x[0-9a-fA-F]{1,64}$/.test(v)) return BigInt(v);
  return undefined; // a contract or member name, a region: not an amount
}

/** The upper bound the conditions put on one word (conditions of a rule all hold together). */
function boundOf(conditions: readonly ConditionJson[], matches: (c: ConditionJson) => boolean): Bound {
  let bound: Bound = "unbounded";
  const tighten = (b: bigint) => {
    if (bound === "unbounded" || b < bound) bound = b;
  };
  for (const c of conditions) {
    if (!matches(c)) continue;
    if (c.op === "le" || c.op === "eq") {
      const v = numeric(c.value);
      if (v !== undefined) tighten(v);
    } else if (c.op === "lt") {
      const v = numeric(c.value);
      if (v !== undefined) tighten(v === 0n ? 0n : v - 1n);
    } else if (c.op === "in") {
      const values = (c.set ?? []).map(numeric);
      if (values.length > 0 && values.every((x) => x !== undefined)) tighten(values.reduce((a, b) => (b! > a! ? b : a))!);
    }
  }
  return bound;
}

/** Whether condition `c` reads top-level argument `param` (by name, or by its head word number). */
function readsArgument(c: ConditionJson, param: AbiParameter, headWord: number): boolean {
  if (typeof c.arg === "number") return c.arg === headWord;
  const a = c.arg.trim();
  if (/^\d+$/.test(a)) return Number(a) === headWord;
  return param.name !== undefined && param.name !== "" && a === param.name;
}

const isMsgValue = (c: ConditionJson) => typeof c.arg === "string" && c.arg.trim() === "msg.value";

// ------------------------------------------------------------------ the lint

/** `90`, `"30m"`, `"1h"`, `"1d"`, `"2w"` -> seconds (as the compiler reads them); unreadable counts as no delay. */
function seconds(text: string | number): number {
  if (typeof text === "number") return text;
  const m = /^\s*(\d+)\s*(s|m|h|d|w)?\s*$/.exec(text);
  if (m === null) return 0;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[(m[2] ?? "s") as "s"];
}

function movesOf(rule: RuleJson, index: number, opts: Required<Omit<LintOptions, "units">>): ValueMove[] {
  const target = rule.target.trim();
  if (target === "self") return []; // the account's own functions move no tokens; they change who may
  const conditions = rule.conditions ?? [];
  const out: ValueMove[] = [];
  const fn = parseFunction(rule.function);
  const escrowed = opts.escrowToken[target] ?? target;
  if (fn === undefined) {
    out.push({ asset: ANY_ASSET, rule: index, function: rule.function, via: `${rule.function} (unreadable signature)`, bound: "unbounded", heuristic: true });
  } else {
    const signature = `${fn.name}(${fn.inputs.map(canonicalType).join(",")})`;
    const words: number[] = [];
    fn.inputs.reduce((w, p) => (words.push(w), w + headWords(p)), 0);
    const known = KNOWN[signature];
    const picked: { index: number; asset: string; heuristic: boolean }[] = [];
    if (known !== undefined) {
      for (const i of known.args) picked.push({ index: i, asset: known.kind === "token" ? target : escrowed, heuristic: false });
    } else if (!KNOWN_NO_VALUE.has(signature)) {
      fn.inputs.forEach((p, i) => {
        if (/^uint\d*$/.test(p.type) && (p.name === undefined || p.name === "" || AMOUNT_LIKE.test(p.name))) {
          picked.push({ index: i, asset: escrowed, heuristic: true });
        }
      });
    }
    for (const { index: i, asset, heuristic } of picked) {
      const param = fn.inputs[i]!;
      out.push({
        asset,
        rule: index,
        function: signature,
        via: `${fn.name}(${param.name !== undefined && param.name !== "" ? param.name : `arg ${i}`})`,
        bound: boundOf(conditions, (c) => readsArgument(c, param, words[i]!)),
        heuristic,
      });
    }
  }
  if (!opts.nonPayable.includes(target)) {
    const name = fn?.name ?? rule.function;
    out.push({ asset: ETH, rule: index, function: fn !== undefined ? `${fn.name}(${fn.inputs.map(canonicalType).join(",")})` : rule.function, via: `${name}(msg.value)`, bound: boundOf(conditions, isMsgValue), heuristic: false });
  }
  // A msg.value bound of zero means no ETH at all; keep only ETH moves that can be non-zero.
  return out.filter((m) => m.asset !== ETH || m.bound !== 0n);
}

const max = (a: Bound | undefined, b: Bound): Bound => (a === undefined ? b : a === "unbounded" || b === "unbounded" ? "unbounded" : a > b ? a : b);
const exceeds = (a: Bound, b: Bound) => b !== "unbounded" && (a === "unbounded" || a > b);

/** Formats `amount` of `asset` for people: `10,000 NCC`, `0.05 NCC`, `unbounded`. */
export function formatAmount(amount: Bound, asset: string, units: LintOptions["units"] = DEFAULT_UNITS): string {
  if (amount === "unbounded") return "unbounded";
  const unit = units?.[asset] ?? DEFAULT_UNITS[asset];
  if (unit === undefined) return `${group(amount.toString())} (raw units of ${asset === ANY_ASSET ? "an unknown token" : asset})`;
  const scale = 10n ** BigInt(unit.decimals);
  const whole = group((amount / scale).toString());
  const fraction = (amount % scale).toString().padStart(unit.decimals, "0").replace(/0+$/, "");
  return `${whole}${fraction === "" ? "" : "." + fraction} ${unit.symbol}`;
}

function group(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** `no delay`, `30m`, `1h`, `1d`, `90s`. */
export function formatDelay(s: number): string {
  if (s === 0) return "no delay";
  for (const [unit, n] of [["w", 604_800], ["d", 86_400], ["h", 3600], ["m", 60]] as const) if (s % n === 0) return `${s / n}${unit}`;
  return `${s}s`;
}

/**
 * Computes, for each class of `policy`, the most one call moves out of the account (token amounts, deposits, ETH), and
 * warns for every rule through which a class that is not stronger than a transfer class can move more than that
 * class's transfer rule allows. See docs/policy.md ("Value lint") for the rules and the heuristic.
 */
export function lintPolicy(policy: PolicyJson, options: LintOptions = {}): PolicyLint {
  const opts = {
    escrowToken: options.escrowToken ?? DEFAULT_ESCROW,
    nonPayable: options.nonPayable ?? DEFAULT_NON_PAYABLE,
  };
  const units = { ...DEFAULT_UNITS, ...(options.units ?? {}) };
  const classes: ClassValue[] = policy.classes.map((c: ClassJson) => {
    const moves = c.rules.flatMap((r, i) => movesOf(r, i, opts));
    const maxPerCall: Record<string, Bound> = {};
    for (const m of moves) maxPerCall[m.asset] = max(maxPerCall[m.asset], m.bound);
    return { name: c.name, threshold: c.threshold, signers: c.signers.length, delay: seconds(c.delay), moves, maxPerCall };
  });

  // Transfer classes: a rule on transfer(address,uint256) of a token; the bound is the largest over the class's such rules.
  const transfers: TransferClass[] = [];
  for (const c of classes) {
    for (const m of c.moves) {
      if (m.function !== "transfer(address,uint256)" || m.heuristic || m.asset === ETH) continue;
      const found = transfers.find((t) => t.class === c.name && t.asset === m.asset);
      if (found !== undefined) found.bound = max(found.bound, m.bound);
      else transfers.push({ class: c.name, asset: m.asset, bound: m.bound });
    }
  }

  const byName = new Map(classes.map((c) => [c.name, c]));
  const label = (c: ClassValue) => `'${c.name}' (${c.threshold} of ${c.signers}, ${formatDelay(c.delay)})`;
  /** S is strictly stronger than T: at least as many approvals and as long a delay, and more of one. */
  const stronger = (s: ClassValue, t: ClassValue) =>
    s.threshold >= t.threshold && s.delay >= t.delay && (s.threshold > t.threshold || s.delay > t.delay);

  const warnings: LintWarning[] = [];
  for (const c of classes) {
    for (const m of c.moves) {
      if (m.asset === ETH) {
        if (m.bound === "unbounded") {
          warnings.push({
            class: c.name, rule: m.rule, function: m.function, via: m.via, asset: ETH, bound: m.bound,
            message: `class ${label(c)} can send unbounded ETH via ${m.via}: the rule has no { "arg": "msg.value", "op": "le" } condition and its target may be payable`,
          });
        }
        continue;
      }
      // The transfer limits this move is held to: those of its token (every token's for an unknown one), of transfer
      // classes this class is not stronger than (the class itself included); the lowest is the one reported.
      const ownToken = transfers.some((t) => t.asset === m.asset);
      let reference: { t: TransferClass; cls: ClassValue } | undefined;
      for (const t of transfers) {
        if (ownToken ? t.asset !== m.asset : !m.heuristic) continue;
        const tc = byName.get(t.class)!;
        if (stronger(c, tc) || !exceeds(m.bound, t.bound)) continue;
        if (reference === undefined || exceeds(reference.t.bound, t.bound)) reference = { t, cls: tc };
      }
      if (reference === undefined) continue;
      const tokenNote = m.asset === ANY_ASSET || !ownToken ? ` (${m.heuristic ? "heuristic: unknown function, amount-like argument" : "unknown token"})` : "";
      warnings.push({
        class: c.name, rule: m.rule, function: m.function, via: m.via, asset: m.asset, bound: m.bound,
        reference: { class: reference.t.class, bound: reference.t.bound },
        message:
          `class ${label(c)} can move up to ${formatAmount(m.bound, m.asset, units)} via ${m.via}${tokenNote} — more than ` +
          `${label(reference.cls)} allows for transfer (${formatAmount(reference.t.bound, reference.t.asset, units)})`,
      });
    }
  }
  return { classes, transfers, warnings };
}
