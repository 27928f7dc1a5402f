import { expect } from "chai";
import { network } from "hardhat";
import {
  CAPACITY,
  DEPOSIT,
  deployFixture,
  MANIFEST,
  METADATA_CID,
  MIN_STAKE,
  PRICES,
  priceOf,
  REGION,
  SMALL_VM,
  tuple,
  type Fixture,
  type Prices,
  type Resources,
} from "./fixtures.ts";

const { ethers, networkHelpers } = await network.create();

const REGION2 = ethers.encodeBytes32String("us-east-2");
const CAPACITY2: Resources = { vcpu: 64n, memoryMiB: 262_144n, diskGiB: 4_000n };
const PRICES2: Prices = { perVcpuSecond: 700n, perMemoryMiBSecond: 1n, perDiskGiBSecond: 5n };
const CID2 = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

function pricesTuple(p: Prices): [bigint, bigint, bigint] {
  return [p.perVcpuSecond, p.perMemoryMiBSecond, p.perDiskGiBSecond];
}

/** Registers the fixture's second provider with `operator2` and the second offer. */
async function registerProvider2(f: Fixture, stake = MIN_STAKE) {
  return f.providers
    .connect(f.provider2)
    .register(f.operator2.address, REGION2, CAPACITY2, PRICES2, CID2, stake);
}

