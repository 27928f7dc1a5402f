// Issue 9, policy accounts: each audit finding as the attack it describes. Every test here failed on the code
// before its fix (see the commit that added it) and passes with the rule that stops the attack.
import { expect } from "chai";
import { network } from "hardhat";
import type { NetworkConnection } from "hardhat/types/network";
import { Interface, encodeBytes32String, parseEther } from "ethers";
import { MANIFEST } from "../contracts/fixtures.ts";
import { Limit, OperationState, packSignatures, type Call, type PolicyJson } from "../../scripts/lib/policy.ts";
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
/** MAX_EXPIRY_WINDOW in contracts/policy/PolicyTypes.sol. */
const MAX_EXPIRY_WINDOW = 30n * DAY;
/** MAX_PENDING: pending operations per proposer. */
const MAX_PENDING = 16;

async function exampleFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection);
}

/** `json` built for the fixture's deployment. */
async function build(f: PolicyFixture, json: PolicyJson) {
  return buildFor(f, json, await ethers.getSigners(), {
    VmRegistry: await f.vms.getAddress(),
    CreditToken: await f.token.getAddress(),
  });
}

/** Runs `calls` through the example's policy-change class (3 of 3, one day) with `nonce`; returns the execution. */
async function change(f: PolicyFixture, calls: Call[], nonce: bigint) {
  await f.account.connect(f.alice).propose(calls, nonce);
  await f.account.connect(f.bob).approve(nonce);
  await f.account.connect(f.carol).approve(nonce);
  await time.increase(DAY);
  return await f.account.execute(nonce, calls);
}

