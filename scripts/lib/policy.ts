// PolicyAccount policies as people write them (JSON, see examples/policy.json and docs/policy.md) and as the
// contract takes them (`PolicySpec`), plus the EIP-712 typed data signers sign. Shared by the policy:* and
// agent:* tasks, the tests and bench/gas-policy.ts.
import {
  AbiCoder,
  FunctionFragment,
  ParamType,
  Signature,
  TypedDataEncoder,
  ZeroAddress,
  concat,
  encodeBytes32String,
  getBytes,
  getAddress,
  id,
  keccak256,
  type TypedDataDomain,
  type TypedDataField,
} from "ethers";
import { UserError } from "./errors.ts";

// ------------------------------------------------------------------ contract shapes

/** Mirrors `ConditionOp` in contracts/policy/PolicyTypes.sol. */
export const ConditionOp = { Eq: 0, Ne: 1, Lt: 2, Le: 3, Gt: 4, Ge: 5, InSet: 6, NotInSet: 7, AllInSet: 8, OwnedBy: 9 } as const;
/** Mirrors `ConditionSubject`: which word a condition reads. */
export const ConditionSubject = { Arg: 0, ArgField: 1, CallValue: 2 } as const;
/** How a policy file names the call's ETH value as a condition's `arg`. */
export const CALL_VALUE_ARG = "msg.value";
/** Mirrors `OperationState`. */
export const OPERATION_STATES = ["None", "Proposed", "Queued", "Ready", "Executed", "Cancelled", "Expired", "Stale"] as const;
export const OperationState = Object.fromEntries(OPERATION_STATES.map((name, i) => [name, BigInt(i)])) as Record<
  (typeof OPERATION_STATES)[number],
  bigint
>;
/** Mirrors `Limit`. */
export const Limit = {
  Classes: 0n, Signers: 1n, Guardians: 2n, Rules: 3n, Conditions: 4n, SetValues: 5n, RulesPerSelector: 6n, Members: 7n,
  Calls: 8n, Pending: 9n, Delay: 10n, PolicyBytes: 11n, ExpiryWindow: 12n,
} as const;
/** Index of the recovery class in `getClass` and `OperationProposed`. */
export const RECOVERY_CLASS = 255;

export interface Call {
  target: string;
  value: bigint;
  data: string;
}

export interface ConditionSpec {
  op: number;
  arg: number;
  field: number;
  subject: number;
  value: bigint;
  set: string[];
}

export interface RuleSpec {
  target: string;
  selector: string;
  spendArg: number;
  actionWords: number;
  actionTypeHash: string;
  conditions: ConditionSpec[];
}

export interface ClassSpec {
  name: string;
  signers: string[];
  threshold: number;
  delay: number;
  expiryWindow: number;
  guardians: string[];
  rules: RuleSpec[];
}

export interface PolicySpec {
  classes: ClassSpec[];
  recovery: ClassSpec;
}

/** The named EIP-712 type a rule gives single calls, kept beside the spec (the contract stores only its hash). */
export interface ActionType {
  /** e.g. `TerminateVm` */
  name: string;
  /** The function's flattened static parameters, e.g. `[{ name: "vmId", type: "uint256" }]`. */
  fields: TypedDataField[];
  selector: string;
  target: string;
}

export interface BuiltPolicy {
  spec: PolicySpec;
  /** Named action types by `target:selector` (target lower-case, "self" for the account). */
  actions: Record<string, ActionType>;
  /** keccak256(abi.encode(spec)) as the contract computes it. */
  hash: string;
}

const POLICY_SPEC_TYPE =
  "tuple(tuple(bytes32 name,address[] signers,uint8 threshold,uint32 delay,uint32 expiryWindow,address[] guardians," +
  "tuple(address target,bytes4 selector,uint8 spendArg,uint8 actionWords,bytes32 actionTypeHash," +
  "tuple(uint8 op,uint8 arg,uint8 field,uint8 subject,uint256 value,bytes32[] set)[] conditions)[] rules)[] classes," +
  "tuple(bytes32 name,address[] signers,uint8 threshold,uint32 delay,uint32 expiryWindow,address[] guardians," +
  "tuple(address target,bytes4 selector,uint8 spendArg,uint8 actionWords,bytes32 actionTypeHash," +
  "tuple(uint8 op,uint8 arg,uint8 field,uint8 subject,uint256 value,bytes32[] set)[] conditions)[] rules) recovery)";

