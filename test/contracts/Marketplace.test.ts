import { expect } from "chai";
import { network } from "hardhat";
import type { ContractTransactionResponse, Signer } from "ethers";
import type { ProviderRegistry } from "../../types/ethers-contracts/index.ts";
import {
  BID_WINDOW,
  CAPACITY,
  deployFixture,
  DEPOSIT,
  EXIT_NOTICE,
  GRACE_PERIOD,
  LOW_BALANCE_HORIZON,
  MANIFEST,
  marketParameters,
  MAX_UINT88,
  METADATA_CID,
  MIN_STAKE,
  minedAt,
  PRICES,
  PROVISIONING_TIMEOUT,
  REGION,
  requestVm,
  runningVm,
  SLASH_BPS,
  SMALL_VM,
  SMALL_VM_PRICE,
  THAW_PERIOD,
  TENANT_FUNDS,
  tuple,
  VmState,
  type Fixture,
} from "./fixtures.ts";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const REGION2 = ethers.encodeBytes32String("us-east-2");
const OTHER = ethers.encodeBytes32String("ap-south-1");
const MAX_PRICE = 2n * SMALL_VM_PRICE;
const P = SMALL_VM_PRICE;
const D = DEPOSIT;
const TWO_VMS = { vcpu: 2n * SMALL_VM.vcpu, memoryMiB: 2n * SMALL_VM.memoryMiB, diskGiB: 2n * SMALL_VM.diskGiB };

async function at(t: bigint, send: () => Promise<ContractTransactionResponse>): Promise<ContractTransactionResponse> {
  await time.setNextBlockTimestamp(t);
  return send();
}

/** Registers `provider2` (operator2, which accepts) in `region` with the fixture's prices and capacity. */
async function registerProvider2(f: Fixture, region = REGION2, capacity = CAPACITY) {
  await f.providers.connect(f.provider2).register(f.operator2.address, region, capacity, PRICES, METADATA_CID, MIN_STAKE);
  await f.providers.connect(f.operator2).acceptOperator(f.provider2.address);
}

/** Opens an order of `SMALL_VM` by `f.tenant`; returns its id. */
async function openOrder(f: Fixture, regions: string[] = [], maxPrice = MAX_PRICE, deposit = D): Promise<bigint> {
  await f.vms.connect(f.tenant).openOrder(MANIFEST, SMALL_VM, regions, maxPrice, deposit);
  return f.vms.vmCount();
}

/** A registered provider with a fresh random owner and operator, funded; returns [owner, operator]. */
async function extraProvider(f: Fixture, region = REGION): Promise<[Signer & { address: string }, Signer & { address: string }]> {
  const owner = ethers.Wallet.createRandom().connect(ethers.provider);
  const operator = ethers.Wallet.createRandom().connect(ethers.provider);
  for (const w of [owner, operator]) await networkHelpers.setBalance(w.address, 10n ** 20n);
  await f.token.transfer(owner.address, MIN_STAKE);
  await f.token.connect(owner).approve(await f.providers.getAddress(), MIN_STAKE);
  await f.providers.connect(owner).register(operator.address, region, CAPACITY, PRICES, "", MIN_STAKE);
  await f.providers.connect(operator).acceptOperator(owner.address);
  return [owner, operator];
}

function leasedOf(p: { leased: { vcpu: bigint; memoryMiB: bigint; diskGiB: bigint } }) {
  return tuple(p.leased);
}

