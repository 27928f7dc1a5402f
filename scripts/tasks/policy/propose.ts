// policy:propose — proposes one call (--to/--function/--args) or a batch (--calls file) and counts the sender's approval.
import { readFile } from "node:fs/promises";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { runTask, UserError } from "../../lib/errors.ts";
import { openPolicyAccount, resolveTarget } from "../../lib/policy-account.ts";
import type { Call } from "../../lib/policy.ts";
import { encodeCall, proposeCalls, type ProposeResult } from "./shared.ts";

export interface PolicyProposeArgs {
  account: string | undefined;
  to: string | undefined;
  function: string | undefined;
  args: string | undefined;
  value: string;
  calls: string | undefined;
  nonce: string | undefined;
  recovery: boolean;
  from: string | undefined;
}

export default async function policyPropose(args: PolicyProposeArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<ProposeResult> => {
    const s = await openPolicyAccount(hre, args.account);
    let calls: Call[];
    if (args.calls !== undefined && args.calls.trim() !== "") {
      const list = JSON.parse(await readFile(args.calls, "utf8")) as { to: string; function: string; args?: unknown[]; value?: string }[];
      if (!Array.isArray(list)) throw new UserError(`${args.calls} must hold a JSON array of {to, function, args, value}.`);
      calls = [];
      for (const c of list) calls.push(encodeCall(await resolveTarget(s, c.to), c.function, JSON.stringify(c.args ?? []), BigInt(c.value ?? "0")));
    } else {
      calls = [encodeCall(await resolveTarget(s, args.to), args.function, args.args, BigInt(args.value))];
    }
    return await proposeCalls(s, calls, { from: args.from, nonce: args.nonce, recovery: args.recovery });
  });
}
