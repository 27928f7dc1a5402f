// policy:show — the active policy version, its classes and members, and the members' pending operations.
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { runTask } from "../../lib/errors.ts";
import { formatDuration } from "../../lib/format.ts";
import { openPolicyAccount, stateName } from "../../lib/policy-account.ts";
import { className, countBits, tokens } from "./shared.ts";

export interface PolicyShowArgs {
  account: string | undefined;
}

export interface PolicyShowResult {
  account: string;
  version: bigint;
  policyHash: string;
  classes: { index: number; name: string; threshold: number; signers: string[]; delay: bigint; expiryWindow: bigint; guardians: string[] }[];
  members: string[];
  pending: { opId: bigint; state: string; classIndex: number; approvals: number; threshold: number; eta: bigint; expiresAt: bigint }[];
}

export default async function policyShow(args: PolicyShowArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<PolicyShowResult> => {
    const s = await openPolicyAccount(hre, args.account);
    const [version, contentId, policyHash] = await s.account.policyVersion();
    const count = Number(await s.account.classCount(contentId));
    const classes: PolicyShowResult["classes"] = [];
    for (const index of [...Array(count).keys(), 255]) {
      const c = await s.account.getClass(contentId, index);
      classes.push({
        index,
        name: className(c.name),
        threshold: Number(c.threshold),
        signers: [...c.signers],
        delay: c.delay,
        expiryWindow: c.expiryWindow,
        guardians: [...c.guardians],
      });
    }
    const members = [...(await s.account.members(contentId))];
    const pending: PolicyShowResult["pending"] = [];
    // Each proposer has its own pending list; the active members' lists hold every operation that can still run
    // but a recovery proposed by a former member (see OperationProposed for those).
    const opIds = (await Promise.all(members.map((m) => s.account.pendingOperations(m)))).flat();
    for (const opId of opIds) {
      const op = await s.account.getOperation(opId);
      pending.push({
        opId,
        state: stateName(op.state),
        classIndex: Number(op.classIndex),
        approvals: countBits(op.approvals),
        threshold: Number(op.threshold),
        eta: op.eta,
        expiresAt: op.expiresAt,
      });
    }
    const balance = await s.creditToken.balanceOf(s.accountAddress);
    console.log(`PolicyAccount ${s.accountAddress}: version ${version} (content ${contentId}), policy hash ${policyHash}, holds ${tokens(balance)}`);
    for (const c of classes) {
      const label = c.index === 255 ? "recovery" : `#${c.index}`;
      console.log(
        `  ${label} ${c.name}: ${c.threshold} of ${c.signers.length}, delay ${formatDuration(c.delay)}, expiry window ${formatDuration(c.expiryWindow)}` +
          (c.guardians.length > 0 ? `, guardians ${c.guardians.join(", ")}` : ""),
      );
    }
    console.log(`Members: ${members.join(", ")}`);
    if (pending.length === 0) console.log("No pending operations.");
    for (const p of pending) {
      const when = p.eta !== 0n ? `, eta ${new Date(Number(p.eta) * 1000).toISOString()}` : "";
      console.log(`  operation ${p.opId}: ${p.state}, class ${p.classIndex === 255 ? "recovery" : `#${p.classIndex}`}, approvals ${p.approvals} of ${p.threshold}${when}`);
    }
    return { account: s.accountAddress, version, policyHash, classes, members, pending };
  });
}
