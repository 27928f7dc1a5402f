// Tests that kill mutants a mutation-testing run found surviving: each pins one decision of the policy libraries
// that no other test observed.
import { expect } from "chai";
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

async function exampleFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection);
}
async function guardianFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection, GUARDIAN_NOT_SIGNER);
}
async function explicitViewFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection, EXPLICIT_VIEW);
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
});
