// Turns failures into short, actionable messages: contract custom errors are decoded with the
// contracts' ABIs into `VmRegistryUnexpectedState(vmId=3, current=Terminated)` lines, followed by
// what to do. Tasks never show a stack trace unless Hardhat's --show-stack-traces is given.
import { Interface, formatUnits, type JsonFragment, type JsonFragmentType } from "ethers";
import { errorResult } from "hardhat/utils/result";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

/** A problem the user can fix (bad option, missing deployment, ...). Printed without a stack trace. */
export class UserError extends Error {
  override readonly name = "UserError";
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.hint = hint;
  }
}

/** A contract ABI as found in a Hardhat artifact. */
export type Abi = readonly JsonFragment[];

export interface DecodedContractError {
  /** The error's name, e.g. `VmRegistryUnexpectedState`. */
  name: string;
  /** Argument values by name, formatted for people (enums by name, structs as `{a=1, b=2}`). */
  args: Record<string, string>;
  /** Argument values by name as decoded (bigint, string, ...). */
  rawArgs: Record<string, unknown>;
  /** `VmRegistryUnexpectedState(vmId=3, current=Terminated)` */
  line: string;
}

/**
 * Enum types the ABI only knows as uint8, by the `internalType` solc writes for them.
 * The order must match the Solidity declaration (contracts/interfaces/IVmRegistry.sol).
 */
const ENUMS: Record<string, readonly string[]> = {
  "enum VmState": ["None", "Requested", "Provisioning", "Running", "Stopped", "Starting", "Failed", "Terminated", "Bidding", "Suspended"],
  "enum LeaseStatus": ["Ok", "NotRegistered", "StakeTooLow", "ExceedsCapacity"],
};

/**
 * Decodes revert data (`0x` + 4-byte selector + ABI-encoded arguments) against the custom errors of
 * `abis`, plus Solidity's built-in `Error(string)` and `Panic(uint256)`. Returns `undefined` when the
 * selector is unknown.
 */
export function decodeRevertData(data: string, abis: readonly Abi[]): DecodedContractError | undefined {
  if (!/^0x[0-9a-fA-F]{8}/.test(data)) return undefined;
  for (const abi of abis) {
    const iface = new Interface(abi as JsonFragment[]);
    let parsed;
    try {
      parsed = iface.parseError(data);
    } catch {
      continue; // selector known but data malformed: try the next ABI
    }
    if (parsed === null) continue;
    const jsonInputs =
      abi.find((f) => f.type === "error" && f.name === parsed.name && (f.inputs?.length ?? 0) === parsed.args.length)?.inputs ??
      [];
    const args: Record<string, string> = {};
    const rawArgs: Record<string, unknown> = {};
    parsed.fragment.inputs.forEach((input, i) => {
      const name = input.name || `arg${i}`;
      const value: unknown = parsed.args[i];
      rawArgs[name] = value;
      args[name] = formatValue(value, jsonInputs[i]);
    });
    const line = `${parsed.name}(${Object.entries(args)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ")})`;
    return { name: parsed.name, args, rawArgs, line };
  }
  return undefined;
}

function formatValue(value: unknown, type: JsonFragmentType | undefined): string {
  const enumNames = type?.internalType !== undefined ? ENUMS[type.internalType] : undefined;
  if (enumNames !== undefined && (typeof value === "bigint" || typeof value === "number")) {
    return enumNames[Number(value)] ?? `Unknown(${value})`;
  }
  if (type?.components !== undefined && Array.isArray(value)) {
    const parts = type.components.map((c, i) => `${c.name ?? i}=${formatValue(value[i], c)}`);
    return `{${parts.join(", ")}}`;
  }
  if (Array.isArray(value)) return `[${value.map((v) => formatValue(v, undefined)).join(", ")}]`;
  return String(value);
}

/**
 * Finds revert data in whatever ethers, hardhat-ethers, EDR or a JSON-RPC node threw: the first
 * hex string under a `data` key, searching nested `error`, `info`, `cause` and `data` objects.
 */
