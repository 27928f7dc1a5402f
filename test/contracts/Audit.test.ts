import { expect } from "chai";
import { network } from "hardhat";
import type { Signer } from "ethers";
import type { OrderBook } from "../../types/ethers-contracts/index.ts";
import {
  BID_WINDOW,
  CAPACITY,
  deployFixture,
  DEPOSIT,
  MANIFEST,
  MIN_STAKE,
  PRICES,
  PROVISIONING_TIMEOUT,
  REGION,
  SLASH_BPS,
  SMALL_VM,
  SMALL_VM_PRICE,
  THAW_PERIOD,
  tuple,
  VmState,
  type Fixture,
  type Resources,
} from "./fixtures.ts";

// Issue 9, marketplace part: every finding of the audit as the attack it describes. Each test failed on the code
// before the fix (see the commit that added this file) and passes after it.

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const P = SMALL_VM_PRICE;
const D = DEPOSIT;
const EU = ethers.encodeBytes32String("eu-west-1");
const US = ethers.encodeBytes32String("us-east-2");
const BPS = 10_000n;
type Account = Signer & { address: string };

/** A direct request of `SMALL_VM` (or `resources`) at the fixture's provider; returns the new id. */
async function request(
  f: Fixture,
  o: { tenant?: Account; provider?: string; maxPrice?: bigint; deposit?: bigint; resources?: Resources } = {},
): Promise<bigint> {
  const tenant = o.tenant ?? f.tenant;
  await f.vms
    .connect(tenant)
    .requestVm(o.provider ?? f.provider.address, MANIFEST, o.resources ?? SMALL_VM, o.maxPrice ?? P, o.deposit ?? D);
  return f.vms.vmCount();
}

/** A registered provider with fresh keys, `MIN_STAKE` staked; returns [owner, operator]. */
async function throwaway(f: Fixture, region = REGION, capacity = CAPACITY): Promise<[Account, Account]> {
  const owner = ethers.Wallet.createRandom().connect(ethers.provider);
  const operator = ethers.Wallet.createRandom().connect(ethers.provider);
  for (const w of [owner, operator]) await networkHelpers.setBalance(w.address, 10n ** 20n);
  await f.token.transfer(owner.address, MIN_STAKE);
  await f.token.connect(owner).approve(await f.providers.getAddress(), MIN_STAKE);
  await f.providers.connect(owner).register(operator.address, region, capacity, PRICES, "", MIN_STAKE);
  await f.providers.connect(operator).acceptOperator(owner.address);
  return [owner, operator];
}

async function openOrder(f: Fixture, regions: string[] = [], maxPrice = 2n * P, deposit = D): Promise<bigint> {
  await f.vms.connect(f.tenant).openOrder(MANIFEST, SMALL_VM, regions, maxPrice, deposit);
  return f.vms.vmCount();
}

async function leased(f: Fixture, provider: string) {
  return tuple((await f.providers.getProvider(provider)).leased);
}

