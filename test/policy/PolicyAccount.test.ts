import { expect } from "chai";
import { network } from "hardhat";
import type { NetworkConnection } from "hardhat/types/network";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { AbiCoder, ZeroAddress, id } from "ethers";
import { anyValue } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";
import { MANIFEST, VmState } from "../contracts/fixtures.ts";
import {
  Limit,
  OperationState,
  RECOVERY_CLASS,
  buildPolicy,
  compactSignature,
  packSignatures,
  policyHash,
  sortSignatures,
  type Call,
  type SignerSignature,
  type PolicyJson,
} from "../../scripts/lib/policy.ts";
import {
  ACCOUNT_FUNDS,
  DAY,
  EXAMPLE_POLICY,
  HOUR,
  NCC,
  RESOURCES_LARGE,
  RESOURCES_SMALL,
  buildFor,
  callOf,
  deployAccount,
  deployPolicyFixture,
  signOperation,
  type PolicyFixture,
} from "./fixtures.ts";
import { createSafe, deploySafeInfrastructure, safeMessageSignature } from "./safe.ts";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const SMALL = 0n;
const LARGE = 1n;
const POLICY = 2n;
const FAR = 2n ** 40n - 1n;
/** The most the organisation pays per second in these tests (above any quote of the fixture provider). */
const MAX_PRICE = 10n ** 18n;

/** A policy where token transfers need 2 of 3 and no delay (the signature path), plus the example's policy change. */
const PAYMENTS: PolicyJson = {
  members: EXAMPLE_POLICY.members!,
  classes: [
    {
      name: "payments",
      signers: ["alice", "bob", "carol"],
      threshold: 2,
      delay: 0,
      expiryWindow: "1d",
      guardians: ["#5"],
      rules: [
        {
          target: "CreditToken",
          function: "transfer(address to,uint256 amount)",
          action: "TransferTokens",
          spend: "amount",
          conditions: [{ arg: "amount", op: "le", value: (1_000n * NCC).toString() }],
        },
      ],
    },
    EXAMPLE_POLICY.classes[2]!,
  ],
  recovery: EXAMPLE_POLICY.recovery,
};

/**
 * Rules without conditions, for the signed path's quick classification: approve is in one class (decided at once);
 * transfer is in two (the full matcher picks the strictest); the policy change calls this account.
 */
const PLAIN: PolicyJson = {
  members: EXAMPLE_POLICY.members!,
  classes: [
    {
      name: "plain",
      signers: ["alice", "bob", "carol"],
      threshold: 1,
      delay: 0,
      expiryWindow: "1d",
      rules: [
        { target: "CreditToken", function: "approve(address spender,uint256 amount)" },
        { target: "CreditToken", function: "transfer(address to,uint256 amount)" },
      ],
    },
    {
      name: "strict",
      signers: ["alice", "bob", "carol"],
      threshold: 2,
      delay: 0,
      expiryWindow: "1d",
      rules: [{ target: "CreditToken", function: "transfer(address to,uint256 amount)" }],
    },
    EXAMPLE_POLICY.classes[2]!,
  ],
  recovery: EXAMPLE_POLICY.recovery,
};

async function exampleFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection);
}
async function plainFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection, PLAIN);
}
async function paymentsFixture(connection: NetworkConnection) {
  return await deployPolicyFixture(connection, PAYMENTS);
}

let nonceCounter = 1000n;
const nextNonce = () => ++nonceCounter;

async function requestCall(f: PolicyFixture, resources = RESOURCES_SMALL, deposit = 100n * NCC): Promise<Call> {
  return await callOf(f.vms, "requestVm", [f.provider.address, MANIFEST, resources, MAX_PRICE, deposit]);
}
async function approveCall(f: PolicyFixture, amount = 1_000_000n * NCC): Promise<Call> {
  return await callOf(f.token, "approve", [await f.vms.getAddress(), amount]);
}
async function transferCall(f: PolicyFixture, to: string, amount: bigint): Promise<Call> {
  return await callOf(f.token, "transfer", [to, amount]);
}
/** One-shot: the calls with `signers`' signatures, sent by `sender`. */
async function runSigned(f: PolicyFixture, signers: HardhatEthersSigner[], calls: Call[], sender?: HardhatEthersSigner) {
  const nonce = nextNonce();
  const deadline = FAR;
  const sigs = await signOperation(f, signers, calls, nonce, deadline);
  return (sender ? f.account.connect(sender) : f.account).executeSignedCalls(calls, nonce, deadline, packSignatures(sigs));
}
/** Lets the account spend tokens through VmRegistry (small class, 1 of 3) and requests a small VM; returns its id. */
async function accountVm(f: PolicyFixture): Promise<bigint> {
  await runSigned(f, [f.alice], [await approveCall(f)]);
  await runSigned(f, [f.alice], [await requestCall(f)]);
  return await f.vms.vmCount();
}
/** Proposes by `proposer` and approves by `others`; returns the op id. */
async function proposeApproved(f: PolicyFixture, calls: Call[], proposer: HardhatEthersSigner, others: HardhatEthersSigner[] = []) {
  const nonce = nextNonce();
  await f.account.connect(proposer).propose(calls, nonce);
  for (const o of others) await f.account.connect(o).approve(nonce);
  return nonce;
}
/** The approval bitmask of `who` over the (sorted) class signers. */
function bitsOf(f: PolicyFixture, who: HardhatEthersSigner[]): bigint {
  return who.reduce((m, s) => m | (1n << BigInt(f.sorted.indexOf(s))), 0n);
}
async function latest(): Promise<bigint> {
  return BigInt(await time.latest());
}