describe("Marketplace", function () {
  let f: Fixture;
  beforeEach(async function () {
    f = await networkHelpers.loadFixture(deployFixture);
  });

  describe("configuration and governance parameters", function () {
    it("exposes governance, parameters, the bound VM registry and the constants", async function () {
      expect(await f.vms.governance()).to.equal(f.deployer.address);
      expect(await f.providers.governance()).to.equal(f.deployer.address);
      expect(await f.providers.vmRegistry()).to.equal(await f.vms.getAddress());
      const p = await f.vms.parameters();
      expect([p.treasury, p.feeBps, p.bidWindow, p.provisioningTimeout, p.gracePeriod, p.lowBalanceHorizon, p.exitNotice]).to.deep.equal([
        f.treasury.address, 0n, BID_WINDOW, PROVISIONING_TIMEOUT, GRACE_PERIOD, LOW_BALANCE_HORIZON, EXIT_NOTICE,
      ]);
      const q = await f.providers.parameters();
      expect([q.minimumStake, q.thawPeriod, q.slashBps]).to.deep.equal([MIN_STAKE, THAW_PERIOD, SLASH_BPS]);
      expect(await f.vms.MAX_BIDS()).to.equal(8n);
      expect(await f.vms.MAX_REGIONS()).to.equal(4n);
      expect(await f.vms.MAX_FEE_BPS()).to.equal(1_000n);
      expect(await f.providers.MAX_SLASH_BPS()).to.equal(5_000n);
    });

    it("VmRegistry.setParameters: governance only, emits ParametersChanged", async function () {
      const next = marketParameters(f.stranger.address, 250n);
      await expect(f.vms.connect(f.stranger).setParameters(next))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryNotGovernance")
        .withArgs(f.stranger.address);
      await expect(f.vms.setParameters(next)).to.emit(f.vms, "ParametersChanged");
      expect((await f.vms.parameters()).feeBps).to.equal(250n);
      expect((await f.vms.parameters()).treasury).to.equal(f.stranger.address);
    });

    const bad: Array<[string, Record<string, unknown>, bigint, bigint, bigint]> = [
      ["feeBps", { feeBps: 1_001n }, 1_001n, 0n, 1_000n],
      ["bidWindow", { bidWindow: 59n }, 59n, 60n, 30n * 86_400n],
      ["provisioningTimeout", { provisioningTimeout: 30n * 86_400n + 1n }, 30n * 86_400n + 1n, 60n, 30n * 86_400n],
      ["gracePeriod", { gracePeriod: 3_599n }, 3_599n, 3_600n, 30n * 86_400n],
      ["lowBalanceHorizon", { lowBalanceHorizon: 30n * 86_400n + 1n }, 30n * 86_400n + 1n, 0n, 30n * 86_400n],
      ["exitNotice", { exitNotice: 0n }, 0n, 3_600n, 30n * 86_400n],
    ];
    for (const [name, change, value, min, max] of bad) {
      it(`VmRegistry.setParameters reverts with VmRegistryInvalidParameter for ${name} out of bounds`, async function () {
        await expect(f.vms.setParameters({ ...marketParameters(f.treasury.address), ...change }))
          .to.be.revertedWithCustomError(f.vms, "VmRegistryInvalidParameter")
          .withArgs(ethers.encodeBytes32String(name), value, min, max);
      });
    }
    it("VmRegistry.setParameters rejects a zero treasury", async function () {
      await expect(f.vms.setParameters(marketParameters(ethers.ZeroAddress)))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryInvalidParameter")
        .withArgs(ethers.encodeBytes32String("treasury"), 0n, 1n, 2n ** 160n - 1n);
    });

    it("ProviderRegistry.setParameters: governance only, bounded, emits ProviderParametersChanged", async function () {
      const ok = { minimumStake: MIN_STAKE * 2n, thawPeriod: 86_400n, slashBps: 5_000n };
      await expect(f.providers.connect(f.stranger).setParameters(ok))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryNotGovernance")
        .withArgs(f.stranger.address);
      await expect(f.providers.setParameters(ok)).to.emit(f.providers, "ProviderParametersChanged");
      expect(await f.providers.minimumStake()).to.equal(MIN_STAKE * 2n);
      const name = (s: string) => ethers.encodeBytes32String(s);
      await expect(f.providers.setParameters({ ...ok, slashBps: 5_001n }))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryInvalidParameter")
        .withArgs(name("slashBps"), 5_001n, 0n, 5_000n);
      await expect(f.providers.setParameters({ ...ok, thawPeriod: 86_399n }))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryInvalidParameter")
        .withArgs(name("thawPeriod"), 86_399n, 86_400n, 90n * 86_400n);
      await expect(f.providers.setParameters({ ...ok, thawPeriod: 90n * 86_400n + 1n }))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryInvalidParameter")
        .withArgs(name("thawPeriod"), 90n * 86_400n + 1n, 86_400n, 90n * 86_400n);
      await expect(f.providers.setParameters({ ...ok, minimumStake: 0n }))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryInvalidParameter")
        .withArgs(name("minimumStake"), 0n, 1n, 2n ** 128n - 1n);
    });

    it("bindVmRegistry: only the deployer, only once, only to a registry that points back", async function () {
      await expect(f.providers.connect(f.stranger).bindVmRegistry(await f.vms.getAddress()))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryCannotBind")
        .withArgs(f.stranger.address, await f.vms.getAddress());
      await expect(f.providers.bindVmRegistry(await f.vms.getAddress())).to.be.revertedWithCustomError(
        f.providers,
        "ProviderRegistryCannotBind",
      );
      const fresh = (await ethers.deployContract("ProviderRegistry", [
        await f.token.getAddress(),
        f.deployer.address,
        { minimumStake: MIN_STAKE, thawPeriod: THAW_PERIOD, slashBps: SLASH_BPS },
      ])) as unknown as ProviderRegistry;
      await expect(fresh.bindVmRegistry(await f.vms.getAddress())).to.be.revertedWithCustomError(fresh, "ProviderRegistryCannotBind");
      const vms2 = await ethers.deployContract("VmRegistry", [
        await f.token.getAddress(),
        await fresh.getAddress(),
        f.deployer.address,
        marketParameters(f.treasury.address),
      ]);
      await expect(fresh.bindVmRegistry(await vms2.getAddress())).to.emit(fresh, "VmRegistryBound").withArgs(await vms2.getAddress());
    });

    it("tryLease, release and slash are for the bound VM registry only", async function () {
      await expect(f.providers.connect(f.stranger).tryLease(f.provider.address, SMALL_VM))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryNotVmRegistry")
        .withArgs(f.stranger.address);
      await expect(f.providers.connect(f.deployer).release(f.provider.address, SMALL_VM))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryNotVmRegistry")
        .withArgs(f.deployer.address);
      await expect(f.providers.connect(f.tenant).slash(f.provider.address, 1n, f.tenant.address, f.tenant.address, D))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryNotVmRegistry")
        .withArgs(f.tenant.address);
    });
  });

  describe("open orders", function () {
    it("openOrder escrows the deposit, emits VmOrderOpened and VmStateChanged(None -> Bidding) with provider zero", async function () {
      const tx = await f.vms.connect(f.tenant).openOrder(MANIFEST, SMALL_VM, [REGION, REGION2], MAX_PRICE, D);
      const t = await minedAt(tx);
      await expect(tx)
        .to.emit(f.vms, "VmOrderOpened")
        .withArgs(1n, f.tenant.address, ethers.ZeroAddress, MANIFEST, tuple(SMALL_VM), [REGION, REGION2], MAX_PRICE, D, t + BID_WINDOW);
      await expect(tx)
        .to.emit(f.vms, "VmStateChanged")
        .withArgs(1n, f.tenant.address, ethers.ZeroAddress, VmState.None, VmState.Bidding, 0n);
      await expect(tx).to.changeTokenBalances(ethers, f.token, [f.tenant, f.vms], [-D, D]);
      const v = await f.vms.getVm(1n);
      expect([v.state, v.provider, v.pricePerSecond, v.deposit, v.balance, v.biddingEndsAt, v.bidCount, v.feeBps]).to.deep.equal([
        VmState.Bidding, ethers.ZeroAddress, MAX_PRICE, D, D, t + BID_WINDOW, 0n, 0n,
      ]);
      expect(await f.vms.getRegions(1n)).to.deep.equal([REGION, REGION2]);
      expect(await f.vms.getBids(1n)).to.deep.equal([]);
    });

    it("openOrder validates like requestVm and bounds the regions", async function () {
      const o = f.vms.connect(f.tenant);
      await expect(o.openOrder(MANIFEST, SMALL_VM, [], MAX_PRICE, 0n)).to.be.revertedWithCustomError(f.vms, "VmRegistryZeroDeposit");
      await expect(o.openOrder(MANIFEST, { ...SMALL_VM, vcpu: 0n }, [], MAX_PRICE, D)).to.be.revertedWithCustomError(f.vms, "VmRegistryZeroResources");
      await expect(o.openOrder(ethers.ZeroHash, SMALL_VM, [], MAX_PRICE, D)).to.be.revertedWithCustomError(f.vms, "VmRegistryEmptyManifest");
      await expect(o.openOrder(MANIFEST, SMALL_VM, [REGION, REGION2, OTHER, MANIFEST, MANIFEST], MAX_PRICE, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryInvalidRegions")
        .withArgs(5n, 4n);
      await expect(o.openOrder(MANIFEST, SMALL_VM, [REGION, ethers.ZeroHash], MAX_PRICE, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryInvalidRegions")
        .withArgs(2n, 4n);
      await expect(o.openOrder(MANIFEST, SMALL_VM, [], MAX_UINT88 + 1n, D))
        .to.be.revertedWithCustomError(f.vms, "SafeCastOverflowedUintDowncast")
        .withArgs(88n, MAX_UINT88 + 1n);
    });

    it("an order can be cancelled (terminateVm) for a full refund and nothing is leased", async function () {
      const id = await openOrder(f);
      await f.vms.connect(f.operator).bid(id, P);
      const tx = await f.vms.connect(f.tenant).terminateVm(id);
      await expect(tx).to.emit(f.vms, "VmRefunded").withArgs(id, f.tenant.address, ethers.ZeroAddress, D);
      await expect(tx).to.changeTokenBalances(ethers, f.token, [f.tenant, f.vms], [D, -D]);
      const v = await f.vms.getVm(id);
      expect([v.state, v.refunded, v.paid, v.fee, v.balance]).to.deep.equal([VmState.Terminated, D, 0n, 0n, 0n]);
      expect(leasedOf(await f.providers.getProvider(f.provider.address))).to.deep.equal([0n, 0n, 0n]);
      await expect(f.vms.connect(f.operator).bid(id, P)).to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState").withArgs(id, VmState.Terminated);
    });
  });

  describe("bid", function () {
    it("records the bid in order, emits VmBidPlaced with the provider indexed", async function () {
      await registerProvider2(f);
      const id = await openOrder(f, [REGION, REGION2]);
      await expect(f.vms.connect(f.operator).bid(id, P))
        .to.emit(f.vms, "VmBidPlaced")
        .withArgs(id, f.tenant.address, f.provider.address, P, 0n);
      await expect(f.vms.connect(f.operator2).bid(id, P - 1n))
        .to.emit(f.vms, "VmBidPlaced")
        .withArgs(id, f.tenant.address, f.provider2.address, P - 1n, 1n);
      const bids = await f.vms.getBids(id);
      expect(bids.map((b) => [b.provider, b.pricePerSecond])).to.deep.equal([
        [f.provider.address, P],
        [f.provider2.address, P - 1n],
      ]);
      expect((await f.vms.getVm(id)).bidCount).to.equal(2n);
    });

    it("reverts: not an operator, above the max price, twice, after the window, not Bidding", async function () {
      const id = await openOrder(f);
      await expect(f.vms.connect(f.provider).bid(id, P)).to.be.revertedWithCustomError(f.vms, "VmRegistryNotAnOperator").withArgs(f.provider.address);
      await expect(f.vms.connect(f.operator).bid(id, MAX_PRICE + 1n))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryBidAboveMax")
        .withArgs(id, MAX_PRICE + 1n, MAX_PRICE);
      await f.vms.connect(f.operator).bid(id, P);
      await expect(f.vms.connect(f.operator).bid(id, P - 1n))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryAlreadyBid")
        .withArgs(id, f.provider.address);
      const endsAt = (await f.vms.getVm(id)).biddingEndsAt;
      await registerProvider2(f);
      await time.setNextBlockTimestamp(endsAt);
      await expect(f.vms.connect(f.operator2).bid(id, P))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryBiddingClosed")
        .withArgs(id, endsAt);
      const direct = await requestVm(f);
      await expect(f.vms.connect(f.operator).bid(direct, P))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState")
        .withArgs(direct, VmState.Requested);
      await expect(f.vms.connect(f.operator).bid(99n, P)).to.be.revertedWithCustomError(f.vms, "VmRegistryUnknownVm").withArgs(99n);
    });

    it("reverts with VmRegistryRegionNotAllowed for a provider outside the allowed regions", async function () {
      const id = await openOrder(f, [REGION2, OTHER]);
      await expect(f.vms.connect(f.operator).bid(id, P))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryRegionNotAllowed")
        .withArgs(id, REGION);
      const four = [REGION2, OTHER, ethers.encodeBytes32String("sa-east-1"), ethers.encodeBytes32String("af-south-1")];
      const full = await openOrder(f, four);
      expect(await f.vms.getRegions(full)).to.deep.equal(four);
      await expect(f.vms.connect(f.operator).bid(full, P))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryRegionNotAllowed")
        .withArgs(full, REGION);
      const last = await openOrder(f, [...four.slice(0, 3), REGION]);
      await expect(f.vms.connect(f.operator).bid(last, P)).to.emit(f.vms, "VmBidPlaced");
    });

    it("reverts with VmRegistryExceedsCapacity (with what is available) when the bid would not fit", async function () {
      const big = { vcpu: CAPACITY.vcpu - 1n, memoryMiB: 1n, diskGiB: 1n };
      await requestVm(f, { resources: big });
      const id = await openOrder(f);
      await expect(f.vms.connect(f.operator).bid(id, P))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryExceedsCapacity")
        .withArgs(f.provider.address, tuple(SMALL_VM), [1n, CAPACITY.memoryMiB - 1n, CAPACITY.diskGiB - 1n]);
    });

    it("reverts with VmRegistryProviderStakeTooLow when the stake is below the minimum", async function () {
      await f.providers.setParameters({ minimumStake: MIN_STAKE + 1n, thawPeriod: THAW_PERIOD, slashBps: SLASH_BPS });
      const id = await openOrder(f);
      await expect(f.vms.connect(f.operator).bid(id, P))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryProviderStakeTooLow")
        .withArgs(f.provider.address);
      await expect(f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, SMALL_VM, MAX_UINT88, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryProviderStakeTooLow")
        .withArgs(f.provider.address);
    });

    it("holds at most MAX_BIDS bids: a ninth bid must be strictly lower than the highest (see Audit.test.ts)", async function () {
      const id = await openOrder(f);
      for (let i = 0; i < 8; i++) {
        const [, operator] = await extraProvider(f);
        await f.vms.connect(operator).bid(id, P);
      }
      const [, ninth] = await extraProvider(f);
      await expect(f.vms.connect(ninth).bid(id, P)).to.be.revertedWithCustomError(f.vms, "VmRegistryBidNotLowEnough").withArgs(id, P, P);
      expect((await f.vms.getBids(id)).length).to.equal(8);
    });
  });

  describe("award and acceptBid", function () {
    it("award before the window ends reverts with VmRegistryBiddingOpen; with no bids, VmRegistryNoValidBid", async function () {
      const id = await openOrder(f);
      const endsAt = (await f.vms.getVm(id)).biddingEndsAt;
      await expect(f.vms.connect(f.stranger).award(id)).to.be.revertedWithCustomError(f.vms, "VmRegistryBiddingOpen").withArgs(id, endsAt);
      await time.increaseTo(endsAt);
      await expect(f.vms.connect(f.stranger).award(id)).to.be.revertedWithCustomError(f.vms, "VmRegistryNoValidBid").withArgs(id);
      const direct = await requestVm(f);
      await expect(f.vms.award(direct)).to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState").withArgs(direct, VmState.Requested);
    });

    it("anyone awards the lowest bid after the window; the order then looks like a direct request to the winner", async function () {
      await registerProvider2(f);
      const id = await openOrder(f);
      await f.vms.connect(f.operator).bid(id, P);
      await f.vms.connect(f.operator2).bid(id, P - 7n);
      await time.increase(BID_WINDOW);
      const tx = await f.vms.connect(f.stranger).award(id);
      const t = await minedAt(tx);
      await expect(tx).to.emit(f.vms, "VmAwarded").withArgs(id, f.tenant.address, f.provider2.address, P - 7n, t + PROVISIONING_TIMEOUT);
      await expect(tx)
        .to.emit(f.vms, "VmStateChanged")
        .withArgs(id, f.tenant.address, f.provider2.address, VmState.Bidding, VmState.Requested, 0n);
      // The daemon filters logs by topic3 = its provider and reads topic1 as the VM id.
      const receipt = await tx.wait();
      const topics = receipt!.logs.map((l) => l.topics);
      const providerTopic = ethers.zeroPadValue(f.provider2.address, 32).toLowerCase();
      expect(topics.some((tp) => tp[3]?.toLowerCase() === providerTopic && BigInt(tp[1]!) === id)).to.equal(true);
      const v = await f.vms.getVm(id);
      expect([v.state, v.provider, v.pricePerSecond, v.provisioningDeadline, v.biddingEndsAt]).to.deep.equal([
        VmState.Requested, f.provider2.address, P - 7n, t + PROVISIONING_TIMEOUT, 0n,
      ]);
      expect(leasedOf(await f.providers.getProvider(f.provider2.address))).to.deep.equal(tuple(SMALL_VM));
      // The winner's daemon drives it exactly like a direct request.
      await f.vms.connect(f.operator2).reportProvisioning(id);
      await f.vms.connect(f.operator2).reportRunning(id);
      await expect(f.vms.connect(f.operator).reportFailed(id, 1)).to.be.revertedWithCustomError(f.vms, "VmRegistryNotOperator");
    });

    it("award breaks a tie by the earliest bid", async function () {
      await registerProvider2(f);
      const id = await openOrder(f);
      await f.vms.connect(f.operator2).bid(id, P);
      await f.vms.connect(f.operator).bid(id, P);
      await time.increase(BID_WINDOW);
      await expect(f.vms.award(id)).to.emit(f.vms, "VmAwarded").withArgs(id, f.tenant.address, f.provider2.address, P, ethers.toBigInt(await time.latest()) + 1n + PROVISIONING_TIMEOUT);
    });

    it("getBids keeps every bid in arrival order after the award (a later bid won) and after a cancel; a bidder has no operator rights on the order", async function () {
      await registerProvider2(f);
      const [owner3, operator3] = await extraProvider(f);
      const id = await openOrder(f);
      await f.vms.connect(f.operator).bid(id, P);
      await f.vms.connect(f.operator2).bid(id, P - 5n);
      await f.vms.connect(operator3).bid(id, P - 1n);
      // A duplicate is found wherever the earlier bid is stored (the record or the list).
      for (const [operator, provider] of [[f.operator, f.provider], [f.operator2, f.provider2], [operator3, owner3]] as const) {
        await expect(f.vms.connect(operator).bid(id, P)).to.be.revertedWithCustomError(f.vms, "VmRegistryAlreadyBid").withArgs(id, provider.address);
      }
      const expected = [[f.provider.address, P], [f.provider2.address, P - 5n], [owner3.address, P - 1n]];
      const listed = async (vmId: bigint) => (await f.vms.getBids(vmId)).map((b) => [b.provider, b.pricePerSecond]);
      expect(await listed(id)).to.deep.equal(expected);
      let v = await f.vms.getVm(id);
      expect([v.provider, v.deposit, v.balance, v.bidCount]).to.deep.equal([ethers.ZeroAddress, D, D, 3n]);
      // The first bidder's operator is not the order's operator.
      for (const call of [
        () => f.vms.connect(f.operator).reportFailed(id, 1),
        () => f.vms.connect(f.operator).reclaimVm(id),
        () => f.vms.connect(f.operator).reportRunning(id),
      ]) {
        await expect(call()).to.be.revertedWithCustomError(f.vms, "VmRegistryNotOperator").withArgs(id, f.operator.address, ethers.ZeroAddress);
      }
      await f.vms.connect(f.tenant).topUp(id, 5n);
      v = await f.vms.getVm(id);
      expect([v.provider, v.deposit, v.balance]).to.deep.equal([ethers.ZeroAddress, D + 5n, D + 5n]);
      await time.increase(BID_WINDOW);
      await expect(f.vms.award(id)).to.emit(f.vms, "VmAwarded");
      expect(await listed(id)).to.deep.equal(expected);
      v = await f.vms.getVm(id);
      expect([v.provider, v.pricePerSecond, v.deposit, v.balance]).to.deep.equal([f.provider2.address, P - 5n, D + 5n, D + 5n]);

      const cancelled = await openOrder(f);
      await f.vms.connect(operator3).bid(cancelled, P - 2n);
      await f.vms.connect(f.operator).bid(cancelled, P);
      await f.vms.connect(f.tenant).terminateVm(cancelled);
      expect(await listed(cancelled)).to.deep.equal([[owner3.address, P - 2n], [f.provider.address, P]]);
      v = await f.vms.getVm(cancelled);
      expect([v.provider, v.deposit, v.refunded, v.paid, v.fee]).to.deep.equal([ethers.ZeroAddress, D, D, 0n, 0n]);
      expect(await f.vms.getBids(await requestVm(f))).to.deep.equal([]);
    });

    it("acceptBid: the owner leases any bid early; validity is checked; only the owner", async function () {
      await registerProvider2(f);
      const id = await openOrder(f);
      await f.vms.connect(f.operator).bid(id, P);
      await f.vms.connect(f.operator2).bid(id, P - 1n);
      await expect(f.vms.connect(f.stranger).acceptBid(id, 0n, f.provider.address))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryNotOwner")
        .withArgs(id, f.stranger.address, f.tenant.address);
      await expect(f.vms.connect(f.tenant).acceptBid(id, 2n, f.provider.address)).to.be.revertedWithCustomError(f.vms, "VmRegistryUnknownBid").withArgs(id, 2n, 2n);
      await expect(f.vms.connect(f.tenant).acceptBid(id, 0n, f.provider2.address))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryBidMoved")
        .withArgs(id, 0n, f.provider2.address, f.provider.address);
      await expect(f.vms.connect(f.tenant).acceptBid(id, 0n, f.provider.address))
        .to.emit(f.vms, "VmStateChanged")
        .withArgs(id, f.tenant.address, f.provider.address, VmState.Bidding, VmState.Requested, 0n);
      expect((await f.vms.getVm(id)).pricePerSecond).to.equal(P);
      await expect(f.vms.connect(f.tenant).acceptBid(id, 1n, f.provider2.address)).to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState").withArgs(id, VmState.Requested);
      expect((await f.vms.getBids(id)).length).to.equal(2);
    });

  });

  describe("capacity accounting", function () {
    it("leases on request, releases on terminate / fail; a request beyond what is left reverts with the available capacity", async function () {
      const a = await requestVm(f, { resources: TWO_VMS });
      const b = await requestVm(f);
      let p = await f.providers.getProvider(f.provider.address);
      expect(leasedOf(p)).to.deep.equal([3n * SMALL_VM.vcpu, 3n * SMALL_VM.memoryMiB, 3n * SMALL_VM.diskGiB]);
      const rest = { vcpu: CAPACITY.vcpu - 3n * SMALL_VM.vcpu, memoryMiB: CAPACITY.memoryMiB - 3n * SMALL_VM.memoryMiB, diskGiB: CAPACITY.diskGiB - 3n * SMALL_VM.diskGiB };
      const tooBig = { ...rest, vcpu: rest.vcpu + 1n };
      await expect(f.vms.connect(f.tenant).requestVm(f.provider.address, MANIFEST, tooBig, MAX_UINT88, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryExceedsCapacity")
        .withArgs(f.provider.address, tuple(tooBig), tuple(rest));
      await f.vms.connect(f.tenant).terminateVm(a);
      await f.vms.connect(f.operator).reportFailed(b, 2);
      p = await f.providers.getProvider(f.provider.address);
      expect(leasedOf(p)).to.deep.equal([0n, 0n, 0n]);
    });

    it("updateOffer cannot shrink capacity below what is leased", async function () {
      await requestVm(f, { resources: TWO_VMS });
      await expect(f.providers.connect(f.provider).updateOffer(REGION, SMALL_VM, PRICES, ""))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryCapacityBelowLeased")
        .withArgs(tuple(SMALL_VM), tuple(TWO_VMS));
      await f.providers.connect(f.provider).updateOffer(REGION, TWO_VMS, PRICES, "");
    });

    it("leaseStatus reports why a provider cannot take a lease", async function () {
      let [status] = await f.providers.leaseStatus(f.stranger.address, SMALL_VM);
      expect(status).to.equal(1n);
      [status] = await f.providers.leaseStatus(f.provider.address, { ...CAPACITY, vcpu: CAPACITY.vcpu + 1n });
      expect(status).to.equal(3n);
      const [ok, region, available] = await f.providers.leaseStatus(f.provider.address, SMALL_VM);
      expect([ok, region, tuple(available)]).to.deep.equal([0n, REGION, tuple(CAPACITY)]);
      // The same through the operator key, in one call (what a bid uses).
      const viaOperator = await f.providers.operatorLeaseStatus(f.operator.address, SMALL_VM);
      expect([viaOperator.provider, viaOperator.status, viaOperator.region, tuple(viaOperator.available)]).to.deep.equal([
        f.provider.address, 0n, REGION, tuple(CAPACITY),
      ]);
      const none = await f.providers.operatorLeaseStatus(f.stranger.address, SMALL_VM);
      expect([none.provider, none.status]).to.deep.equal([ethers.ZeroAddress, 1n]);
    });
  });

  describe("escrow with a platform fee", function () {
    beforeEach(async function () {
      await f.vms.setParameters(marketParameters(f.treasury.address, 250n)); // 2.5%
    });

    it("splits each settlement into the provider's share and the fee, exact to the wei over the VM's life", async function () {
      const { vmId, startedAt } = await runningVm(f);
      let tx = await at(startedAt + 7n, () => f.vms.settle(vmId));
      const fee1 = (7n * P * 250n) / 10_000n;
      await expect(tx).to.emit(f.vms, "VmSettled").withArgs(vmId, f.tenant.address, f.provider.address, 7n * P, fee1, D - 7n * P);
      tx = await at(startedAt + 100n, () => f.vms.connect(f.tenant).terminateVm(vmId));
      const billed = 100n * P;
      const fee = (billed * 250n) / 10_000n;
      expect(await f.vms.feesAccrued()).to.equal(fee);
      expect(await f.vms.earningsOf(f.provider.address)).to.equal(billed - fee);
      const v = await f.vms.getVm(vmId);
      expect([v.fee, v.paid, v.refunded, v.feeBps]).to.deep.equal([fee, billed - fee, D - billed, 250n]);
      expect(v.refunded + v.paid + v.fee).to.equal(v.deposit);
      await expect(f.vms.connect(f.stranger).withdrawFees()).to.emit(f.vms, "FeesWithdrawn").withArgs(f.treasury.address, fee);
      expect(await f.token.balanceOf(f.treasury.address)).to.equal(fee);
      await expect(f.vms.withdrawFees()).to.be.revertedWithCustomError(f.vms, "VmRegistryNothingToWithdraw").withArgs(f.treasury.address);
    });

    it("keeps the fee a lease was made with when governance changes it", async function () {
      const { vmId, startedAt } = await runningVm(f);
      await f.vms.setParameters(marketParameters(f.treasury.address, 1_000n));
      await at(startedAt + 100n, () => f.vms.settle(vmId));
      expect(await f.vms.feesAccrued()).to.equal((100n * P * 250n) / 10_000n);
      expect((await f.vms.getVm(vmId)).feeBps).to.equal(250n);
    });
  });

  describe("top-up, low balance, suspension and grace", function () {
    const small = 1_000n * P; // 1,000 s of running

    it("topUp adds to deposit and balance (owner only, non-zero, live VMs)", async function () {
      const { vmId } = await runningVm(f, { deposit: small });
      await expect(f.vms.connect(f.stranger).topUp(vmId, 1n)).to.be.revertedWithCustomError(f.vms, "VmRegistryNotOwner");
      await expect(f.vms.connect(f.tenant).topUp(vmId, 0n)).to.be.revertedWithCustomError(f.vms, "VmRegistryZeroAmount");
      const tx = await f.vms.connect(f.tenant).topUp(vmId, D);
      const v = await f.vms.getVm(vmId);
      await expect(tx).to.emit(f.vms, "VmToppedUp").withArgs(vmId, f.tenant.address, f.provider.address, D, v.balance);
      await expect(tx).to.changeTokenBalances(ethers, f.token, [f.tenant, f.vms], [-D, D]);
      expect(v.deposit).to.equal(small + D);
      await f.vms.connect(f.tenant).terminateVm(vmId);
      await expect(f.vms.connect(f.tenant).topUp(vmId, 1n)).to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState").withArgs(vmId, VmState.Terminated);
    });

    it("a touch below the warning horizon emits VmLowBalance with the seconds left", async function () {
      const { vmId, startedAt } = await runningVm(f, { deposit: small });
      let tx = await at(startedAt + 100n, () => f.vms.settle(vmId));
      await expect(tx).not.to.emit(f.vms, "VmLowBalance");
      tx = await at(startedAt + 500n, () => f.vms.settle(vmId));
      await expect(tx).to.emit(f.vms, "VmLowBalance").withArgs(vmId, f.tenant.address, f.provider.address, 500n * P, 500n);
    });

    it("runs out -> Suspended (billing stops); a top-up within the grace period revives it to Starting", async function () {
      const { vmId, startedAt } = await runningVm(f, { deposit: small });
      await time.increaseTo(startedAt + 5_000n);
      let v = await f.vms.getVm(vmId);
      expect([v.state, v.suspendedAt, v.paid, v.balance]).to.deep.equal([VmState.Suspended, startedAt + 1_000n, small, 0n]);
      await expect(f.vms.connect(f.tenant).stopVm(vmId)).to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState").withArgs(vmId, VmState.Suspended);
      const tx = await f.vms.connect(f.tenant).topUp(vmId, D);
      await expect(tx)
        .to.emit(f.vms, "VmStateChanged")
        .withArgs(vmId, f.tenant.address, f.provider.address, VmState.Suspended, VmState.Starting, 0n);
      const t = await minedAt(await f.vms.connect(f.operator).reportRunning(vmId));
      await time.increaseTo(t + 10n);
      v = await f.vms.getVm(vmId);
      expect([v.state, v.paid, v.balance]).to.deep.equal([VmState.Running, small + 10n * P, D - 10n * P]);
    });

    it("after the grace period a top-up reverts and anyone may close the VM", async function () {
      const { vmId, startedAt } = await runningVm(f, { deposit: small });
      const suspendedAt = startedAt + 1_000n;
      await time.increaseTo(suspendedAt + 10n);
      await expect(f.vms.connect(f.stranger).closeVm(vmId))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryNotClosable")
        .withArgs(vmId, VmState.Suspended, suspendedAt + GRACE_PERIOD);
      await time.increaseTo(suspendedAt + GRACE_PERIOD);
      await expect(f.vms.connect(f.tenant).topUp(vmId, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryGraceExpired")
        .withArgs(vmId, suspendedAt + GRACE_PERIOD);
      await expect(f.vms.connect(f.stranger).closeVm(vmId))
        .to.emit(f.vms, "VmStateChanged")
        .withArgs(vmId, f.tenant.address, f.provider.address, VmState.Suspended, VmState.Terminated, 0n);
      expect(leasedOf(await f.providers.getProvider(f.provider.address))).to.deep.equal([0n, 0n, 0n]);
    });

    it("closeVm reverts for a live VM that is neither suspended nor reclaimed, and for terminal ones", async function () {
      const { vmId } = await runningVm(f);
      await expect(f.vms.closeVm(vmId)).to.be.revertedWithCustomError(f.vms, "VmRegistryNotClosable").withArgs(vmId, VmState.Running, 0n);
      await f.vms.connect(f.tenant).terminateVm(vmId);
      await expect(f.vms.closeVm(vmId)).to.be.revertedWithCustomError(f.vms, "VmRegistryNotClosable").withArgs(vmId, VmState.Terminated, 0n);
    });
  });

  describe("provisioning deadline and slashing", function () {
    it("expireVm before the deadline reverts; after it refunds in full, releases capacity and slashes 10% (half to the tenant)", async function () {
      const vmId = await requestVm(f);
      const deadline = (await f.vms.getVm(vmId)).provisioningDeadline;
      await expect(f.vms.connect(f.stranger).expireVm(vmId))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryDeadlineNotPassed")
        .withArgs(vmId, deadline);
      await f.vms.connect(f.operator).reportProvisioning(vmId);
      await time.increaseTo(deadline + 1n);
      // In proportion to the failed lease: slashBps of its deposit (within the provider's per-period budget).
      const slashed = (D * SLASH_BPS) / 10_000n;
      const tx = await f.vms.connect(f.stranger).expireVm(vmId);
      await expect(tx).to.emit(f.vms, "VmExpired").withArgs(vmId, f.tenant.address, f.provider.address, slashed, slashed / 2n);
      await expect(tx)
        .to.emit(f.providers, "ProviderSlashed")
        .withArgs(f.provider.address, vmId, f.tenant.address, slashed, slashed / 2n, f.treasury.address);
      await expect(tx).to.changeTokenBalances(ethers, f.token, [f.tenant, f.treasury, f.vms, f.providers], [D + slashed / 2n, slashed - slashed / 2n, -D, -slashed]);
      const v = await f.vms.getVm(vmId);
      expect([v.state, v.refunded, v.paid]).to.deep.equal([VmState.Terminated, D, 0n]);
      const p = await f.providers.getProvider(f.provider.address);
      expect([p.stake, leasedOf(p)]).to.deep.equal([MIN_STAKE - slashed, [0n, 0n, 0n]]);
      await expect(f.vms.expireVm(vmId)).to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState").withArgs(vmId, VmState.Terminated);
    });

    it("a VM reported Running cannot be expired", async function () {
      const { vmId } = await runningVm(f);
      await time.increase(PROVISIONING_TIMEOUT * 2n);
      await expect(f.vms.expireVm(vmId)).to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState").withArgs(vmId, VmState.Running);
    });

    it("slashes thawing stake too, never more than the cap, and nothing when the cap is zero", async function () {
      await f.providers.setParameters({ minimumStake: MIN_STAKE, thawPeriod: THAW_PERIOD, slashBps: 5_000n });
      await f.providers.connect(f.provider).addStake(MIN_STAKE);
      // Leases worth far more than the stake: the per-period budget (50% of what is at stake) binds.
      const big = 10n * MIN_STAKE;
      const vmId = await requestVm(f, { deposit: big });
      await f.providers.connect(f.provider).requestUnstake(MIN_STAKE);
      await time.increase(PROVISIONING_TIMEOUT + 1n);
      await f.vms.expireVm(vmId); // 50% of 2 x MIN_STAKE = MIN_STAKE, all from the active stake
      let p = await f.providers.getProvider(f.provider.address);
      expect([p.stake, p.unstaking]).to.deep.equal([0n, MIN_STAKE]);
      await f.providers.setParameters({ minimumStake: 1n, thawPeriod: THAW_PERIOD, slashBps: 5_000n });
      const second = await requestVm(f, { tenant: f.tenant2 }).catch(() => 0n);
      expect(second).to.equal(0n); // stake 0 < minimum: no new leases
      await f.providers.connect(f.provider).addStake(1n);
      await time.increase(THAW_PERIOD); // a new slash period (the thawing stake stays unwithdrawn)
      const third = await requestVm(f, { deposit: big });
      await time.increase(PROVISIONING_TIMEOUT + 1n);
      await f.vms.expireVm(third); // 50% of (1 + MIN_STAKE): from the 1 wei of stake, then the thawing stake
      p = await f.providers.getProvider(f.provider.address);
      const cut = ((MIN_STAKE + 1n) * 5_000n) / 10_000n;
      expect([p.stake, p.unstaking]).to.deep.equal([0n, MIN_STAKE + 1n - cut]);
      await f.providers.setParameters({ minimumStake: 1n, thawPeriod: THAW_PERIOD, slashBps: 0n });
      await f.providers.connect(f.provider).addStake(1n);
      const fourth = await requestVm(f);
      await time.increase(PROVISIONING_TIMEOUT + 1n);
      await expect(f.vms.expireVm(fourth)).to.emit(f.vms, "VmExpired").withArgs(fourth, f.tenant.address, f.provider.address, 0n, 0n);
    });
  });

  describe("stake: unstake, thaw, withdraw", function () {
    it("requestUnstake moves stake to thawing; withdrawStake pays it after the thaw", async function () {
      await f.providers.connect(f.provider).addStake(100n);
      const tx = await f.providers.connect(f.provider).requestUnstake(100n);
      const t = await minedAt(tx);
      await expect(tx).to.emit(f.providers, "ProviderUnstakeRequested").withArgs(f.provider.address, 100n, 100n, t + THAW_PERIOD);
      const p = await f.providers.getProvider(f.provider.address);
      expect([p.stake, p.unstaking, p.thawEndsAt]).to.deep.equal([MIN_STAKE, 100n, t + THAW_PERIOD]);
      await expect(f.providers.connect(f.provider).withdrawStake())
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryStillThawing")
        .withArgs(100n, t + THAW_PERIOD);
      await time.increaseTo(t + THAW_PERIOD);
      const w = await f.providers.connect(f.provider).withdrawStake();
      await expect(w).to.emit(f.providers, "ProviderStakeWithdrawn").withArgs(f.provider.address, 100n);
      await expect(w).to.changeTokenBalances(ethers, f.token, [f.provider, f.providers], [100n, -100n]);
      await expect(f.providers.connect(f.provider).withdrawStake())
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryStillThawing")
        .withArgs(0n, 0n);
    });

    it("reverts: zero, more than staked, unregistered, and below the minimum while leases are live", async function () {
      await expect(f.providers.connect(f.provider).requestUnstake(0n)).to.be.revertedWithCustomError(f.providers, "ProviderRegistryZeroAmount");
      await expect(f.providers.connect(f.provider).requestUnstake(MIN_STAKE + 1n))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryInsufficientStake")
        .withArgs(MIN_STAKE + 1n, MIN_STAKE);
      await expect(f.providers.connect(f.stranger).requestUnstake(1n)).to.be.revertedWithCustomError(f.providers, "ProviderRegistryNotRegistered");
      const vmId = await requestVm(f);
      await expect(f.providers.connect(f.provider).requestUnstake(1n))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryStakeTooLow")
        .withArgs(MIN_STAKE - 1n, MIN_STAKE);
      await f.vms.connect(f.tenant).terminateVm(vmId);
      await f.providers.connect(f.provider).requestUnstake(MIN_STAKE); // no leases: everything may go
    });
  });

  describe("provider exit with notice", function () {
    it("reclaimVm (operator only) announces the end; billing stops at reclaimAt; anyone closes after it", async function () {
      const { vmId, startedAt } = await runningVm(f);
      await expect(f.vms.connect(f.provider).reclaimVm(vmId)).to.be.revertedWithCustomError(f.vms, "VmRegistryNotOperator");
      const tx = await at(startedAt + 10n, () => f.vms.connect(f.operator).reclaimVm(vmId));
      const reclaimAt = startedAt + 10n + EXIT_NOTICE;
      await expect(tx).to.emit(f.vms, "VmReclaimAnnounced").withArgs(vmId, f.tenant.address, f.provider.address, reclaimAt);
      expect((await f.vms.getVm(vmId)).reclaimAt).to.equal(reclaimAt);
      await expect(f.vms.connect(f.operator).reclaimVm(vmId))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryAlreadyReclaimed")
        .withArgs(vmId, reclaimAt);
      await expect(f.vms.closeVm(vmId)).to.be.revertedWithCustomError(f.vms, "VmRegistryNotClosable").withArgs(vmId, VmState.Running, reclaimAt);
      await f.vms.connect(f.tenant).topUp(vmId, 100_000n * P);
      await time.increaseTo(reclaimAt + 5_000n);
      const billed = (reclaimAt - startedAt) * P;
      expect((await f.vms.getVm(vmId)).paid).to.equal(billed);
      const close = await f.vms.connect(f.stranger).closeVm(vmId);
      await expect(close).to.emit(f.vms, "VmRefunded").withArgs(vmId, f.tenant.address, f.provider.address, D + 100_000n * P - billed);
      await expect(f.vms.connect(f.operator).reclaimVm(vmId)).to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState").withArgs(vmId, VmState.Terminated);
    });
  });

  describe("migration", function () {
    it("migrateVm opens a replacement at another provider; the old VM closes when the new one runs", async function () {
      await registerProvider2(f);
      const { vmId, startedAt } = await runningVm(f);
      await expect(f.vms.connect(f.stranger).migrateVm(vmId, f.provider2.address, [], P, D)).to.be.revertedWithCustomError(f.vms, "VmRegistryNotOwner");
      const tx = await at(startedAt + 50n, () => f.vms.connect(f.tenant).migrateVm(vmId, f.provider2.address, [], P, D));
      const newId = vmId + 1n;
      await expect(tx).to.emit(f.vms, "VmMigrationRequested").withArgs(vmId, f.tenant.address, f.provider.address, newId);
      await expect(tx).to.emit(f.vms, "VmRequested");
      let v = await f.vms.getVm(newId);
      expect([v.state, v.provider, v.migratedFrom, v.manifestDigest, tuple(v.resources)]).to.deep.equal([
        VmState.Requested, f.provider2.address, vmId, MANIFEST, tuple(SMALL_VM),
      ]);
      expect((await f.vms.getVm(vmId)).state).to.equal(VmState.Running);
      await f.vms.connect(f.operator2).reportProvisioning(newId);
      const run = await at(startedAt + 100n, () => f.vms.connect(f.operator2).reportRunning(newId));
      await expect(run).to.emit(f.vms, "VmMigrated").withArgs(vmId, f.tenant.address, f.provider.address, newId);
      await expect(run)
        .to.emit(f.vms, "VmStateChanged")
        .withArgs(vmId, f.tenant.address, f.provider.address, VmState.Running, VmState.Terminated, 0n);
      await expect(run).to.emit(f.vms, "VmRefunded").withArgs(vmId, f.tenant.address, f.provider.address, D - 100n * P);
      v = await f.vms.getVm(vmId);
      expect([v.state, v.paid]).to.deep.equal([VmState.Terminated, 100n * P]);
      // A second Running report (after a stop/start) does not touch the old VM again.
      await f.vms.connect(f.tenant).stopVm(newId);
      await f.vms.connect(f.tenant).startVm(newId);
      await expect(f.vms.connect(f.operator2).reportRunning(newId)).not.to.emit(f.vms, "VmMigrated");
    });

    it("migrateVm to an open order; if the owner terminated the old VM meanwhile, nothing more happens", async function () {
      await registerProvider2(f);
      const { vmId } = await runningVm(f);
      await f.vms.connect(f.tenant).migrateVm(vmId, ethers.ZeroAddress, [REGION2], MAX_PRICE, D);
      const newId = vmId + 1n;
      expect((await f.vms.getVm(newId)).state).to.equal(VmState.Bidding);
      await f.vms.connect(f.operator2).bid(newId, P);
      await f.vms.connect(f.tenant).acceptBid(newId, 0n, f.provider2.address);
      await f.vms.connect(f.tenant).terminateVm(vmId);
      await expect(f.vms.connect(f.operator2).reportRunning(newId)).not.to.emit(f.vms, "VmMigrated");
    });

    it("migrateVm reverts for an open order and for terminal VMs", async function () {
      const order = await openOrder(f);
      await expect(f.vms.connect(f.tenant).migrateVm(order, f.provider.address, [], 0n, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState")
        .withArgs(order, VmState.Bidding);
      const vmId = await requestVm(f);
      await f.vms.connect(f.tenant).terminateVm(vmId);
      await expect(f.vms.connect(f.tenant).migrateVm(vmId, f.provider.address, [], 0n, D))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState")
        .withArgs(vmId, VmState.Terminated);
    });
  });

  describe("no admin path to user funds", function () {
    it("governance cannot stop, terminate, top up, migrate, close or expire someone else's VM, nor withdraw earnings", async function () {
      const { vmId } = await runningVm(f);
      const gov = f.vms.connect(f.deployer);
      await expect(gov.terminateVm(vmId)).to.be.revertedWithCustomError(f.vms, "VmRegistryNotOwner");
      await expect(gov.stopVm(vmId)).to.be.revertedWithCustomError(f.vms, "VmRegistryNotOwner");
      await expect(gov.migrateVm(vmId, f.provider.address, [], 0n, 1n)).to.be.revertedWithCustomError(f.vms, "VmRegistryNotOwner");
      await expect(gov.closeVm(vmId)).to.be.revertedWithCustomError(f.vms, "VmRegistryNotClosable");
      await expect(gov.expireVm(vmId)).to.be.revertedWithCustomError(f.vms, "VmRegistryUnexpectedState");
      await expect(gov.withdrawEarnings()).to.be.revertedWithCustomError(f.vms, "VmRegistryNothingToWithdraw");
      await expect(f.providers.connect(f.deployer).withdrawStake()).to.be.revertedWithCustomError(f.providers, "ProviderRegistryStillThawing");
      // The most governance can do to a live lease's money is bounded by constants (fee <= 10% of new leases).
      await expect(gov.setParameters(marketParameters(f.deployer.address, 1_001n))).to.be.revertedWithCustomError(f.vms, "VmRegistryInvalidParameter");
      expect(await f.token.balanceOf(await f.vms.getAddress())).to.equal(D);
      expect(await f.token.balanceOf(f.tenant.address)).to.equal(TENANT_FUNDS - D);
    });
  });
});
