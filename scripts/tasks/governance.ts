// Platform governance tasks: parameters of ProviderRegistry and VmRegistry change only through
// NovaCronGovernor (CreditToken votes) and the TimelockController that owns them.
//   gov:delegate -> gov:propose -> (voting delay) gov:vote -> (voting period) gov:queue -> (timelock delay) gov:execute
import { id as keccakText } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { resolveAddress, resolveSigner } from "../lib/accounts.ts";
import { getGovernor, mined, openNovaCron, type NovaCronSession } from "../lib/contracts.ts";
import { runTask, UserError } from "../lib/errors.ts";
import { parseInteger, required } from "../lib/format.ts";
import type { Args } from "./market.ts";

/** An ethers `Result` (struct output) as a plain object keyed by field name. */
function plain(r: unknown): Record<string, unknown> {
  return (r as { toObject(): Record<string, unknown> }).toObject();
}

const STATES = ["Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed"];

export interface ProposalResult {
  proposalId: bigint;
  state: string;
  txHash: string;
}

/** `feeBps=200,gracePeriod=3600` -> { feeBps: 200n, gracePeriod: 3600n } (addresses kept as strings). */
export function parseSettings(text: string): Record<string, bigint | string> {
  const out: Record<string, bigint | string> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const [key, value] = part.split("=").map((x) => x?.trim());
    if (key === undefined || value === undefined || value === "") throw new UserError(`--set takes key=value pairs, got "${part}".`);
    out[key] = /^0x[0-9a-fA-F]{40}$/.test(value) ? value : parseInteger(value, `--set ${key}`);
  }
  return out;
}

async function governor(s: NovaCronSession) {
  return getGovernor(s.ethers, s.addresses.governor);
}

/** The proposal as ProposalCreated recorded it: what queue and execute must repeat. */
async function proposalOf(s: NovaCronSession, proposalId: bigint) {
  const g = await governor(s);
  const events = await g.queryFilter(g.filters.ProposalCreated());
  const e = events.find((x) => x.args.proposalId === proposalId);
  if (e === undefined) throw new UserError(`No proposal ${proposalId} on this chain.`, "Use the id gov:propose printed.");
  return { targets: [...e.args.targets], values: [...e.args[3]], calldatas: [...e.args.calldatas], descriptionHash: keccakText(e.args.description) };
}

async function report(s: NovaCronSession, proposalId: bigint, txHash: string): Promise<ProposalResult> {
  const state = STATES[Number(await (await governor(s)).state(proposalId))] ?? "?";
  console.log(`Proposal ${proposalId}: ${state}`);
  return { proposalId, state, txHash };
}

/** gov:delegate — give the sender's CreditToken votes to --to (default: itself); needed before voting. */
export async function govDelegate(args: Args, hre: HardhatRuntimeEnvironment) {
  return runTask(hre, async () => {
    const s = await openNovaCron(hre);
    const signer = await resolveSigner(s.ethers, args["from"], "deployer");
    const to = args["to"] === undefined ? signer.address : await resolveAddress(s.ethers, args["to"], "--to");
    const tx = await s.creditToken.connect(signer).delegate(to);
    await mined(`delegate votes of ${signer.address} to ${to}`, tx);
    return { txHash: tx.hash, votes: await s.creditToken.getVotes(to) };
  });
}

/** gov:propose — propose new parameters for --contract vm|provider (unchanged keys keep their value). */
export async function govPropose(args: Args, hre: HardhatRuntimeEnvironment) {
  return runTask(hre, async (): Promise<ProposalResult> => {
    const which = required(args["contract"], "--contract", "vm");
    const settings = parseSettings(required(args["set"], "--set", "feeBps=200"));
    const description = args["description"] ?? `Set ${which} parameters: ${args["set"]}`;
    const s = await openNovaCron(hre);
    const signer = await resolveSigner(s.ethers, args["from"], "deployer");
    let target: string;
    let calldata: string;
    if (which === "vm") {
      const next = { ...plain(await s.vmRegistry.parameters()), ...settings };
      target = s.addresses.vmRegistry;
      calldata = s.vmRegistry.interface.encodeFunctionData("setParameters", [next as never]);
    } else if (which === "provider") {
      const next = { ...plain(await s.providerRegistry.parameters()), ...settings };
      target = s.addresses.providerRegistry;
      calldata = s.providerRegistry.interface.encodeFunctionData("setParameters", [next as never]);
    } else {
      throw new UserError(`--contract must be "vm" or "provider", got "${which}".`);
    }
    const g = (await governor(s)).connect(signer);
    const tx = await g.propose([target], [0n], [calldata], description);
    await mined("propose", tx);
    const proposalId = await g.hashProposal([target], [0n], [calldata], keccakText(description));
    return report(s, proposalId, tx.hash);
  });
}

/** gov:vote — cast the sender's votes: --support for|against|abstain. */
export async function govVote(args: Args, hre: HardhatRuntimeEnvironment) {
  return runTask(hre, async (): Promise<ProposalResult> => {
    const proposalId = parseInteger(required(args["id"], "--id", "123..."), "--id");
    const support = { against: 0, for: 1, abstain: 2 }[(args["support"] ?? "for").toLowerCase()];
    if (support === undefined) throw new UserError(`--support must be for, against or abstain.`);
    const s = await openNovaCron(hre);
    const signer = await resolveSigner(s.ethers, args["from"], "deployer");
    const tx = await (await governor(s)).connect(signer).castVote(proposalId, support);
    await mined(`castVote(${support})`, tx);
    return report(s, proposalId, tx.hash);
  });
}

/** gov:queue — queue a succeeded proposal in the timelock. */
export async function govQueue(args: Args, hre: HardhatRuntimeEnvironment) {
  return runTask(hre, async (): Promise<ProposalResult> => {
    const proposalId = parseInteger(required(args["id"], "--id", "123..."), "--id");
    const s = await openNovaCron(hre);
    const signer = await resolveSigner(s.ethers, args["from"], "deployer");
    const p = await proposalOf(s, proposalId);
    const tx = await (await governor(s)).connect(signer).queue(p.targets, p.values, p.calldatas, p.descriptionHash);
    await mined("queue", tx);
    return report(s, proposalId, tx.hash);
  });
}

/** gov:execute — execute a queued proposal once the timelock delay has passed (anyone). */
export async function govExecute(args: Args, hre: HardhatRuntimeEnvironment) {
  return runTask(hre, async (): Promise<ProposalResult> => {
    const proposalId = parseInteger(required(args["id"], "--id", "123..."), "--id");
    const s = await openNovaCron(hre);
    const signer = await resolveSigner(s.ethers, args["from"], "deployer");
    const p = await proposalOf(s, proposalId);
    const tx = await (await governor(s)).connect(signer).execute(p.targets, p.values, p.calldatas, p.descriptionHash);
    await mined("execute", tx);
    return report(s, proposalId, tx.hash);
  });
}
