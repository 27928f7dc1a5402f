// `npm run bench:gas` (part 2): gas of a PolicyAccount 2-of-3 token transfer submitted with signatures against a
// Safe 1.5.0 (deployed from @safe-global/safe-smart-account's build artifacts) doing the same transfer with
// 2 of 3 signatures, in the same run on the same chain. Writes the `policy` key of bench/results/gas.json
// (read-modify-write: other keys are left alone) and the "## Policy account gas" section of docs/BENCHMARKS.md.
//
// Every number is a transaction's gasUsed (21,000 intrinsic + calldata + execution), measured at steady state:
// one warm-up transaction first, so nonce slots and the recipient's balance are non-zero for both contracts.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { ContractTransactionResponse } from "ethers";
import { buildPolicy, compactSignature, digestOf, packSignatures, sortSignatures, typedOperation, actionFor, type Call, type PolicyJson } from "../scripts/lib/policy.ts";
import { createSafe, deploySafeInfrastructure, safeExec, safeTransactionSignature, SAFE_VERSION } from "../test/policy/safe.ts";
import type { CreditToken, PolicyAccount } from "../types/ethers-contracts/index.ts";
import { writeDocsSection } from "./lib/docs-section.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const RESULTS = path.join(ROOT, "bench/results/gas.json");
const BENCHMARKS = path.join(ROOT, "docs/BENCHMARKS.md");
const COMMAND = "npm run bench:gas";

const { ethers, networkHelpers } = await network.create();
const signers = await ethers.getSigners();
const [deployer, relayer, recipient] = signers as [HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner];
const owners = [signers[10]!, signers[11]!, signers[12]!];
const members = Object.fromEntries(owners.map((o, i) => [`m${i}`, o.address]));

const token = (await ethers.deployContract("CreditToken", [deployer.address, 10n ** 27n])) as unknown as CreditToken;
const tokenAddress = await token.getAddress();
const lib = await ethers.deployContract("PolicyWriter");
const libraries = { PolicyWriter: await lib.getAddress() };

const policyChange = {
  name: "policy-change",
  signers: ["m0", "m1", "m2"],
  threshold: 3,
  delay: "1d",
  expiryWindow: "3d",
  rules: [{ target: "self", function: "restoreVersion(uint64 version)", action: "RestorePolicyVersion" }],
};
const recovery = { ...policyChange, name: "recovery", delay: "7d", expiryWindow: "7d" };
function transferPolicy(delay: number, conditions: PolicyJson["classes"][number]["rules"][number]["conditions"] = []): PolicyJson {
  return {
    members,
    classes: [
      {
        name: "transfer",
        signers: ["m0", "m1", "m2"],
        threshold: 2,
        delay,
        expiryWindow: "1d",
        rules: [{ target: "CreditToken", function: "transfer(address to,uint256 amount)", action: "TransferTokens", conditions }],
      },
      policyChange,
    ],
    recovery,
  };
}

async function deployAccount(json: PolicyJson) {
  const account = (await ethers.deployContract("PolicyAccount", [deployer.address], { libraries })) as unknown as PolicyAccount;
  const built = buildPolicy(json, { contracts: { CreditToken: tokenAddress }, resolveMember: (t) => t });
  await account.initialize(built.spec);
  await token.transfer(await account.getAddress(), 10n ** 24n);
  return { account, built, address: await account.getAddress() };
}

const { chainId } = await ethers.provider.getNetwork();
const transfer = (amount: bigint): Call => ({ target: tokenAddress, value: 0n, data: token.interface.encodeFunctionData("transfer", [recipient.address, amount]) });
const gasOf = async (tx: Promise<ContractTransactionResponse>) => (await (await tx).wait())!.gasUsed;

async function signed(a: Awaited<ReturnType<typeof deployAccount>>, by: HardhatEthersSigner[], calls: Call[], nonce: bigint, deadline: bigint, compact = true) {
  const version = (await a.account.policyVersion())[0];
  const op = typedOperation({ chainId, account: a.address }, calls, nonce, version, deadline, actionFor(a.built.actions, a.address, calls));
  const onChain = await a.account.operationDigest(calls, nonce, version, deadline);
  if (onChain !== digestOf(op)) throw new Error("typed data and contract disagree");
  // ERC-2098 compact signatures (64 bytes), which the account accepts beside the 65-byte form.
  return packSignatures(
    sortSignatures(
      await Promise.all(by.map(async (s) => ({ signer: s.address, signature: ((x: string) => (compact ? compactSignature(x) : x))(await s.signTypedData(op.domain, op.types, op.message)) }))),
    ),
  );
}

