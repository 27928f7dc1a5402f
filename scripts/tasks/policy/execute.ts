// policy:execute — runs a Ready operation (anyone may).
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { resolveSigner } from "../../lib/accounts.ts";
import { mined } from "../../lib/contracts.ts";
import { runTask, UserError } from "../../lib/errors.ts";
import { callsOf, openPolicyAccount, parseOpId, stateName } from "../../lib/policy-account.ts";

export interface PolicyExecuteArgs {
  account: string | undefined;
  id: string | undefined;
  from: string | undefined;
}

export default async function policyExecute(args: PolicyExecuteArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async () => {
    const s = await openPolicyAccount(hre, args.account);
    const opId = parseOpId(args.id);
    const op = await s.account.getOperation(opId);
    const state = stateName(op.state);
    if (state === "Queued") {
      throw new UserError(`Operation ${opId} is Queued until ${new Date(Number(op.eta) * 1000).toISOString()}.`, "Run policy:execute again after its eta.");
    }
    if (state !== "Ready") throw new UserError(`Operation ${opId} is ${state}; only Ready operations run.`);
    const calls = await callsOf(s, opId);
    const sender = await resolveSigner(s.ethers, args.from, "deployer");
    const tx = await s.account.connect(sender).execute(opId, calls);
    await mined(`execute(${opId}) from ${sender.address}`, tx);
    console.log(`Operation ${opId} executed: ${calls.length} call(s).`);
    return { opId, txHash: tx.hash };
  });
}
