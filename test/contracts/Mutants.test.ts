// Tests that kill mutants a mutation-testing run found surviving in the marketplace contracts: each pins one
// boundary that no other test observed exactly.
import { expect } from "chai";
import { network } from "hardhat";
import { GRACE_PERIOD, MIN_STAKE, SLASH_BPS, SMALL_VM_PRICE, VmState, deployFixture, runningVm } from "./fixtures.ts";

const { networkHelpers } = await network.create();
const { time } = networkHelpers;

describe("Marketplace: mutants", function () {
  // ProviderRegistry._setParameters: the thaw period's upper bound is inclusive.
  it("kills ProviderRegistry-182: a thaw period of exactly MAX_THAW_PERIOD is accepted", async function () {
    const f = await networkHelpers.loadFixture(deployFixture);
    const max = await f.providers.MAX_THAW_PERIOD();
    expect(max).to.equal(90n * 86_400n);
    const p = { minimumStake: MIN_STAKE, thawPeriod: max, slashBps: SLASH_BPS };
    await expect(f.providers.setParameters(p)).to.emit(f.providers, "ProviderParametersChanged");
    const q = await f.providers.parameters();
    expect(q.thawPeriod).to.equal(max);
    await expect(f.providers.setParameters({ ...p, thawPeriod: max + 1n })).to.be.revertedWithCustomError(
      f.providers,
      "ProviderRegistryInvalidParameter",
    );
  });

  // VmRegistry.closeVm: a suspended VM is closable from closableAt on, that very second included.
  it("kills VmRegistry-133: a suspended VM closes exactly at suspendedAt + gracePeriod, not a second earlier", async function () {
    const f = await networkHelpers.loadFixture(deployFixture);
    const { vmId, startedAt } = await runningVm(f, { deposit: 1_000n * SMALL_VM_PRICE });
    const suspendedAt = startedAt + 1_000n;
    const closableAt = suspendedAt + GRACE_PERIOD;
    // An explicit gas limit: each transaction is mined at the timestamp set for it, not estimated beforehand.
    await time.setNextBlockTimestamp(closableAt - 1n);
    await expect(f.vms.connect(f.stranger).closeVm(vmId, { gasLimit: 1_000_000n }))
      .to.be.revertedWithCustomError(f.vms, "VmRegistryNotClosable")
      .withArgs(vmId, VmState.Suspended, closableAt);
    await time.setNextBlockTimestamp(closableAt);
    await expect(f.vms.connect(f.stranger).closeVm(vmId, { gasLimit: 1_000_000n }))
      .to.emit(f.vms, "VmStateChanged")
      .withArgs(vmId, f.tenant.address, f.provider.address, VmState.Suspended, VmState.Terminated, 0n);
    expect((await f.vms.getVm(vmId)).state).to.equal(VmState.Terminated);
  });

  // Billing.accrued: a deposit that runs out exactly at a settlement's second is exhausted then.
  it("kills Billing-18: a deposit that runs out exactly at a settlement suspends the VM at that settlement", async function () {
    const f = await networkHelpers.loadFixture(deployFixture);
    const { vmId, startedAt } = await runningVm(f, { deposit: 1_000n * SMALL_VM_PRICE });
    await time.setNextBlockTimestamp(startedAt + 1_000n);
    await f.vms.connect(f.stranger).settle(vmId, { gasLimit: 1_000_000n });
    const vm = await f.vms.getVm(vmId);
    expect(vm.balance).to.equal(0n);
    expect(vm.state).to.equal(VmState.Suspended);
  });
});
