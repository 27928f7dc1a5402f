// The matcher's and the account's less travelled paths: every comparison operator, malformed dynamic arguments,
// overlapping rules, and the bounds of the calls lists, each as the behaviour a policy author or caller sees.
import { expect } from "chai";
import { network } from "hardhat";
import type { NetworkConnection } from "hardhat/types/network";
import { Interface, encodeBytes32String as r } from "ethers";
import { MANIFEST } from "../contracts/fixtures.ts";
import { Limit, packSignatures, type Call, type PolicyJson } from "../../scripts/lib/policy.ts";
import {
  DAY,
  EXAMPLE_POLICY,
  NCC,
  RESOURCES_SMALL,
  buildFor,
  callOf,
  deployAccount,
  deployPolicyFixture,
  signOperation,
  type PolicyFixture,
} from "./fixtures.ts";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;
const FAR = 2n ** 40n - 1n;

async function exampleFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection);
}

/** A fresh account with policy `json`, and `f` pointed at it (for signOperation). */
async function withPolicy(f: PolicyFixture, json: PolicyJson): Promise<PolicyFixture> {
  const policy = buildFor(f, json, await ethers.getSigners(), {
    VmRegistry: await f.vms.getAddress(),
    CreditToken: await f.token.getAddress(),
  });
  const { account } = await deployAccount(ethers, f.deployer.address);
  await account.initialize(policy.spec);
  const accountAddress = await account.getAddress();
  await f.token.transfer(accountAddress, 10_000n * NCC);
  return { ...f, account, accountAddress, policy };
}

