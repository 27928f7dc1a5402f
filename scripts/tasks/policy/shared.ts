// Helpers of the policy:* and agent:* task actions.
import { FunctionFragment, Interface, decodeBytes32String, formatUnits } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { resolveSigner, signerFor } from "../../lib/accounts.ts";
import { eventsIn, mined } from "../../lib/contracts.ts";
import { UserError } from "../../lib/errors.ts";
import { formatDuration } from "../../lib/format.ts";
import { stateName, type PolicySession } from "../../lib/policy-account.ts";
import { randomNonce, type Call } from "../../lib/policy.ts";

export const className = (name: string) => {
  try {
    return decodeBytes32String(name);
  } catch {
    return name;
  }
};

/** `--function "terminateVm(uint256 vmId)" --args '[3]'` as a call to `target`. */
export function encodeCall(target: string, signature: string | undefined, argsJson: string | undefined, value: bigint): Call {
  if (signature === undefined || signature.trim() === "") throw new UserError('--function is required, e.g. --function "terminateVm(uint256)".');
  let fragment: FunctionFragment;
  try {
    fragment = FunctionFragment.from(signature.trim());
  } catch {
    throw new UserError(`--function must be a Solidity function signature, got "${signature}".`);
  }
  let args: unknown[] = [];
  if (argsJson !== undefined && argsJson.trim() !== "") {
    try {
      args = JSON.parse(argsJson) as unknown[];
    } catch {
      throw new UserError(`--args must be a JSON array, e.g. '[3]' or '["0xabc…", 100]', got ${argsJson}.`);
    }
    if (!Array.isArray(args)) throw new UserError("--args must be a JSON array.");
  }
  const data = new Interface([fragment]).encodeFunctionData(fragment.name, args);
  return { target, value, data };
}

/** The sender for an operation on `calls`: `--from`, else the first node account that signs for its class. */
export async function proposerFor(s: PolicySession, calls: Call[], from: string | undefined, recovery = false): Promise<HardhatEthersSigner> {
  if (from !== undefined && from.trim() !== "") return await resolveSigner(s.ethers, from, "deployer");
  const [, contentId] = await s.account.policyVersion();
  const classIndex = recovery ? 255 : Number((await s.account.classOf(calls))[0]);
  const c = await s.account.getClass(contentId, classIndex);
  for (const signer of c.signers) {
    const found = await signerFor(s.ethers, signer);
    if (found !== undefined) return found;
  }
  throw new UserError(`This network holds none of the keys of class "${className(c.name)}" (${c.signers.join(", ")}).`, "Pass --from with a signer of the class.");
}

export interface ProposeResult {
  opId: bigint;
  txHash: string;
  classIndex: number;
  className: string;
  state: string;
  eta: bigint;
  expiresAt: bigint;
}

/** Proposes `calls` and prints what happens next. */
export async function proposeCalls(
  s: PolicySession,
  calls: Call[],
  opts: { from?: string | undefined; nonce?: string | undefined; recovery?: boolean },
): Promise<ProposeResult> {
  const signer = await proposerFor(s, calls, opts.from, opts.recovery === true);
  const nonce = opts.nonce !== undefined && opts.nonce.trim() !== "" ? BigInt(opts.nonce.trim()) : randomNonce();
  const account = s.account.connect(signer);
  const tx = opts.recovery === true ? await account.proposeRecovery(calls, nonce) : await account.propose(calls, nonce);
  const receipt = await mined(`${opts.recovery === true ? "proposeRecovery" : "propose"} from ${signer.address}`, tx);
  const proposed = eventsIn(receipt, s.account, "OperationProposed")[0]!;
  const op = await s.account.getOperation(nonce);
  const result: ProposeResult = {
    opId: nonce,
    txHash: tx.hash,
    classIndex: Number(proposed.args["classIndex"]),
    className: className(proposed.args["className"] as string),
    state: stateName(op.state),
    eta: op.eta,
    expiresAt: op.expiresAt,
  };
  console.log(`Operation ${nonce}: class "${result.className}", ${result.state}, approvals ${countBits(op.approvals)} of ${op.threshold}`);
  printNext(s, result.opId, op);
  return result;
}

export function countBits(x: bigint | number): number {
  let n = 0;
  for (let v = BigInt(x); v !== 0n; v &= v - 1n) n++;
  return n;
}

/** Prints when the operation can run and how. */
export function printNext(s: PolicySession, opId: bigint, op: { state: bigint; eta: bigint; expiresAt: bigint }): void {
  const now = BigInt(Math.floor(Date.now() / 1000));
  const state = stateName(op.state);
  if (state === "Proposed") console.log(`Needs more approvals: \`npx hardhat policy:approve --id ${opId} --from <signer>\` (or --sign / --signatures).`);
  if (state === "Queued") console.log(`Executable from ${new Date(Number(op.eta) * 1000).toISOString()} (in about ${formatDuration(op.eta > now ? op.eta - now : 0n)}) until ${new Date(Number(op.expiresAt) * 1000).toISOString()}.`);
  if (state === "Ready") console.log(`Ready: \`npx hardhat policy:execute --id ${opId}\` (anyone may send it) before ${new Date(Number(op.expiresAt) * 1000).toISOString()}.`);
  void s;
}

export const tokens = (wei: bigint) => `${formatUnits(wei, 18)} NCC`;