/** keccak256(abi.encode(policy)), the hash `PolicyChanged` carries. */
export function policyHash(spec: PolicySpec): string {
  return keccak256(AbiCoder.defaultAbiCoder().encode([POLICY_SPEC_TYPE], [spec]));
}

// ------------------------------------------------------------------ JSON policies

/** A condition in a policy file. `arg` names a parameter (`deposit`), a tuple field (`resources.vcpu`), a
 * head word by number, or `msg.value` (the ETH the call sends); `op` is one of eq ne lt le gt ge in notIn allIn
 * ownedBy. A call that sends ETH matches only a rule with a `msg.value` condition. */
export interface ConditionJson {
  arg: string | number;
  op: "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "in" | "notIn" | "allIn" | "ownedBy";
  value?: string | number;
  set?: (string | number)[];
  /** For ownedBy: the view function (default `getVm(uint256)`) and its contract (default: the call's target). */
  view?: string;
  registry?: string;
  note?: string;
}

export interface RuleJson {
  /** A contract name of the deployment (`VmRegistry`, `CreditToken`), `self`, or an address. */
  target: string;
  /** Full signature with parameter names, e.g. `terminateVm(uint256 vmId)`. */
  function: string;
  /** Name of the EIP-712 type signers see for a single call (only for functions with static parameters). */
  action?: string;
  /** Parameter whose value an agent's allowance is charged with. */
  spend?: string;
  conditions?: ConditionJson[];
}

export interface ClassJson {
  name: string;
  signers: string[];
  threshold: number;
  /** Seconds, or `30m`, `1h`, `1d`. */
  delay: string | number;
  expiryWindow: string | number;
  guardians?: string[];
  rules: RuleJson[];
}

export interface PolicyJson {
  description?: string;
  /** Names for members: an address or a node account index (`#10`). */
  members?: Record<string, string>;
  classes: ClassJson[];
  recovery: ClassJson;
}

export interface BuildContext {
  /** Contract names usable as rule targets, e.g. `{ VmRegistry: "0x..", CreditToken: "0x.." }`. */
  contracts: Record<string, string>;
  /** Resolves a member (a name from `members`, an address or `#index`) to an address. */
  resolveMember: (text: string) => string;
}

/** `90`, `"30m"`, `"1h"`, `"1d"`, `"2w"` -> seconds. */
export function parseDuration(text: string | number, what: string): number {
  if (typeof text === "number") return text;
  const m = /^\s*(\d+)\s*(s|m|h|d|w)?\s*$/.exec(text);
  if (m === null) throw new UserError(`${what} must be a duration like 3600, 30m, 1h or 1d, got "${text}".`);
  const unit = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[(m[2] ?? "s") as "s"];
  return Number(m[1]) * unit;
}

const OPS: Record<ConditionJson["op"], number> = {
  eq: ConditionOp.Eq, ne: ConditionOp.Ne, lt: ConditionOp.Lt, le: ConditionOp.Le, gt: ConditionOp.Gt, ge: ConditionOp.Ge,
  in: ConditionOp.InSet, notIn: ConditionOp.NotInSet, allIn: ConditionOp.AllInSet, ownedBy: ConditionOp.OwnedBy,
};

/** Where a parameter (or a field of a tuple parameter) sits in the ABI encoding. */
export interface WordLocation {
  arg: number;
  field: number;
  deref: boolean;
  type: ParamType;
}

/** Whether the ABI encodes `t` out of line (behind an offset). */
export function isDynamic(t: ParamType): boolean {
  if (t.baseType === "string" || t.baseType === "bytes") return true;
  if (t.isArray()) return t.arrayLength === -1 || isDynamic(t.arrayChildren);
  if (t.isTuple()) return t.components.some(isDynamic);
  return false;
}

function headWords(t: ParamType): number {
  if (t.isTuple() && !isDynamic(t)) return t.components.reduce((n, c) => n + headWords(c), 0);
  if (t.isArray() && !isDynamic(t)) return t.arrayLength * headWords(t.arrayChildren);
  return 1;
}

