import { expect } from "chai";
import { network } from "hardhat";
import type { ContractTransactionResponse } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { VmRegistry } from "../../types/ethers-contracts/index.ts";
import {
  CAPACITY,
  deployFixture,
  DEPOSIT,
  MANIFEST,
  MAX_UINT88,
  MAX_UINT96,
  METADATA_CID,
  minedAt,
  PRICES,
  priceOf,
  REGION,
  requestVm,
  runningVm,
  signPermit,
  SMALL_VM,
  SMALL_VM_PRICE,
  TENANT_FUNDS,
  tuple,
  VmState,
  type Fixture,
  type Resources,
} from "./fixtures.ts";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const P = SMALL_VM_PRICE;
const D = DEPOSIT;
const STATE_NAMES = Object.fromEntries(Object.entries(VmState).map(([k, v]) => [v.toString(), k]));
const nameOf = (s: bigint) => STATE_NAMES[s.toString()];

/** Sends `send()` in a block whose timestamp is exactly `t`. */
async function at(t: bigint, send: () => Promise<ContractTransactionResponse>): Promise<ContractTransactionResponse> {
  await time.setNextBlockTimestamp(t);
  return send();
}

/** The VmRegistry events of `tx`, in order, as `[name, ...args]` with structs as arrays. */
async function vmEvents(f: Fixture, tx: ContractTransactionResponse): Promise<unknown[][]> {
  const receipt = await tx.wait();
  const address = await f.vms.getAddress();
  const out: unknown[][] = [];
  for (const log of receipt!.logs) {
    if (log.address !== address) continue;
    const parsed = f.vms.interface.parseLog(log);
    out.push([parsed!.name, ...parsed!.args.toArray(true)]);
  }
  return out;
}

/** Every field of a `getVm` result, as a plain object (deep-comparable). */
function fieldsOf(v: Awaited<ReturnType<VmRegistry["getVm"]>>) {
  return {
    owner: v.owner,
    provider: v.provider,
    state: v.state,
    resources: tuple(v.resources),
    manifestDigest: v.manifestDigest,
    pricePerSecond: v.pricePerSecond,
    deposit: v.deposit,
    balance: v.balance,
    paid: v.paid,
    refunded: v.refunded,
    lastSettledAt: v.lastSettledAt,
    failureReason: v.failureReason,
  };
}

/** Drives a new VM of `f.tenant` to `state` with the right accounts. */
async function vmIn(f: Fixture, state: bigint): Promise<bigint> {
  const vmId = await requestVm(f);
  const op = f.vms.connect(f.operator);
  const owner = f.vms.connect(f.tenant);
  if (state === VmState.Requested) return vmId;
  if (state === VmState.Failed) {
    await op.reportFailed(vmId, 1);
    return vmId;
  }
  if (state === VmState.Terminated) {
    await owner.terminateVm(vmId);
    return vmId;
  }
  await op.reportProvisioning(vmId);
  if (state === VmState.Provisioning) return vmId;
  await op.reportRunning(vmId);
  if (state === VmState.Running) return vmId;
  await owner.stopVm(vmId);
  if (state === VmState.Stopped) return vmId;
  await owner.startVm(vmId);
  if (state === VmState.Starting) return vmId;
  throw new Error(`no path to state ${state}`);
}

/** One allowed transition: `send` on a VmRegistry connected to the right (or, in a test, wrong) account. */
type Transition = {
  fn: string;
  from: bigint;
  to: bigint;
  send: (vms: VmRegistry, vmId: bigint) => Promise<ContractTransactionResponse>;
};
const OWNER_TRANSITIONS: Transition[] = [
  { fn: "stopVm", from: VmState.Running, to: VmState.Stopped, send: (vms, id) => vms.stopVm(id) },
  { fn: "startVm", from: VmState.Stopped, to: VmState.Starting, send: (vms, id) => vms.startVm(id) },
  ...[VmState.Requested, VmState.Provisioning, VmState.Running, VmState.Stopped, VmState.Starting].map(
    (from): Transition => ({ fn: "terminateVm", from, to: VmState.Terminated, send: (vms, id) => vms.terminateVm(id) }),
  ),
];
const OPERATOR_TRANSITIONS: Transition[] = [
  { fn: "reportProvisioning", from: VmState.Requested, to: VmState.Provisioning, send: (vms, id) => vms.reportProvisioning(id) },
  ...[VmState.Requested, VmState.Provisioning, VmState.Starting].map(
    (from): Transition => ({ fn: "reportRunning", from, to: VmState.Running, send: (vms, id) => vms.reportRunning(id) }),
  ),
  ...[VmState.Requested, VmState.Provisioning, VmState.Running, VmState.Starting].map(
    (from): Transition => ({ fn: "reportFailed", from, to: VmState.Failed, send: (vms, id) => vms.reportFailed(id, 5) }),
  ),
];
/** Transitions grouped by function, in declaration order. */
function byFunction(transitions: Transition[]): Map<string, Transition[]> {
  const out = new Map<string, Transition[]>();
  for (const t of transitions) out.set(t.fn, [...(out.get(t.fn) ?? []), t]);
  return out;
}
const ALL_STATES = [
  VmState.Requested,
  VmState.Provisioning,
  VmState.Running,
  VmState.Stopped,
  VmState.Starting,
  VmState.Failed,
  VmState.Terminated,
];

