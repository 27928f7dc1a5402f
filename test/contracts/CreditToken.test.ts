import { expect } from "chai";
import { network } from "hardhat";
import {
  deployFixture,
  DEPOSIT,
  MIN_STAKE,
  PROVIDER_FUNDS,
  runningVm,
  signPermit,
  SUPPLY,
  TENANT_FUNDS,
  type Fixture,
} from "./fixtures.ts";
import type { CreditToken } from "../../types/ethers-contracts/index.ts";
import { permitTypedData } from "../../scripts/lib/token.ts";

const { ethers, networkHelpers } = await network.create();

describe("CreditToken", function () {
  let f: Fixture;
  beforeEach(async function () {
    f = await networkHelpers.loadFixture(deployFixture);
  });

  describe("metadata", function () {
    it("is NovaCron Credit (NCC) with 18 decimals", async function () {
      expect(await f.token.name()).to.equal("NovaCron Credit");
      expect(await f.token.symbol()).to.equal("NCC");
      expect(await f.token.decimals()).to.equal(18n);
    });
  });

  describe("fixed supply", function () {
    it("mints the whole supply to the initial holder at deployment", async function () {
      const token = (await ethers.deployContract("CreditToken", [f.stranger.address, 12_345n])) as unknown as CreditToken;
      expect(await token.totalSupply()).to.equal(12_345n);
      expect(await token.balanceOf(f.stranger.address)).to.equal(12_345n);
      expect(await token.balanceOf(f.deployer.address)).to.equal(0n);
    });

    it("has no mint or burn entry point", async function () {
      const names: string[] = [];
      f.token.interface.forEachFunction((fn) => names.push(fn.name));
      expect(names).to.include("transfer");
      expect(names.filter((n) => /mint|burn/i.test(n))).to.deep.equal([]);
    });

    it("keeps the total supply through transfers, staking, escrow and billing", async function () {
      // The fixture moved funds to tenants and providers and staked: the deployer holds the rest.
      const distributed = 2n * TENANT_FUNDS + 2n * PROVIDER_FUNDS;
      expect(await f.token.totalSupply()).to.equal(SUPPLY);
      expect(await f.token.balanceOf(f.deployer.address)).to.equal(SUPPLY - distributed);
      expect(await f.token.balanceOf(await f.providers.getAddress())).to.equal(MIN_STAKE);

      const { vmId } = await runningVm(f);
      await networkHelpers.time.increase(60);
      await f.vms.connect(f.tenant).terminateVm(vmId);
      await f.vms.connect(f.provider).withdrawEarnings();
      expect(await f.token.totalSupply()).to.equal(SUPPLY);
    });
  });

  describe("permit (EIP-2612)", function () {
    it("sets the allowance from an off-chain signature and consumes the nonce", async function () {
      const spender = f.stranger.address;
      const deadline = BigInt(await networkHelpers.time.latest()) + 3_600n;
      const sig = await signPermit(f, f.tenant, spender, 777n, deadline);

      await expect(f.token.connect(f.stranger).permit(f.tenant.address, spender, 777n, deadline, sig.v, sig.r, sig.s))
        .to.emit(f.token, "Approval")
        .withArgs(f.tenant.address, spender, 777n);
      expect(await f.token.allowance(f.tenant.address, spender)).to.equal(777n);
      expect(await f.token.nonces(f.tenant.address)).to.equal(1n);
    });

    it("rejects a replayed signature", async function () {
      const spender = f.stranger.address;
      const deadline = BigInt(await networkHelpers.time.latest()) + 3_600n;
      const sig = await signPermit(f, f.tenant, spender, 777n, deadline);
      await f.token.permit(f.tenant.address, spender, 777n, deadline, sig.v, sig.r, sig.s);
      await expect(
        f.token.permit(f.tenant.address, spender, 777n, deadline, sig.v, sig.r, sig.s),
      ).to.be.revertedWithCustomError(f.token, "ERC2612InvalidSigner");
    });

    it("rejects a signature by someone other than the owner with ERC2612InvalidSigner", async function () {
      const spender = f.stranger.address;
      const deadline = BigInt(await networkHelpers.time.latest()) + 3_600n;
      // tenant2 signs a permit that claims to be from tenant.
      const { domain, types, message } = await permitTypedData(f.token, f.tenant.address, spender, 1n, deadline);
      const sig = ethers.Signature.from(await f.tenant2.signTypedData(domain, types, message));
      await expect(f.token.permit(f.tenant.address, spender, 1n, deadline, sig.v, sig.r, sig.s))
        .to.be.revertedWithCustomError(f.token, "ERC2612InvalidSigner")
        .withArgs(f.tenant2.address, f.tenant.address);
    });

    it("rejects an expired permit with ERC2612ExpiredSignature", async function () {
      const deadline = BigInt(await networkHelpers.time.latest()) + 10n;
      const sig = await signPermit(f, f.tenant, f.stranger.address, 1n, deadline);
      await networkHelpers.time.increase(60);
      await expect(f.token.permit(f.tenant.address, f.stranger.address, 1n, deadline, sig.v, sig.r, sig.s))
        .to.be.revertedWithCustomError(f.token, "ERC2612ExpiredSignature")
        .withArgs(deadline);
    });
  });

  describe("votes delegation", function () {
    it("counts no votes until the holder delegates", async function () {
      expect(await f.token.balanceOf(f.tenant.address)).to.equal(TENANT_FUNDS);
      expect(await f.token.getVotes(f.tenant.address)).to.equal(0n);
    });

    it("gives a self-delegating holder votes equal to its balance and follows transfers", async function () {
      await expect(f.token.connect(f.tenant).delegate(f.tenant.address))
        .to.emit(f.token, "DelegateChanged")
        .withArgs(f.tenant.address, ethers.ZeroAddress, f.tenant.address);
      expect(await f.token.delegates(f.tenant.address)).to.equal(f.tenant.address);
      expect(await f.token.getVotes(f.tenant.address)).to.equal(TENANT_FUNDS);

      await expect(f.token.connect(f.tenant).transfer(f.stranger.address, 1_000n))
        .to.emit(f.token, "DelegateVotesChanged")
        .withArgs(f.tenant.address, TENANT_FUNDS, TENANT_FUNDS - 1_000n);
      expect(await f.token.getVotes(f.tenant.address)).to.equal(TENANT_FUNDS - 1_000n);
    });

    it("moves votes to a delegate and keeps checkpoints by block number", async function () {
      await f.token.connect(f.tenant).delegate(f.tenant.address);
      const before = await ethers.provider.getBlockNumber();
      await f.token.connect(f.tenant).delegate(f.tenant2.address);
      expect(await f.token.getVotes(f.tenant.address)).to.equal(0n);
      expect(await f.token.getVotes(f.tenant2.address)).to.equal(TENANT_FUNDS);
      await networkHelpers.mine();
      expect(await f.token.getPastVotes(f.tenant.address, before)).to.equal(TENANT_FUNDS);
      expect(await f.token.getPastVotes(f.tenant2.address, before)).to.equal(0n);
      expect(await f.token.clock()).to.equal(BigInt(await ethers.provider.getBlockNumber()));
      expect(await f.token.CLOCK_MODE()).to.equal("mode=blocknumber&from=default");
    });

    it("stops counting tokens escrowed as a VM deposit", async function () {
      await f.token.connect(f.tenant).delegate(f.tenant.address);
      await runningVm(f);
      expect(await f.token.getVotes(f.tenant.address)).to.equal(TENANT_FUNDS - DEPOSIT);
    });

    it("accepts a delegation by signature", async function () {
      const expiry = BigInt(await networkHelpers.time.latest()) + 3_600n;
      const domain = {
        name: "NovaCron Credit",
        version: "1",
        chainId: (await ethers.provider.getNetwork()).chainId,
        verifyingContract: await f.token.getAddress(),
      };
      const types = {
        Delegation: [
          { name: "delegatee", type: "address" },
          { name: "nonce", type: "uint256" },
          { name: "expiry", type: "uint256" },
        ],
      };
      const sig = ethers.Signature.from(
        await f.tenant.signTypedData(domain, types, { delegatee: f.tenant2.address, nonce: 0n, expiry }),
      );
      await f.token.connect(f.stranger).delegateBySig(f.tenant2.address, 0n, expiry, sig.v, sig.r, sig.s);
      expect(await f.token.delegates(f.tenant.address)).to.equal(f.tenant2.address);
      expect(await f.token.getVotes(f.tenant2.address)).to.equal(TENANT_FUNDS);
      expect(await f.token.nonces(f.tenant.address)).to.equal(1n);
    });
  });
});
