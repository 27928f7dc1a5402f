import { expect } from "chai";
import { network } from "hardhat";
import NovaCronModule from "../../ignition/modules/NovaCron.ts";
import type { CreditToken, NovaCronGovernor, NovaCronTimelock, ProviderRegistry, VmRegistry } from "../../types/ethers-contracts/index.ts";

/** An ethers `Result` (struct output) as a plain object keyed by field name. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function plain(r: unknown): any {
  return (r as { toObject(): Record<string, unknown> }).toObject();
}

const { ethers, ignition, networkHelpers } = await network.create();
const { mine, time } = networkHelpers;

/** The Ignition module as `npm start` deploys it: Governor + Timelock own every parameter. */
async function deployed() {
  const r = await ignition.deploy(NovaCronModule, { displayUi: false });
  return {
    token: r.creditToken as unknown as CreditToken,
    providers: r.providerRegistry as unknown as ProviderRegistry,
    vms: r.vmRegistry as unknown as VmRegistry,
    governor: r.governor as unknown as NovaCronGovernor,
    timelock: r.timelock as unknown as NovaCronTimelock,
  };
}

describe("Governance (Ignition module: Governor + TimelockController over CreditToken votes)", function () {
  it("wires the timelock as governance and treasury, the governor as its only proposer, and leaves no admin", async function () {
    const d = await networkHelpers.loadFixture(deployed);
    const [deployer] = await ethers.getSigners();
    const timelock = await d.timelock.getAddress();
    expect(await d.vms.governance()).to.equal(timelock);
    expect(await d.providers.governance()).to.equal(timelock);
    expect((await d.vms.parameters()).treasury).to.equal(timelock);
    expect(await d.providers.vmRegistry()).to.equal(await d.vms.getAddress());
    expect(await d.governor.timelock()).to.equal(timelock);
    expect(await d.timelock.hasRole(await d.timelock.PROPOSER_ROLE(), await d.governor.getAddress())).to.equal(true);
    expect(await d.timelock.hasRole(await d.timelock.CANCELLER_ROLE(), await d.governor.getAddress())).to.equal(true);
    expect(await d.timelock.hasRole(await d.timelock.DEFAULT_ADMIN_ROLE(), deployer!.address)).to.equal(false);
    expect(await d.timelock.hasRole(await d.timelock.EXECUTOR_ROLE(), ethers.ZeroAddress)).to.equal(true);
    await expect(d.vms.setParameters({ ...plain(await d.vms.parameters()), feeBps: 0n }))
      .to.be.revertedWithCustomError(d.vms, "VmRegistryNotGovernance")
      .withArgs(deployer!.address);
  });

  it("changes the fee and the slash share through propose -> vote -> queue -> execute, and not before the delay", async function () {
    const d = await networkHelpers.loadFixture(deployed);
    const [deployer] = await ethers.getSigners();
    await d.token.delegate(deployer!.address);
    await mine(1);

    const current = plain(await d.vms.parameters());
    const next = { ...current, feeBps: 300n };
    const targets = [await d.vms.getAddress(), await d.providers.getAddress()];
    const calldatas = [
      d.vms.interface.encodeFunctionData("setParameters", [next]),
      d.providers.interface.encodeFunctionData("setParameters", [{ minimumStake: 2_000n * 10n ** 18n, thawPeriod: 86_400n, slashBps: 2_000n }]),
    ];
    const description = "Raise the platform fee to 3% and the slash share to 20%";
    const descriptionHash = ethers.id(description);
    await d.governor.propose(targets, [0n, 0n], calldatas, description);
    const proposalId = await d.governor.hashProposal(targets, [0n, 0n], calldatas, descriptionHash);
    await mine((await d.governor.votingDelay()) + 1n);
    await d.governor.castVote(proposalId, 1);
    await mine(await d.governor.votingPeriod());
    expect(await d.governor.state(proposalId)).to.equal(4n); // Succeeded
    await d.governor.queue(targets, [0n, 0n], calldatas, descriptionHash);
    await expect(d.governor.execute(targets, [0n, 0n], calldatas, descriptionHash)).to.be.revertedWithCustomError(
      d.timelock,
      "TimelockUnexpectedOperationState",
    );
    await time.increase(await d.timelock.getMinDelay());
    await expect(d.governor.execute(targets, [0n, 0n], calldatas, descriptionHash)).to.emit(d.vms, "ParametersChanged");
    expect((await d.vms.parameters()).feeBps).to.equal(300n);
    expect((await d.providers.parameters()).slashBps).to.equal(2_000n);
    expect(await d.providers.minimumStake()).to.equal(2_000n * 10n ** 18n);
  });

  it("a passed proposal still cannot exceed the constant bounds (fee above 10% reverts on execution)", async function () {
    const d = await networkHelpers.loadFixture(deployed);
    const [deployer] = await ethers.getSigners();
    await d.token.delegate(deployer!.address);
    await mine(1);
    const next = { ...plain(await d.vms.parameters()), feeBps: 5_000n };
    const targets = [await d.vms.getAddress()];
    const calldatas = [d.vms.interface.encodeFunctionData("setParameters", [next])];
    const descriptionHash = ethers.id("Fee 50%");
    await d.governor.propose(targets, [0n], calldatas, "Fee 50%");
    const proposalId = await d.governor.hashProposal(targets, [0n], calldatas, descriptionHash);
    await mine((await d.governor.votingDelay()) + 1n);
    await d.governor.castVote(proposalId, 1);
    await mine(await d.governor.votingPeriod());
    await d.governor.queue(targets, [0n], calldatas, descriptionHash);
    await time.increase(await d.timelock.getMinDelay());
    await expect(d.governor.execute(targets, [0n], calldatas, descriptionHash)).to.be.revertedWithCustomError(d.vms, "VmRegistryInvalidParameter");
  });
});