async function policyTransfer(a: Awaited<ReturnType<typeof deployAccount>>, by: HardhatEthersSigner[], nonce: bigint, compact = true): Promise<bigint> {
  const calls = [transfer(10n ** 18n)];
  const deadline = 2n ** 40n;
  const sigs = await signed(a, by, calls, nonce, deadline, compact);
  return await gasOf(a.account.connect(relayer).executeSignedCalls(calls, nonce, deadline, sigs));
}

// -- PolicyAccount: 2 of 3, no delay, plain transfer class
const plain = await deployAccount(transferPolicy(0));
await policyTransfer(plain, owners.slice(0, 2), 1n); // warm-up
const twoOfThree = await policyTransfer(plain, owners.slice(0, 2), 2n);
async function opcodeProfile(): Promise<Record<string, { n: number; gas: number }>> {
  const block = await ethers.provider.getBlock("latest", true);
  const trace = (await ethers.provider.send("debug_traceTransaction", [block!.transactions[0]!, {}])) as {
    structLogs: { op: string; gasCost: number; depth: number }[];
  };
  const byOp: Record<string, { n: number; gas: number }> = {};
  for (const l of trace.structLogs) {
    // CALL-family costs include the gas passed on; count them by number only.
    const k = `${l.op}@${l.depth}`;
    byOp[k] = byOp[k] ?? { n: 0, gas: 0 };
    byOp[k]!.n++;
    byOp[k]!.gas += /CALL/.test(l.op) ? 0 : l.gasCost;
  }
  return byOp;
}
// TRACE_POLICY=1: where the gas of twoOfThree goes, and what a third signature adds, by opcode.
const profileTwo = process.env.TRACE_POLICY ? await opcodeProfile() : undefined;
const threeSigs = await policyTransfer(plain, owners, 3n);
if (profileTwo !== undefined) {
  const profileThree = await opcodeProfile();
  const keys = new Set([...Object.keys(profileTwo), ...Object.keys(profileThree)]);
  const rows = [...keys].map((k) => ({ k, two: profileTwo[k]?.gas ?? 0, three: profileThree[k]?.gas ?? 0, n2: profileTwo[k]?.n ?? 0, n3: profileThree[k]?.n ?? 0 }));
  rows.sort((a, b) => b.two - a.two);
  for (const r of rows.slice(0, 20)) console.log(`${r.k.padEnd(16)} two ${String(r.two).padStart(6)} (${r.n2})  extra ${r.three - r.two} (${r.n3 - r.n2})`);
  const total = (p: typeof profileTwo) => Object.values(p).reduce((s, v) => s + v.gas, 0);
  console.log("execution gas (without CALL-family):", total(profileTwo), "->", total(profileThree));
}
const perExtraSignature = threeSigs - twoOfThree;
// the same with 65-byte r ‖ s ‖ v signatures
const twoOfThree65 = await policyTransfer(plain, owners.slice(0, 2), 4n, false);
const perExtraSignature65 = (await policyTransfer(plain, owners, 5n, false)) - twoOfThree65;

// -- the same with a bound on the amount (a typed condition)
const bounded = await deployAccount(transferPolicy(0, [{ arg: "amount", op: "le", value: (10n ** 21n).toString() }]));
await policyTransfer(bounded, owners.slice(0, 2), 1n);
const twoOfThreeWithAmountBound = await policyTransfer(bounded, owners.slice(0, 2), 2n);

// -- delayed: propose + approve on-chain, then execute after the delay
const delayed = await deployAccount(transferPolicy(3600));
async function delayedRun(nonce: bigint): Promise<bigint> {
  const calls = [transfer(10n ** 18n)];
  await delayed.account.connect(owners[0]!).propose(calls, nonce);
  await delayed.account.connect(owners[1]!).approve(nonce);
  await networkHelpers.time.increase(3600);
  return await gasOf(delayed.account.connect(relayer).execute(nonce, calls));
}
await delayedRun(1n);
const delayedExecute = await delayedRun(2n);

// -- Safe 1.5.0 from the npm artifacts, 2 of 3, same transfer
const infra = await deploySafeInfrastructure(deployer);
const safe = await createSafe(ethers, infra, owners.map((o) => o.address), 2);
const safeAddress = await safe.getAddress();
await token.transfer(safeAddress, 10n ** 24n);
async function safeTransfer(): Promise<bigint> {
  const tx = { to: tokenAddress, value: 0n, data: transfer(10n ** 18n).data };
  const sigs = await safeTransactionSignature(safe, chainId, owners.slice(0, 2), tx);
  return await gasOf(safeExec(safe, relayer, tx, sigs));
}
await safeTransfer(); // warm-up
const safeTwoOfThree = await safeTransfer();

