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

/** Proposes `calls` (as the deployer, who holds every vote), votes for it, queues it and waits out the delay. */
async function passed(d: Awaited<ReturnType<typeof deployed>>, calls: { target: string; data: string }[], description: string) {
  const [deployer] = await ethers.getSigners();
  await d.token.delegate(deployer!.address);
  await mine(1);
  const targets = calls.map((c) => c.target);
  const values = calls.map(() => 0n);
  const calldatas = calls.map((c) => c.data);
  const descriptionHash = ethers.id(description);
  await d.governor.propose(targets, values, calldatas, description);
  const proposalId = await d.governor.hashProposal(targets, values, calldatas, descriptionHash);
  await mine((await d.governor.votingDelay()) + 1n);
  await d.governor.castVote(proposalId, 1);
  await mine(await d.governor.votingPeriod());
  await d.governor.queue(targets, values, calldatas, descriptionHash);
  await time.increase(await d.timelock.getMinDelay());
  return { proposalId, execute: () => d.governor.execute(targets, values, calldatas, descriptionHash) };
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

  it("proposals need queuing in the timelock, and the proposer can cancel one while it is pending (the timelock keeps nothing)", async function () {
    const d = await networkHelpers.loadFixture(deployed);
    const [deployer] = await ethers.getSigners();
    await d.token.delegate(deployer!.address);
    await mine(1);
    const targets = [await d.vms.getAddress()];
    const calldatas = [d.vms.interface.encodeFunctionData("setParameters", [{ ...plain(await d.vms.parameters()), feeBps: 200n }])];
    const descriptionHash = ethers.id("Fee 2%");
    await d.governor.propose(targets, [0n], calldatas, "Fee 2%");
    const proposalId = await d.governor.hashProposal(targets, [0n], calldatas, descriptionHash);
    expect(await d.governor.proposalNeedsQueuing(proposalId)).to.equal(true);
    expect(await d.governor.proposalThreshold()).to.equal(0n);
    await expect(d.governor.cancel(targets, [0n], calldatas, descriptionHash)).to.emit(d.governor, "ProposalCanceled").withArgs(proposalId);
    expect(await d.governor.state(proposalId)).to.equal(2n); // Canceled
    await expect(d.governor.castVote(proposalId, 1)).to.be.revertedWithCustomError(d.governor, "GovernorUnexpectedProposalState");
  });

  describe("audit findings (issue 9): lower bounds on governance delays", function () {
    it("audit: governance cannot set the timelock delay below MIN_DELAY (updateDelay(0) reverts)", async function () {
      const d = await networkHelpers.loadFixture(deployed);
      const timelock = await d.timelock.getAddress();
      const floor = 3_600n;
      for (const delay of [0n, floor - 1n]) {
        const p = await passed(d, [{ target: timelock, data: d.timelock.interface.encodeFunctionData("updateDelay", [delay]) }], `delay ${delay}`);
        await expect(p.execute()).to.revert(ethers); // on the unbounded timelock this executed and the delay became 0
        await expect(p.execute()).to.be.revertedWithCustomError(d.timelock, "NovaCronTimelockDelayTooShort").withArgs(delay, floor);
      }
      expect(await d.timelock.getMinDelay()).to.equal(3_600n);
      expect(await d.timelock.MIN_DELAY()).to.equal(floor);
      // At or above the floor the change goes through.
      const p = await passed(d, [{ target: timelock, data: d.timelock.interface.encodeFunctionData("updateDelay", [floor]) }], "delay at floor");
      await expect(p.execute()).to.emit(d.timelock, "MinDelayChange").withArgs(3_600n, floor);
    });

    it("audit: governance cannot set the governor's voting delay to zero or the voting period below MIN_VOTING_PERIOD", async function () {
      const d = await networkHelpers.loadFixture(deployed);
      const governor = await d.governor.getAddress();
      const minPeriod = 50n;
      const zeroDelay = await passed(d, [{ target: governor, data: d.governor.interface.encodeFunctionData("setVotingDelay", [0n]) }], "no delay");
      await expect(zeroDelay.execute()).to.revert(ethers); // on the unbounded governor this executed: voting delay 0
      await expect(zeroDelay.execute()).to.be.revertedWithCustomError(d.governor, "NovaCronGovernorVotingDelayTooShort").withArgs(0n, 1n);
      const shortPeriod = await passed(d, [{ target: governor, data: d.governor.interface.encodeFunctionData("setVotingPeriod", [minPeriod - 1n]) }], "short period");
      await expect(shortPeriod.execute()).to.revert(ethers);
      await expect(shortPeriod.execute())
        .to.be.revertedWithCustomError(d.governor, "NovaCronGovernorVotingPeriodTooShort")
        .withArgs(minPeriod - 1n, minPeriod);
      expect(await d.governor.votingDelay()).to.equal(1n);
      expect(await d.governor.votingPeriod()).to.equal(50n);
      expect(await d.governor.MIN_VOTING_DELAY()).to.equal(1n);
      expect(await d.governor.MIN_VOTING_PERIOD()).to.equal(minPeriod);

      // Within the bounds both change, and so does the proposal threshold (no bound: 0 lets anyone propose).
      const ok = await passed(d, [
        { target: governor, data: d.governor.interface.encodeFunctionData("setVotingDelay", [2n]) },
        { target: governor, data: d.governor.interface.encodeFunctionData("setVotingPeriod", [minPeriod + 10n]) },
        { target: governor, data: d.governor.interface.encodeFunctionData("setProposalThreshold", [5n]) },
      ], "slower governance");
      await expect(ok.execute()).to.emit(d.governor, "VotingDelaySet").withArgs(1n, 2n);
      expect(await d.governor.votingDelay()).to.equal(2n);
      expect(await d.governor.votingPeriod()).to.equal(minPeriod + 10n);
      expect(await d.governor.proposalThreshold()).to.equal(5n);
      expect(await d.governor.state(ok.proposalId)).to.equal(7n); // Executed
    });

    it("audit: neither contract can be deployed below its floors", async function () {
      const d = await networkHelpers.loadFixture(deployed);
      const [deployer] = await ethers.getSigners();
      const Timelock = await ethers.getContractFactory("NovaCronTimelock");
      await expect(Timelock.deploy(3_599n, [], [ethers.ZeroAddress], deployer!.address)).to.revert(ethers);
      await expect(Timelock.deploy(3_599n, [], [ethers.ZeroAddress], deployer!.address))
        .to.be.revertedWithCustomError(Timelock, "NovaCronTimelockDelayTooShort")
        .withArgs(3_599n, 3_600n);
      const Governor = await ethers.getContractFactory("NovaCronGovernor");
      const token = await d.token.getAddress();
      const timelock = await d.timelock.getAddress();
      await expect(Governor.deploy(token, timelock, 0n, 50n, 0n, 4n)).to.revert(ethers);
      await expect(Governor.deploy(token, timelock, 0n, 50n, 0n, 4n))
        .to.be.revertedWithCustomError(Governor, "NovaCronGovernorVotingDelayTooShort")
        .withArgs(0n, 1n);
      await expect(Governor.deploy(token, timelock, 1n, 49n, 0n, 4n))
        .to.be.revertedWithCustomError(Governor, "NovaCronGovernorVotingPeriodTooShort")
        .withArgs(49n, 50n);
    });
  });
});