/** The ABI word of `path` (`deposit`, `resources.vcpu`, `order.regions`) in calls of `fragment`. */
export function locate(fragment: FunctionFragment, path: string | number): WordLocation {
  if (typeof path === "number" || /^\d+$/.test(path)) {
    return { arg: Number(path), field: 0, deref: false, type: ParamType.from("uint256") };
  }
  const parts = path.split(".");
  let word = 0;
  let params: readonly ParamType[] = fragment.inputs;
  let deref = false;
  let arg = 0;
  for (let p = 0; p < parts.length; p++) {
    const name = parts[p];
    const index = params.findIndex((x) => x.name === name);
    if (index < 0) throw new UserError(`${fragment.format("sighash")} has no parameter "${parts.slice(0, p + 1).join(".")}".`);
    for (let i = 0; i < index; i++) word += headWords(params[i]!);
    const t = params[index]!;
    const last = p === parts.length - 1;
    if (last) return deref ? { arg, field: word, deref, type: t } : { arg: word, field: 0, deref: isDynamic(t), type: t };
    if (!t.isTuple()) throw new UserError(`"${parts.slice(0, p + 1).join(".")}" is not a tuple.`);
    if (isDynamic(t)) {
      if (deref) throw new UserError(`"${path}": conditions reach one dynamic level only.`);
      deref = true;
      arg = word;
      word = 0;
    }
    params = t.components;
  }
  throw new UserError(`empty argument path`);
}

function flatStaticFields(params: readonly ParamType[], prefix = ""): TypedDataField[] | undefined {
  const out: TypedDataField[] = [];
  for (const p of params) {
    if (isDynamic(p)) return undefined;
    if (p.isTuple()) {
      const inner = flatStaticFields(p.components, "");
      if (inner === undefined) return undefined;
      out.push(...inner.map((f) => ({ name: `${prefix}${f.name}`, type: f.type })));
    } else if (p.isArray()) {
      return undefined;
    } else {
      out.push({ name: p.name === "" ? `arg${out.length}` : p.name, type: p.type });
    }
  }
  return out;
}

/** The full EIP-712 type string of a named action: the call's target, value and selector, its static arguments, then
 * the nonce, policy version and deadline. */
export function actionTypeString(name: string, fields: readonly TypedDataField[]): string {
  const all = actionFields(fields);
  const names = new Set(all.map((f) => f.name));
  if (names.size !== all.length) {
    throw new UserError(`Action ${name}: a parameter is named like one of ${[...HEAD_FIELDS, ...TAIL_FIELDS].map((f) => f.name).join(", ")}.`);
  }
  return `${name}(${all.map((f) => `${f.type} ${f.name}`).join(",")})`;
}

function actionFields(fields: readonly TypedDataField[]): TypedDataField[] {
  return [...HEAD_FIELDS, ...fields, ...TAIL_FIELDS];
}

const HEAD_FIELDS: TypedDataField[] = [
  { name: "target", type: "address" },
  { name: "value", type: "uint256" },
  { name: "selector", type: "bytes4" },
];

const TAIL_FIELDS: TypedDataField[] = [
  { name: "nonce", type: "uint256" },
  { name: "policyVersion", type: "uint64" },
  { name: "deadline", type: "uint256" },
];

