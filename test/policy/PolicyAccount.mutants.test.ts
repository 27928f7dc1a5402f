// Tests that kill mutants a mutation-testing run found surviving: each pins one decision of the policy libraries
// that no other test observed.
import { expect } from "chai";
import { decodeBytes32String, getAddress, getCreateAddress, ZeroAddress } from "ethers";
import { network } from "hardhat";
import type { NetworkConnection } from "hardhat/types/network";
import { MANIFEST } from "../contracts/fixtures.ts";
import { RECOVERY_CLASS, packSignatures, type Call, type PolicyJson } from "../../scripts/lib/policy.ts";
import { EXAMPLE_POLICY, NCC, RESOURCES_SMALL, callOf, deployPolicyFixture, signOperation, type PolicyFixture } from "./fixtures.ts";

const { networkHelpers } = await network.create();
const FAR = 2n ** 40n - 1n;
const MAX_PRICE = 10n ** 18n;

/** The example policy whose stopVm rule names its ownedBy view and registry explicitly. */
const EXPLICIT_VIEW: PolicyJson = (() => {
  const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
  const stop = json.classes[0]!.rules.find((r) => r.function.startsWith("stopVm("))!;
  stop.conditions = [{ arg: "vmId", op: "ownedBy", view: "getVm(uint256)", registry: "VmRegistry" }];
  return json;
})();

/** The example policy whose 2-of-3 class has two signers (alice, bob) and a guardian who is not a signer (carol). */
const GUARDIAN_NOT_SIGNER: PolicyJson = (() => {
  const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
  const large = json.classes.find((c) => c.name === "large-vm-or-terminate")!;
  large.signers = ["alice", "bob"];
  large.guardians = ["carol"];
  return json;
})();

/** The example policy with a recovery signer (dave, account 14) who is in no other class. */
const RECOVERY_ONLY_MEMBER: PolicyJson = (() => {
  const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
  json.members = { ...json.members, dave: "#14" };
  json.recovery.signers = ["alice", "bob", "dave"];
  return json;
})();

async function exampleFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection);
}
async function guardianFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection, GUARDIAN_NOT_SIGNER);
}
async function explicitViewFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection, EXPLICIT_VIEW);
}

/** The example policy with its 2-of-3 class and recovery both delayed by exactly MAX_DELAY, 90 days. */
const MAX_DELAY_SECONDS = 90 * 86_400;
const DELAYED_TO_THE_MAX: PolicyJson = (() => {
  const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
  json.classes.find((c) => c.name === "large-vm-or-terminate")!.delay = MAX_DELAY_SECONDS;
  json.recovery.delay = MAX_DELAY_SECONDS;
  return json;
})();

async function delayedToTheMaxFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection, DELAYED_TO_THE_MAX);
}

/** The example policy whose class 1 has a rule without spend first and, second, `approve` of VmRegistry charged
 * by its amount: an agent's 200 NCC approval falls in class 1 only (small-vm approves at most 100 NCC), by rule 1. */
const SPEND_IN_CLASS_ONE: PolicyJson = (() => {
  const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
  const small = json.classes[0]!;
  const large = json.classes[1]!;
  large.rules = [
    structuredClone(small.rules.find((r) => r.function.startsWith("stopVm("))!),
    {
      target: "CreditToken",
      function: "approve(address spender,uint256 amount)",
      action: "ApproveTokens",
      spend: "amount",
      conditions: [{ arg: "spender", op: "eq", value: "VmRegistry" }],
    },
  ];
  return json;
})();

async function spendInClassOneFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection, SPEND_IN_CLASS_ONE);
}

async function recoveryOnlyMemberFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection, RECOVERY_ONLY_MEMBER);
}

/** The bytes of content 1 (the initial policy) as the account stored them: the code of the data contract the
 * account created (its first CREATE) without the leading STOP byte, checked against the content id and hash. */
async function initialContent(f: PolicyFixture): Promise<Buffer> {
  const [, contentId, hash] = await f.account.policyVersion();
  expect(contentId).to.equal(1n);
  for (let nonce = 1; nonce <= 4; ++nonce) {
    const code = await f.ethers.provider.getCode(getCreateAddress({ from: f.accountAddress, nonce }));
    const bytes = Buffer.from(code.slice(2), "hex");
    if (bytes.length < 46) continue;
    const content = bytes.subarray(1);
    if (content.readUInt32BE(0) === 1 && "0x" + content.subarray(4, 36).toString("hex") === hash) return content;
  }
  throw new Error("content 1 not found among the account's first creations");
}

let nonceCounter = 1_000n;
async function runSigned(f: PolicyFixture, calls: Call[]) {
  const nonce = ++nonceCounter;
  const sigs = await signOperation(f, [f.alice], calls, nonce, FAR);
  return f.account.executeSignedCalls(calls, nonce, FAR, packSignatures(sigs));
}