/**
 * Checks, with token balances, that the terminal VM `vmId` (the only VM of `f.tenant`) paid exactly
 * `paid` and refunded the rest: deposit == refunded + paid to the wei. Withdraws the provider's earnings.
 */
async function expectSettledExactly(f: Fixture, vmId: bigint, paid: bigint, deposit = D) {
  const v = await f.vms.getVm(vmId);
  expect(v.balance).to.equal(0n);
  expect(v.paid).to.equal(paid);
  expect(v.refunded).to.equal(deposit - paid);
  expect(v.refunded + v.paid).to.equal(v.deposit);
  // The tenant got the refund back: it is out of pocket by exactly what the provider earned.
  expect(await f.token.balanceOf(f.tenant.address)).to.equal(TENANT_FUNDS - paid);
  expect(await f.token.balanceOf(await f.vms.getAddress())).to.equal(paid);
  expect(await f.vms.earningsOf(f.provider.address)).to.equal(paid);
  if (paid > 0n) {
    const before = await f.token.balanceOf(f.provider.address);
    await f.vms.connect(f.provider).withdrawEarnings();
    expect((await f.token.balanceOf(f.provider.address)) - before).to.equal(paid);
  }
  expect(await f.token.balanceOf(await f.vms.getAddress())).to.equal(0n);
}