function toWord(value: string | number, ctx: BuildContext, type?: ParamType): bigint | string {
  if (typeof value === "number") return BigInt(value);
  const v = value.trim();
  if (ctx.contracts[v] !== undefined) return BigInt(ctx.contracts[v]!);
  if (/^0x[0-9a-fA-F]{40}$/.test(v)) return BigInt(getAddress(v));
  if (/^0x[0-9a-fA-F]{64}$/.test(v)) return BigInt(v);
  if (/^\d[\d_]*$/.test(v)) return BigInt(v.replaceAll("_", ""));
  if (type?.baseType === "address" || /^#\d+$/.test(v)) return BigInt(ctx.resolveMember(v));
  // Any other text is a short string such as a region code, stored as bytes32.
  return BigInt(encodeBytes32String(v));
}

const word32 = (x: bigint | string) => "0x" + BigInt(x).toString(16).padStart(64, "0");

function buildClass(c: ClassJson, ctx: BuildContext, actions: Record<string, ActionType>): ClassSpec {
  const sorted = (list: string[]) =>
    [...new Set(list.map((m) => getAddress(ctx.resolveMember(m))))].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
  const rules: RuleSpec[] = c.rules.map((r) => {
    const fragment = FunctionFragment.from(r.function);
    const target = r.target === "self" ? ZeroAddress : getAddress(ctx.contracts[r.target] ?? r.target);
    const conditions = (r.conditions ?? []).map((cj): ConditionSpec => {
      const op = OPS[cj.op];
      if (op === undefined) throw new UserError(`Unknown condition op "${cj.op}" in class ${c.name}.`);
      if (cj.arg === CALL_VALUE_ARG) {
        if (op === ConditionOp.AllInSet || op === ConditionOp.OwnedBy) {
          throw new UserError(`${r.function}: "${CALL_VALUE_ARG}" can only be compared (eq ne lt le gt ge in notIn).`);
        }
        const set = (cj.set ?? []).map((x) => word32(toWord(x, ctx)));
        const value = cj.value !== undefined ? BigInt(toWord(cj.value, ctx)) : 0n;
        return { op, arg: 0, field: 0, subject: ConditionSubject.CallValue, value, set };
      }
      const at = locate(fragment, cj.arg);
      if (op === ConditionOp.AllInSet && (!at.deref || at.field !== 0 || !at.type.isArray())) {
        throw new UserError(`${r.function}: allIn needs an array parameter of the function itself, "${cj.arg}" is not one.`);
      }
      let set: string[] = (cj.set ?? []).map((x) => word32(toWord(x, ctx)));
      let value = cj.value !== undefined ? BigInt(toWord(cj.value, ctx, at.type)) : 0n;
      if (op === ConditionOp.OwnedBy) {
        set = cj.view !== undefined ? [id(FunctionFragment.from(cj.view).format("sighash")).slice(0, 10).padEnd(66, "0")] : [];
        value = cj.registry !== undefined ? BigInt(toWord(cj.registry, ctx)) : 0n;
      }
      // A dynamic parameter (a tuple's field, or an array for allIn) is read through its offset.
      const subject = at.deref ? ConditionSubject.ArgField : ConditionSubject.Arg;
      return { op, arg: at.arg, field: at.field, subject, value, set };
    });
    let actionWords = 0;
    let actionTypeHash = "0x" + "00".repeat(32);
    if (r.action !== undefined) {
      const fields = flatStaticFields(fragment.inputs);
      if (fields === undefined) throw new UserError(`${r.function}: a named action needs static parameters only.`);
      actionWords = fields.length;
      actionTypeHash = id(actionTypeString(r.action, fields));
      actions[`${r.target === "self" ? "self" : target.toLowerCase()}:${fragment.selector}`] = {
        name: r.action,
        fields,
        selector: fragment.selector,
        target,
      };
    }
    const spendArg = r.spend !== undefined ? locate(fragment, r.spend).arg + 1 : 0;
    return { target, selector: fragment.selector, spendArg, actionWords, actionTypeHash, conditions };
  });
  return {
    name: encodeBytes32String(c.name),
    signers: sorted(c.signers),
    threshold: c.threshold,
    delay: parseDuration(c.delay, `${c.name}.delay`),
    expiryWindow: parseDuration(c.expiryWindow, `${c.name}.expiryWindow`),
    guardians: sorted(c.guardians ?? []),
    rules,
  };
}

/** Turns a policy file into the contract's `PolicySpec`, with its named action types and hash. */
export function buildPolicy(json: PolicyJson, ctx: BuildContext): BuiltPolicy {
  const named = json.members ?? {};
  const inner = ctx.resolveMember;
  const withNames: BuildContext = { ...ctx, resolveMember: (t) => inner(named[t] ?? t) };
  const actions: Record<string, ActionType> = {};
  const spec: PolicySpec = {
    classes: json.classes.map((c) => buildClass(c, withNames, actions)),
    recovery: buildClass(json.recovery, withNames, actions),
  };
  return { spec, actions, hash: policyHash(spec) };
}

// ------------------------------------------------------------------ typed data

export interface SigningTarget {
  chainId: bigint;
  account: string;
}

export function domainOf(t: SigningTarget): TypedDataDomain {
  return { name: "NovaCron PolicyAccount", version: "1", chainId: t.chainId, verifyingContract: t.account };
}

export const OPERATION_TYPES: Record<string, TypedDataField[]> = {
  Operation: [
    { name: "calls", type: "Call[]" },
    { name: "nonce", type: "uint256" },
    { name: "policyVersion", type: "uint64" },
    { name: "deadline", type: "uint256" },
  ],
  Call: [
    { name: "target", type: "address" },
    { name: "value", type: "uint256" },
    { name: "data", type: "bytes" },
  ],
};

export interface TypedOperation {
  domain: TypedDataDomain;
  types: Record<string, TypedDataField[]>;
  primaryType: string;
  message: Record<string, unknown>;
}

/**
 * The typed data for approving `calls`: the named action when `action` is given and there is one call, else the
 * generic `Operation`. Callers check the digest against the contract's `operationDigest` (see {@link digestOf}).
 */
export function typedOperation(
  t: SigningTarget,
  calls: readonly Call[],
  nonce: bigint,
  version: bigint,
  deadline: bigint,
  action?: ActionType,
): TypedOperation {
  const domain = domainOf(t);
  const call = calls[0];
  if (action !== undefined && calls.length === 1 && call !== undefined) {
    const decoded = AbiCoder.defaultAbiCoder().decode(
      action.fields.map((f) => f.type),
      "0x" + call.data.slice(10),
    );
    const message: Record<string, unknown> = { target: call.target, value: call.value, selector: call.data.slice(0, 10) };
    action.fields.forEach((f, i) => (message[f.name] = decoded[i]));
    Object.assign(message, { nonce, policyVersion: version, deadline });
    return { domain, types: { [action.name]: actionFields(action.fields) }, primaryType: action.name, message };
  }
  return {
    domain,
    types: OPERATION_TYPES,
    primaryType: "Operation",
    message: { calls: calls.map((c) => ({ target: c.target, value: c.value, data: c.data })), nonce, policyVersion: version, deadline },
  };
}

export function digestOf(op: TypedOperation): string {
  return TypedDataEncoder.hash(op.domain, op.types, op.message);
}

/** The named action a single call uses under `actions` (the account's own calls are keyed as "self"). */
export function actionFor(actions: Record<string, ActionType>, account: string, calls: readonly Call[]): ActionType | undefined {
  const call = calls[0];
  if (calls.length !== 1 || call === undefined || call.data.length < 10) return undefined;
  const target = getAddress(call.target) === getAddress(account) ? "self" : call.target.toLowerCase();
  return actions[`${target}:${call.data.slice(0, 10).toLowerCase()}`];
}

/** The 64-byte ERC-2098 form (r ‖ vs) of a 65-byte signature. */
export function compactSignature(signature: string): string {
  return Signature.from(signature).compactSerialized;
}

/** One approval: an EOA's ECDSA signature (65 bytes r ‖ s ‖ v, or 64 bytes ERC-2098), or with `contract` any bytes
 * an ERC-1271 contract signer (e.g. a Safe) accepts. */
export interface SignerSignature {
  signer: string;
  signature: string;
  contract?: boolean;
}

/** Signatures sorted by signer, as the contract requires. */
export function sortSignatures<T extends { signer: string }>(sigs: T[]): T[] {
  return [...sigs].sort((a, b) => (BigInt(a.signer) < BigInt(b.signer) ? -1 : BigInt(a.signer) > BigInt(b.signer) ? 1 : 0));
}

/**
 * The contract's packed `signatures` argument, entries in the order given (sort them with {@link sortSignatures}):
 * `v ‖ r ‖ s` for a 65-byte signature, `0x00 ‖ r ‖ vs` for an ERC-2098 one, `0x01 ‖ signer ‖ uint16 length ‖ bytes`
 * for a contract signer. An ECDSA entry carries no address: the contract recovers it.
 */
export function packSignatures(sigs: readonly SignerSignature[]): string {
  return concat(["0x", ...sigs.map(packedEntry)]);
}

function packedEntry(s: SignerSignature): string {
  const bytes = getBytes(s.signature);
  if (s.contract === true) {
    if (bytes.length > 0xffff) throw new UserError(`The contract signature of ${s.signer} is ${bytes.length} bytes; at most 65,535 fit.`);
    return concat(["0x01", getAddress(s.signer), new Uint8Array([bytes.length >> 8, bytes.length & 0xff]), bytes]);
  }
  if (bytes.length === 64) return concat(["0x00", bytes]);
  if (bytes.length === 65) return concat([bytes.subarray(64), bytes.subarray(0, 64)]);
  throw new UserError(
    `The signature of ${s.signer} is ${bytes.length} bytes; an ECDSA signature has 64 or 65.`,
    "Mark the signatures of contract signers (ERC-1271) as such.",
  );
}

/** A random 64-bit operation nonce (ids are nonces; any unused value works). */
export function randomNonce(): bigint {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return bytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
}