describe("PolicyAccount: mutants", function () {
  // CalldataConditions._ownedBy: the view selector is set[0] when the condition names one.
  it("matches an ownedBy condition with an explicit view selector on a VM the account owns, denies one it does not", async function () {
    const f = await networkHelpers.loadFixture(explicitViewFixture);
    // the policy really carries the selector in set[0]
    const stopRule = f.policy.spec.classes[0]!.rules.find((r) => r.selector === f.vms.interface.getFunction("stopVm")!.selector)!;
    expect(stopRule.conditions[0]!.set).to.deep.equal([f.vms.interface.getFunction("getVm")!.selector.padEnd(66, "0")]);

    await runSigned(f, [await callOf(f.token, "approve", [await f.vms.getAddress(), 1_000_000n * NCC])]);
    await runSigned(f, [await callOf(f.vms, "requestVm", [f.provider.address, MANIFEST, RESOURCES_SMALL, MAX_PRICE, 100n * NCC])]);
    const ours = await f.vms.vmCount();
    await f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, RESOURCES_SMALL, MAX_PRICE, 100n * NCC);
    const theirs = await f.vms.vmCount();

    expect((await f.account.classOf([await callOf(f.vms, "stopVm", [ours])]))[0]).to.equal(0n);
    await expect(f.account.classOf([await callOf(f.vms, "stopVm", [theirs])])).to.be.revertedWithCustomError(
      f.account,
      "PolicyAccountActionDenied",
    );
  });

  // PolicyContent.recoveryRule: a self call of exactly a selector (4 bytes) is matched against the recovery rules.
  it("matches a 4-byte self call (a bare selector) against the recovery rules, denies a 3-byte one", async function () {
    const f = await networkHelpers.loadFixture(exampleFixture);
    const selector = f.account.interface.getFunction("restoreVersion")!.selector;
    const bare: Call[] = [{ target: f.accountAddress, value: 0n, data: selector }];
    const nonce = ++nonceCounter;
    await expect(f.account.connect(f.alice).proposeRecovery(bare, nonce)).to.emit(f.account, "OperationProposed");
    expect((await f.account.getOperation(nonce)).classIndex).to.equal(BigInt(RECOVERY_CLASS));

    const short: Call[] = [{ target: f.accountAddress, value: 0n, data: selector.slice(0, 8) }];
    await expect(f.account.connect(f.alice).proposeRecovery(short, ++nonceCounter)).to.be.revertedWithCustomError(
      f.account,
      "PolicyAccountActionDenied",
    );
  });

  // SignatureApprovals._signerIndex: the signer list ends where the guardians begin (they follow it in the layout).
  it("a guardian who is not a signer of the class can neither propose nor approve its operations", async function () {
    const f = await networkHelpers.loadFixture(guardianFixture);
    const transfer = [await callOf(f.token, "transfer", [f.tenant.address, NCC])];
    await expect(f.account.connect(f.carol).propose(transfer, ++nonceCounter))
      .to.be.revertedWithCustomError(f.account, "PolicyAccountNotSigner")
      .withArgs(nonceCounter, f.carol.address);
    const opId = ++nonceCounter;
    await f.account.connect(f.alice).propose(transfer, opId);
    await expect(f.account.connect(f.carol).approve(opId))
      .to.be.revertedWithCustomError(f.account, "PolicyAccountNotSigner")
      .withArgs(opId, f.carol.address);
  });

  // PolicyVersions._classifyCall: the one-call fast path (PolicyContent.soleCandidate) is skipped for the zero
  // target. soleCandidate keys the account's own calls as target 0, so a call to address(0) with the selector of
  // a self rule would match that rule there instead of being refused as a zero target.
  it("kills PolicyVersions-46: a signed single call to address(0) with a self rule's selector is refused as a zero target", async function () {
    const f = await networkHelpers.loadFixture(exampleFixture);
    // restoreVersion is a self rule without conditions of the policy-change class (and of recovery)
    const data = f.account.interface.encodeFunctionData("restoreVersion", [1n]);
    const calls: Call[] = [{ target: ZeroAddress, value: 0n, data }];
    await expect(f.account.classOf(calls)).to.be.revertedWithCustomError(f.account, "PolicyAccountZeroTarget").withArgs(0n);
    await expect(f.account.executeSignedCalls(calls, ++nonceCounter, FAR, "0x"))
      .to.be.revertedWithCustomError(f.account, "PolicyAccountZeroTarget")
      .withArgs(0n);
    // the same call to the account itself is classified (policy-change, 1-day delay): the zero target is what is refused
    await expect(f.account.executeSignedCalls([{ ...calls[0]!, target: f.accountAddress }], ++nonceCounter, FAR, "0x"))
      .to.be.revertedWithCustomError(f.account, "PolicyAccountDelayRequired");
  });

  // PolicyAccount._isGuardian: only the class's guardianCount guardians are read, not the 20 bytes after them
  // (the class's rule offsets and its first rule's header).
  it("kills PolicyAccount-106: the address formed by the bytes after a class's guardians cannot cancel its operation", async function () {
    const f = await networkHelpers.loadFixture(exampleFixture);
    const content = await initialContent(f);
    const classIndex = 1; // large-vm-or-terminate: 3 signers, guardian carol
    const cls = content.readUInt16BE(45 + 2 * classIndex);
    const signerCount = content[cls + 1]!;
    const guardianCount = content[cls + 2]!;
    expect([signerCount, guardianCount]).to.deep.equal([3, 1]);
    const guardiansAt = cls + 46 + 20 * signerCount;
    expect("0x" + content.subarray(guardiansAt, guardiansAt + 20).toString("hex")).to.equal(f.carol.address.toLowerCase());
    const pastAt = guardiansAt + 20 * guardianCount;
    const past = getAddress("0x" + content.subarray(pastAt, pastAt + 20).toString("hex"));
    expect([f.alice.address, f.bob.address, f.carol.address]).not.to.include(past);

    const transfer = [await callOf(f.token, "transfer", [f.tenant.address, NCC])];
    const opId = ++nonceCounter;
    await f.account.connect(f.alice).propose(transfer, opId);
    expect((await f.account.getOperation(opId)).classIndex).to.equal(BigInt(classIndex));
    await networkHelpers.setBalance(past, 10n ** 18n);
    const outsider = await f.ethers.getImpersonatedSigner(past);
    await expect(f.account.connect(outsider).cancel(opId))
      .to.be.revertedWithCustomError(f.account, "PolicyAccountNotCanceller")
      .withArgs(opId, past);
    // the real guardian can
    await expect(f.account.connect(f.carol).cancel(opId)).to.emit(f.account, "OperationCancelled");
  });

  // PolicyWriter._members: the member list covers the recovery class too (it is written after the classes).
  it("kills PolicyWriter-154: a recovery signer in no other class is a member of the policy", async function () {
    const f = await networkHelpers.loadFixture(recoveryOnlyMemberFixture);
    const dave = (await f.ethers.getSigners())[14]!;
    expect((await f.account.getClass(1, RECOVERY_CLASS)).signers).to.include(dave.address);
    const members = await f.account.members(1);
    expect([...members].sort()).to.deep.equal([f.alice.address, f.bob.address, f.carol.address, dave.address].sort());
  });

  it("kills PolicyWriter-67: a class delayed by exactly MAX_DELAY (90 days) is accepted", async function () {
    const f = await networkHelpers.loadFixture(delayedToTheMaxFixture);
    expect((await f.account.getClass(1, 1)).delay).to.equal(BigInt(MAX_DELAY_SECONDS));
    expect((await f.account.getClass(1, RECOVERY_CLASS)).delay).to.equal(BigInt(MAX_DELAY_SECONDS));
  });

  it("kills PolicyLayout-61: every class of the stored policy reads back with its own name and dominance mask", async function () {
    const f = await networkHelpers.loadFixture(delayedToTheMaxFixture);
    const names = DELAYED_TO_THE_MAX.classes.map((c) => c.name);
    for (const [index, name] of names.entries()) {
      const view = await f.account.getClass(1, index);
      expect(decodeBytes32String(view.name)).to.equal(name);
    }
    // The 3-of-3, one-day policy-change class is at least as strict as itself and small-vm, not the 90-day class 1.
    expect((await f.account.getClass(1, 2)).dominates).to.equal(0b101n);
  });

  it("kills PolicyVersions-98: an agent scoped to class 1 is charged by the rule its call matched there", async function () {
    const f = await networkHelpers.loadFixture(spendInClassOneFixture);
    const allowance = 1_000n * NCC;
    const grant = [await callOf(f.account, "grantAgent", [f.agent.address, 0b10, allowance, 2 ** 32 - 1, FAR])];
    await f.account.connect(f.alice).propose(grant, 900n);
    await f.account.connect(f.bob).approve(900n);
    await f.account.connect(f.carol).approve(900n);
    await networkHelpers.time.increase(86_400);
    await f.account.execute(900n, grant);
    const approval = [await callOf(f.token, "approve", [await f.vms.getAddress(), 200n * NCC])];
    await expect(f.account.connect(f.agent).agentExecute(approval)).to.emit(f.account, "AgentExecuted");
    // 200 NCC charged; the allowance refills by 1,000 NCC per 2^32 - 1 s, a fraction of a gwei per second.
    expect((await f.account.getAgent(f.agent.address)).available).to.be.closeTo(800n * NCC, 10n ** 15n);
  });
});