describe("Audit (issue 9): marketplace", function () {
  let f: Fixture;
  beforeEach(async function () {
    f = await networkHelpers.loadFixture(deployFixture);
  });

  describe("audit 1: a direct request carries the tenant's maximum price", function () {
    it("audit 1: a provider raising its price before the request is mined cannot bill above the tenant's max", async function () {
      await f.providers.connect(f.provider).updateOffer(REGION, CAPACITY, { ...PRICES, perVcpuSecond: PRICES.perVcpuSecond * 1_000n }, "");
      const raised = P + 2n * PRICES.perVcpuSecond * 999n;
      await expect(f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, SMALL_VM, P, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryPriceAboveMax")
        .withArgs(f.provider.address, raised, P);
      // At a max the tenant accepts, the lease is made at the provider's price, not at the max.
      const id = await request(f, { maxPrice: raised + 1n });
      expect((await f.vms.getVm(id)).pricePerSecond).to.equal(raised);
    });

    it("audit 1: requestVmWithPermit refuses a price above the tenant's max", async function () {
      await f.providers.connect(f.provider).updateOffer(REGION, CAPACITY, { ...PRICES, perDiskGiBSecond: 10n ** 12n }, "");
      const deadline = BigInt(await time.latest()) + 3_600n;
      await expect(
        f.vms.connect(f.tenant).requestVmWithPermit(f.provider.address, MANIFEST, SMALL_VM, P, D, deadline, 0, ethers.ZeroHash, ethers.ZeroHash),
      ).to.be.revertedWithCustomError(f.vms, "VmRegistryPriceAboveMax");
    });

    it("audit 1: a price change after the request never touches the lease already made", async function () {
      const id = await request(f);
      await f.providers.connect(f.provider).updateOffer(REGION, CAPACITY, { ...PRICES, perVcpuSecond: 10n ** 15n }, "");
      await f.vms.connect(f.operator).reportRunning(id);
      await time.increase(100n);
      await f.vms.settle(id);
      const v = await f.vms.getVm(id);
      expect(v.pricePerSecond).to.equal(P);
      expect(v.paid).to.equal(P * 101n);
    });

    it("audit 1: migrateVm to a named provider refuses a price above maxPricePerSecond", async function () {
      const id = await request(f);
      await f.vms.connect(f.operator).reportRunning(id);
      const [owner2] = await throwaway(f, US);
      await f.providers.connect(owner2).updateOffer(US, CAPACITY, { ...PRICES, perVcpuSecond: 10n ** 15n }, "");
      const price = 2n * 10n ** 15n + P - 2n * PRICES.perVcpuSecond;
      await expect(f.vms.connect(f.tenant).migrateVm(id, owner2.address, [], P, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryPriceAboveMax")
        .withArgs(owner2.address, price, P);
    });

    it("audit 1: an EU-only migrateVm cannot land on a named provider outside the EU", async function () {
      const id = await request(f);
      await f.vms.connect(f.operator).reportRunning(id);
      const [usProvider] = await throwaway(f, US);
      await expect(f.vms.connect(f.tenant).migrateVm(id, usProvider.address, [EU], P, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryRegionNotAllowed")
        .withArgs(id, US);
      const [euProvider] = await throwaway(f, EU);
      await expect(f.vms.connect(f.tenant).migrateVm(id, euProvider.address, [US, EU], P, D)).to.emit(f.vms, "VmMigrationRequested");
    });
  });

  describe("audit 3: bid slots cannot be captured", function () {
    it("audit 3: eight throwaway bidders cannot lock an honest bidder out: a lower bid evicts the highest", async function () {
      const id = await openOrder(f);
      const squatters: Account[] = [];
      for (let i = 0; i < 8; i++) {
        const [owner, operator] = await throwaway(f);
        await f.vms.connect(operator).bid(id, 2n * P);
        squatters.push(owner);
      }
      // The honest provider bids lower: the latest of the highest bids leaves, its reservation released.
      const tx = await f.vms.connect(f.operator).bid(id, P);
      await expect(tx).to.emit(f.vms, "VmBidEvicted").withArgs(id, f.tenant.address, squatters[7]!.address, 2n * P);
      expect(await leased(f, squatters[7]!.address)).to.deep.equal([0n, 0n, 0n]);
      // A bid that is not strictly lower than the highest still cannot enter a full order.
      const [, late] = await throwaway(f);
      await expect(f.vms.connect(late).bid(id, 2n * P))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryBidNotLowEnough")
        .withArgs(id, 2n * P, 2n * P);
      await time.increase(BID_WINDOW);
      await expect(f.vms.award(id)).to.emit(f.vms, "VmAwarded").withArgs(id, f.tenant.address, f.provider.address, P, BigInt(await time.latest()) + 1n + PROVISIONING_TIMEOUT);
      // Every loser got its reservation back.
      for (const s of squatters) expect(await leased(f, s.address)).to.deep.equal([0n, 0n, 0n]);
    });

    it("audit 3 (self-review): an eviction front-running acceptBid cannot turn the accepted index into another bid", async function () {
      // Eight bids: the cheapest at index 0, the most expensive at index 1, the tenant's choice at index 2.
      const owners: Account[] = [];
      const id = await openOrder(f);
      const prices = [P / 2n, 2n * P, P, P, P, P, P, P];
      for (const price of prices) {
        const [owner, operator] = await throwaway(f);
        await f.vms.connect(operator).bid(id, price);
        owners.push(owner);
      }
      // Front-run: a lower bid evicts index 1 and shifts index 3 into index 2.
      const [, attacker] = await throwaway(f);
      await f.vms.connect(attacker).bid(id, P - 1n);
      await expect(f.vms.connect(f.tenant).acceptBid(id, 2n, owners[2]!.address))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryBidMoved")
        .withArgs(id, 2n, owners[2]!.address, owners[3]!.address);
      // Read again, the owner's choice is found where it now is.
      await expect(f.vms.connect(f.tenant).acceptBid(id, 1n, owners[2]!.address))
        .to.emit(f.vms, "VmAwarded")
        .withArgs(id, f.tenant.address, owners[2]!.address, P, BigInt(await time.latest()) + 1n + PROVISIONING_TIMEOUT);
    });

    it("audit 3: bidders cannot force the price up by invalidating their own bids; award takes the lowest", async function () {
      const [o1, op1] = await throwaway(f);
      const [o2, op2] = await throwaway(f);
      const [o3, op3] = await throwaway(f);
      const [o4, op4] = await throwaway(f);
      const id = await openOrder(f, [REGION]);
      await f.vms.connect(op1).bid(id, 1n);
      await f.vms.connect(op2).bid(id, 2n);
      await f.vms.connect(op3).bid(id, 3n);
      await f.vms.connect(op4).bid(id, 2n * P);
      // The cheap bids try to invalidate themselves so that the expensive one wins: all refused while they stand.
      await expect(f.providers.connect(o1).requestUnstake(1n)).to.be.revertedWithCustomError(f.providers, "ProviderRegistryStakeTooLow");
      await f.providers.connect(o2).updateOffer(REGION, SMALL_VM, PRICES, ""); // down to exactly the reservation: allowed
      await expect(f.providers.connect(o2).updateOffer(REGION, { ...SMALL_VM, vcpu: 1n }, PRICES, ""))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryCapacityBelowLeased");
      await expect(f.providers.connect(o3).updateOffer(US, CAPACITY, PRICES, ""))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryRegionLocked")
        .withArgs(o3.address, REGION, tuple(SMALL_VM));
      await time.increase(BID_WINDOW);
      await expect(f.vms.connect(f.stranger).award(id)).to.emit(f.vms, "VmAwarded").withArgs(id, f.tenant.address, o1.address, 1n, BigInt(await time.latest()) + 1n + PROVISIONING_TIMEOUT);
      expect((await f.vms.getVm(id)).pricePerSecond).to.equal(1n);
      for (const o of [o2, o3, o4]) expect(await leased(f, o.address)).to.deep.equal([0n, 0n, 0n]);
      expect(await leased(f, o1.address)).to.deep.equal(tuple(SMALL_VM));
    });

    it("audit 3: bidders cannot kill the order by invalidating every bid; a winner that will not serve is expired and slashed", async function () {
      const [o1, op1] = await throwaway(f);
      const id = await openOrder(f);
      await f.vms.connect(op1).bid(id, P);
      // Governance raising the minimum stake does not undo a standing bid either.
      await f.providers.setParameters({ minimumStake: MIN_STAKE * 2n, thawPeriod: THAW_PERIOD, slashBps: SLASH_BPS });
      await time.increase(BID_WINDOW);
      await expect(f.vms.award(id)).to.emit(f.vms, "VmAwarded");
      await time.increase(PROVISIONING_TIMEOUT + 1n);
      const slash = (D * SLASH_BPS) / BPS;
      await expect(f.vms.expireVm(id)).to.emit(f.vms, "VmExpired").withArgs(id, f.tenant.address, o1.address, slash, slash / 2n);
    });

    it("audit 3: acceptBid and cancelling the order release every other bidder's reservation", async function () {
      const [o1, op1] = await throwaway(f);
      const [o2, op2] = await throwaway(f);
      const id = await openOrder(f);
      await f.vms.connect(op1).bid(id, P);
      await f.vms.connect(op2).bid(id, P);
      await f.vms.connect(f.tenant).acceptBid(id, 1n, o2.address);
      expect(await leased(f, o1.address)).to.deep.equal([0n, 0n, 0n]);
      expect(await leased(f, o2.address)).to.deep.equal(tuple(SMALL_VM));
      const cancelled = await openOrder(f);
      await f.vms.connect(op1).bid(cancelled, P);
      expect(await leased(f, o1.address)).to.deep.equal(tuple(SMALL_VM));
      await f.vms.connect(f.tenant).terminateVm(cancelled);
      expect(await leased(f, o1.address)).to.deep.equal([0n, 0n, 0n]);
    });
  });

  describe("audit 4: slashing cannot be farmed", function () {
    it("audit 4: 1-wei requests against an offline provider slash nothing (a slash is in proportion to the lease)", async function () {
      const ids: bigint[] = [];
      for (let i = 0; i < 8; i++) ids.push(await request(f, { tenant: f.tenant2, deposit: 1n }));
      await time.increase(PROVISIONING_TIMEOUT + 1n);
      for (const id of ids) {
        await expect(f.vms.connect(f.tenant2).expireVm(id)).to.emit(f.vms, "VmExpired").withArgs(id, f.tenant2.address, f.provider.address, 0n, 0n);
      }
      expect((await f.providers.getProvider(f.provider.address)).stake).to.equal(MIN_STAKE);
    });

    it("audit 4: the per-period slash budget holds across many expiries, and renews after a slash period", async function () {
      const big = 100_000n * 10n ** 18n;
      const ids: bigint[] = [];
      for (let i = 0; i < 4; i++) ids.push(await request(f, { deposit: big }));
      await time.increase(PROVISIONING_TIMEOUT + 1n);
      const budget = (MIN_STAKE * SLASH_BPS) / BPS;
      let total = 0n;
      for (const id of ids) {
        const tx = await f.vms.expireVm(id);
        const receipt = await tx.wait();
        const log = receipt!.logs.map((l) => f.vms.interface.parseLog(l)).find((e) => e?.name === "VmExpired")!;
        const slashed = log.args.slashed as bigint;
        expect(slashed).to.be.at.most((big * SLASH_BPS) / BPS);
        expect(log.args.toTenant).to.be.at.most(big);
        total += slashed;
      }
      expect(total).to.equal(budget);
      expect((await f.providers.getProvider(f.provider.address)).stake).to.equal(MIN_STAKE - budget);
      // The next period has a budget again (of what is at stake then).
      await time.increase(THAW_PERIOD);
      await f.providers.connect(f.provider).addStake(budget);
      const late = await request(f, { deposit: big });
      await time.increase(PROVISIONING_TIMEOUT + 1n);
      await expect(f.vms.expireVm(late)).to.emit(f.vms, "VmExpired").withArgs(late, f.tenant.address, f.provider.address, budget, budget / 2n);
    });
  });

  describe("audit 7: past the provisioning deadline only expiry applies", function () {
    for (const report of ["reportFailed", "reportRunning", "reportProvisioning"] as const) {
      it(`audit 7: a provider past its provisioning deadline cannot ${report} to escape the slash`, async function () {
        const id = await request(f);
        const deadline = (await f.vms.getVm(id)).provisioningDeadline;
        await time.increaseTo(deadline + 1n);
        const call =
          report === "reportFailed" ? f.vms.connect(f.operator).reportFailed(id, 1) : f.vms.connect(f.operator)[report](id);
        await expect(call).to.be.revertedWithCustomError(f.vms, "VmRegistryDeadlinePassed").withArgs(id, deadline);
        await expect(f.vms.expireVm(id)).to.emit(f.vms, "VmExpired");
      });
    }

    it("audit 7: at the deadline itself the provider may still report (the deadline is inclusive)", async function () {
      const id = await request(f);
      const deadline = (await f.vms.getVm(id)).provisioningDeadline;
      await time.setNextBlockTimestamp(deadline);
      await expect(f.vms.connect(f.operator).reportRunning(id)).to.emit(f.vms, "VmStateChanged");
    });
  });

  describe("audit: migration chains", function () {
    it("audit migration: a VM that is itself a pending migration target cannot be migrated (X -> Y -> Z would leave X open)", async function () {
      const x = await request(f);
      await f.vms.connect(f.operator).reportRunning(x);
      const [owner2, operator2] = await throwaway(f, US);
      await f.vms.connect(f.tenant).migrateVm(x, owner2.address, [], P, D);
      const y = x + 1n;
      await expect(f.vms.connect(f.tenant).migrateVm(y, f.provider.address, [], P, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryMigrationPending")
        .withArgs(y, x);
      await expect(f.vms.connect(f.tenant).migrateVm(y, ethers.ZeroAddress, [], P, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryMigrationPending")
        .withArgs(y, x);
      // Once Y runs, X is closed, and Y may move on: Z running then closes Y, and nothing stays open and billed.
      await f.vms.connect(operator2).reportRunning(y);
      expect((await f.vms.getVm(x)).state).to.equal(VmState.Terminated);
      await f.vms.connect(f.tenant).migrateVm(y, f.provider.address, [], P, D);
      const z = y + 1n;
      await expect(f.vms.connect(f.operator).reportRunning(z)).to.emit(f.vms, "VmMigrated").withArgs(y, f.tenant.address, owner2.address, z);
      expect((await f.vms.getVm(y)).state).to.equal(VmState.Terminated);
    });

    it("audit migration: a target that failed is terminal and cannot start a chain either", async function () {
      const x = await request(f);
      await f.vms.connect(f.operator).reportRunning(x);
      const [owner2, operator2] = await throwaway(f, US);
      await f.vms.connect(f.tenant).migrateVm(x, owner2.address, [], P, D);
      const y = x + 1n;
      await f.vms.connect(operator2).reportFailed(y, 1);
      await expect(f.vms.connect(f.tenant).migrateVm(y, f.provider.address, [], P, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState")
        .withArgs(y, VmState.Failed);
      // X keeps running and can be migrated again.
      expect((await f.vms.getVm(x)).state).to.equal(VmState.Running);
      await expect(f.vms.connect(f.tenant).migrateVm(x, owner2.address, [], P, D)).to.emit(f.vms, "VmMigrationRequested");
    });
  });

  describe("the order book and the slash budget", function () {
    it("a full order evicts the latest of its highest bids, keeps arrival order, and the evicted provider may bid again lower", async function () {
      const id = await openOrder(f);
      const owners: Account[] = [];
      const operators: Account[] = [];
      for (let i = 0; i < 8; i++) {
        const [owner, operator] = await throwaway(f);
        await f.vms.connect(operator).bid(id, i === 2 || i === 5 ? 2n * P : P);
        owners.push(owner);
        operators.push(operator);
      }
      await expect(f.vms.connect(f.operator).bid(id, P))
        .to.emit(f.vms, "VmBidEvicted")
        .withArgs(id, f.tenant.address, owners[5]!.address, 2n * P);
      const listed = (await f.vms.getBids(id)).map((b) => b.provider);
      expect(listed).to.deep.equal([...owners.slice(0, 5), ...owners.slice(6), f.provider].map((o) => o.address));
      await expect(f.vms.connect(operators[5]!).bid(id, P - 1n))
        .to.emit(f.vms, "VmBidPlaced")
        .withArgs(id, f.tenant.address, owners[5]!.address, P - 1n, 7n);
      expect((await f.vms.getVm(id)).bidCount).to.equal(8n);
    });

    it("only its VmRegistry writes to the OrderBook", async function () {
      const book = (await ethers.getContractAt("OrderBook", await f.vms.orderBook())) as unknown as OrderBook;
      expect(await book.vmRegistry()).to.equal(await f.vms.getAddress());
      await expect(book.connect(f.stranger).setRegions(1n, [EU]))
        .to.be.revertedWithCustomError(book, "OrderBookNotVmRegistry")
        .withArgs(f.stranger.address);
      await expect(book.connect(f.stranger).place(1n, f.stranger.address, 1n, REGION))
        .to.be.revertedWithCustomError(book, "OrderBookNotVmRegistry")
        .withArgs(f.stranger.address);
      const id = await openOrder(f, [EU], 2n * P);
      expect(await book.regions(id)).to.deep.equal([EU]);
      expect(await book.bids(id)).to.deep.equal([]);
      await expect(book.lowestBid(id)).to.be.revertedWithCustomError(f.vms, "VmRegistryNoValidBid").withArgs(id);
    });

    it("migrateVm to a named provider bounds its regions like an order", async function () {
      const id = await request(f);
      await f.vms.connect(f.operator).reportRunning(id);
      const five = [EU, US, EU, US, EU];
      await expect(f.vms.connect(f.tenant).migrateVm(id, f.provider.address, five, P, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryInvalidRegions")
        .withArgs(5n, 4n);
    });

    it("a provider with nothing leased may move region; slashBudget reports the budget left and the period's end", async function () {
      await f.providers.connect(f.provider).updateOffer(US, CAPACITY, PRICES, "");
      expect((await f.providers.getProvider(f.provider.address)).region).to.equal(US);
      const budget = (MIN_STAKE * SLASH_BPS) / BPS;
      expect(await f.providers.slashBudget(f.provider.address)).to.deep.equal([budget, 0n]);
      const big = 100_000n * 10n ** 18n;
      const id = await request(f, { deposit: big });
      await time.increase(PROVISIONING_TIMEOUT + 1n);
      const tx = await f.vms.expireVm(id);
      const t = BigInt((await tx.getBlock())!.timestamp);
      expect(await f.providers.slashBudget(f.provider.address)).to.deep.equal([0n, t + THAW_PERIOD]);
      await time.increaseTo(t + THAW_PERIOD);
      expect(await f.providers.slashBudget(f.provider.address)).to.deep.equal([((MIN_STAKE - budget) * SLASH_BPS) / BPS, 0n]);
    });
  });
});
