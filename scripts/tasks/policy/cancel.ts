// policy:cancel — the proposer or a guardian of the operation's classes cancels it (never a recovery operation, except its proposer).
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { resolveSigner, signerFor } from "../../lib/accounts.ts";
import { mined } from "../../lib/contracts.ts";
import { runTask } from "../../lib/errors.ts";
import { openPolicyAccount, parseOpId } from "../../lib/policy-account.ts";

export interface PolicyCancelArgs {
  account: string | undefined;
  id: string | undefined;
  from: string | undefined;
}

export default async function policyCancel(args: PolicyCancelArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async () => {
    const s = await openPolicyAccount(hre, args.account);
    const opId = parseOpId(args.id);
    const op = await s.account.getOperation(opId);
    const sender =
      args.from !== undefined && args.from.trim() !== ""
        ? await resolveSigner(s.ethers, args.from, "deployer")
        : ((await signerFor(s.ethers, op.proposer)) ?? (await resolveSigner(s.ethers, undefined, "deployer")));
    const tx = await s.account.connect(sender).cancel(opId);
    await mined(`cancel(${opId}) from ${sender.address}`, tx);
    console.log(`Operation ${opId} cancelled by ${sender.address}.`);
    return { opId, txHash: tx.hash };
  });
}