describe("ProviderRegistry", function () {
  let f: Fixture;
  beforeEach(async function () {
    f = await networkHelpers.loadFixture(deployFixture);
  });

  describe("audit findings (issue 9): operators", function () {
    it("audit: an operator key cannot be squatted by another provider's register or setOperator", async function () {
      // The attacker is a funded provider owner who names the victim's daemon key as its own operator.
      const attacker = f.stranger;
      await f.token.transfer(attacker.address, 2n * MIN_STAKE);
      await f.token.connect(attacker).approve(await f.providers.getAddress(), ethers.MaxUint256);
      const victimKey = f.operator2;
      await f.providers.connect(attacker).register(victimKey.address, REGION2, CAPACITY2, PRICES2, CID2, MIN_STAKE);
      // The fixture's provider nominates the same key too (setOperator path of the attack).
      await f.providers.connect(f.provider).setOperator(victimKey.address);

      // The attacker gained nothing: the key operates no provider and nobody's operator changed.
      expect(await f.providers.providerOfOperator(victimKey.address)).to.equal(ethers.ZeroAddress);
      expect(await f.providers.operatorOf(attacker.address)).to.equal(ethers.ZeroAddress);
      expect(await f.providers.operatorOf(f.provider.address)).to.equal(f.operator.address);

      // The victim registers with its own key and the key accepts: it is not locked out.
      await registerProvider2(f);
      await f.providers.connect(victimKey).acceptOperator(f.provider2.address);
      expect(await f.providers.operatorOf(f.provider2.address)).to.equal(victimKey.address);
      expect(await f.providers.providerOfOperator(victimKey.address)).to.equal(f.provider2.address);
      // The squatters' nominations stay unanswered; a provider without an accepted operator takes no lease.
      expect((await f.providers.leaseStatus(attacker.address, SMALL_VM))[0]).to.equal(4n); // NoOperator
    });
  });

  describe("configuration", function () {
    it("exposes the stake token and the minimum stake it was deployed with", async function () {
      expect(await f.providers.stakeToken()).to.equal(await f.token.getAddress());
      expect(await f.providers.minimumStake()).to.equal(MIN_STAKE);
    });
  });

  describe("register", function () {
    it("stores the offer, nominates the operator and emits ProviderRegistered with every field", async function () {
      const stake = MIN_STAKE + 1n;
      await expect(registerProvider2(f, stake))
        .to.emit(f.providers, "ProviderRegistered")
        .withArgs(f.provider2.address, f.operator2.address, REGION2, tuple(CAPACITY2), pricesTuple(PRICES2), CID2, stake)
        .and.to.emit(f.providers, "ProviderOperatorNominated")
        .withArgs(f.provider2.address, f.operator2.address, ethers.ZeroAddress);

      const p = await f.providers.getProvider(f.provider2.address);
      // Registered, but nominated only: no operator until the key accepts.
      expect(p.operator).to.equal(ethers.ZeroAddress);
      expect(await f.providers.pendingOperatorOf(f.provider2.address)).to.equal(f.operator2.address);
      expect(await f.providers.providerOfOperator(f.operator2.address)).to.equal(ethers.ZeroAddress);
      expect(tuple(p.capacity)).to.deep.equal(tuple(CAPACITY2));
      expect(pricesTuple(p.prices)).to.deep.equal(pricesTuple(PRICES2));
      expect(p.region).to.equal(REGION2);
      expect(p.stake).to.equal(stake);
      expect(p.metadataCid).to.equal(CID2);
      expect(await f.providers.isRegistered(f.provider2.address)).to.equal(true);
      expect((await f.providers.quote(f.provider2.address, SMALL_VM))[0]).to.equal(true);

      await expect(f.providers.connect(f.operator2).acceptOperator(f.provider2.address))
        .to.emit(f.providers, "ProviderOperatorChanged")
        .withArgs(f.provider2.address, ethers.ZeroAddress, f.operator2.address);
      expect(await f.providers.operatorOf(f.provider2.address)).to.equal(f.operator2.address);
      expect(await f.providers.providerOfOperator(f.operator2.address)).to.equal(f.provider2.address);
      expect(await f.providers.pendingOperatorOf(f.provider2.address)).to.equal(ethers.ZeroAddress);
    });

    it("pulls exactly the stake from the provider into the registry", async function () {
      const stake = MIN_STAKE * 3n + 7n;
      await expect(registerProvider2(f, stake)).to.changeTokenBalances(
        ethers,
        f.token,
        [f.provider2, f.providers],
        [-stake, stake],
      );
    });

    it("accepts a stake equal to the minimum", async function () {
      await registerProvider2(f, MIN_STAKE);
      expect((await f.providers.getProvider(f.provider2.address)).stake).to.equal(MIN_STAKE);
    });

    it("reverts with ProviderRegistryAlreadyRegistered when the provider registers twice", async function () {
      await expect(
        f.providers.connect(f.provider).register(f.operator2.address, REGION, CAPACITY, PRICES, METADATA_CID, MIN_STAKE),
      )
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryAlreadyRegistered")
        .withArgs(f.provider.address);
    });

    it("reverts with ProviderRegistryStakeTooLow carrying the stake and the minimum", async function () {
      await expect(registerProvider2(f, MIN_STAKE - 1n))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryStakeTooLow")
        .withArgs(MIN_STAKE - 1n, MIN_STAKE);
      await expect(registerProvider2(f, 0n))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryStakeTooLow")
        .withArgs(0n, MIN_STAKE);
    });

    it("reverts with ProviderRegistryInvalidOperator for the zero address", async function () {
      await expect(
        f.providers.connect(f.provider2).register(ethers.ZeroAddress, REGION2, CAPACITY2, PRICES2, CID2, MIN_STAKE),
      )
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryInvalidOperator")
        .withArgs(ethers.ZeroAddress);
    });

    it("reverts with ProviderRegistryInvalidOperator when the operator is the owner itself", async function () {
      await expect(
        f.providers.connect(f.provider2).register(f.provider2.address, REGION2, CAPACITY2, PRICES2, CID2, MIN_STAKE),
      )
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryInvalidOperator")
        .withArgs(f.provider2.address);
    });

    it("reverts with ProviderRegistryOperatorTaken naming the provider an accepted key serves", async function () {
      await expect(
        f.providers.connect(f.provider2).register(f.operator.address, REGION2, CAPACITY2, PRICES2, CID2, MIN_STAKE),
      )
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryOperatorTaken")
        .withArgs(f.operator.address, f.provider.address);
    });

    for (const [dimension, capacity] of [
      ["vcpu", { ...CAPACITY2, vcpu: 0n }],
      ["memoryMiB", { ...CAPACITY2, memoryMiB: 0n }],
      ["diskGiB", { ...CAPACITY2, diskGiB: 0n }],
    ] as const) {
      it(`reverts with ProviderRegistryZeroCapacity when ${dimension} is zero`, async function () {
        await expect(
          f.providers.connect(f.provider2).register(f.operator2.address, REGION2, capacity, PRICES2, CID2, MIN_STAKE),
        )
          .to.be.revertedWithCustomError(f.providers, "ProviderRegistryZeroCapacity")
          .withArgs(capacity.vcpu, capacity.memoryMiB, capacity.diskGiB);
      });
    }

    it("reverts with ProviderRegistryInvalidRegion for a zero region", async function () {
      await expect(
        f.providers.connect(f.provider2).register(f.operator2.address, ethers.ZeroHash, CAPACITY2, PRICES2, CID2, MIN_STAKE),
      ).to.be.revertedWithCustomError(f.providers, "ProviderRegistryInvalidRegion");
    });

    it("reverts with the token's ERC20InsufficientAllowance when the stake is not approved", async function () {
      await f.token.connect(f.provider2).approve(await f.providers.getAddress(), MIN_STAKE - 1n);
      await expect(registerProvider2(f, MIN_STAKE))
        .to.be.revertedWithCustomError(f.token, "ERC20InsufficientAllowance")
        .withArgs(await f.providers.getAddress(), MIN_STAKE - 1n, MIN_STAKE);
    });
  });

  describe("setOperator and acceptOperator", function () {
    it("nominates without changing the operator; the nominee's acceptOperator rotates the key and frees the old one", async function () {
      await expect(f.providers.connect(f.provider).setOperator(f.operator2.address))
        .to.emit(f.providers, "ProviderOperatorNominated")
        .withArgs(f.provider.address, f.operator2.address, f.operator.address)
        .and.not.to.emit(f.providers, "ProviderOperatorChanged");
      // The current operator keeps serving until the nominee accepts.
      expect(await f.providers.operatorOf(f.provider.address)).to.equal(f.operator.address);
      expect(await f.providers.providerOfOperator(f.operator.address)).to.equal(f.provider.address);
      expect(await f.providers.providerOfOperator(f.operator2.address)).to.equal(ethers.ZeroAddress);
      expect(await f.providers.pendingOperatorOf(f.provider.address)).to.equal(f.operator2.address);

      await expect(f.providers.connect(f.operator2).acceptOperator(f.provider.address))
        .to.emit(f.providers, "ProviderOperatorChanged")
        .withArgs(f.provider.address, f.operator.address, f.operator2.address);
      expect(await f.providers.operatorOf(f.provider.address)).to.equal(f.operator2.address);
      expect(await f.providers.providerOfOperator(f.operator2.address)).to.equal(f.provider.address);
      expect(await f.providers.providerOfOperator(f.operator.address)).to.equal(ethers.ZeroAddress);
      expect(await f.providers.pendingOperatorOf(f.provider.address)).to.equal(ethers.ZeroAddress);

      // The freed key can now serve another provider.
      await f.providers.connect(f.provider2).register(f.operator.address, REGION2, CAPACITY2, PRICES2, CID2, MIN_STAKE);
      await f.providers.connect(f.operator).acceptOperator(f.provider2.address);
      expect(await f.providers.providerOfOperator(f.operator.address)).to.equal(f.provider2.address);
    });

    it("a new nomination replaces the pending one; setOperator(0) withdraws it", async function () {
      await f.providers.connect(f.provider).setOperator(f.operator2.address);
      await expect(f.providers.connect(f.provider).setOperator(f.stranger.address))
        .to.emit(f.providers, "ProviderOperatorNominated")
        .withArgs(f.provider.address, f.stranger.address, f.operator.address);
      await expect(f.providers.connect(f.operator2).acceptOperator(f.provider.address))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryNotNominated")
        .withArgs(f.provider.address, f.operator2.address, f.stranger.address);

      await expect(f.providers.connect(f.provider).setOperator(ethers.ZeroAddress))
        .to.emit(f.providers, "ProviderOperatorNominated")
        .withArgs(f.provider.address, ethers.ZeroAddress, f.operator.address);
      expect(await f.providers.pendingOperatorOf(f.provider.address)).to.equal(ethers.ZeroAddress);
      await expect(f.providers.connect(f.stranger).acceptOperator(f.provider.address))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryNotNominated")
        .withArgs(f.provider.address, f.stranger.address, ethers.ZeroAddress);
      expect(await f.providers.operatorOf(f.provider.address)).to.equal(f.operator.address);
    });

    it("acceptOperator reverts with ProviderRegistryNotRegistered for an unregistered provider", async function () {
      await expect(f.providers.connect(f.operator2).acceptOperator(f.stranger.address))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryNotRegistered")
        .withArgs(f.stranger.address);
    });

    it("reverts with ProviderRegistryNotRegistered for an unregistered caller", async function () {
      await expect(f.providers.connect(f.stranger).setOperator(f.operator2.address))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryNotRegistered")
        .withArgs(f.stranger.address);
    });

    it("reverts with ProviderRegistryInvalidOperator for the owner's own key", async function () {
      await expect(f.providers.connect(f.provider).setOperator(f.provider.address))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryInvalidOperator")
        .withArgs(f.provider.address);
    });

    it("reverts with ProviderRegistryOperatorTaken for a key that serves a provider, the caller's own included", async function () {
      await registerProvider2(f);
      await f.providers.connect(f.operator2).acceptOperator(f.provider2.address);
      await expect(f.providers.connect(f.provider).setOperator(f.operator2.address))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryOperatorTaken")
        .withArgs(f.operator2.address, f.provider2.address);
      await expect(f.providers.connect(f.provider).setOperator(f.operator.address))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryOperatorTaken")
        .withArgs(f.operator.address, f.provider.address);
      expect(await f.providers.providerOfOperator(f.operator.address)).to.equal(f.provider.address);
      expect(await f.providers.operatorOf(f.provider.address)).to.equal(f.operator.address);
    });

    it("acceptOperator reverts with ProviderRegistryOperatorTaken when the key accepted another provider meanwhile", async function () {
      // Both providers nominate the same unused key; it can serve only the first it accepts.
      await registerProvider2(f);
      await f.providers.connect(f.provider).setOperator(f.operator2.address);
      await f.providers.connect(f.operator2).acceptOperator(f.provider2.address);
      await expect(f.providers.connect(f.operator2).acceptOperator(f.provider.address))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryOperatorTaken")
        .withArgs(f.operator2.address, f.provider2.address);
      expect(await f.providers.operatorOf(f.provider.address)).to.equal(f.operator.address);
    });

    it("a provider whose nominee has not accepted takes no lease (LeaseStatus.NoOperator) and requestVm names why", async function () {
      await registerProvider2(f);
      const [status, region, available] = await f.providers.leaseStatus(f.provider2.address, SMALL_VM);
      expect(status).to.equal(4n); // NoOperator
      expect(region).to.equal(REGION2);
      expect(tuple(available)).to.deep.equal(tuple(CAPACITY2));
      await expect(f.vms.connect(f.tenant).requestVm(f.provider2.address, MANIFEST, SMALL_VM, 2n ** 88n - 1n, DEPOSIT))
        .to.be.revertedWithCustomError(f.vms, "VmRegistryProviderNoOperator")
        .withArgs(f.provider2.address);
      await f.providers.connect(f.operator2).acceptOperator(f.provider2.address);
      expect((await f.providers.leaseStatus(f.provider2.address, SMALL_VM))[0]).to.equal(0n);
    });
  });

  describe("updateOffer", function () {
    it("replaces region, capacity, prices and metadata, keeps stake and operator, and emits ProviderOfferUpdated", async function () {
      await expect(f.providers.connect(f.provider).updateOffer(REGION2, CAPACITY2, PRICES2, CID2))
        .to.emit(f.providers, "ProviderOfferUpdated")
        .withArgs(f.provider.address, REGION2, tuple(CAPACITY2), pricesTuple(PRICES2), CID2);
      const p = await f.providers.getProvider(f.provider.address);
      expect(p.region).to.equal(REGION2);
      expect(tuple(p.capacity)).to.deep.equal(tuple(CAPACITY2));
      expect(pricesTuple(p.prices)).to.deep.equal(pricesTuple(PRICES2));
      expect(p.metadataCid).to.equal(CID2);
      expect(p.stake).to.equal(MIN_STAKE);
      expect(p.operator).to.equal(f.operator.address);
    });

    it("reverts with ProviderRegistryNotRegistered for an unregistered caller", async function () {
      await expect(f.providers.connect(f.stranger).updateOffer(REGION2, CAPACITY2, PRICES2, CID2))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryNotRegistered")
        .withArgs(f.stranger.address);
    });

    it("reverts with ProviderRegistryInvalidRegion for a zero region", async function () {
      await expect(
        f.providers.connect(f.provider).updateOffer(ethers.ZeroHash, CAPACITY2, PRICES2, CID2),
      ).to.be.revertedWithCustomError(f.providers, "ProviderRegistryInvalidRegion");
    });

    it("reverts with ProviderRegistryZeroCapacity carrying the offered capacity", async function () {
      const capacity = { vcpu: 8n, memoryMiB: 0n, diskGiB: 0n };
      await expect(f.providers.connect(f.provider).updateOffer(REGION2, capacity, PRICES2, CID2))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryZeroCapacity")
        .withArgs(8n, 0n, 0n);
    });
  });

  describe("addStake", function () {
    it("adds to the stake, emits the new total and pulls the tokens", async function () {
      const amount = 250n * 10n ** 18n;
      const tx = f.providers.connect(f.provider).addStake(amount);
      await expect(tx).to.emit(f.providers, "ProviderStakeAdded").withArgs(f.provider.address, amount, MIN_STAKE + amount);
      await expect(tx).to.changeTokenBalances(ethers, f.token, [f.provider, f.providers], [-amount, amount]);
      expect((await f.providers.getProvider(f.provider.address)).stake).to.equal(MIN_STAKE + amount);
    });

    it("reverts with ProviderRegistryNotRegistered for an unregistered caller", async function () {
      await expect(f.providers.connect(f.stranger).addStake(1n))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryNotRegistered")
        .withArgs(f.stranger.address);
    });

    it("reverts with ProviderRegistryZeroAmount for a zero amount", async function () {
      await expect(f.providers.connect(f.provider).addStake(0n)).to.be.revertedWithCustomError(
        f.providers,
        "ProviderRegistryZeroAmount",
      );
    });
  });

  describe("views of unregistered addresses", function () {
    it("getProvider reverts with ProviderRegistryNotRegistered and the other views return zero", async function () {
      await expect(f.providers.getProvider(f.stranger.address))
        .to.be.revertedWithCustomError(f.providers, "ProviderRegistryNotRegistered")
        .withArgs(f.stranger.address);
      expect(await f.providers.isRegistered(f.stranger.address)).to.equal(false);
      expect(await f.providers.operatorOf(f.stranger.address)).to.equal(ethers.ZeroAddress);
      expect(await f.providers.providerOfOperator(f.stranger.address)).to.equal(ethers.ZeroAddress);
      expect(await f.providers.pendingOperatorOf(f.stranger.address)).to.equal(ethers.ZeroAddress);
    });
  });

  describe("quote", function () {
    it("prices resources as the sum of each dimension times its per-second price", async function () {
      const [registered, capacity, price] = await f.providers.quote(f.provider.address, SMALL_VM);
      expect(registered).to.equal(true);
      expect(tuple(capacity)).to.deep.equal(tuple(CAPACITY));
      // 2 vCPU * 1000 + 4096 MiB * 2 + 50 GiB * 3
      expect(price).to.equal(10_342n);
      expect(price).to.equal(priceOf(PRICES, SMALL_VM));
    });

    it("follows an updated offer", async function () {
      await f.providers.connect(f.provider).updateOffer(REGION2, CAPACITY2, PRICES2, CID2);
      const [, capacity, price] = await f.providers.quote(f.provider.address, SMALL_VM);
      expect(tuple(capacity)).to.deep.equal(tuple(CAPACITY2));
      // 2 * 700 + 4096 * 1 + 50 * 5
      expect(price).to.equal(5_746n);
    });

    it("does not overflow at the largest prices and resources", async function () {
      const max64 = 2n ** 64n - 1n;
      const max32 = 2n ** 32n - 1n;
      const maxCapacity = { vcpu: max32, memoryMiB: max32, diskGiB: max32 };
      await f.providers
        .connect(f.provider)
        .updateOffer(REGION, maxCapacity, { perVcpuSecond: max64, perMemoryMiBSecond: max64, perDiskGiBSecond: max64 }, CID2);
      const [, , price] = await f.providers.quote(f.provider.address, maxCapacity);
      expect(price).to.equal(3n * max64 * max32);
    });

    it("returns registered = false and zeros for an unregistered provider", async function () {
      const [registered, capacity, price] = await f.providers.quote(f.stranger.address, SMALL_VM);
      expect(registered).to.equal(false);
      expect(tuple(capacity)).to.deep.equal([0n, 0n, 0n]);
      expect(price).to.equal(0n);
    });
  });
});