/** The policy target: the 2-of-3 transfer costs at most this share of the Safe's (readability wins up to it). */
const SAFE_RATIO_TARGET = 1.0;
const ratio = Number(twoOfThree) / Number(safeTwoOfThree);
const result = {
  twoOfThree: Number(twoOfThree),
  safeTwoOfThree: Number(safeTwoOfThree),
  perExtraSignature: Number(perExtraSignature),
  delayedExecute: Number(delayedExecute),
  twoOfThreeWithAmountBound: Number(twoOfThreeWithAmountBound),
  twoOfThree65ByteSignatures: Number(twoOfThree65),
  perExtraSignature65ByteSignatures: Number(perExtraSignature65),
  ratioToSafe: Math.round(ratio * 1000) / 1000,
  targets: {
    twoOfThreeAtMost: Math.floor(SAFE_RATIO_TARGET * Number(safeTwoOfThree)),
    perExtraSignatureAtMost: 6000,
    twoOfThreeMet: ratio <= SAFE_RATIO_TARGET,
    perExtraSignatureMet: perExtraSignature <= 6000n,
  },
  safeVersion: SAFE_VERSION,
  command: COMMAND,
  measuredAt: new Date().toISOString(),
};

// read-modify-write: only the `policy` key is ours
await mkdir(path.dirname(RESULTS), { recursive: true });
let all: Record<string, unknown> = {};
try {
  all = JSON.parse(await readFile(RESULTS, "utf8")) as Record<string, unknown>;
} catch (error) {
  if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
}
all["policy"] = result;
await writeFile(RESULTS, JSON.stringify(all, null, 2) + "\n");

const fmt = (n: number | bigint) => Number(n).toLocaleString("en-US");
const section = `## Policy account gas

Made by \`${COMMAND}\` (\`bench/gas-policy.ts\`, results under \`policy\` in \`bench/results/gas.json\`).
Each number is the gasUsed of one transaction (21,000 intrinsic gas, calldata and execution) on Hardhat's
in-process chain, at steady state: a warm-up transaction ran first, so nonce slots and the recipient's token
balance are already non-zero. The inner call is a plain CreditToken \`transfer\`; the sender is a relayer that
is not a signer. PolicyAccount signatures are packed without signer addresses (docs/policy.md): ERC-2098 compact
ones (64 bytes) go in as \`0x00 ‖ r ‖ vs\`, 65-byte ones as \`v ‖ r ‖ s\`: 65 bytes of calldata either way, so
both forms cost about the same (see the last two rows); the Safe's are its usual 65-byte r ‖ s ‖ v. The Safe is
${SAFE_VERSION}, deployed from \`@safe-global/safe-smart-account\`'s build artifacts (singleton + proxy factory +
compatibility fallback handler), measured in the same run.

| measurement | gas | target |
| --- | ---: | --- |
| \`twoOfThree\`: PolicyAccount \`executeSignedCalls\`, 2 of 3 EIP-712 signatures, no delay | ${fmt(twoOfThree)} | <= ${SAFE_RATIO_TARGET.toFixed(1)} x Safe = ${fmt(result.targets.twoOfThreeAtMost)}: ${result.targets.twoOfThreeMet ? "met" : "**missed**"} (${result.ratioToSafe} x) |
| \`safeTwoOfThree\`: Safe 1.5.0 \`execTransaction\`, 2 of 3 signatures | ${fmt(safeTwoOfThree)} | baseline |
| \`perExtraSignature\`: a third signature on the same 2-of-3 class | ${fmt(perExtraSignature)} | <= 6,000: ${result.targets.perExtraSignatureMet ? "met" : "**missed**"} |
| \`delayedExecute\`: \`execute\` of a stored, approved operation after its 1 h delay | ${fmt(delayedExecute)} | - |
| \`twoOfThreeWithAmountBound\`: as \`twoOfThree\`, class with a typed bound on the amount | ${fmt(twoOfThreeWithAmountBound)} | - |
| \`twoOfThree65ByteSignatures\`: as \`twoOfThree\`, 65-byte r ‖ s ‖ v signatures | ${fmt(twoOfThree65)} | - |
| \`perExtraSignature65ByteSignatures\`: a third 65-byte signature | ${fmt(perExtraSignature65)} | (<= 6,000: ${perExtraSignature65 <= 6000n ? "met" : "missed"}) |
`;
writeDocsSection(BENCHMARKS, section);
console.log(JSON.stringify(result, null, 2));