describe("PolicyAccount: audit findings (issue 9)", function () {
  let f: PolicyFixture;
  beforeEach(async function () {
    f = await networkHelpers.loadFixture(exampleFixture);
  });

  it("audit 5: an EU-only region rule does not hold for an empty region list (which VmRegistry reads as any region)", async function () {
    const fn = "openOrder(bytes32 manifestDigest,(uint32 vcpu,uint32 memoryMiB,uint32 diskGiB) resources,bytes32[] regions,uint256 maxPricePerSecond,uint256 deposit)";
    const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
    json.classes[0]!.rules = [
      { target: "VmRegistry", function: fn, conditions: [{ arg: "regions", op: "allIn", set: ["eu-west-1", "eu-central-1"] }] },
    ];
    const { account } = await deployAccount(ethers, f.deployer.address);
    await account.initialize((await build(f, json)).spec);
    const order = async (regions: string[]) => [
      await callOf(f.vms, "openOrder", [MANIFEST, RESOURCES_SMALL, regions.map(encodeBytes32String), 10n, 100n * NCC]),
    ];
    expect((await account.classOf(await order(["eu-west-1"])))[0]).to.equal(0n);
    await expect(account.classOf(await order([])))
      .to.be.revertedWithCustomError(account, "PolicyAccountActionDenied")
      .withArgs(0n, f.vms.target, f.vms.interface.getFunction("openOrder")!.selector);
  });

  describe("audit 6: the pending list", function () {
    it("audit 6: a 1-of-N signer cannot block policy changes by filling the pending list", async function () {
      // Ready at once (1 of 3, no delay) and always reverting: the account never approved VmRegistry.
      const doomed = [await callOf(f.vms, "requestVm", [f.provider.address, MANIFEST, RESOURCES_SMALL, 10n ** 18n, 100n * NCC])];
      let filled = 0;
      for (let i = 0n; i < 70n; i++) {
        try {
          await f.account.connect(f.alice).propose(doomed, 80_000n + i);
        } catch {
          break;
        }
        filled++;
      }
      expect(await f.account.state(80_000n)).to.equal(OperationState.Ready);
      await expect(f.account.execute(80_000n, doomed)).to.be.revertedWithCustomError(f.account, "PolicyAccountCallFailed");
      // Alice filled what she could; the others still propose anything, policy changes included.
      const restore = [await callOf(f.account, "restoreVersion", [1])];
      await expect(f.account.connect(f.bob).propose(restore, 90_000n)).to.emit(f.account, "OperationProposed");
      await expect(f.account.connect(f.carol).propose(doomed, 90_001n)).to.emit(f.account, "OperationProposed");
      expect(filled).to.equal(MAX_PENDING);
      expect(await f.account.pendingOperations(f.bob.address)).to.deep.equal([90_000n]);
      // and alice, by cancelling her own
      await f.account.connect(f.alice).cancel(80_000n);
      await expect(f.account.connect(f.alice).propose(restore, 90_002n)).to.emit(f.account, "OperationProposed");
    });

    it("audit 6: expiry windows have an upper bound, checked when a policy is written", async function () {
      for (const where of ["class", "recovery"] as const) {
        const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
        const cls = where === "class" ? json.classes[0]! : json.recovery;
        cls.expiryWindow = Number(MAX_EXPIRY_WINDOW + 1n);
        const { account } = await deployAccount(ethers, f.deployer.address);
        await expect(account.initialize((await build(f, json)).spec))
          .to.be.revertedWithCustomError(account, "PolicyAccountTooMany")
          .withArgs(Limit.ExpiryWindow, MAX_EXPIRY_WINDOW + 1n, MAX_EXPIRY_WINDOW);
        cls.expiryWindow = Number(MAX_EXPIRY_WINDOW);
        await expect(account.initialize((await build(f, json)).spec)).to.emit(account, "PolicyChanged");
      }
    });
  });

  it("audit 8: a shortened recovery delay applies only after the old one has passed, whatever changes follow", async function () {
    const shorter: PolicyJson = structuredClone(EXAMPLE_POLICY);
    shorter.recovery.delay = "3d";
    const shortened = await change(f, [await callOf(f.account, "setPolicy", [(await build(f, shorter)).spec])], 1n);
    const shortenedAt = BigInt((await shortened.getBlock())!.timestamp);
    // any other change afterwards
    const other: PolicyJson = structuredClone(shorter);
    other.classes[0]!.expiryWindow = "2d";
    await change(f, [await callOf(f.account, "setPolicy", [(await build(f, other)).spec])], 2n);
    const recovery = [await callOf(f.account, "restoreVersion", [1])];
    await f.account.connect(f.alice).proposeRecovery(recovery, 3n);
    await f.account.connect(f.bob).approve(3n);
    await f.account.connect(f.carol).approve(3n);
    const op = await f.account.getOperation(3n);
    expect(op.notBefore).to.equal(shortenedAt + 7n * DAY);
    expect(op.eta).to.equal(shortenedAt + 7n * DAY);
    await time.increaseTo(shortenedAt + 7n * DAY - 1n);
    expect(await f.account.state(3n)).to.equal(OperationState.Queued);
    await expect(f.account.execute(3n, recovery)).to.emit(f.account, "PolicyChanged");
  });

  describe("audit 9: the ETH value of a call", function () {
    /** One class for the agent: `ping()` on an EOA (no value condition) and, with `tips`, `tip()` that may carry up
     * to 1 ETH. The account holds 5 ETH. */
    async function valueAccount(connection: NetworkConnection, tips: boolean) {
      const base = await deployPolicyFixture(connection);
      const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
      json.classes[0] = {
        name: "ops",
        signers: ["alice", "bob", "carol"],
        threshold: 1,
        delay: 0,
        expiryWindow: "1d",
        rules: [{ target: base.stranger.address, function: "ping()" }],
      };
      if (tips) {
        json.classes[0].rules.push({
          target: base.stranger.address,
          function: "tip()",
          conditions: [{ arg: "msg.value", op: "le", value: parseEther("1").toString() }],
        });
      }
      const signers = await ethers.getSigners();
      const built = buildFor(base, json, signers, { VmRegistry: await base.vms.getAddress(), CreditToken: await base.token.getAddress() });
      const { account } = await deployAccount(ethers, base.deployer.address);
      await account.initialize(built.spec);
      await base.deployer.sendTransaction({ to: await account.getAddress(), value: parseEther("5") });
      return { ...base, account, accountAddress: await account.getAddress(), policy: built };
    }
    const pingFixture = (connection: NetworkConnection) => valueAccount(connection, false);
    const tipFixture = (connection: NetworkConnection) => valueAccount(connection, true);
    const iface = new Interface(["function ping()", "function tip()"]);
    const to = (p: PolicyFixture, fn: string, value: bigint): Call[] => [
      { target: p.stranger.address, value, data: iface.encodeFunctionData(fn, []) },
    ];
    /** Grants the agent class 0 with `allowance` per day (3 of 3, one day). */
    async function grantOps(p: PolicyFixture, allowance: bigint) {
      await change(p, [await callOf(p.account, "grantAgent", [p.agent.address, 1, allowance, 86_400, FAR])], 7n);
    }

    it("audit 9: an agent with a zero allowance cannot send the account's ETH along an in-scope call", async function () {
      const p = await networkHelpers.loadFixture(pingFixture);
      await grantOps(p, 0n);
      const drain = to(p, "ping", parseEther("5"));
      await expect(p.account.connect(p.agent).agentExecute(drain))
        .to.be.revertedWithCustomError(p.account, "PolicyAccountActionDenied")
        .withArgs(0n, p.stranger.address, iface.getFunction("ping")!.selector);
      // the same call without value is in scope and free
      await expect(p.account.connect(p.agent).agentExecute(to(p, "ping", 0n))).to.emit(p.account, "AgentExecuted");
      expect(await ethers.provider.getBalance(p.accountAddress)).to.equal(parseEther("5"));
    });

    it("audit 9: a call with value matches only a rule whose value condition allows it, and an agent is charged for it", async function () {
      const p = await networkHelpers.loadFixture(tipFixture);
      // signers too: a rule without a value condition carries no ETH
      const sigs = await signOperation(p, [p.alice], to(p, "ping", 1n), 1n, FAR, { generic: true });
      await expect(p.account.executeSignedCalls(to(p, "ping", 1n), 1n, FAR, packSignatures(sigs)))
        .to.be.revertedWithCustomError(p.account, "PolicyAccountActionDenied");
      expect((await p.account.classOf(to(p, "tip", parseEther("1"))))[0]).to.equal(0n);
      await expect(p.account.classOf(to(p, "tip", parseEther("1") + 1n))).to.be.revertedWithCustomError(p.account, "PolicyAccountActionDenied");
      await grantOps(p, parseEther("0.5"));
      const agent = p.account.connect(p.agent);
      await expect(agent.agentExecute(to(p, "tip", parseEther("0.6"))))
        .to.be.revertedWithCustomError(p.account, "PolicyAccountAllowanceExceeded")
        .withArgs(p.agent.address, parseEther("0.6"), parseEther("0.5"));
      await expect(agent.agentExecute(to(p, "tip", parseEther("0.4"))))
        .to.emit(p.account, "AgentExecuted")
        .withArgs(p.agent.address, 1n, parseEther("0.4"), parseEther("0.1"), (c: unknown) => c !== undefined);
      expect(await ethers.provider.getBalance(p.accountAddress)).to.equal(parseEther("4.6"));
    });
  });

  it("audit (signatures): a named signature for one function is not accepted for another with the same action type", async function () {
    const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
    // Both rules name their action "MoveTokens" with the same parameters; only the selector differs.
    json.classes[0]!.rules = [{ target: "CreditToken", function: "approve(address to,uint256 amount)", action: "MoveTokens" }];
    json.classes[1]!.rules = [{ target: "CreditToken", function: "transfer(address to,uint256 amount)", action: "MoveTokens" }];
    json.classes[1]!.delay = 0;
    const built = await build(f, json);
    const { account } = await deployAccount(ethers, f.deployer.address);
    await account.initialize(built.spec);
    await f.token.transfer(await account.getAddress(), 10_000n * NCC);
    const p: PolicyFixture = { ...f, account, accountAddress: await account.getAddress(), policy: built };
    // Alice and Bob approve paying the stranger 1,000 NCC (2 of 3)...
    const pay = [await callOf(f.token, "transfer", [f.stranger.address, 1_000n * NCC])];
    const sigs = packSignatures(await signOperation(p, [f.alice, f.bob], pay, 1n, FAR));
    // ...which must not also let the stranger pull another 1,000 NCC.
    const allow = [await callOf(f.token, "approve", [f.stranger.address, 1_000n * NCC])];
    await expect(account.executeSignedCalls(allow, 1n, FAR, sigs)).to.be.revertedWithCustomError(account, "PolicyAccountInvalidSignature");
    await expect(account.executeSignedCalls(pay, 1n, FAR, sigs)).to.emit(account, "SignedOperationExecuted");
    expect(await f.token.allowance(p.accountAddress, f.stranger.address)).to.equal(0n);
  });
});