export function findRevertData(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  const visit = (value: unknown, depth: number): string | undefined => {
    if (value === null || typeof value !== "object" || seen.has(value) || depth > 6) return undefined;
    seen.add(value);
    const record = value as Record<string, unknown>;
    const data = record["data"];
    if (typeof data === "string" && /^0x[0-9a-fA-F]{8}/.test(data)) return data;
    for (const key of ["data", "error", "info", "cause", "revert", "payload"]) {
      const found = visit(record[key], depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return visit(error, 0);
}

/** How the user runs a task again, for hints: `npx hardhat vm:status --id 3 --network localhost`. */
export interface HintContext {
  /** The --network the task ran with, if any. */
  network?: string | undefined;
}

export function command(ctx: HintContext, args: string): string {
  return `npx hardhat ${args}${ctx.network !== undefined ? ` --network ${ctx.network}` : ""}`;
}

type Hint = (e: DecodedContractError, ctx: HintContext) => string;

const tokens = (value: unknown) => `${formatUnits(value as bigint, 18)} NCC`;

/** What to do about each contract error; errors without an entry get no hint. */
const HINTS: Record<string, Hint> = {
  VmRegistryUnknownVm: (e, ctx) => `There is no VM ${e.args["vmId"]}. List the VMs with \`${command(ctx, "vm:list")}\`.`,
  VmRegistryUnexpectedState: (e, ctx) =>
    `VM ${e.args["vmId"]} is ${e.args["current"]}, which does not allow this. ` +
    `Stop needs Running, start needs Stopped, terminate needs a state other than Failed or Terminated. ` +
    `See \`${command(ctx, `vm:status --id ${e.args["vmId"]}`)}\`.`,
  VmRegistryNotOwner: (e) =>
    `Only the VM's owner ${e.args["owner"]} may do this; the transaction came from ${e.args["caller"]}. Pass --from ${e.args["owner"]}.`,
  VmRegistryNotOperator: (e) =>
    `Only the provider's operator ${e.args["operator"]} may report on VM ${e.args["vmId"]}; ${e.args["caller"]} is not it.`,
  VmRegistryZeroDeposit: () => "Pass a deposit greater than zero, e.g. --deposit 100.",
  VmRegistryZeroResources: () => "Every resource in the manifest (vcpu, memoryMiB, diskGiB) must be at least 1.",
  VmRegistryEmptyManifest: () => "The manifest digest is zero; publish the manifest and pass its CID's digest.",
  VmRegistryUnknownProvider: (e, ctx) =>
    `${e.args["provider"]} is not a registered provider. Pass --provider with a registered provider's owner address, ` +
    `or register one with \`${command(ctx, "provider:register ...")}\`.`,
  VmRegistryExceedsCapacity: (e) =>
    `The manifest asks for ${e.args["requested"]} but the provider offers at most ${e.args["capacity"]}. ` +
    `Lower the manifest's resources or choose a larger provider.`,
  VmRegistryMissingFailureReason: () => "A failure report needs a non-zero reason code.",
  VmRegistryNothingToWithdraw: (e, ctx) =>
    `Provider ${e.args["provider"]} has no settled earnings. Earnings of Running VMs settle when they are touched: ` +
    `\`${command(ctx, "provider:withdraw --settle all")}\`.`,
  ProviderRegistryAlreadyRegistered: (e) =>
    `${e.args["provider"]} is already a provider. Register from another account with --from.`,
  ProviderRegistryNotRegistered: (e) => `${e.args["provider"]} is not a registered provider.`,
  ProviderRegistryStakeTooLow: (e) =>
    `The stake ${tokens(e.rawArgs["stake"])} is below the minimum ${tokens(e.rawArgs["minimumStake"])}: pass --stake ${formatUnits(e.rawArgs["minimumStake"] as bigint, 18)} or more.`,
  ProviderRegistryInvalidOperator: () =>
    "The operator must be a non-zero address different from the provider's own (owner) address: the daemon's hot key.",
  ProviderRegistryOperatorTaken: (e) =>
    `${e.args["operator"]} already operates provider ${e.args["provider"]}; each provider needs its own operator key.`,
  ProviderRegistryNotNominated: (e, ctx) =>
    `${e.args["caller"]} is not the operator provider ${e.args["provider"]} nominated (pending: ${e.args["pending"]}). ` +
    `The provider's owner nominates the key first: \`${command(ctx, `provider:set-operator --operator ${e.args["caller"]}`)}\`.`,
  VmRegistryProviderNoOperator: (e, ctx) =>
    `Provider ${e.args["provider"]} has no operator yet: the key it nominated has not accepted. ` +
    `Choose another provider, or (as that provider) run \`${command(ctx, `provider:accept-operator --provider ${e.args["provider"]}`)}\` with the operator key.`,
  ProviderRegistryZeroCapacity: () => "Declare a non-zero capacity in every dimension: --vcpu, --memory and --disk.",
  ProviderRegistryInvalidRegion: () => "Pass a region code, e.g. --region eu-west-1.",
  ProviderRegistryZeroAmount: () => "The amount must be greater than zero.",
  ERC20InsufficientBalance: (e) =>
    `${e.args["sender"]} holds ${tokens(e.rawArgs["balance"])} but ${tokens(e.rawArgs["needed"])} are needed. ` +
    `Get NCC from an account that has some (on the local node, account #0 holds the supply), or use a smaller amount.`,
  ERC20InsufficientAllowance: (e) =>
    `The contract ${e.args["spender"]} may spend ${tokens(e.rawArgs["allowance"])} but needs ${tokens(e.rawArgs["needed"])}. ` +
    `The approval or permit did not go through; run the task again.`,
  ERC2612ExpiredSignature: () => "The permit signature expired before it was mined; run the task again.",
  ERC2612InvalidSigner: () => "The permit was signed by the wrong account; run the task again from the paying account.",
  SafeCastOverflowedUintDowncast: (e) =>
    `A value (${e.args["value"]}) does not fit in ${e.args["bits"]} bits; deposits are limited to 2^96 wei (about 79 billion NCC).`,
};

export interface ErrorReport {
  /** The first line, e.g. `VmRegistryUnexpectedState(vmId=3, current=Terminated)`. */
  message: string;
  /** What to do, when known. */
  hint: string | undefined;
  /** The decoded contract error, when the failure was a revert with known data. */
  contractError: DecodedContractError | undefined;
}

/** Describes any failure of a task for a person: decoded reverts, user errors, unreachable services. */
export function describeError(error: unknown, abis: readonly Abi[], ctx: HintContext = {}): ErrorReport {
  if (error instanceof UserError) return { message: error.message, hint: error.hint, contractError: undefined };

  const data = findRevertData(error);
  const decoded = data !== undefined ? decodeRevertData(data, abis) : undefined;
  if (decoded !== undefined) {
    const hint = HINTS[decoded.name]?.(decoded, ctx);
    return { message: `${revertPrefix(error)}: ${decoded.line}`, hint, contractError: decoded };
  }

  const text = messageOf(error);
  if (/ECONNREFUSED|connect ECONNREFUSED|Cannot connect to the network|fetch failed/i.test(text + messageOf(causeOf(error)))) {
    return {
      message: `Could not reach a service: ${firstLine(text)}`,
      hint:
        "Is the local stack running? Start it with `npm start`, or start a node with " +
        "`npx hardhat node --hostname 127.0.0.1` and deploy with `npx hardhat run --network localhost scripts/deploy-local.ts`.",
      contractError: undefined,
    };
  }
  const reason = (error as { reason?: unknown } | null)?.reason;
  if (typeof reason === "string" && reason !== "") {
    return { message: `${revertPrefix(error)}: ${reason}`, hint: undefined, contractError: undefined };
  }
  if (data !== undefined) {
    return { message: `${revertPrefix(error)} with unknown data ${data}`, hint: undefined, contractError: undefined };
  }
  return { message: firstLine(text), hint: undefined, contractError: undefined };
}

/**
 * ethers' own errors record what it was doing (a read or a transaction); Hardhat's ProviderError
 * does not, so the neutral wording is the default.
 */
function revertPrefix(error: unknown): string {
  const action = (error as { action?: unknown } | null)?.action;
  if (action === "call") return "The call reverted";
  if (action === "estimateGas") return "The transaction would revert";
  if (action === "sendTransaction") return "The transaction reverted";
  return "The contract reverted";
}

function messageOf(error: unknown): string {
  if (error === null || error === undefined) return "";
  const short = (error as { shortMessage?: unknown }).shortMessage;
  if (typeof short === "string" && short !== "") return short;
  if (error instanceof Error) return error.message;
  return String(error);
}

function causeOf(error: unknown): unknown {
  return error instanceof Error ? error.cause : undefined;
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? text;
}

/** Prints a report to stderr as `Error: ...` and an indented hint. */
export function printErrorReport(report: ErrorReport, print: (line: string) => void = console.error): void {
  print(`Error: ${report.message}`);
  if (report.hint !== undefined) print(`  ${report.hint}`);
}

/** The ABIs whose errors tasks decode: the NovaCron contracts, governance and PolicyAccount (the token's ERC-20 errors bubble up). */
export async function novaCronAbis(hre: HardhatRuntimeEnvironment): Promise<Abi[]> {
  const names = ["VmRegistry", "ProviderRegistry", "CreditToken", "NovaCronGovernor", "NovaCronTimelock", "PolicyAccount"] as const;
  const abis: Abi[] = [];
  for (const name of names) {
    try {
      abis.push((await hre.artifacts.readArtifact(name)).abi as Abi);
    } catch {
      // Not compiled: errors are shown undecoded.
    }
  }
  return abis;
}

/** What task actions return: Hardhat's `Result` shape. */
export type TaskResult<T> = { success: true; value: T } | { success: false; error: ErrorReport };

/**
 * Runs a task body. On failure, prints a short report (no stack trace unless --show-stack-traces)
 * and returns a failed Hardhat `Result`, so the CLI exits with code 1 and in-process callers
 * (tests, scripts) get `{ success: false, error }` instead of an exception.
 */
export async function runTask<T>(
  hre: HardhatRuntimeEnvironment,
  body: () => Promise<T>,
): Promise<TaskResult<T>> {
  try {
    return { success: true, value: await body() };
  } catch (error) {
    const report = describeError(error, await novaCronAbis(hre), { network: hre.globalOptions.network });
    printErrorReport(report);
    if (hre.globalOptions.showStackTraces) console.error(error);
    return errorResult(report);
  }
}