describe("PolicyAccount: edges", function () {
  let f: PolicyFixture;
  beforeEach(async function () {
    f = await networkHelpers.loadFixture(exampleFixture);
  });

  it("reads as empty before initialize: no version, no agent", async function () {
    const { account } = await deployAccount(ethers, f.deployer.address);
    expect(await account.policyVersion()).to.deep.equal([0n, 0n, "0x" + "00".repeat(32)]);
    const agent = await account.getAgent(f.agent.address);
    expect([agent.available, agent.active]).to.deep.equal([0n, false]);
  });

  it("compares with every operator and denies a call whose dynamic argument points outside its calldata", async function () {
    const fns = [
      "notFive(uint256 x)",
      "belowFive(uint256 x)",
      "atLeastFive(uint256 x)",
      "order((uint32 vcpu,uint256 maxPrice,bytes32[] regions) order)",
      "regions(bytes32[] regions)",
    ];
    const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
    json.classes[0]!.rules = [
      { target: "VmRegistry", function: fns[0]!, conditions: [{ arg: "x", op: "ne", value: 5 }] },
      { target: "VmRegistry", function: fns[1]!, conditions: [{ arg: "x", op: "lt", value: 5 }] },
      { target: "VmRegistry", function: fns[2]!, conditions: [{ arg: "x", op: "ge", value: 5 }] },
      { target: "VmRegistry", function: fns[3]!, conditions: [{ arg: "order.maxPrice", op: "le", value: 10 }] },
      { target: "VmRegistry", function: fns[4]!, conditions: [{ arg: "regions", op: "allIn", set: ["eu-west-1"] }] },
    ];
    const p = await withPolicy(f, json);
    const iface = new Interface(fns.map((fn) => `function ${fn}`));
    const vms = await f.vms.getAddress();
    const raw = (data: string): Call[] => [{ target: vms, value: 0n, data }];
    const call = (fn: string, args: unknown[]) => raw(iface.encodeFunctionData(fn, args));
    const ok = async (c: Call[]) => expect((await p.account.classOf(c))[0]).to.equal(0n);
    const denied = async (c: Call[]) => expect(p.account.classOf(c)).to.be.revertedWithCustomError(p.account, "PolicyAccountActionDenied");
    await ok(call("notFive", [4]));
    await denied(call("notFive", [5]));
    await ok(call("belowFive", [4]));
    await denied(call("belowFive", [5]));
    await ok(call("atLeastFive", [5]));
    await denied(call("atLeastFive", [4]));
    const order = call("order", [[4, 10, []]])[0]!.data;
    await ok(raw(order));
    // the tuple's offset beyond the calldata, and the tuple cut short before the field (offset and vcpu only)
    await denied(raw(order.slice(0, 10) + "ff".repeat(32) + order.slice(74)));
    await denied(raw(order.slice(0, 10 + 128)));
    // an array that claims two elements and carries one
    const list = call("regions", [[r("eu-west-1")]])[0]!.data;
    await ok(raw(list));
    await denied(raw(list.slice(0, 10 + 64) + (2).toString(16).padStart(64, "0") + list.slice(10 + 128)));
  });

  it("takes the first matching rule of a class, whether its conditions are evaluated or not", async function () {
    const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
    // two rules of one class for the same function: a call both match is that class's, once
    json.classes[0]!.rules = [
      { target: "CreditToken", function: "transfer(address to,uint256 amount)", conditions: [{ arg: "amount", op: "le", value: 10 }] },
      { target: "CreditToken", function: "transfer(address to,uint256 amount)", conditions: [{ arg: "amount", op: "le", value: 100 }] },
      { target: "CreditToken", function: "approve(address spender,uint256 amount)" },
      { target: "CreditToken", function: "approve(address spender,uint256 amount)", action: "ApproveTokens" },
    ];
    json.classes[1]!.rules = json.classes[1]!.rules.filter((rule) => !rule.function.startsWith("transfer"));
    const p = await withPolicy(f, json);
    expect((await p.account.classOf([await callOf(f.token, "transfer", [f.stranger.address, 5])]))[0]).to.equal(0n);
    expect((await p.account.classOf([await callOf(f.token, "transfer", [f.stranger.address, 50])]))[0]).to.equal(0n);
    // signed at once (both approve rules have no conditions): the first rule, without a named action
    const approve = [await callOf(f.token, "approve", [f.stranger.address, 5])];
    const sigs = await signOperation(p, [f.alice], approve, 1n, FAR, { generic: true });
    await expect(p.account.executeSignedCalls(approve, 1n, FAR, packSignatures(sigs))).to.emit(p.account, "SignedOperationExecuted");
  });

  it("gives a single call two classes match the one at least as strict as the other, and refuses it when neither is", async function () {
    const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
    const [low, high] = f.sorted;
    json.classes[0]!.signers = [high!.address];
    json.classes[1]!.signers = [low!.address, high!.address];
    json.classes[1]!.threshold = 1;
    json.classes[0]!.rules = [{ target: "CreditToken", function: "transfer(address to,uint256 amount)" }];
    json.classes[1]!.rules = [{ target: "CreditToken", function: "transfer(address to,uint256 amount)" }];
    const transfer = [await callOf(f.token, "transfer", [f.stranger.address, 5])];
    // class 0 (1 of {high}, no delay) and class 1 (1 of {low, high}, one hour): neither dominates
    const p = await withPolicy(f, json);
    await expect(p.account.classOf(transfer)).to.be.revertedWithCustomError(p.account, "PolicyAccountNoStrictestClass").withArgs(0b11n);
    // with two hours, class 0's signers (a subset of class 1's) and delay make it the strictest
    json.classes[0]!.delay = "2h";
    const q = await withPolicy(f, json);
    expect((await q.account.classOf(transfer))[0]).to.equal(0n);
  });

  it("signs a named action's call with extra calldata as the generic Operation", async function () {
    const calls = [await callOf(f.token, "approve", [await f.vms.getAddress(), NCC])];
    calls[0]!.data += "00".repeat(32);
    const sigs = await signOperation(f, [f.alice], calls, 1n, FAR, { generic: true });
    await expect(f.account.executeSignedCalls(calls, 1n, FAR, packSignatures(sigs))).to.emit(f.account, "SignedOperationExecuted");
  });

  it("runs a signed batch call by call", async function () {
    const vms = await f.vms.getAddress();
    const calls = [await callOf(f.token, "approve", [vms, NCC]), await callOf(f.token, "approve", [vms, 2n * NCC])];
    const sigs = await signOperation(f, [f.alice], calls, 1n, FAR);
    await f.account.executeSignedCalls(calls, 1n, FAR, packSignatures(sigs));
    expect(await f.token.allowance(f.accountAddress, vms)).to.equal(2n * NCC);
  });

  it("bounds the calls of recovery and agent operations", async function () {
    const restore = await callOf(f.account, "restoreVersion", [1]);
    await expect(f.account.connect(f.alice).proposeRecovery(Array(9).fill(restore), 1n))
      .to.be.revertedWithCustomError(f.account, "PolicyAccountTooMany")
      .withArgs(Limit.Calls, 9n, 8n);
    // a self-call the recovery class does not cover
    const grant = await callOf(f.account, "grantAgent", [f.agent.address, 1, 1, 1, FAR]);
    await expect(f.account.connect(f.alice).proposeRecovery([grant], 1n))
      .to.be.revertedWithCustomError(f.account, "PolicyAccountActionDenied")
      .withArgs(0n, f.accountAddress, grant.data.slice(0, 10));
    await f.account.connect(f.alice).propose([grant], 2n);
    await f.account.connect(f.bob).approve(2n);
    await f.account.connect(f.carol).approve(2n);
    await time.increase(DAY);
    await f.account.execute(2n, [grant]);
    const agent = f.account.connect(f.agent);
    await expect(agent.agentExecute([])).to.be.revertedWithCustomError(f.account, "PolicyAccountNoCalls");
    await expect(agent.agentExecute(Array(9).fill(restore)))
      .to.be.revertedWithCustomError(f.account, "PolicyAccountTooMany")
      .withArgs(Limit.Calls, 9n, 8n);
    // a request cut short before its deposit (the word the agent is charged with)
    const request = await callOf(f.vms, "requestVm", [f.provider.address, MANIFEST, RESOURCES_SMALL, 10n ** 18n, NCC]);
    request.data = request.data.slice(0, request.data.length - 64);
    await expect(agent.agentExecute([request]))
      .to.be.revertedWithCustomError(f.account, "PolicyAccountActionDenied")
      .withArgs(0n, await f.vms.getAddress(), request.data.slice(0, 10));
  });

  it("keeps a batch's delay floor when the old policy had no strictest class for it", async function () {
    // Under v1 the batch has no strictest class; v2 makes the classes nest. The floor then ignores v1.
    const v1: PolicyJson = structuredClone(EXAMPLE_POLICY);
    v1.classes[0]!.signers = ["alice"];
    v1.classes[1]!.signers = ["bob", "carol"];
    v1.classes[1]!.threshold = 1;
    const p = await withPolicy(f, v1);
    const batch = [await callOf(f.token, "approve", [await f.vms.getAddress(), NCC]), await callOf(f.vms, "requestVm", [f.provider.address, MANIFEST, { vcpu: 8n, memoryMiB: 8192n, diskGiB: 100n }, 10n ** 18n, NCC])];
    const built = buildFor(f, EXAMPLE_POLICY, await ethers.getSigners(), {
      VmRegistry: await f.vms.getAddress(),
      CreditToken: await f.token.getAddress(),
    });
    const change = [await callOf(p.account, "setPolicy", [built.spec])];
    await p.account.connect(f.alice).propose(change, 1n);
    await p.account.connect(f.bob).approve(1n);
    await p.account.connect(f.carol).approve(1n);
    await time.increase(DAY);
    await p.account.execute(1n, change);
    const [classIndex, notBefore] = await p.account.classOf(batch);
    expect([classIndex, notBefore]).to.deep.equal([1n, 0n]);
  });
});
