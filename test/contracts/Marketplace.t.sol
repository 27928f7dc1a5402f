// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IVmRegistry, VmState} from "../../contracts/interfaces/IVmRegistry.sol";
import {VmRegistryTestBase} from "./VmRegistry.t.sol";

/// @dev Fuzz tests of the settlement arithmetic with a platform fee, suspension and provider exit.
contract MarketplaceFuzzTest is VmRegistryTestBase {
    /// Settled at arbitrary moments, a VM bills exactly min(price * running, deposit); the fee is exactly
    /// floor(billed * feeBps / 10_000) however the billing was cut into settlements; the provider gets the rest;
    /// the VM is Suspended from the second the deposit ran out.
    function testFuzz_settle_feeSplitIsExactAndSuspendsOnTime(
        uint256 price,
        uint256 deposit,
        uint256 feeBps,
        uint256[6] calldata gaps
    ) public {
        price = bound(price, 1, type(uint64).max);
        deposit = bound(deposit, 1, type(uint96).max);
        feeBps = bound(feeBps, 0, 1_000);
        vms.setParameters(_parameters(uint16(feeBps)));
        _setPrice(uint64(price));
        uint256 vmId = _running(deposit);
        uint256 startedAt = block.timestamp;
        uint256 runsOutAt = startedAt + (deposit + price - 1) / price;

        for (uint256 i = 0; i < gaps.length; i++) {
            vm.warp(block.timestamp + bound(gaps[i], 0, 30 days));
            vms.settle(vmId);
            uint256 billed = _min(price * (block.timestamp - startedAt), deposit);
            uint256 fee = billed * feeBps / 10_000;
            IVmRegistry.VmView memory v = vms.getVm(vmId);
            assertEq(v.fee, fee, "fee");
            assertEq(v.paid, billed - fee, "paid");
            assertEq(vms.feesAccrued(), fee, "fees accrued");
            assertEq(vms.earningsOf(provider), billed - fee, "earnings");
            assertEq(v.deposit, v.balance + v.paid + v.fee + v.refunded, "identity");
            if (block.timestamp >= runsOutAt) {
                assertEq(uint8(v.state), uint8(VmState.Suspended), "suspended once the deposit ran out");
                assertEq(v.suspendedAt, runsOutAt, "suspended at the second it ran out");
            } else {
                assertEq(uint8(v.state), uint8(VmState.Running), "running while money lasts");
            }
        }
    }

    /// A reclaimed lease never bills past its reclaim time, whatever the top-ups and touches.
    function testFuzz_reclaim_neverChargesPastNotice(uint256 price, uint256 before, uint256 after_, uint256 topUp)
        public
    {
        price = bound(price, 0, 1e12);
        before = bound(before, 0, 30 days);
        after_ = bound(after_, 0, 60 days);
        topUp = bound(topUp, 1, type(uint64).max);
        _setPrice(uint64(price));
        uint256 deposit = type(uint80).max;
        uint256 vmId = _running(deposit);
        uint256 startedAt = block.timestamp;
        vm.warp(block.timestamp + before);
        vm.prank(operator);
        vms.reclaimVm(vmId);
        uint256 reclaimAt = block.timestamp + 1 days;
        vm.warp(block.timestamp + after_ / 2);
        vm.prank(tenant);
        vms.topUp(vmId, topUp);
        vm.warp(block.timestamp + after_ - after_ / 2);
        vms.settle(vmId);
        uint256 end = block.timestamp < reclaimAt ? block.timestamp : reclaimAt;
        IVmRegistry.VmView memory v = vms.getVm(vmId);
        assertEq(v.paid + v.fee, price * (end - startedAt), "billed up to min(now, reclaimAt)");
        if (block.timestamp >= reclaimAt) {
            uint256 tenantBefore = token.balanceOf(tenant);
            vms.closeVm(vmId);
            assertEq(token.balanceOf(tenant) - tenantBefore, deposit + topUp - price * (end - startedAt), "refund");
        }
    }

    /// A top-up within the grace period always revives a suspended VM, and billing restarts only when it runs.
    function testFuzz_topUp_revivesWithinGrace(uint256 deposit, uint256 late, uint256 amount) public {
        deposit = bound(deposit, 1, 1e6);
        late = bound(late, 0, 2 days);
        amount = bound(amount, 1, type(uint64).max);
        _setPrice(1);
        uint256 vmId = _running(deposit);
        uint256 suspendedAt = block.timestamp + deposit;
        vm.warp(suspendedAt + late);
        vm.prank(tenant);
        if (late >= 1 days) {
            vm.expectRevert(abi.encodeWithSelector(IVmRegistry.VmRegistryGraceExpired.selector, vmId, suspendedAt + 1 days));
            vms.topUp(vmId, amount);
            vms.closeVm(vmId);
            assertEq(uint8(vms.getVm(vmId).state), uint8(VmState.Terminated), "closed after grace");
        } else {
            vms.topUp(vmId, amount);
            IVmRegistry.VmView memory v = vms.getVm(vmId);
            assertEq(uint8(v.state), uint8(VmState.Starting), "revived to Starting");
            assertEq(v.balance, amount, "only the top-up is left");
            assertEq(v.paid, deposit, "the first deposit was used up exactly");
        }
    }
}