describe("PolicyAccount", function () {
  let f: PolicyFixture;
  beforeEach(async function () {
    f = await networkHelpers.loadFixture(exampleFixture);
  });

  describe("policy", function () {
    it("starts at version 1 with the example policy, its hash, members and classes", async function () {
      const [version, contentId, hash] = await f.account.policyVersion();
      expect(version).to.equal(1n);
      expect(contentId).to.equal(1n);
      expect(hash).to.equal(policyHash(f.policy.spec));
      expect(await f.account.classCount(1)).to.equal(3n);
      const members = await f.account.members(1);
      expect([...members].sort()).to.deep.equal([f.alice.address, f.bob.address, f.carol.address].sort());
      const large = await f.account.getClass(1, 1);
      expect(large.threshold).to.equal(2n);
      expect(large.delay).to.equal(HOUR);
      expect(large.signers).to.deep.equal(f.sorted.map((s) => s.address));
      expect(large.guardians).to.deep.equal([f.carol.address]);
      // large dominates small; policy-change dominates both
      expect(large.dominates).to.equal(0b011n);
      expect((await f.account.getClass(1, 2)).dominates).to.equal(0b111n);
      const recovery = await f.account.getClass(1, RECOVERY_CLASS);
      expect(recovery.threshold).to.equal(3n);
      expect(recovery.delay).to.equal(7n * DAY);
      const [cid, h, activatedAt] = await f.account.versionInfo(1);
      expect([cid, h]).to.deep.equal([1n, hash]);
      expect(activatedAt).to.be.greaterThan(0n);
      // content that does not exist, and a class beyond the count, read as empty
      expect(await f.account.members(9)).to.deep.equal([]);
      expect(await f.account.classCount(9)).to.equal(0n);
      expect((await f.account.getClass(9, 0)).threshold).to.equal(0n);
      expect((await f.account.getClass(1, 3)).signers).to.deep.equal([]);
      await expect(f.account.versionInfo(2)).to.be.revertedWithCustomError(f.account, "PolicyAccountUnknownVersion").withArgs(2n);
    });

    it("emits PolicyStored and PolicyChanged on initialize, once, and only by the initializer", async function () {
      const { account } = await deployAccount(ethers, f.deployer.address);
      await expect(account.connect(f.stranger).initialize(f.policy.spec))
        .to.be.revertedWithCustomError(account, "PolicyAccountNotInitializer")
        .withArgs(f.stranger.address);
      await expect(account.initialize(f.policy.spec))
        .to.emit(account, "PolicyChanged")
        .withArgs(1n, 1n, f.policy.hash, 0n)
        .and.to.emit(account, "PolicyStored");
      await expect(account.initialize(f.policy.spec)).to.be.revertedWithCustomError(account, "PolicyAccountAlreadyInitialized");
    });

    it("reverts with PolicyAccountStoreFailed when the content's data contract runs out of gas", async function () {
      const { account } = await deployAccount(ethers, f.deployer.address);
      const full = await account.initialize.estimateGas(f.policy.spec);
      // Somewhere below the full cost CREATE gets too little gas (200 per byte of code) and the account reverts
      // with the 1/64 CREATE leaves it; further down the transaction runs out of gas before CREATE.
      const names = new Set<string>();
      for (let gas = full - 20_000n; gas > full - 800_000n; gas -= 20_000n) {
        try {
          await account.initialize.staticCall(f.policy.spec, { gasLimit: gas });
        } catch (error) {
          const data = (error as { data?: unknown }).data;
          if (typeof data === "string" && data !== "0x") names.add(account.interface.parseError(data)?.name ?? data);
        }
      }
      expect([...names]).to.deep.equal(["PolicyAccountStoreFailed"]);
    });

    it("takes policy changes only from the account itself", async function () {
      for (const send of [
        () => f.account.setPolicy(f.policy.spec),
        () => f.account.restoreVersion(1),
        () => f.account.grantAgent(f.agent.address, 1, 1n, 1, FAR),
        () => f.account.revokeAgent(f.agent.address),
      ]) {
        await expect(send()).to.be.revertedWithCustomError(f.account, "PolicyAccountOnlySelf").withArgs(f.deployer.address);
      }
      await expect(f.account.versionInfo(2)).to.be.revertedWithCustomError(f.account, "PolicyAccountUnknownVersion").withArgs(2n);
    });

    describe("rejects invalid policies", function () {
      const spec = () => structuredClone(f.policy.spec);
      async function rejects(mutate: (s: ReturnType<typeof spec>) => void, error: string, args?: unknown[]) {
        const { account } = await deployAccount(ethers, f.deployer.address);
        const s = spec();
        mutate(s);
        const p = expect(account.initialize(s)).to.be.revertedWithCustomError(account, error);
        if (args !== undefined) await p.withArgs(...args);
        else await p;
      }
      it("threshold 0 or above the signers", async function () {
        await rejects((s) => (s.classes[1]!.threshold = 0), "PolicyAccountInvalidThreshold", [1n, 0n, 3n]);
        await rejects((s) => (s.classes[0]!.threshold = 4), "PolicyAccountInvalidThreshold", [0n, 4n, 3n]);
        await rejects((s) => (s.classes[0]!.signers = []), "PolicyAccountInvalidThreshold", [0n, 1n, 0n]);
      });
      it("unsorted, repeated or zero signers and guardians", async function () {
        await rejects((s) => s.classes[0]!.signers.reverse(), "PolicyAccountUnsortedAddresses");
        await rejects((s) => (s.classes[0]!.signers[1] = s.classes[0]!.signers[0]!), "PolicyAccountUnsortedAddresses");
        await rejects((s) => (s.classes[0]!.guardians = [ZeroAddress]), "PolicyAccountUnsortedAddresses", [0n, ZeroAddress]);
      });
      it("a zero expiry window, a delay above 90 days, too many classes, signers, rules, conditions or set values", async function () {
        await rejects((s) => (s.classes[2]!.expiryWindow = 0), "PolicyAccountZeroExpiryWindow", [2n]);
        await rejects((s) => (s.classes[0]!.delay = 91 * 86_400), "PolicyAccountTooMany", [Limit.Delay, 91n * DAY, 90n * DAY]);
        await rejects((s) => (s.classes = Array(13).fill(s.classes[0])), "PolicyAccountTooMany", [Limit.Classes, 13n, 12n]);
        await rejects(
          (s) => (s.classes[0]!.signers = Array.from({ length: 17 }, (_, i) => "0x" + (i + 1).toString(16).padStart(40, "0"))),
          "PolicyAccountTooMany",
          [Limit.Signers, 17n, 16n],
        );
        await rejects((s) => (s.classes[0]!.rules = Array(9).fill(s.classes[0]!.rules[0])), "PolicyAccountTooMany", [Limit.Rules, 9n, 8n]);
        await rejects(
          (s) => (s.classes[0]!.rules[0]!.conditions = Array(9).fill(s.classes[0]!.rules[0]!.conditions[0])),
          "PolicyAccountTooMany",
          [Limit.Conditions, 9n, 8n],
        );
        const c = { op: 6, arg: 0, field: 0, subject: 0, value: 0n, set: Array(17).fill(id("x")) };
        await rejects((s) => (s.classes[0]!.rules[0]!.conditions = [c]), "PolicyAccountTooMany", [Limit.SetValues, 17n, 16n]);
      });
      it("more than 8 guardians, or more than 64 distinct members", async function () {
        const addr = (i: number) => "0x" + i.toString(16).padStart(40, "0");
        await rejects(
          (s) => (s.classes[0]!.guardians = Array.from({ length: 9 }, (_, i) => addr(i + 1))),
          "PolicyAccountTooMany",
          [Limit.Guardians, 9n, 8n],
        );
        await rejects(
          (s) => {
            s.classes = [0, 1, 2].map((c) => ({
              ...s.classes[0]!,
              name: id(`c${c}`),
              signers: Array.from({ length: 16 }, (_, i) => addr(1000 * c + i + 1)),
              guardians: Array.from({ length: 8 }, (_, i) => addr(1000 * c + 100 + i)),
            }));
          },
          "PolicyAccountTooMany",
          [Limit.Members, 65n, 64n],
        );
      });

      it("more than 8 rules for one target and selector", async function () {
        await rejects(
          (s) => {
            const r = s.classes[0]!.rules[0]!;
            s.classes = [0, 1].map((i) => ({ ...s.classes[0]!, name: id(`c${i}`), rules: Array(i === 0 ? 8 : 1).fill(r) }));
          },
          "PolicyAccountTooMany",
          [Limit.RulesPerSelector, 9n, 8n],
        );
      });
      it("more than 24,575 bytes of encoded policy (one data contract's code)", async function () {
        // 6 rules of 8 conditions with 16 set values each: 6 x (59 + 8 x (37 + 16 x 32)) = 26,706 bytes of rules alone
        const wide = { op: 6, arg: 1, field: 0, subject: 0, value: 0n, set: Array.from({ length: 16 }, (_, i) => id(`v${i}`)) };
        await rejects(
          (s) => (s.classes[0]!.rules = Array(6).fill({ ...s.classes[0]!.rules[0]!, conditions: Array(8).fill(wide) })),
          "PolicyAccountTooMany",
          [Limit.PolicyBytes, (n: bigint) => n > 26_706n, 24_575n],
        );
      });
      it("conditions that cannot be evaluated", async function () {
        const bad = [
          { op: 6, arg: 0, field: 0, subject: 0, value: 0n, set: [] }, // InSet without a set
          { op: 8, arg: 0, field: 0, subject: 0, value: 0n, set: [id("x")] }, // AllInSet not on an array (ArgField)
          { op: 9, arg: 0, field: 0, subject: 0, value: 0n, set: [id("x"), id("y")] }, // OwnedBy with 2 selectors
          { op: 3, arg: 0, field: 1, subject: 0, value: 0n, set: [] }, // field without ArgField
          { op: 3, arg: 0, field: 0, subject: 0, value: 0n, set: [id("x")] }, // comparison with a set
          { op: 8, arg: 0, field: 1, subject: 1, value: 0n, set: [id("x")] }, // AllInSet on an array inside a tuple
          { op: 3, arg: 1, field: 0, subject: 2, value: 0n, set: [] }, // the call's value with an argument
          { op: 3, arg: 0, field: 1, subject: 2, value: 0n, set: [] }, // the call's value with a field
          { op: 8, arg: 0, field: 0, subject: 2, value: 0n, set: [id("x")] }, // the call's value as an array
          { op: 9, arg: 0, field: 0, subject: 2, value: 0n, set: [] }, // the call's value as a VM id
        ];
        for (const c of bad) await rejects((s) => (s.classes[1]!.rules[2]!.conditions = [c]), "PolicyAccountInvalidCondition", [1n, 2n, 0n]);
      });
      it("a recovery class that is not every signer, short, guarded or reaching beyond policy changes", async function () {
        await rejects((s) => (s.recovery.threshold = 2), "PolicyAccountInvalidRecovery", [0n]);
        await rejects((s) => (s.recovery.delay = 2 * 86_400), "PolicyAccountInvalidRecovery", [1n]);
        await rejects((s) => (s.recovery.guardians = [s.recovery.signers[0]!]), "PolicyAccountInvalidRecovery", [2n]);
        await rejects((s) => (s.recovery.rules = [s.classes[1]!.rules[1]!]), "PolicyAccountInvalidRecovery", [3n]);
      });
      it("a recovery delay shorter than another class's delay", async function () {
        await rejects((s) => (s.classes[2]!.delay = 8 * 86_400), "PolicyAccountInvalidRecovery", [1n]);
      });
    });
  });

  describe("classification", function () {
    it("gives each action its class by typed conditions on the decoded arguments", async function () {
      const vmId = await accountVm(f);
      expect((await f.account.classOf([await requestCall(f, RESOURCES_SMALL)]))[0]).to.equal(SMALL);
      expect((await f.account.classOf([await requestCall(f, RESOURCES_LARGE)]))[0]).to.equal(LARGE);
      expect((await f.account.classOf([await callOf(f.vms, "terminateVm", [vmId])]))[0]).to.equal(LARGE);
      expect((await f.account.classOf([await callOf(f.vms, "stopVm", [vmId])]))[0]).to.equal(SMALL);
      expect((await f.account.classOf([await transferCall(f, f.stranger.address, 10_000n * NCC)]))[0]).to.equal(LARGE);
      expect((await f.account.classOf([await callOf(f.account, "restoreVersion", [1])]))[0]).to.equal(POLICY);
      expect((await f.account.classOf([await callOf(f.account, "setPolicy", [f.policy.spec])]))[0]).to.equal(POLICY);
    });

    it("denies what no class matches: other functions, other arguments, VMs of others, malformed calldata", async function () {
      const token = await f.token.getAddress();
      const cases: [Call, string, string][] = [
        [await callOf(f.token, "transferFrom", [f.alice.address, f.bob.address, 1n]), token, f.token.interface.getFunction("transferFrom")!.selector],
        [await transferCall(f, f.stranger.address, 10_000n * NCC + 1n), token, f.token.interface.getFunction("transfer")!.selector],
        [await callOf(f.token, "approve", [f.stranger.address, 1n]), token, f.token.interface.getFunction("approve")!.selector],
        [{ target: token, value: 0n, data: "0x1234" }, token, "0x00000000"],
        [{ target: token, value: 1n, data: "0x" }, token, "0x00000000"],
        // the argument word the condition reads is missing
        [{ target: token, value: 0n, data: f.token.interface.getFunction("transfer")!.selector + "00".repeat(32) }, token, f.token.interface.getFunction("transfer")!.selector],
      ];
      for (const [call, target, selector] of cases) {
        await expect(f.account.classOf([call]))
          .to.be.revertedWithCustomError(f.account, "PolicyAccountActionDenied")
          .withArgs(0n, target, selector);
      }
      // a VM the account does not own
      await f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, RESOURCES_SMALL, MAX_PRICE, 100n * NCC);
      const theirs = await f.vms.vmCount();
      await expect(f.account.classOf([await callOf(f.vms, "terminateVm", [theirs])])).to.be.revertedWithCustomError(
        f.account,
        "PolicyAccountActionDenied",
      );
      // a VM that does not exist (the view call reverts)
      await expect(f.account.classOf([await callOf(f.vms, "stopVm", [999n])])).to.be.revertedWithCustomError(f.account, "PolicyAccountActionDenied");
    });

    it("gives a batch its strictest class and denies it when one call is denied", async function () {
      const batch = [await approveCall(f), await requestCall(f, RESOURCES_LARGE)];
      expect((await f.account.classOf(batch))[0]).to.equal(LARGE);
      expect((await f.account.classOf([await approveCall(f), await requestCall(f)]))[0]).to.equal(SMALL);
      const denied = await callOf(f.token, "transferFrom", [f.alice.address, f.bob.address, 1n]);
      await expect(f.account.classOf([await approveCall(f), denied]))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountActionDenied")
        .withArgs(1n, await f.token.getAddress(), denied.data.slice(0, 10));
    });

    it("bounds the number of calls and rejects the zero target", async function () {
      await expect(f.account.classOf([])).to.be.revertedWithCustomError(f.account, "PolicyAccountNoCalls");
      const call = await approveCall(f);
      await expect(f.account.classOf(Array(9).fill(call)))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountTooMany")
        .withArgs(Limit.Calls, 9n, 8n);
      await expect(f.account.classOf([call, { ...call, target: ZeroAddress }]))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountZeroTarget")
        .withArgs(1n);
    });

    it("refuses a batch when no class is at least as strict as all the others", async function () {
      // Two classes with different signers for two functions: neither dominates the other.
      const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
      json.classes[0]!.signers = ["alice"];
      json.classes[1]!.signers = ["bob", "carol"];
      json.classes[1]!.threshold = 1;
      const signers = await ethers.getSigners();
      const built = buildFor(f, json, signers, { VmRegistry: await f.vms.getAddress(), CreditToken: await f.token.getAddress() });
      const { account } = await deployAccount(ethers, f.deployer.address);
      await account.initialize(built.spec);
      const batch = [await approveCall(f), await requestCall(f, RESOURCES_LARGE)];
      await expect(account.classOf(batch)).to.be.revertedWithCustomError(account, "PolicyAccountNoStrictestClass").withArgs(0b11n);
    });

    it("matches region membership, dynamic tuple fields and array elements through offsets", async function () {
      // A made-up open-order function with a dynamic tuple: conditions address its fields by position.
      const fn = "openOrder((uint32 vcpu,uint256 maxPrice,bytes32[] regions) order,uint256 deposit)";
      const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
      json.classes[0]!.rules = [
        {
          target: "VmRegistry",
          function: fn,
          conditions: [
            { arg: "order.maxPrice", op: "le", value: 1000 },
            { arg: "order.vcpu", op: "le", value: 4 },
          ],
        },
        { target: "VmRegistry", function: "pickRegion(bytes32 region)", conditions: [{ arg: "region", op: "in", set: ["eu-west-1", "eu-central-1"] }] },
        { target: "VmRegistry", function: "pickRegions(bytes32[] regions)", conditions: [{ arg: "regions", op: "allIn", set: ["eu-west-1", "eu-central-1"] }] },
        { target: "VmRegistry", function: "avoidRegion(bytes32 region)", conditions: [{ arg: "region", op: "notIn", set: ["us-east-1"] }] },
      ];
      const signers = await ethers.getSigners();
      const built = buildFor(f, json, signers, { VmRegistry: await f.vms.getAddress(), CreditToken: await f.token.getAddress() });
      const { account } = await deployAccount(ethers, f.deployer.address);
      await account.initialize(built.spec);
      const { Interface, encodeBytes32String: r } = await import("ethers");
      const iface = new Interface([
        `function ${fn}`,
        "function pickRegion(bytes32 region)",
        "function pickRegions(bytes32[] regions)",
        "function avoidRegion(bytes32 region)",
      ]);
      const vms = await f.vms.getAddress();
      const call = (name: string, args: unknown[]): Call[] => [{ target: vms, value: 0n, data: iface.encodeFunctionData(name, args) }];
      const ok = async (c: Call[]) => expect((await account.classOf(c))[0]).to.equal(0n);
      const denied = async (c: Call[]) => expect(account.classOf(c)).to.be.revertedWithCustomError(account, "PolicyAccountActionDenied");
      await ok(call("openOrder", [[4, 1000, [r("eu-west-1")]], 5]));
      await denied(call("openOrder", [[4, 1001, [r("eu-west-1")]], 5]));
      await denied(call("openOrder", [[5, 10, []], 5]));
      await ok(call("pickRegion", [r("eu-central-1")]));
      await denied(call("pickRegion", [r("us-east-1")]));
      await ok(call("pickRegions", [[r("eu-west-1"), r("eu-central-1")]]));
      await denied(call("pickRegions", [[]]));
      await denied(call("pickRegions", [[r("eu-west-1"), r("us-east-1")]]));
      await denied(call("pickRegions", [Array(33).fill(r("eu-west-1"))]));
      await ok(call("avoidRegion", [r("eu-west-1")]));
      await denied(call("avoidRegion", [r("us-east-1")]));
      // an offset pointing outside the calldata
      const broken = iface.encodeFunctionData("pickRegions", [[r("eu-west-1")]]);
      await denied([{ target: vms, value: 0n, data: broken.slice(0, 10) + "ff".repeat(32) + broken.slice(74) }]);
    });
  });

  describe("executeSignedCalls", function () {
    it("runs a no-delay action with enough signatures, names the action in the typed data, and marks the nonce", async function () {
      await runSigned(f, [f.bob], [await approveCall(f)]);
      const calls = [await requestCall(f)];
      const nonce = nextNonce();
      const sigs = await signOperation(f, [f.alice], calls, nonce, FAR);
      // the log names the digest the signers signed, which commits to the calls
      const digest = await f.account.operationDigest(calls, nonce, 1n, FAR);
      await expect(f.account.connect(f.stranger).executeSignedCalls(calls, nonce, FAR, packSignatures(sigs)))
        .to.emit(f.account, "SignedOperationExecuted")
        .withArgs(nonce, 1n, SMALL, bitsOf(f, [f.alice]), digest)
        .and.to.emit(f.vms, "VmRequested");
      const vm = await f.vms.getVm(await f.vms.vmCount());
      expect(vm.owner).to.equal(f.accountAddress);
      expect(vm.state).to.equal(VmState.Requested);
      expect(await f.account.nonceUsed(nonce)).to.equal(true);
      await expect(f.account.executeSignedCalls(calls, nonce, FAR, packSignatures(sigs)))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountNonceUsed")
        .withArgs(nonce);
    });

    it("classifies one call as classOf does, at once for a sole condition-free match and by the full matcher otherwise", async function () {
      const p = await networkHelpers.loadFixture(plainFixture);
      const run = async (by: HardhatEthersSigner[], calls: Call[], nonce = nextNonce()) =>
        p.account.executeSignedCalls(calls, nonce, FAR, packSignatures(await signOperation(p, by, calls, nonce, FAR)));
      const unsigned = (calls: Call[]) => p.account.executeSignedCalls(calls, nextNonce(), FAR, "0x");
      const bits = (who: HardhatEthersSigner[]) => who.reduce((m, s) => m | (1n << BigInt(p.sorted.indexOf(s))), 0n);
      // one class, no conditions: decided at once
      const approve = await callOf(p.token, "approve", [p.alice.address, 5n]);
      expect((await p.account.classOf([approve]))[0]).to.equal(0n);
      await expect(run([p.alice], [approve])).to.emit(p.account, "SignedOperationExecuted").withArgs(anyValue, 1n, 0n, bits([p.alice]), anyValue);
      expect(await p.token.allowance(p.accountAddress, p.alice.address)).to.equal(5n);
      // two classes: the strictest (2 of 3), not the first match
      const transfer = await callOf(p.token, "transfer", [p.stranger.address, 7n]);
      expect((await p.account.classOf([transfer]))[0]).to.equal(1n);
      await expect(run([p.alice], [transfer])).to.be.revertedWithCustomError(p.account, "PolicyAccountNotEnoughApprovals").withArgs(1n, 2n);
      await expect(run([p.alice, p.bob], [transfer]))
        .to.emit(p.account, "SignedOperationExecuted")
        .withArgs(anyValue, 1n, 1n, bits([p.alice, p.bob]), anyValue);
      expect(await p.token.balanceOf(p.stranger.address)).to.equal(7n);
      // a call to this account matches its rule (the policy-change class, which has a delay)
      await expect(unsigned([await callOf(p.account, "restoreVersion", [1])])).to.be.revertedWithCustomError(p.account, "PolicyAccountDelayRequired");
      // no match, 1 to 3 bytes of calldata, the zero target: the full matcher's errors
      const token = await p.token.getAddress();
      const transferFrom = await callOf(p.token, "transferFrom", [p.alice.address, p.bob.address, 1n]);
      await expect(unsigned([transferFrom]))
        .to.be.revertedWithCustomError(p.account, "PolicyAccountActionDenied")
        .withArgs(0n, token, transferFrom.data.slice(0, 10));
      await expect(unsigned([{ target: token, value: 0n, data: approve.data.slice(0, 8) }]))
        .to.be.revertedWithCustomError(p.account, "PolicyAccountActionDenied")
        .withArgs(0n, token, "0x00000000");
      await expect(unsigned([{ ...approve, target: ZeroAddress }])).to.be.revertedWithCustomError(p.account, "PolicyAccountZeroTarget").withArgs(0n);
    });

    it("reverts without data on a call the ABI decoder would reject: a dirty target, data out of the calldata", async function () {
      const call = await approveCall(f);
      const encoded = f.account.interface.encodeFunctionData("executeSignedCalls", [[call], nextNonce(), FAR, "0x"]);
      // after the selector: calls at 0x80 (length, then the element's offset), the element at 0xc0 (target, value,
      // data offset, data length at 0x120)
      const patch = (at: number, word: bigint) => encoded.slice(0, 10 + 2 * at) + word.toString(16).padStart(64, "0") + encoded.slice(10 + 2 * (at + 32));
      const target = BigInt(await f.token.getAddress());
      const account = f.account.connect(f.stranger);
      await expect(account.runner!.sendTransaction!({ to: f.accountAddress, data: encoded })).to.be.revertedWithCustomError(f.account, "PolicyAccountNotEnoughApprovals");
      for (const data of [
        patch(0xc0, target | (1n << 160n)), // a target that is not a clean address
        patch(0x120, 0x10000n), // data beyond the calldata
        patch(0x100, 1n << 64n), // a data offset beyond 64 bits
        patch(0xa0, 0x10000n), // an element beyond the calldata
      ]) {
        await expect(account.runner!.sendTransaction!({ to: f.accountAddress, data })).to.be.revertedWithoutReason(ethers);
      }
    });

    it("has the lowest selector of the account, so the dispatcher tests it first", async function () {
      const selectors: bigint[] = [];
      f.account.interface.forEachFunction((fn) => selectors.push(BigInt(fn.selector)));
      const own = BigInt(f.account.interface.getFunction("executeSignedCalls")!.selector);
      expect(selectors.filter((x) => x < own)).to.deep.equal([]);
    });

    it("refuses classes with a delay", async function () {
      const calls = [await requestCall(f, RESOURCES_LARGE)];
      const sigs = await signOperation(f, [f.alice, f.bob], calls, 1n, FAR);
      const now = await latest();
      await time.setNextBlockTimestamp(now + 10n);
      await expect(f.account.executeSignedCalls(calls, 1n, FAR, packSignatures(sigs)))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountDelayRequired")
        .withArgs(now + 10n + HOUR);
    });

    it("rejects unsorted or repeated signers, bad signatures, outsiders and passed deadlines", async function () {
      const calls = [await approveCall(f)];
      const [s0, s1] = await signOperation(f, [f.alice, f.bob], calls, 7n, FAR);
      await expect(f.account.executeSignedCalls(calls, 7n, FAR, packSignatures([s1!, s0!])))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountUnsortedSigners")
        .withArgs(1n, s0!.signer);
      await expect(f.account.executeSignedCalls(calls, 7n, FAR, packSignatures([s0!, s0!])))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountUnsortedSigners")
        .withArgs(1n, s0!.signer);
      // a signature of other data (here another nonce) recovers to an unrelated address, which is named
      const [other] = await signOperation(f, [f.alice], calls, 99n, FAR);
      const digest = await f.account.operationDigest(calls, 7n, 1n, FAR);
      await expect(f.account.executeSignedCalls(calls, 7n, FAR, packSignatures([other!])))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountInvalidSignature")
        .withArgs(0n, ethers.recoverAddress(digest, other!.signature));
      const [outsider] = await signOperation(f, [f.stranger], calls, 7n, FAR);
      await expect(f.account.executeSignedCalls(calls, 7n, FAR, packSignatures([outsider!])))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountInvalidSignature")
        .withArgs(0n, f.stranger.address);
      // a contract entry naming somebody outside the class is refused before the contract is asked
      await expect(f.account.executeSignedCalls(calls, 7n, FAR, packSignatures([{ signer: f.stranger.address, signature: "0x", contract: true }])))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountSignerNotInClass")
        .withArgs(0n, f.stranger.address);
      await expect(f.account.executeSignedCalls(calls, 7n, FAR, packSignatures([])))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountNotEnoughApprovals")
        .withArgs(0n, 1n);
      const deadline = (await latest()) + 5n;
      const sigs = await signOperation(f, [f.alice], calls, 8n, deadline);
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(f.account.executeSignedCalls(calls, 8n, deadline, packSignatures(sigs)))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountSignatureExpired")
        .withArgs(deadline, deadline + 1n);
    });

    it("accepts ERC-2098 compact signatures and rejects high-s or malformed ones", async function () {
      const calls = [await approveCall(f)];
      const [sig] = await signOperation(f, [f.alice], calls, 10n, FAR);
      const { Signature, toBeHex, zeroPadValue } = await import("ethers");
      const compact = { signer: sig!.signer, signature: compactSignature(sig!.signature) };
      expect(ethers.dataLength(compact.signature)).to.equal(64);
      // the malleable twin (s' = n - s, v flipped) recovers to the same key; it is refused, naming that key
      const parsed = Signature.from(sig!.signature);
      const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
      const highS = ethers.concat([parsed.r, zeroPadValue(toBeHex(n - BigInt(parsed.s)), 32), parsed.v === 27 ? "0x1c" : "0x1b"]);
      await expect(f.account.executeSignedCalls(calls, 10n, FAR, packSignatures([{ signer: sig!.signer, signature: highS }])))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountInvalidSignature")
        .withArgs(0n, sig!.signer);
      // a trailing byte starts a second entry that is cut short
      await expect(f.account.executeSignedCalls(calls, 10n, FAR, packSignatures([sig!]) + "00"))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountInvalidSignature")
        .withArgs(1n, ZeroAddress);
      // an entry of unknown kind (v other than 27 or 28)
      const unknownKind = "0x1d" + packSignatures([sig!]).slice(4);
      await expect(f.account.executeSignedCalls(calls, 10n, FAR, unknownKind))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountInvalidSignature")
        .withArgs(0n, ZeroAddress);
      await expect(f.account.executeSignedCalls(calls, 10n, FAR, packSignatures([compact]))).to.emit(f.account, "SignedOperationExecuted");
    });

    it("rejects contract entries that run past the signatures or whose signer is an EOA", async function () {
      const calls = [await approveCall(f)];
      const [sig] = await signOperation(f, [f.alice], calls, 11n, FAR);
      // declares 100 bytes of signature, carries 10
      const cut = ethers.concat(["0x01", f.alice.address, "0x0064", "0x" + "ab".repeat(10)]);
      await expect(f.account.executeSignedCalls(calls, 11n, FAR, cut))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountInvalidSignature")
        .withArgs(0n, f.alice.address);
      // alice's valid ECDSA signature presented as hers under ERC-1271: an EOA answers no isValidSignature
      await expect(f.account.executeSignedCalls(calls, 11n, FAR, packSignatures([{ ...sig!, contract: true }])))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountInvalidSignature")
        .withArgs(0n, f.alice.address);
      await expect(f.account.executeSignedCalls(calls, 11n, FAR, packSignatures([sig!]))).to.emit(f.account, "SignedOperationExecuted");
    });

    it("reverts as a whole when a call fails, leaving the nonce unused", async function () {
      const calls = [await requestCall(f)]; // no token approval yet: the deposit pull fails
      const sigs = await signOperation(f, [f.alice], calls, 9n, FAR);
      await expect(f.account.executeSignedCalls(calls, 9n, FAR, packSignatures(sigs))).to.be.revertedWithCustomError(f.account, "PolicyAccountCallFailed");
      expect(await f.account.nonceUsed(9n)).to.equal(false);
    });
  });

  describe("two of three with signatures", function () {
    let p: PolicyFixture;
    beforeEach(async function () {
      p = await networkHelpers.loadFixture(paymentsFixture);
    });

    it("needs two distinct members of the class", async function () {
      const calls = [await transferCall(p, p.stranger.address, 10n * NCC)];
      const one = await signOperation(p, [p.alice], calls, 1n, FAR);
      await expect(p.account.executeSignedCalls(calls, 1n, FAR, packSignatures(one)))
        .to.be.revertedWithCustomError(p.account, "PolicyAccountNotEnoughApprovals")
        .withArgs(1n, 2n);
      const two = await signOperation(p, [p.alice, p.carol], calls, 1n, FAR);
      await expect(p.account.executeSignedCalls(calls, 1n, FAR, packSignatures(two))).to.changeTokenBalances(
        ethers,
        p.token,
        [p.accountAddress, p.stranger.address],
        [-10n * NCC, 10n * NCC],
      );
    });

    it("accepts a Safe 1.5.0 as an ERC-1271 signer, with its own owners' threshold", async function () {
      const signers = await ethers.getSigners();
      const owners = [signers[14]!, signers[15]!, signers[16]!];
      const infra = await deploySafeInfrastructure(p.deployer);
      const safe = await createSafe(ethers, infra, owners.map((o) => o.address), 2);
      const safeAddress = await safe.getAddress();
      const json: PolicyJson = structuredClone(PAYMENTS);
      json.classes[0]!.signers = ["alice", safeAddress];
      const built = buildFor(p, json, signers, { VmRegistry: await p.vms.getAddress(), CreditToken: await p.token.getAddress() });
      const { account } = await deployAccount(ethers, p.deployer.address);
      await account.initialize(built.spec);
      await p.token.transfer(await account.getAddress(), 100n * NCC);
      const q: PolicyFixture = { ...p, account, accountAddress: await account.getAddress(), policy: built };
      const calls = [await transferCall(q, q.stranger.address, 10n * NCC)];
      const [aliceSig] = await signOperation(q, [q.alice], calls, 5n, FAR);
      const digest = await account.operationDigest(calls, 5n, 1n, FAR);
      const safeSig = { signer: safeAddress, signature: await safeMessageSignature(safe, q.chainId, owners.slice(0, 2), digest), contract: true };
      const weak = { signer: safeAddress, signature: await safeMessageSignature(safe, q.chainId, owners.slice(0, 1), digest), contract: true };
      const withWeak = sortSignatures<SignerSignature>([aliceSig!, weak]);
      await expect(account.executeSignedCalls(calls, 5n, FAR, packSignatures(withWeak)))
        .to.be.revertedWithCustomError(account, "PolicyAccountInvalidSignature")
        .withArgs(BigInt(withWeak.indexOf(weak)), safeAddress);
      await expect(account.executeSignedCalls(calls, 5n, FAR, packSignatures(sortSignatures<SignerSignature>([aliceSig!, safeSig])))).to.changeTokenBalance(
        ethers,
        p.token,
        q.stranger.address,
        10n * NCC,
      );
    });
  });

  describe("lifecycle", function () {
    it("propose -> approve -> queued (eta = last approval + delay) -> executed by anyone in [eta, expiry)", async function () {
      await runSigned(f, [f.alice], [await approveCall(f)]);
      const calls = [await requestCall(f, RESOURCES_LARGE)];
      const nonce = nextNonce();
      await expect(f.account.connect(f.alice).propose(calls, nonce))
        .to.emit(f.account, "OperationProposed")
        .and.to.emit(f.account, "OperationApproved");
      expect(await f.account.state(nonce)).to.equal(OperationState.Proposed);
      expect(await f.account.pendingOperations(f.alice.address)).to.deep.equal([nonce]);
      const tx = await f.account.connect(f.bob).approve(nonce);
      const approvedAt = BigInt((await tx.getBlock())!.timestamp);
      await expect(tx).to.emit(f.account, "OperationQueued").withArgs(nonce, approvedAt + HOUR, approvedAt + HOUR + DAY);
      expect(await f.account.state(nonce)).to.equal(OperationState.Queued);
      await expect(f.account.execute(nonce, calls))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountUnexpectedState")
        .withArgs(nonce, OperationState.Queued);
      await expect(f.account.connect(f.carol).approve(nonce))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountUnexpectedState")
        .withArgs(nonce, OperationState.Queued);
      await time.setNextBlockTimestamp(approvedAt + HOUR);
      await expect(f.account.connect(f.stranger).execute(nonce, calls))
        .to.emit(f.account, "OperationExecuted")
        .withArgs(nonce, f.stranger.address, 1n, LARGE, bitsOf(f, [f.alice, f.bob]))
        .and.to.emit(f.vms, "VmRequested");
      expect(await f.account.state(nonce)).to.equal(OperationState.Executed);
      expect(await f.account.pendingOperations(f.alice.address)).to.deep.equal([]);
      await expect(f.account.execute(nonce, calls))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountUnexpectedState")
        .withArgs(nonce, OperationState.Executed);
    });

    it("expires when not executed before eta + expiry window, and when approvals do not come in time", async function () {
      const calls = [await transferCall(f, f.stranger.address, NCC)];
      const a = await proposeApproved(f, calls, f.alice, [f.bob]);
      const op = await f.account.getOperation(a);
      await time.setNextBlockTimestamp(op.expiresAt);
      await expect(f.account.execute(a, calls))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountUnexpectedState")
        .withArgs(a, OperationState.Expired);
      const b = await proposeApproved(f, calls, f.alice);
      await time.increase(DAY);
      expect(await f.account.state(b)).to.equal(OperationState.Expired);
      await expect(f.account.connect(f.bob).approve(b))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountUnexpectedState")
        .withArgs(b, OperationState.Expired);
      await expect(f.account.connect(f.alice).cancel(b))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountUnexpectedState")
        .withArgs(b, OperationState.Expired);
      // prune drops both from the pending list
      expect((await f.account.pendingOperations(f.alice.address)).length).to.equal(2);
      await f.account.prunePending(f.alice.address);
      expect(await f.account.pendingOperations(f.alice.address)).to.deep.equal([]);
    });

    it("checks proposers, approvers, nonces and the calls passed again", async function () {
      const calls = [await transferCall(f, f.stranger.address, NCC)];
      await expect(f.account.connect(f.stranger).propose(calls, 1n))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountNotSigner")
        .withArgs(1n, f.stranger.address);
      const opId = await proposeApproved(f, calls, f.alice);
      await expect(f.account.connect(f.bob).propose(calls, opId))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountNonceUsed")
        .withArgs(opId);
      await expect(f.account.connect(f.stranger).approve(opId))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountNotSigner")
        .withArgs(opId, f.stranger.address);
      await expect(f.account.connect(f.alice).approve(opId))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountAlreadyApproved")
        .withArgs(opId, f.alice.address);
      await expect(f.account.approve(12345n))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountUnexpectedState")
        .withArgs(12345n, OperationState.None);
      await f.account.connect(f.bob).approve(opId);
      await time.increase(HOUR);
      const other = [await transferCall(f, f.stranger.address, 2n * NCC)];
      const { AbiCoder: C, keccak256 } = await import("ethers");
      const given = keccak256(C.defaultAbiCoder().encode(["tuple(address,uint256,bytes)[]"], [other.map((c) => [c.target, c.value, c.data])]));
      await expect(f.account.execute(opId, other))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountCallsMismatch")
        .withArgs(opId, (await f.account.getOperation(opId)).callsHash, given);
    });

    it("adds off-chain signatures to a stored operation and skips signers who approved already", async function () {
      const calls = [await transferCall(f, f.stranger.address, NCC)];
      const opId = await proposeApproved(f, calls, f.alice);
      const sigs = await signOperation(f, [f.alice, f.bob], calls, opId, FAR);
      const tx = f.account.connect(f.stranger).approveWithSignatures(opId, calls, FAR, packSignatures(sigs));
      await expect(tx).to.emit(f.account, "OperationApproved").and.to.emit(f.account, "OperationQueued");
      const receipt = await (await tx).wait();
      const approvals = receipt!.logs.filter((l) => f.account.interface.parseLog(l)?.name === "OperationApproved");
      expect(approvals.length).to.equal(1); // bob only
      expect(await f.account.state(opId)).to.equal(OperationState.Queued);
      const other = [await transferCall(f, f.stranger.address, 2n * NCC)];
      const opId2 = await proposeApproved(f, other, f.alice);
      await expect(f.account.approveWithSignatures(opId2, calls, FAR, packSignatures(sigs))).to.be.revertedWithCustomError(
        f.account,
        "PolicyAccountCallsMismatch",
      );
      const deadline = (await latest()) + 5n;
      const late = await signOperation(f, [f.bob], other, opId2, deadline);
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(f.account.approveWithSignatures(opId2, other, deadline, packSignatures(late)))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountSignatureExpired")
        .withArgs(deadline, deadline + 1n);
    });

    it("a failed execution reverts and leaves the operation executable", async function () {
      const calls = [await requestCall(f, RESOURCES_LARGE)]; // no token approval: the deposit pull fails
      const opId = await proposeApproved(f, calls, f.alice, [f.bob]);
      await time.increase(HOUR);
      await expect(f.account.execute(opId, calls)).to.be.revertedWithCustomError(f.account, "PolicyAccountCallFailed");
      expect(await f.account.state(opId)).to.equal(OperationState.Ready);
      await runSigned(f, [f.alice], [await approveCall(f)]);
      await expect(f.account.execute(opId, calls)).to.emit(f.vms, "VmRequested");
    });

    it("lists at most 16 pending operations per proposer, in the proposer's own list", async function () {
      const calls = [await transferCall(f, f.stranger.address, NCC)];
      for (let i = 0; i < 15; i++) await f.account.connect(f.alice).propose(calls, 50_000n + BigInt(i));
      await f.account.connect(f.alice).proposeRecovery([await callOf(f.account, "restoreVersion", [1])], 49_998n);
      expect((await f.account.pendingOperations(f.alice.address)).length).to.equal(16);
      await expect(f.account.connect(f.alice).propose(calls, 49_999n))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountTooMany")
        .withArgs(Limit.Pending, 17n, 16n);
      expect(await f.account.pendingOperations(f.bob.address)).to.deep.equal([]);
      // once they expire, a new proposal prunes them (the recovery operation's 7-day window is still open)
      await time.increase(DAY);
      await f.account.connect(f.alice).propose(calls, 49_999n);
      expect(await f.account.pendingOperations(f.alice.address)).to.deep.equal([49_998n, 49_999n]);
    });

    it("uses per-operation nonces: a stuck operation blocks no other", async function () {
      const stuck = await proposeApproved(f, [await transferCall(f, f.stranger.address, NCC)], f.alice);
      const calls = [await transferCall(f, f.tenant.address, NCC)];
      const other = await proposeApproved(f, calls, f.bob, [f.carol]);
      await time.increase(HOUR);
      await f.account.execute(other, calls);
      expect(await f.account.state(stuck)).to.equal(OperationState.Proposed);
    });

    it("is cancelled by its proposer or a guardian of its classes, nobody else", async function () {
      const calls = [await transferCall(f, f.stranger.address, NCC)];
      const a = await proposeApproved(f, calls, f.alice, [f.bob]);
      await expect(f.account.connect(f.bob).cancel(a))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountNotCanceller")
        .withArgs(a, f.bob.address);
      await expect(f.account.connect(f.carol).cancel(a)).to.emit(f.account, "OperationCancelled").withArgs(a, f.carol.address);
      expect(await f.account.state(a)).to.equal(OperationState.Cancelled);
      await expect(f.account.connect(f.carol).cancel(a))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountUnexpectedState")
        .withArgs(a, OperationState.Cancelled);
      await time.increase(HOUR);
      await expect(f.account.execute(a, calls))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountUnexpectedState")
        .withArgs(a, OperationState.Cancelled);
      const b = await proposeApproved(f, calls, f.bob);
      await expect(f.account.connect(f.bob).cancel(b)).to.emit(f.account, "OperationCancelled").withArgs(b, f.bob.address);
      // small class has no guardians: carol cannot cancel alice's small operation
      const c = await proposeApproved(f, [await requestCall(f)], f.alice);
      await expect(f.account.connect(f.carol).cancel(c)).to.be.revertedWithCustomError(f.account, "PolicyAccountNotCanceller");
    });
  });

  describe("versions", function () {
    /** Runs a policy-change operation (3 of 3, one day) and returns the execute transaction. */
    async function change(calls: Call[]) {
      const opId = await proposeApproved(f, calls, f.alice, [f.bob, f.carol]);
      await time.increase(DAY);
      return await f.account.execute(opId, calls);
    }

    it("bumps the version, emits the new hash, makes older operations stale, and restores an earlier version", async function () {
      const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
      json.classes[1]!.threshold = 3;
      const signers = await ethers.getSigners();
      const v2 = buildFor(f, json, signers, { VmRegistry: await f.vms.getAddress(), CreditToken: await f.token.getAddress() });
      const pendingCalls = [await transferCall(f, f.stranger.address, NCC)];
      const pending = await proposeApproved(f, pendingCalls, f.alice);
      await expect(change([await callOf(f.account, "setPolicy", [v2.spec])]))
        .to.emit(f.account, "PolicyChanged")
        .withArgs(2n, 2n, v2.hash, 0n);
      expect((await f.account.policyVersion())[0]).to.equal(2n);
      expect((await f.account.getClass(2, 1)).threshold).to.equal(3n);
      expect(await f.account.state(pending)).to.equal(OperationState.Stale);
      await expect(f.account.connect(f.bob).approve(pending))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountUnexpectedState")
        .withArgs(pending, OperationState.Stale);
      await expect(change([await callOf(f.account, "restoreVersion", [1])]))
        .to.emit(f.account, "PolicyChanged")
        .withArgs(3n, 1n, f.policy.hash, 1n);
      expect(await f.account.policyVersion()).to.deep.equal([3n, 1n, f.policy.hash]);
      // unknown versions fail inside the operation, which then stays executable
      const bad = [await callOf(f.account, "restoreVersion", [3])];
      const opId = await proposeApproved(f, bad, f.alice, [f.bob, f.carol]);
      await time.increase(DAY);
      const inner = f.account.interface.encodeErrorResult("PolicyAccountUnknownVersion", [3n]);
      await expect(f.account.execute(opId, bad)).to.be.revertedWithCustomError(f.account, "PolicyAccountCallFailed").withArgs(0n, inner);
    });

    it("applies a shortened delay only after the old delay has passed", async function () {
      await runSigned(f, [f.alice], [await approveCall(f)]);
      const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
      json.classes[1]!.delay = 0;
      const signers = await ethers.getSigners();
      const v2 = buildFor(f, json, signers, { VmRegistry: await f.vms.getAddress(), CreditToken: await f.token.getAddress() });
      f.policy = v2;
      const changed = await change([await callOf(f.account, "setPolicy", [v2.spec])]);
      const changedAt = BigInt((await changed.getBlock())!.timestamp);
      const calls = [await requestCall(f, RESOURCES_LARGE)];
      const [, notBefore] = await f.account.classOf(calls);
      expect(notBefore).to.equal(changedAt + HOUR);
      const sigs = await signOperation(f, [f.alice, f.bob], calls, 77n, FAR);
      await expect(f.account.executeSignedCalls(calls, 77n, FAR, packSignatures(sigs)))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountDelayRequired")
        .withArgs(changedAt + HOUR);
      const opId = await proposeApproved(f, calls, f.alice, [f.bob]);
      expect((await f.account.getOperation(opId)).eta).to.equal(changedAt + HOUR);
      // small VMs had no delay before either: their floor is already past
      expect((await f.account.classOf([await requestCall(f)]))[1]).to.be.lessThanOrEqual(await latest());
      await time.setNextBlockTimestamp(changedAt + HOUR);
      const sigs2 = await signOperation(f, [f.alice, f.bob], calls, 78n, FAR);
      await expect(f.account.executeSignedCalls(calls, 78n, FAR, packSignatures(sigs2))).to.emit(f.vms, "VmRequested");
    });
  });

  describe("recovery", function () {
    it("needs every recovery signer and the long delay, and nothing else can stop it", async function () {
      const json: PolicyJson = structuredClone(EXAMPLE_POLICY);
      json.classes[0]!.threshold = 2;
      const signers = await ethers.getSigners();
      const v2 = buildFor(f, json, signers, { VmRegistry: await f.vms.getAddress(), CreditToken: await f.token.getAddress() });
      const calls = [await callOf(f.account, "setPolicy", [v2.spec])];
      await expect(f.account.connect(f.alice).proposeRecovery([await approveCall(f)], 1n))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountActionDenied")
        .withArgs(0n, await f.token.getAddress(), (await approveCall(f)).data.slice(0, 10));
      await expect(f.account.connect(f.stranger).proposeRecovery(calls, 1n))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountNotSigner")
        .withArgs(1n, f.stranger.address);
      await expect(f.account.connect(f.alice).proposeRecovery([], 1n)).to.be.revertedWithCustomError(f.account, "PolicyAccountNoCalls");
      const opId = nextNonce();
      await expect(f.account.connect(f.alice).proposeRecovery(calls, opId)).to.emit(f.account, "OperationProposed");
      expect((await f.account.getOperation(opId)).classIndex).to.equal(RECOVERY_CLASS);
      await f.account.connect(f.bob).approve(opId);
      expect(await f.account.state(opId)).to.equal(OperationState.Proposed); // needs all three
      await f.account.connect(f.carol).approve(opId);
      expect(await f.account.state(opId)).to.equal(OperationState.Queued);
      // a guardian cannot cancel it
      await expect(f.account.connect(f.carol).cancel(opId)).to.be.revertedWithCustomError(f.account, "PolicyAccountNotCanceller");
      // a policy change in between does not make it stale
      const json3: PolicyJson = structuredClone(EXAMPLE_POLICY);
      json3.classes[0]!.expiryWindow = "2d";
      const v3 = buildFor(f, json3, signers, { VmRegistry: await f.vms.getAddress(), CreditToken: await f.token.getAddress() });
      const change = [await callOf(f.account, "setPolicy", [v3.spec])];
      const ch = await proposeApproved(f, change, f.alice, [f.bob, f.carol]);
      await time.increase(DAY);
      await f.account.execute(ch, change);
      expect(await f.account.state(opId)).to.equal(OperationState.Queued);
      await expect(f.account.execute(opId, calls)).to.be.revertedWithCustomError(f.account, "PolicyAccountUnexpectedState");
      await time.increase(6n * DAY);
      await expect(f.account.execute(opId, calls)).to.emit(f.account, "PolicyChanged").withArgs(3n, 3n, v2.hash, 0n);
    });

    it("takes signatures of the recovery rule's named action", async function () {
      const restore = [await callOf(f.account, "restoreVersion", [1])];
      const opId = nextNonce();
      await f.account.connect(f.alice).proposeRecovery(restore, opId);
      // signOperation checks that the named RestorePolicyVersion typed data matches the contract's digest
      const sigs = await signOperation(f, [f.bob, f.carol], restore, opId, FAR);
      await f.account.approveWithSignatures(opId, restore, FAR, packSignatures(sigs));
      expect(await f.account.state(opId)).to.equal(OperationState.Queued);
      expect((await f.account.getOperation(opId)).eta).to.be.greaterThanOrEqual((await latest()) + 7n * DAY);
    });
  });

  describe("agents", function () {
    /** Grants through the policy-change class (3 of 3, one day). */
    async function grant(classMask: number, max: bigint, period: number, expiresAt: bigint) {
      const calls = [await callOf(f.account, "grantAgent", [f.agent.address, classMask, max, period, expiresAt])];
      const opId = await proposeApproved(f, calls, f.alice, [f.bob, f.carol]);
      await time.increase(DAY);
      return await f.account.execute(opId, calls);
    }

    it("acts alone inside its scope, spending a refilling allowance charged only on success", async function () {
      await runSigned(f, [f.alice], [await approveCall(f)]);
      const expiresAt = (await latest()) + 30n * DAY;
      await expect(grant(1, 300n * NCC, 3600, expiresAt))
        .to.emit(f.account, "AgentGranted")
        .withArgs(f.agent.address, 1n, 1n, 300n * NCC, 3600n, expiresAt);
      const agent = f.account.connect(f.agent);
      await expect(agent.agentExecute([await requestCall(f, RESOURCES_SMALL, 200n * NCC)]))
        .to.emit(f.account, "AgentExecuted")
        .and.to.emit(f.vms, "VmRequested");
      expect((await f.account.getAgent(f.agent.address)).available).to.equal(100n * NCC);
      await expect(agent.agentExecute([await requestCall(f, RESOURCES_SMALL, 200n * NCC)]))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountAllowanceExceeded")
        .withArgs(f.agent.address, 200n * NCC, (v: bigint) => v >= 100n * NCC && v < 101n * NCC);
      // outside its classes
      await expect(agent.agentExecute([await requestCall(f, RESOURCES_LARGE, NCC)]))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountAgentOutOfScope")
        .withArgs(f.agent.address, 0n, LARGE);
      await expect(agent.agentExecute([await transferCall(f, f.agent.address, NCC)]))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountAgentOutOfScope");
      // refills linearly, never above the maximum
      await time.increase(1800);
      expect((await f.account.getAgent(f.agent.address)).available).to.be.closeTo(250n * NCC, NCC / 10n);
      await time.increase(10n * HOUR);
      expect((await f.account.getAgent(f.agent.address)).available).to.equal(300n * NCC);
      // a failing call charges nothing
      const tooBig = await requestCall(f, { vcpu: 1n, memoryMiB: 1n, diskGiB: 100_000n }, NCC);
      await expect(agent.agentExecute([tooBig])).to.be.revertedWithCustomError(f.account, "PolicyAccountCallFailed");
      expect((await f.account.getAgent(f.agent.address)).available).to.equal(300n * NCC);
      // expires
      await time.increaseTo(expiresAt);
      await expect(agent.agentExecute([await requestCall(f, RESOURCES_SMALL, NCC)]))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountAgentExpired")
        .withArgs(f.agent.address, expiresAt);
      expect((await f.account.getAgent(f.agent.address)).active).to.equal(false);
    });

    it("is denied when never granted, revoked, or granted under other policy content; grants are checked", async function () {
      await expect(f.account.connect(f.stranger).agentExecute([await requestCall(f)]))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountNotAgent")
        .withArgs(f.stranger.address);
      await grant(1, NCC, 60, FAR);
      const revoke = [await callOf(f.account, "revokeAgent", [f.agent.address])];
      const opId = await proposeApproved(f, revoke, f.alice, [f.bob, f.carol]);
      await time.increase(DAY);
      await expect(f.account.execute(opId, revoke)).to.emit(f.account, "AgentRevoked").withArgs(f.agent.address);
      await expect(f.account.connect(f.agent).agentExecute([await requestCall(f)]))
        .to.be.revertedWithCustomError(f.account, "PolicyAccountNotAgent")
        .withArgs(f.agent.address);
      // invalid grants fail inside the operation
      const inner = f.account.interface.encodeErrorResult("PolicyAccountInvalidAgentGrant", [f.agent.address]);
      for (const [mask, period, expires] of [[0, 60, FAR], [1, 0, FAR], [1 << 3, 60, FAR], [1, 60, 1n]] as const) {
        const calls = [await callOf(f.account, "grantAgent", [f.agent.address, mask, NCC, period, expires])];
        const id2 = await proposeApproved(f, calls, f.alice, [f.bob, f.carol]);
        await time.increase(DAY);
        await expect(f.account.execute(id2, calls)).to.be.revertedWithCustomError(f.account, "PolicyAccountCallFailed").withArgs(0n, inner);
      }
      const again = [await callOf(f.account, "revokeAgent", [f.agent.address])];
      const id3 = await proposeApproved(f, again, f.alice, [f.bob, f.carol]);
      await time.increase(DAY);
      const notAgent = f.account.interface.encodeErrorResult("PolicyAccountNotAgent", [f.agent.address]);
      await expect(f.account.execute(id3, again)).to.be.revertedWithCustomError(f.account, "PolicyAccountCallFailed").withArgs(0n, notAgent);
    });
  });

  describe("replay protection", function () {
    let p: PolicyFixture;
    let calls: Call[];
    beforeEach(async function () {
      p = await networkHelpers.loadFixture(paymentsFixture);
      calls = [await transferCall(p, p.stranger.address, NCC)];
    });
    const invalid = (q: PolicyFixture) => [q.account, "PolicyAccountInvalidSignature"] as const;

    it("rejects a signature for another chain id", async function () {
      const sigs = await signOperation(p, [p.alice, p.bob], calls, 1n, FAR, { chainId: 1n });
      await expect(p.account.executeSignedCalls(calls, 1n, FAR, packSignatures(sigs))).to.be.revertedWithCustomError(...invalid(p));
    });

    it("rejects a signature for another account", async function () {
      const { account } = await deployAccount(ethers, p.deployer.address);
      await account.initialize(p.policy.spec);
      const sigs = await signOperation(p, [p.alice, p.bob], calls, 1n, FAR, { account: await account.getAddress() });
      await expect(p.account.executeSignedCalls(calls, 1n, FAR, packSignatures(sigs))).to.be.revertedWithCustomError(...invalid(p));
      // and the right ones work on the other account only once
      await p.token.transfer(await account.getAddress(), 10n * NCC);
      await account.executeSignedCalls(calls, 1n, FAR, packSignatures(sigs));
      await expect(account.executeSignedCalls(calls, 1n, FAR, packSignatures(sigs))).to.be.revertedWithCustomError(account, "PolicyAccountNonceUsed");
    });

    it("rejects a used nonce and a signature for another nonce", async function () {
      const sigs = await signOperation(p, [p.alice, p.bob], calls, 1n, FAR);
      await p.account.executeSignedCalls(calls, 1n, FAR, packSignatures(sigs));
      await expect(p.account.executeSignedCalls(calls, 1n, FAR, packSignatures(sigs))).to.be.revertedWithCustomError(p.account, "PolicyAccountNonceUsed").withArgs(1n);
      await expect(p.account.executeSignedCalls(calls, 2n, FAR, packSignatures(sigs))).to.be.revertedWithCustomError(...invalid(p));
    });

    it("rejects a passed deadline, and a signature with its deadline changed", async function () {
      const deadline = (await latest()) + 100n;
      const sigs = await signOperation(p, [p.alice, p.bob], calls, 1n, deadline);
      await expect(p.account.executeSignedCalls(calls, 1n, deadline + 1000n, packSignatures(sigs))).to.be.revertedWithCustomError(...invalid(p));
      await time.increaseTo(deadline + 1n);
      await expect(p.account.executeSignedCalls(calls, 1n, deadline, packSignatures(sigs))).to.be.revertedWithCustomError(p.account, "PolicyAccountSignatureExpired");
    });

    it("rejects a signature for an older policy version", async function () {
      const sigs = await signOperation(p, [p.alice, p.bob], calls, 1n, FAR);
      // the same policy again as version 2: same rules, new version
      const change = [await callOf(p.account, "setPolicy", [p.policy.spec])];
      const opId = nextNonce();
      await p.account.connect(p.alice).propose(change, opId);
      await p.account.connect(p.bob).approve(opId);
      await p.account.connect(p.carol).approve(opId);
      await time.increase(DAY);
      await p.account.execute(opId, change);
      expect((await p.account.policyVersion())[0]).to.equal(2n);
      await expect(p.account.executeSignedCalls(calls, 1n, FAR, packSignatures(sigs))).to.be.revertedWithCustomError(...invalid(p));
      const fresh = await signOperation(p, [p.alice, p.bob], calls, 1n, FAR);
      await p.account.executeSignedCalls(calls, 1n, FAR, packSignatures(fresh));
    });

    it("rejects a generic-typed signature where the rule names the action", async function () {
      const sigs = await signOperation(p, [p.alice, p.bob], calls, 1n, FAR, { generic: true });
      await expect(p.account.executeSignedCalls(calls, 1n, FAR, packSignatures(sigs))).to.be.revertedWithCustomError(...invalid(p));
    });
  });

  it("keeps its funds: the fixture funded it", async function () {
    expect(await f.token.balanceOf(f.accountAddress)).to.equal(ACCOUNT_FUNDS);
    void buildPolicy;
    void AbiCoder;
  });
});
