// What the policy:* and agent:* tasks share: the PolicyAccount contract on the connected chain, the record
// of the policies `policy:create` deployed (their named EIP-712 action types live only off-chain), the calls
// of an operation (from its OperationProposed event), and option parsing.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { getAddress, isAddress, type Signer } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { PolicyAccount } from "../../types/ethers-contracts/index.ts";
import { resolveAddress } from "./accounts.ts";
import { openNovaCron, type NovaCronSession } from "./contracts.ts";
import { deploymentDirectory } from "./deployment.ts";
import { UserError } from "./errors.ts";
import { OPERATION_STATES, type ActionType, type Call } from "./policy.ts";

export interface PolicyRecord {
  /** The policy file it was created from. */
  policyFile: string;
  hash: string;
  actions: Record<string, ActionType>;
  createdAtBlock: number;
}

export function recordsFile(hre: HardhatRuntimeEnvironment, chainId: bigint): string {
  return path.join(deploymentDirectory(hre.config.paths.ignition, chainId), "policy-accounts.json");
}

export async function readRecords(hre: HardhatRuntimeEnvironment, chainId: bigint): Promise<Record<string, PolicyRecord>> {
  try {
    return JSON.parse(await readFile(recordsFile(hre, chainId), "utf8")) as Record<string, PolicyRecord>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
}

export async function writeRecord(hre: HardhatRuntimeEnvironment, chainId: bigint, account: string, record: PolicyRecord): Promise<void> {
  const records = await readRecords(hre, chainId);
  records[getAddress(account)] = record;
  const file = recordsFile(hre, chainId);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(records, null, 2) + "\n");
}

export interface PolicySession extends NovaCronSession {
  account: PolicyAccount;
  accountAddress: string;
  record: PolicyRecord | undefined;
}

/** The NovaCron session plus the PolicyAccount at `--account` (default: the last one policy:create made here). */
export async function openPolicyAccount(hre: HardhatRuntimeEnvironment, accountOption: string | undefined): Promise<PolicySession> {
  const s = await openNovaCron(hre);
  const records = await readRecords(hre, s.chainId);
  let address: string;
  if (accountOption === undefined || accountOption.trim() === "") {
    const known = Object.keys(records);
    const last = known[known.length - 1];
    if (last === undefined) throw new UserError("Pass --account with a PolicyAccount address.", "Create one with `npx hardhat policy:create --policy examples/policy.json`.");
    address = last;
  } else {
    if (!isAddress(accountOption.trim())) throw new UserError(`--account must be an address, got "${accountOption}".`);
    address = getAddress(accountOption.trim());
  }
  const code = await s.ethers.provider.getCode(address);
  if (code === "0x") throw new UserError(`No contract at ${address} on chain ${s.chainId}.`);
  const account = (await s.ethers.getContractAt("PolicyAccount", address)) as unknown as PolicyAccount;
  return { ...s, account, accountAddress: address, record: records[address] };
}

export function parseOpId(text: string | undefined): bigint {
  if (text === undefined || !/^\d+$/.test(text.trim())) throw new UserError(`--id must be an operation id (a whole number), got "${text ?? ""}".`);
  return BigInt(text.trim());
}

/** The calls of operation `opId`, from its OperationProposed event. */
export async function callsOf(s: PolicySession, opId: bigint): Promise<Call[]> {
  const filter = s.account.filters.OperationProposed(opId);
  const logs = await s.account.queryFilter(filter, s.record?.createdAtBlock ?? 0);
  const log = logs[logs.length - 1];
  if (log === undefined) throw new UserError(`Operation ${opId} was never proposed on ${s.accountAddress}.`, "List pending operations with `npx hardhat policy:show`.");
  return (log.args.calls as unknown as { target: string; value: bigint; data: string }[]).map((c) => ({ target: c.target, value: c.value, data: c.data }));
}

export const stateName = (s: bigint | number) => OPERATION_STATES[Number(s)] ?? `Unknown(${s})`;

/** A call target option: a contract name of the deployment, `self`, or an address. */
export async function resolveTarget(s: PolicySession, text: string | undefined): Promise<string> {
  if (text === undefined || text.trim() === "") throw new UserError("--to is required: VmRegistry, CreditToken, self or an address.");
  const t = text.trim();
  if (t === "VmRegistry") return s.addresses.vmRegistry;
  if (t === "CreditToken") return s.addresses.creditToken;
  if (t === "ProviderRegistry") return s.addresses.providerRegistry;
  if (t === "self") return s.accountAddress;
  return await resolveAddress(s.ethers, t, "--to");
}

export type { Signer };