describe("VmRegistry", function () {
  let f: Fixture;
  beforeEach(async function () {
    f = await networkHelpers.loadFixture(deployFixture);
  });

  describe("configuration", function () {
    it("exposes the payment token and the provider registry it was deployed with", async function () {
      expect(await f.vms.paymentToken()).to.equal(await f.token.getAddress());
      expect(await f.vms.providerRegistry()).to.equal(await f.providers.getAddress());
      expect(await f.vms.vmCount()).to.equal(0n);
    });
  });

  describe("requestVm", function () {
    it("emits VmRequested and VmStateChanged(None -> Requested) with every field", async function () {
      const tx = await f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, SMALL_VM, MAX_UINT88, D);
      expect(await vmEvents(f, tx)).to.deep.equal([
        ["VmRequested", 1n, f.tenant.address, f.provider.address, MANIFEST, tuple(SMALL_VM), P, D],
        ["VmStateChanged", 1n, f.tenant.address, f.provider.address, VmState.None, VmState.Requested, 0n],
      ]);
      await expect(tx)
        .to.emit(f.vms, "VmRequested")
        .withArgs(1n, f.tenant.address, f.provider.address, MANIFEST, tuple(SMALL_VM), P, D);
    });

    it("moves the deposit from the tenant into escrow", async function () {
      await expect(f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, SMALL_VM, MAX_UINT88, D)).to.changeTokenBalances(
        ethers,
        f.token,
        [f.tenant, f.vms, f.provider],
        [-D, D, 0n],
      );
    });

    it("numbers VMs from 1 across tenants and returns the id", async function () {
      expect(await f.vms.connect(f.tenant).requestVm.staticCall(f.provider.address, MANIFEST, SMALL_VM, MAX_UINT88, D)).to.equal(1n);
      expect(await requestVm(f)).to.equal(1n);
      expect(await requestVm(f, { tenant: f.tenant2 })).to.equal(2n);
      expect(await f.vms.vmCount()).to.equal(2n);
      expect((await f.vms.getVm(1n)).owner).to.equal(f.tenant.address);
      expect((await f.vms.getVm(2n)).owner).to.equal(f.tenant2.address);
      await expect(f.vms.getVm(3n)).to.be.revertedWithCustomError(f.vms, "VmRegistryUnknownVm").withArgs(3n);
    });

    it("records the VM with the price quoted at request time and nothing paid yet", async function () {
      const vmId = await requestVm(f);
      const v = await f.vms.getVm(vmId);
      expect(v.owner).to.equal(f.tenant.address);
      expect(v.provider).to.equal(f.provider.address);
      expect(v.state).to.equal(VmState.Requested);
      expect(tuple(v.resources)).to.deep.equal(tuple(SMALL_VM));
      expect(v.manifestDigest).to.equal(MANIFEST);
      expect(v.pricePerSecond).to.equal(P);
      expect(v.deposit).to.equal(D);
      expect(v.balance).to.equal(D);
      expect(v.paid).to.equal(0n);
      expect(v.refunded).to.equal(0n);
      expect(v.lastSettledAt).to.equal(0n);
      expect(v.failureReason).to.equal(0n);
    });

    it("keeps an existing VM's price when the provider changes its prices", async function () {
      const vmId = await requestVm(f);
      const doubled = { perVcpuSecond: 2_000n, perMemoryMiBSecond: 4n, perDiskGiBSecond: 6n };
      await f.providers.connect(f.provider).updateOffer(REGION, CAPACITY, doubled, METADATA_CID);
      expect((await f.vms.getVm(vmId)).pricePerSecond).to.equal(P);
      expect((await f.vms.getVm(await requestVm(f, { maxPrice: 2n * P }))).pricePerSecond).to.equal(2n * P);

      await f.vms.connect(f.operator).reportProvisioning(vmId);
      const t0 = await minedAt(await f.vms.connect(f.operator).reportRunning(vmId));
      await at(t0 + 10n, () => f.vms.settle(vmId));
      expect(await f.vms.earningsOf(f.provider.address)).to.equal(10n * P);
    });

    it("accepts a request equal to the provider's whole capacity", async function () {
      const vmId = await requestVm(f, { resources: CAPACITY, deposit: 1n });
      expect((await f.vms.getVm(vmId)).pricePerSecond).to.equal(priceOf(PRICES, CAPACITY));
    });
  });

  describe("requestVmWithPermit", function () {
    let payer: HardhatEthersSigner;
    beforeEach(async function () {
      payer = (await ethers.getSigners())[8]!;
      await f.token.transfer(payer.address, D);
      expect(await f.token.allowance(payer.address, await f.vms.getAddress())).to.equal(0n);
    });

    it("escrows the deposit without a prior approval and leaves no allowance", async function () {
      const deadline = BigInt(await time.latest()) + 600n;
      const sig = await signPermit(f, payer, await f.vms.getAddress(), D, deadline);
      const tx = f.vms
        .connect(payer)
        .requestVmWithPermit(f.provider.address, MANIFEST, SMALL_VM, MAX_UINT88, D, deadline, sig.v, sig.r, sig.s);
      await expect(tx).to.changeTokenBalances(ethers, f.token, [payer, f.vms], [-D, D]);
      await expect(tx)
        .to.emit(f.vms, "VmRequested")
        .withArgs(1n, payer.address, f.provider.address, MANIFEST, tuple(SMALL_VM), P, D);
      expect(await f.token.allowance(payer.address, await f.vms.getAddress())).to.equal(0n);
      expect(await f.token.nonces(payer.address)).to.equal(1n);
      expect((await f.vms.getVm(1n)).owner).to.equal(payer.address);
    });

    it("still succeeds when a front-runner submitted the same permit first", async function () {
      const deadline = BigInt(await time.latest()) + 600n;
      const sig = await signPermit(f, payer, await f.vms.getAddress(), D, deadline);
      await f.token
        .connect(f.stranger)
        .permit(payer.address, await f.vms.getAddress(), D, deadline, sig.v, sig.r, sig.s);
      expect(await f.token.allowance(payer.address, await f.vms.getAddress())).to.equal(D);

      await expect(
        f.vms.connect(payer).requestVmWithPermit(f.provider.address, MANIFEST, SMALL_VM, MAX_UINT88, D, deadline, sig.v, sig.r, sig.s),
      ).to.changeTokenBalances(ethers, f.token, [payer, f.vms], [-D, D]);
      expect(await f.vms.vmCount()).to.equal(1n);
      expect(await f.token.allowance(payer.address, await f.vms.getAddress())).to.equal(0n);
    });

    it("reverts with the token's ERC20InsufficientAllowance when the permit is invalid and nothing is approved", async function () {
      const deadline = BigInt(await time.latest()) + 600n;
      // Signed for a smaller value than the deposit, so it does not verify.
      const sig = await signPermit(f, payer, await f.vms.getAddress(), D - 1n, deadline);
      await expect(
        f.vms.connect(payer).requestVmWithPermit(f.provider.address, MANIFEST, SMALL_VM, MAX_UINT88, D, deadline, sig.v, sig.r, sig.s),
      )
        .to.be.revertedWithCustomError(f.token, "ERC20InsufficientAllowance")
        .withArgs(await f.vms.getAddress(), 0n, D);
    });
  });

  describe("request validation", function () {
    it("reverts with VmRegistryZeroDeposit for a zero deposit", async function () {
      await expect(
        f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, SMALL_VM, MAX_UINT88, 0n),
      ).to.be.revertedWithCustomError(f.vms, "VmRegistryZeroDeposit");
    });

    for (const [dimension, resources] of [
      ["vcpu", { ...SMALL_VM, vcpu: 0n }],
      ["memoryMiB", { ...SMALL_VM, memoryMiB: 0n }],
      ["diskGiB", { ...SMALL_VM, diskGiB: 0n }],
    ] as const) {
      it(`reverts with VmRegistryZeroResources when ${dimension} is zero`, async function () {
        await expect(f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, resources, MAX_UINT88, D))
          .to.be.revertedWithCustomError(f.vms, "VmRegistryZeroResources")
          .withArgs(resources.vcpu, resources.memoryMiB, resources.diskGiB);
      });
    }

    it("reverts with VmRegistryEmptyManifest for a zero manifest digest", async function () {
      await expect(
        f.vms.connect(f.tenant).requestVm(f.provider.address, ethers.ZeroHash, SMALL_VM, MAX_UINT88, D),
      ).to.be.revertedWithCustomError(f.vms, "VmRegistryEmptyManifest");
    });

    it("reverts with VmRegistryUnknownProvider for an unregistered provider or an operator key", async function () {
      await expect(f.vms.connect(f.tenant).requestVm(f.stranger.address, MANIFEST, SMALL_VM, MAX_UINT88, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryUnknownProvider")
        .withArgs(f.stranger.address);
      await expect(f.vms.connect(f.tenant).requestVm(f.operator.address, MANIFEST, SMALL_VM, MAX_UINT88, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryUnknownProvider")
        .withArgs(f.operator.address);
    });

    for (const [dimension, resources] of [
      ["vcpu", { ...SMALL_VM, vcpu: CAPACITY.vcpu + 1n }],
      ["memoryMiB", { ...SMALL_VM, memoryMiB: CAPACITY.memoryMiB + 1n }],
      ["diskGiB", { ...SMALL_VM, diskGiB: CAPACITY.diskGiB + 1n }],
    ] as [string, Resources][]) {
      it(`reverts with VmRegistryExceedsCapacity when ${dimension} exceeds the provider's capacity`, async function () {
        await expect(f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, resources, MAX_UINT88, D))
          .to.be.revertedWithCustomError(f.vms, "VmRegistryExceedsCapacity")
          .withArgs(f.provider.address, tuple(resources), tuple(CAPACITY));
      });
    }

    it("reverts with SafeCastOverflowedUintDowncast(96, deposit) for a deposit above uint96", async function () {
      await expect(f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, SMALL_VM, MAX_UINT88, MAX_UINT96 + 1n))
        .to.be.revertedWithCustomError(f.vms, "SafeCastOverflowedUintDowncast")
        .withArgs(96n, MAX_UINT96 + 1n);
    });

    it("reverts with SafeCastOverflowedUintDowncast(88, price) for a price per second above uint88", async function () {
      const max64 = 2n ** 64n - 1n;
      const max32 = 2n ** 32n - 1n;
      const huge = { vcpu: max32, memoryMiB: max32, diskGiB: max32 };
      await f.providers
        .connect(f.provider)
        .updateOffer(REGION, huge, { perVcpuSecond: max64, perMemoryMiBSecond: max64, perDiskGiBSecond: max64 }, "");
      await expect(f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, huge, ethers.MaxUint256, 1n))
        .to.be.revertedWithCustomError(f.vms, "SafeCastOverflowedUintDowncast")
        .withArgs(88n, 3n * max64 * max32);
    });

    it("accepts the largest uint96 deposit as far as the cast goes (then the token runs out)", async function () {
      await expect(f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, SMALL_VM, MAX_UINT88, MAX_UINT96))
        .to.be.revertedWithCustomError(f.token, "ERC20InsufficientBalance")
        .withArgs(f.tenant.address, TENANT_FUNDS, MAX_UINT96);
    });
  });

  describe("unknown VM ids", function () {
    for (const vmId of [0n, 2n]) {
      it(`reverts every call on VM ${vmId} with VmRegistryUnknownVm`, async function () {
        await requestVm(f); // VM 1 exists
        const calls: Array<() => Promise<unknown>> = [
          () => f.vms.connect(f.tenant).stopVm(vmId),
          () => f.vms.connect(f.tenant).startVm(vmId),
          () => f.vms.connect(f.tenant).terminateVm(vmId),
          () => f.vms.connect(f.operator).reportProvisioning(vmId),
          () => f.vms.connect(f.operator).reportRunning(vmId),
          () => f.vms.connect(f.operator).reportFailed(vmId, 1),
          () => f.vms.connect(f.stranger).settle(vmId),
          () => f.vms.getVm(vmId),
        ];
        for (const call of calls) {
          await expect(call()).to.be.revertedWithCustomError(f.vms, "VmRegistryUnknownVm").withArgs(vmId);
        }
      });
    }
  });

  describe("owner-only functions", function () {
    for (const [fn, [first]] of byFunction(OWNER_TRANSITIONS)) {
      for (const who of ["tenant2", "operator", "provider", "stranger"] as const) {
        it(`${fn} reverts with VmRegistryNotOwner when called by the ${who}`, async function () {
          const vmId = await vmIn(f, first!.from);
          const caller = f[who];
          await expect(first!.send(f.vms.connect(caller), vmId))
            .to.be.revertedWithCustomError(f.vms, "VmRegistryNotOwner")
            .withArgs(vmId, caller.address, f.tenant.address);
        });
      }
    }
  });

  describe("operator-only functions", function () {
    for (const [fn, [first]] of byFunction(OPERATOR_TRANSITIONS)) {
      for (const who of ["tenant", "provider", "stranger"] as const) {
        it(`${fn} reverts with VmRegistryNotOperator when called by the ${who}`, async function () {
          const vmId = await vmIn(f, first!.from);
          const caller = f[who];
          await expect(first!.send(f.vms.connect(caller), vmId))
            .to.be.revertedWithCustomError(f.vms, "VmRegistryNotOperator")
            .withArgs(vmId, caller.address, f.operator.address);
        });
      }
    }

    it("reportFailed reverts with VmRegistryMissingFailureReason for reason 0", async function () {
      const vmId = await vmIn(f, VmState.Running);
      await expect(f.vms.connect(f.operator).reportFailed(vmId, 0))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryMissingFailureReason")
        .withArgs(vmId);
    });
  });

  describe("state machine", function () {
    const tables: Array<[Map<string, Transition[]>, "tenant" | "operator"]> = [
      [byFunction(OWNER_TRANSITIONS), "tenant"],
      [byFunction(OPERATOR_TRANSITIONS), "operator"],
    ];
    for (const [table, account] of tables) {
      for (const [fn, allowed] of table) {
        for (const { from, to, send } of allowed) {
          it(`${fn} moves a VM from ${nameOf(from)} to ${nameOf(to)} and emits VmStateChanged`, async function () {
            const vmId = await vmIn(f, from);
            const reason = fn === "reportFailed" ? 5n : 0n;
            await expect(send(f.vms.connect(f[account]), vmId))
              .to.emit(f.vms, "VmStateChanged")
              .withArgs(vmId, f.tenant.address, f.provider.address, from, to, reason);
            const v = await f.vms.getVm(vmId);
            expect(v.state).to.equal(to);
            expect(v.failureReason).to.equal(reason);
          });
        }
        for (const state of ALL_STATES.filter((s) => !allowed.some((a) => a.from === s))) {
          it(`${fn} reverts with VmRegistryUnexpectedState in ${nameOf(state)}`, async function () {
            const vmId = await vmIn(f, state);
            await expect(allowed[0]!.send(f.vms.connect(f[account]), vmId))
              .to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState")
              .withArgs(vmId, state);
          });
        }
      }
    }
  });

  describe("full lifecycle", function () {
    it("bills per second only while Running: Requested -> Provisioning -> Running -> Stopped -> Starting -> Running -> Terminated", async function () {
      const owner = f.vms.connect(f.tenant);
      const op = f.vms.connect(f.operator);
      const vmId = await requestVm(f);
      const tRequested = BigInt(await time.latest());
      expect(await f.token.balanceOf(f.tenant.address)).to.equal(TENANT_FUNDS - D);

      // Nothing is billed while Requested or Provisioning.
      await at(tRequested + 1_000n, () => op.reportProvisioning(vmId));
      // Within the provisioning deadline (an hour after the request).
      const t0 = tRequested + 3_000n;
      let tx = await at(t0, () => op.reportRunning(vmId));
      expect(await vmEvents(f, tx)).to.deep.equal([
        ["VmStateChanged", vmId, f.tenant.address, f.provider.address, VmState.Provisioning, VmState.Running, 0n],
      ]);
      expect((await f.vms.getVm(vmId)).paid).to.equal(0n);

      // 100 s Running.
      tx = await at(t0 + 100n, () => owner.stopVm(vmId));
      expect(await vmEvents(f, tx)).to.deep.equal([
        ["VmSettled", vmId, f.tenant.address, f.provider.address, 100n * P, 0n, D - 100n * P],
        ["VmStateChanged", vmId, f.tenant.address, f.provider.address, VmState.Running, VmState.Stopped, 0n],
      ]);
      expect(await f.vms.earningsOf(f.provider.address)).to.equal(100n * P);

      // Stopped for 600 s and Starting for 100 s: no billing, settle moves nothing.
      await at(t0 + 700n, () => owner.startVm(vmId));
      tx = await at(t0 + 750n, () => f.vms.connect(f.stranger).settle(vmId));
      expect(await vmEvents(f, tx)).to.deep.equal([]);
      const t1 = t0 + 800n;
      await at(t1, () => op.reportRunning(vmId));
      expect((await f.vms.getVm(vmId)).paid).to.equal(100n * P);
      expect((await f.vms.getVm(vmId)).lastSettledAt).to.equal(t1);

      // 250 s Running, then terminate: settle, terminal state, refund, in that order.
      const balanceBefore = await f.token.balanceOf(f.tenant.address);
      tx = await at(t1 + 250n, () => owner.terminateVm(vmId));
      const paid = 350n * P;
      expect(await vmEvents(f, tx)).to.deep.equal([
        ["VmSettled", vmId, f.tenant.address, f.provider.address, 250n * P, 0n, D - paid],
        ["VmStateChanged", vmId, f.tenant.address, f.provider.address, VmState.Running, VmState.Terminated, 0n],
        ["VmRefunded", vmId, f.tenant.address, f.provider.address, D - paid],
      ]);
      expect((await f.token.balanceOf(f.tenant.address)) - balanceBefore).to.equal(D - paid);

      const v = await f.vms.getVm(vmId);
      expect(v.state).to.equal(VmState.Terminated);
      expect(v.lastSettledAt).to.equal(t1 + 250n);
      await expectSettledExactly(f, vmId, paid);
    });
  });

  describe("reportFailed", function () {
    for (const from of [VmState.Requested, VmState.Provisioning]) {
      it(`refunds the whole deposit when the VM fails in ${nameOf(from)}`, async function () {
        const vmId = await vmIn(f, from);
        await time.increase(3_000); // still within the provisioning deadline
        const tx = await f.vms.connect(f.operator).reportFailed(vmId, 42);
        expect(await vmEvents(f, tx)).to.deep.equal([
          ["VmStateChanged", vmId, f.tenant.address, f.provider.address, from, VmState.Failed, 42n],
          ["VmRefunded", vmId, f.tenant.address, f.provider.address, D],
        ]);
        const v = await f.vms.getVm(vmId);
        expect(v.state).to.equal(VmState.Failed);
        expect(v.failureReason).to.equal(42n);
        await expectSettledExactly(f, vmId, 0n);
      });
    }

    it("refunds what is left after earlier running when the VM fails while Starting", async function () {
      const { vmId, startedAt } = await runningVm(f);
      await at(startedAt + 100n, () => f.vms.connect(f.tenant).stopVm(vmId));
      await at(startedAt + 200n, () => f.vms.connect(f.tenant).startVm(vmId));
      const tx = await at(startedAt + 900n, () => f.vms.connect(f.operator).reportFailed(vmId, 3));
      expect(await vmEvents(f, tx)).to.deep.equal([
        ["VmStateChanged", vmId, f.tenant.address, f.provider.address, VmState.Starting, VmState.Failed, 3n],
        ["VmRefunded", vmId, f.tenant.address, f.provider.address, D - 100n * P],
      ]);
      await expectSettledExactly(f, vmId, 100n * P);
    });

    it("settles the running time and then refunds the rest when the VM fails while Running", async function () {
      const { vmId, startedAt } = await runningVm(f);
      const tx = await at(startedAt + 123n, () => f.vms.connect(f.operator).reportFailed(vmId, 9));
      expect(await vmEvents(f, tx)).to.deep.equal([
        ["VmSettled", vmId, f.tenant.address, f.provider.address, 123n * P, 0n, D - 123n * P],
        ["VmStateChanged", vmId, f.tenant.address, f.provider.address, VmState.Running, VmState.Failed, 9n],
        ["VmRefunded", vmId, f.tenant.address, f.provider.address, D - 123n * P],
      ]);
      await expect(tx).to.changeTokenBalances(ethers, f.token, [f.tenant, f.vms], [D - 123n * P, -(D - 123n * P)]);
      await expectSettledExactly(f, vmId, 123n * P);
    });
  });

  describe("terminateVm before Running", function () {
    for (const from of [VmState.Requested, VmState.Provisioning]) {
      it(`refunds the whole deposit when the owner terminates in ${nameOf(from)}`, async function () {
        const vmId = await vmIn(f, from);
        await time.increase(600);
        await expect(f.vms.connect(f.tenant).terminateVm(vmId))
          .to.emit(f.vms, "VmRefunded")
          .withArgs(vmId, f.tenant.address, f.provider.address, D)
          .and.not.to.emit(f.vms, "VmSettled");
        await expectSettledExactly(f, vmId, 0n);
      });
    }

    it("refunds the rest without billing the stopped time when the owner terminates a Stopped VM", async function () {
      const { vmId, startedAt } = await runningVm(f);
      await at(startedAt + 40n, () => f.vms.connect(f.tenant).stopVm(vmId));
      const tx = await at(startedAt + 4_000n, () => f.vms.connect(f.tenant).terminateVm(vmId));
      expect(await vmEvents(f, tx)).to.deep.equal([
        ["VmStateChanged", vmId, f.tenant.address, f.provider.address, VmState.Stopped, VmState.Terminated, 0n],
        ["VmRefunded", vmId, f.tenant.address, f.provider.address, D - 40n * P],
      ]);
      expect((await f.vms.getVm(vmId)).lastSettledAt).to.equal(startedAt + 40n);
      await expectSettledExactly(f, vmId, 40n * P);
    });
  });

  describe("balance exhaustion", function () {
    const deposit = 10n * P + 5n; // not a whole number of seconds: runs out during second 11

    it("caps payment at the deposit, reads as Suspended from the second the money ran out, and refunds nothing", async function () {
      const { vmId, startedAt } = await runningVm(f, { deposit });
      await time.increaseTo(startedAt + 10n);
      expect((await f.vms.getVm(vmId)).balance).to.equal(5n);

      await time.increaseTo(startedAt + 1_000n);
      let v = await f.vms.getVm(vmId);
      expect(v.state).to.equal(VmState.Suspended);
      expect(v.balance).to.equal(0n);
      expect(v.paid).to.equal(deposit);
      expect(v.suspendedAt).to.equal(startedAt + 11n);
      expect(v.lastSettledAt).to.equal(startedAt + 11n);

      const tx = await at(startedAt + 1_001n, () => f.vms.connect(f.tenant).terminateVm(vmId));
      expect(await vmEvents(f, tx)).to.deep.equal([
        ["VmSettled", vmId, f.tenant.address, f.provider.address, deposit, 0n, 0n],
        ["VmStateChanged", vmId, f.tenant.address, f.provider.address, VmState.Running, VmState.Suspended, 0n],
        ["VmStateChanged", vmId, f.tenant.address, f.provider.address, VmState.Suspended, VmState.Terminated, 0n],
      ]);
      v = await f.vms.getVm(vmId);
      expect(v.refunded).to.equal(0n);
      await expectSettledExactly(f, vmId, deposit, deposit);
    });

    it("suspends on the touch after the money ran out and settles nothing more", async function () {
      const { vmId, startedAt } = await runningVm(f, { deposit });
      let tx = await at(startedAt + 11n, () => f.vms.settle(vmId));
      expect(await vmEvents(f, tx)).to.deep.equal([
        ["VmSettled", vmId, f.tenant.address, f.provider.address, deposit, 0n, 0n],
        ["VmStateChanged", vmId, f.tenant.address, f.provider.address, VmState.Running, VmState.Suspended, 0n],
      ]);
      tx = await at(startedAt + 500n, () => f.vms.settle(vmId));
      expect(await vmEvents(f, tx)).to.deep.equal([]);
      expect(await f.vms.earningsOf(f.provider.address)).to.equal(deposit);
      await f.vms.connect(f.tenant).terminateVm(vmId);
      await expectSettledExactly(f, vmId, deposit, deposit);
    });

    it("reports the same lastSettledAt in getVm as a settle at that moment would store", async function () {
      const { vmId, startedAt } = await runningVm(f, { deposit: 100n * P });
      await at(startedAt + 20n, () => f.vms.settle(vmId));
      await time.increaseTo(startedAt + 30n);
      const viewed = await f.vms.getVm(vmId);
      expect(viewed.lastSettledAt).to.equal(startedAt + 30n);
      await at(startedAt + 30n + 1n, () => f.vms.settle(vmId));
      expect((await f.vms.getVm(vmId)).lastSettledAt).to.equal(startedAt + 31n);
    });
  });

  describe("settle", function () {
    it("can be called by anyone and moves what is due into the provider's earnings without moving tokens", async function () {
      const { vmId, startedAt } = await runningVm(f);
      await time.setNextBlockTimestamp(startedAt + 60n);
      const tx = f.vms.connect(f.stranger).settle(vmId);
      await expect(tx)
        .to.emit(f.vms, "VmSettled")
        .withArgs(vmId, f.tenant.address, f.provider.address, 60n * P, 0n, D - 60n * P);
      await expect(tx).to.changeTokenBalances(ethers, f.token, [f.tenant, f.vms, f.provider, f.stranger], [0n, 0n, 0n, 0n]);
      expect(await f.vms.earningsOf(f.provider.address)).to.equal(60n * P);
    });

    it("bills the same total whether settled often or once", async function () {
      const { vmId, startedAt } = await runningVm(f);
      for (const dt of [7n, 19n, 20n, 64n]) await at(startedAt + dt, () => f.vms.settle(vmId));
      expect(await f.vms.earningsOf(f.provider.address)).to.equal(64n * P);
      expect((await f.vms.getVm(vmId)).balance).to.equal(D - 64n * P);
    });

    for (const state of [VmState.Requested, VmState.Provisioning, VmState.Stopped, VmState.Starting, VmState.Failed, VmState.Terminated]) {
      it(`is a no-op that emits nothing in ${nameOf(state)}`, async function () {
        const vmId = await vmIn(f, state);
        const before = await f.vms.getVm(vmId);
        await time.increase(1_000);
        const tx = await f.vms.settle(vmId);
        expect(await vmEvents(f, tx)).to.deep.equal([]);
        expect(fieldsOf(await f.vms.getVm(vmId))).to.deep.equal(fieldsOf(before));
      });
    }
  });

  describe("getVm", function () {
    it("shows billing settled up to the current block before settlement and the same after", async function () {
      const { vmId, startedAt } = await runningVm(f);
      let v = await f.vms.getVm(vmId);
      expect([v.deposit, v.balance, v.paid, v.refunded, v.lastSettledAt]).to.deep.equal([D, D, 0n, 0n, startedAt]);

      // Unsettled: the view derives 100 s of billing; nothing is stored yet.
      await time.increaseTo(startedAt + 100n);
      v = await f.vms.getVm(vmId);
      expect([v.deposit, v.balance, v.paid, v.refunded, v.lastSettledAt]).to.deep.equal([
        D,
        D - 100n * P,
        100n * P,
        0n,
        startedAt + 100n,
      ]);
      expect(await f.vms.earningsOf(f.provider.address)).to.equal(0n);

      // Settled at +150: the same numbers, now stored.
      await at(startedAt + 150n, () => f.vms.settle(vmId));
      v = await f.vms.getVm(vmId);
      expect([v.deposit, v.balance, v.paid, v.refunded, v.lastSettledAt]).to.deep.equal([
        D,
        D - 150n * P,
        150n * P,
        0n,
        startedAt + 150n,
      ]);
      expect(await f.vms.earningsOf(f.provider.address)).to.equal(150n * P);

      // Stopped at +200: the view stops moving.
      await at(startedAt + 200n, () => f.vms.connect(f.tenant).stopVm(vmId));
      await time.increaseTo(startedAt + 5_000n);
      v = await f.vms.getVm(vmId);
      expect([v.state, v.balance, v.paid, v.refunded, v.lastSettledAt]).to.deep.equal([
        VmState.Stopped,
        D - 200n * P,
        200n * P,
        0n,
        startedAt + 200n,
      ]);

      // Stopped VMs are not settled on touch.
      await f.vms.settle(vmId);
      expect((await f.vms.getVm(vmId)).lastSettledAt).to.equal(startedAt + 200n);

      // Terminated: balance 0, the rest refunded.
      await f.vms.connect(f.tenant).terminateVm(vmId);
      v = await f.vms.getVm(vmId);
      expect([v.state, v.deposit, v.balance, v.paid, v.refunded, v.lastSettledAt]).to.deep.equal([
        VmState.Terminated,
        D,
        0n,
        200n * P,
        D - 200n * P,
        startedAt + 200n,
      ]);
    });

    it("reports a free Running VM as settled up to now, as settle would store it", async function () {
      const free = { perVcpuSecond: 0n, perMemoryMiBSecond: 0n, perDiskGiBSecond: 0n };
      await f.providers.connect(f.provider).updateOffer(REGION, CAPACITY, free, METADATA_CID);
      const { vmId, startedAt } = await runningVm(f, { deposit: 1n });
      await time.increaseTo(startedAt + 60n);
      let v = await f.vms.getVm(vmId);
      expect([v.pricePerSecond, v.balance, v.paid, v.lastSettledAt]).to.deep.equal([0n, 1n, 0n, startedAt + 60n]);
      await at(startedAt + 61n, () => f.vms.settle(vmId));
      v = await f.vms.getVm(vmId);
      expect([v.balance, v.paid, v.lastSettledAt]).to.deep.equal([1n, 0n, startedAt + 61n]);
      await f.vms.connect(f.tenant).terminateVm(vmId);
      await expectSettledExactly(f, vmId, 0n, 1n);
    });
  });

  describe("withdrawEarnings", function () {
    it("reverts with VmRegistryNothingToWithdraw when nothing is settled", async function () {
      await runningVm(f); // running but unsettled
      await expect(f.vms.connect(f.provider).withdrawEarnings())
        .to.be.revertedWithCustomError(f.vms, "VmRegistryNothingToWithdraw")
        .withArgs(f.provider.address);
    });

    it("pays the provider's settled earnings from all its VMs once, to the provider's owner key", async function () {
      const a = await runningVm(f);
      const b = await runningVm(f, { tenant: f.tenant2 });
      await at(a.startedAt + 30n, () => f.vms.connect(f.tenant).stopVm(a.vmId));
      await at(b.startedAt + 45n, () => f.vms.connect(f.tenant2).terminateVm(b.vmId));
      // a ran 30 s, b ran 45 s.
      const earned = 30n * P + 45n * P;
      expect(await f.vms.earningsOf(f.provider.address)).to.equal(earned);
      expect(await f.vms.connect(f.provider).withdrawEarnings.staticCall()).to.equal(earned);

      const tx = f.vms.connect(f.provider).withdrawEarnings();
      await expect(tx).to.emit(f.vms, "EarningsWithdrawn").withArgs(f.provider.address, f.provider.address, earned);
      await expect(tx).to.changeTokenBalances(ethers, f.token, [f.provider, f.vms, f.operator], [earned, -earned, 0n]);
      expect(await f.vms.earningsOf(f.provider.address)).to.equal(0n);
      // Escrow now holds exactly VM a's remaining balance.
      expect(await f.token.balanceOf(await f.vms.getAddress())).to.equal(D - 30n * P);

      await expect(f.vms.connect(f.provider).withdrawEarnings())
        .to.be.revertedWithCustomError(f.vms, "VmRegistryNothingToWithdraw")
        .withArgs(f.provider.address);
    });

    it("does not let the operator key withdraw the provider's earnings", async function () {
      const { vmId, startedAt } = await runningVm(f);
      await at(startedAt + 10n, () => f.vms.settle(vmId));
      await expect(f.vms.connect(f.operator).withdrawEarnings())
        .to.be.revertedWithCustomError(f.vms, "VmRegistryNothingToWithdraw")
        .withArgs(f.operator.address);
    });
  });

  describe("operator rotation", function () {
    it("rejects the old operator and accepts the new one for existing VMs", async function () {
      const vmId = await requestVm(f);
      await f.providers.connect(f.provider).setOperator(f.operator2.address);
      // Until the new key accepts, the old one still operates the provider.
      expect(await f.providers.operatorOf(f.provider.address)).to.equal(f.operator.address);
      await f.providers.connect(f.operator2).acceptOperator(f.provider.address);

      await expect(f.vms.connect(f.operator).reportProvisioning(vmId))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryNotOperator")
        .withArgs(vmId, f.operator.address, f.operator2.address);
      await expect(f.vms.connect(f.operator2).reportProvisioning(vmId))
        .to.emit(f.vms, "VmStateChanged")
        .withArgs(vmId, f.tenant.address, f.provider.address, VmState.Requested, VmState.Provisioning, 0n);

      await f.vms.connect(f.operator2).reportRunning(vmId);
      await expect(f.vms.connect(f.operator).reportFailed(vmId, 1))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryNotOperator")
        .withArgs(vmId, f.operator.address, f.operator2.address);
      await f.vms.connect(f.operator2).reportFailed(vmId, 1);
      expect((await f.vms.getVm(vmId)).state).to.equal(VmState.Failed);
    });
  });

  describe("escrow accounting", function () {
    it("holds exactly the live balances plus unwithdrawn earnings across tenants and paths", async function () {
      const a = await runningVm(f); // will run 100 s then terminate
      const b = await runningVm(f, { tenant: f.tenant2, deposit: 50n * P + 1n }); // runs out
      const c = await requestVm(f, { deposit: 777n }); // fails before running
      await at(a.startedAt + 100n, () => f.vms.connect(f.tenant).terminateVm(a.vmId));
      await f.vms.connect(f.operator).reportFailed(c, 2);
      await at(b.startedAt + 1_000n, () => f.vms.settle(b.vmId));

      const vmsAddress = await f.vms.getAddress();
      const earnings = 100n * P + 50n * P + 1n;
      expect(await f.vms.earningsOf(f.provider.address)).to.equal(earnings);
      expect(await f.token.balanceOf(vmsAddress)).to.equal(earnings); // b's live balance is 0
      expect(await f.token.balanceOf(f.tenant.address)).to.equal(TENANT_FUNDS - 100n * P);
      expect(await f.token.balanceOf(f.tenant2.address)).to.equal(TENANT_FUNDS - (50n * P + 1n));

      for (const id of [a.vmId, b.vmId, c]) {
        const v = await f.vms.getVm(id);
        expect(v.balance + v.paid + v.refunded).to.equal(v.deposit);
      }
      await f.vms.connect(f.provider).withdrawEarnings();
      expect(await f.token.balanceOf(vmsAddress)).to.equal(0n);
    });
  });
});
