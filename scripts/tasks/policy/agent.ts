// agent:grant and agent:revoke — propose the self-call through the policy (usually the policy-change class).
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { resolveAddress } from "../../lib/accounts.ts";
import { runTask, UserError } from "../../lib/errors.ts";
import { parseTokens } from "../../lib/format.ts";
import { openPolicyAccount } from "../../lib/policy-account.ts";
import { parseDuration } from "../../lib/policy.ts";
import { className, proposeCalls, type ProposeResult } from "./shared.ts";

export interface AgentGrantArgs {
  account: string | undefined;
  agent: string | undefined;
  classes: string | undefined;
  allowance: string;
  period: string;
  expires: string;
  nonce: string | undefined;
  from: string | undefined;
}

export interface AgentRevokeArgs {
  account: string | undefined;
  agent: string | undefined;
  nonce: string | undefined;
  from: string | undefined;
}

export async function agentGrant(args: AgentGrantArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<ProposeResult> => {
    const s = await openPolicyAccount(hre, args.account);
    const agent = await resolveAddress(s.ethers, args.agent, "--agent");
    if (args.classes === undefined || args.classes.trim() === "") throw new UserError("--classes is required: class names or indices, comma-separated (e.g. small-vm).");
    const [, contentId] = await s.account.policyVersion();
    const count = Number(await s.account.classCount(contentId));
    const names: string[] = [];
    for (let i = 0; i < count; i++) names.push(className((await s.account.getClass(contentId, i)).name));
    let mask = 0;
    for (const part of args.classes.split(",").map((p) => p.trim())) {
      const index = /^\d+$/.test(part) ? Number(part) : names.indexOf(part);
      if (index < 0 || index >= count) throw new UserError(`Unknown class "${part}"; the policy has ${names.join(", ")}.`);
      mask |= 1 << index;
    }
    const latest = await s.ethers.provider.getBlock("latest");
    const expiresAt = BigInt(latest!.timestamp) + BigInt(parseDuration(args.expires, "--expires"));
    const data = s.account.interface.encodeFunctionData("grantAgent", [agent, mask, parseTokens(args.allowance, "--allowance"), parseDuration(args.period, "--period"), expiresAt]);
    console.log(`Proposing grantAgent(${agent}, classes ${args.classes}, ${args.allowance} NCC per ${args.period}, until ${new Date(Number(expiresAt) * 1000).toISOString()})`);
    return await proposeCalls(s, [{ target: s.accountAddress, value: 0n, data }], { from: args.from, nonce: args.nonce });
  });
}

export async function agentRevoke(args: AgentRevokeArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<ProposeResult> => {
    const s = await openPolicyAccount(hre, args.account);
    const agent = await resolveAddress(s.ethers, args.agent, "--agent");
    const data = s.account.interface.encodeFunctionData("revokeAgent", [agent]);
    console.log(`Proposing revokeAgent(${agent})`);
    return await proposeCalls(s, [{ target: s.accountAddress, value: 0n, data }], { from: args.from, nonce: args.nonce });
  });
}
