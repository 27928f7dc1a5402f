// policy:approve — approves on-chain; with --sign writes an EIP-712 signature file instead (nothing is sent);
// with --signatures submits several signature files together (anyone may send them).
import { readFile, writeFile } from "node:fs/promises";
import { getAddress } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { resolveSigner, signerFor } from "../../lib/accounts.ts";
import { eventsIn, mined } from "../../lib/contracts.ts";
import { runTask, UserError } from "../../lib/errors.ts";
import { parseDuration, actionFor, digestOf, packSignatures, sortSignatures, typedOperation } from "../../lib/policy.ts";
import { callsOf, openPolicyAccount, parseOpId, stateName } from "../../lib/policy-account.ts";
import { countBits, printNext } from "./shared.ts";

export interface PolicyApproveArgs {
  account: string | undefined;
  id: string | undefined;
  from: string | undefined;
  sign: boolean;
  out: string | undefined;
  deadline: string;
  signatures: string | undefined;
}

/** What a signature file holds. */
export interface SignatureFile {
  account: string;
  chainId: string;
  opId: string;
  policyVersion: string;
  deadline: string;
  signer: string;
  signature: string;
  /** The typed data that was signed, for review. */
  primaryType: string;
}

export interface PolicyApproveResult {
  opId: bigint;
  state: string;
  approvals: number;
  txHash?: string;
  file?: string;
}

export default async function policyApprove(args: PolicyApproveArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<PolicyApproveResult> => {
    const s = await openPolicyAccount(hre, args.account);
    const opId = parseOpId(args.id);
    const op = await s.account.getOperation(opId);
    if (stateName(op.state) !== "Proposed") throw new UserError(`Operation ${opId} is ${stateName(op.state)}; only Proposed operations take approvals.`);

    if (args.signatures !== undefined && args.signatures.trim() !== "") {
      const files = args.signatures.split(",").map((f) => f.trim()).filter((f) => f !== "");
      const sigs = [];
      let deadline: bigint | undefined;
      for (const file of files) {
        const f = JSON.parse(await readFile(file, "utf8")) as SignatureFile;
        if (getAddress(f.account) !== s.accountAddress || BigInt(f.opId) !== opId) {
          throw new UserError(`${file} signs operation ${f.opId} of ${f.account}, not operation ${opId} of ${s.accountAddress}.`);
        }
        if (deadline !== undefined && BigInt(f.deadline) !== deadline) throw new UserError("All signature files must share one deadline; sign again with the same --deadline.");
        deadline = BigInt(f.deadline);
        sigs.push({ signer: f.signer, signature: f.signature });
      }
      if (deadline === undefined) throw new UserError("--signatures lists no files.");
      const calls = await callsOf(s, opId);
      const sender = await resolveSigner(s.ethers, args.from, "deployer");
      const tx = await s.account.connect(sender).approveWithSignatures(opId, calls, deadline, packSignatures(sortSignatures(sigs)));
      const receipt = await mined(`approveWithSignatures(${opId}) with ${sigs.length} signature(s)`, tx);
      const after = await s.account.getOperation(opId);
      console.log(`Operation ${opId}: ${eventsIn(receipt, s.account, "OperationApproved").length} new approval(s); ${stateName(after.state)}, ${countBits(after.approvals)} of ${after.threshold}`);
      printNext(s, opId, after);
      return { opId, state: stateName(after.state), approvals: countBits(after.approvals), txHash: tx.hash };
    }

    if (args.sign) {
      const signer = await resolveSigner(s.ethers, args.from, "deployer");
      const calls = await callsOf(s, opId);
      const latest = await s.ethers.provider.getBlock("latest");
      const deadline = BigInt(latest!.timestamp) + BigInt(parseDuration(args.deadline, "--deadline"));
      const typed = typedOperation({ chainId: s.chainId, account: s.accountAddress }, calls, opId, op.version, deadline, s.record !== undefined ? actionFor(s.record.actions, s.accountAddress, calls) : undefined);
      const onChain = await s.account.operationDigest(calls, opId, op.version, deadline);
      if (digestOf(typed) !== onChain) {
        throw new UserError(
          "The typed data does not match what the account expects (the call's rule names an action type this machine does not know).",
          "Run the task where policy:create recorded the policy (ignition/deployments/chain-<id>/policy-accounts.json).",
        );
      }
      const signature = await signer.signTypedData(typed.domain, typed.types, typed.message);
      const file = args.out ?? `op-${opId}-${signer.address}.sig.json`;
      const content: SignatureFile = {
        account: s.accountAddress,
        chainId: s.chainId.toString(),
        opId: opId.toString(),
        policyVersion: op.version.toString(),
        deadline: deadline.toString(),
        signer: signer.address,
        signature,
        primaryType: typed.primaryType,
      };
      await writeFile(file, JSON.stringify(content, null, 2) + "\n");
      console.log(`${signer.address} signed ${typed.primaryType} for operation ${opId} (valid until ${new Date(Number(deadline) * 1000).toISOString()}): ${file}`);
      console.log(`Submit it with others: \`npx hardhat policy:approve --id ${opId} --signatures ${file},...\`.`);
      return { opId, state: stateName(op.state), approvals: countBits(op.approvals), file };
    }

    const signer =
      args.from !== undefined && args.from.trim() !== "" ? await resolveSigner(s.ethers, args.from, "deployer") : await firstUnapproved(s, op);
    const tx = await s.account.connect(signer).approve(opId);
    await mined(`approve(${opId}) from ${signer.address}`, tx);
    const after = await s.account.getOperation(opId);
    console.log(`Operation ${opId}: ${stateName(after.state)}, approvals ${countBits(after.approvals)} of ${after.threshold}`);
    printNext(s, opId, after);
    return { opId, state: stateName(after.state), approvals: countBits(after.approvals), txHash: tx.hash };
  });
}

/** A signer of the operation's class this network holds who has not approved yet. */
async function firstUnapproved(s: Awaited<ReturnType<typeof openPolicyAccount>>, op: Awaited<ReturnType<typeof s.account.getOperation>>) {
  const info = await s.account.versionInfo(op.version);
  const c = await s.account.getClass(info[0], op.classIndex);
  for (const [i, address] of c.signers.entries()) {
    if ((op.approvals >> BigInt(i)) & 1n) continue;
    const found = await signerFor(s.ethers, address);
    if (found !== undefined) return found;
  }
  throw new UserError("This network holds no key of a signer who has not approved yet.", "Pass --from, or collect signatures with --sign.");
}
