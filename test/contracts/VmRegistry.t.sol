// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {CreditToken} from "../../contracts/CreditToken.sol";
import {ProviderRegistry} from "../../contracts/ProviderRegistry.sol";
import {VmRegistry} from "../../contracts/VmRegistry.sol";
import {IVmRegistry, VmState} from "../../contracts/interfaces/IVmRegistry.sol";
import {IProviderRegistry} from "../../contracts/interfaces/IProviderRegistry.sol";
import {Resources, Prices} from "../../contracts/types/Resources.sol";

/// @dev Shared deployment: one token, one provider registry, one VM registry, two registered
/// providers and two tenants holding far more than any uint96 deposit.
abstract contract VmRegistryTestBase is Test {
    uint256 internal constant MIN_STAKE = 1_000e18;
    uint256 internal constant TENANT_FUNDS = 4 * uint256(type(uint96).max);
    bytes32 internal constant REGION = "eu-west-1";
    bytes32 internal constant MANIFEST = keccak256("manifest");

    CreditToken internal token;
    ProviderRegistry internal providers;
    VmRegistry internal vms;

    address internal provider = makeAddr("provider");
    address internal operator = makeAddr("operator");
    address internal provider2 = makeAddr("provider2");
    address internal operator2 = makeAddr("operator2");
    address internal tenant = makeAddr("tenant");
    address internal tenant2 = makeAddr("tenant2");
    address internal stranger = makeAddr("stranger");
    address internal treasury = makeAddr("treasury");

    /// @dev One vCPU, the unit every price in these tests is set on.
    Resources internal oneVcpu = Resources({vcpu: 1, memoryMiB: 1, diskGiB: 1});

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        token = new CreditToken(address(this), 2 ** 200);
        providers = new ProviderRegistry(
            token, address(this), IProviderRegistry.Parameters({minimumStake: MIN_STAKE, thawPeriod: 7 days, slashBps: 1_000})
        );
        vms = new VmRegistry(token, providers, address(this), _parameters(0));
        providers.bindVmRegistry(vms);

        _registerProvider(provider, operator, 1);
        _registerProvider(provider2, operator2, 3);
        _fundTenant(tenant);
        _fundTenant(tenant2);
    }

    /// @dev The marketplace parameters with `feeBps`; this contract plays governance.
    function _parameters(uint16 feeBps) internal view returns (IVmRegistry.Parameters memory) {
        return IVmRegistry.Parameters({
            treasury: treasury,
            feeBps: feeBps,
            bidWindow: 5 minutes,
            provisioningTimeout: 1 hours,
            gracePeriod: 1 days,
            lowBalanceHorizon: 1 hours,
            exitNotice: 1 days
        });
    }

    function _registerProvider(address owner, address op, uint64 perVcpuSecond) internal {
        token.transfer(owner, MIN_STAKE);
        vm.startPrank(owner);
        token.approve(address(providers), MIN_STAKE);
        providers.register(
            op,
            REGION,
            Resources({vcpu: type(uint32).max, memoryMiB: type(uint32).max, diskGiB: type(uint32).max}),
            Prices({perVcpuSecond: perVcpuSecond, perMemoryMiBSecond: 0, perDiskGiBSecond: 0}),
            "",
            MIN_STAKE
        );
        vm.stopPrank();
        vm.prank(op);
        providers.acceptOperator(owner);
    }

    function _fundTenant(address who) internal {
        token.transfer(who, TENANT_FUNDS);
        vm.prank(who);
        token.approve(address(vms), type(uint256).max);
    }

    /// @dev Sets `provider`'s price so that `oneVcpu` costs exactly `pricePerSecond`.
    function _setPrice(uint64 pricePerSecond) internal {
        vm.prank(provider);
        providers.updateOffer(
            REGION,
            Resources({vcpu: type(uint32).max, memoryMiB: type(uint32).max, diskGiB: type(uint32).max}),
            Prices({perVcpuSecond: pricePerSecond, perMemoryMiBSecond: 0, perDiskGiBSecond: 0}),
            ""
        );
    }

    function _request(address who, address from, uint256 deposit) internal returns (uint256 vmId) {
        vm.prank(who);
        vmId = vms.requestVm(from, MANIFEST, oneVcpu, type(uint88).max, deposit);
    }

    /// @dev Requests a `oneVcpu` VM from `provider` and reports it Running now.
    function _running(uint256 deposit) internal returns (uint256 vmId) {
        vmId = _request(tenant, provider, deposit);
        vm.startPrank(operator);
        vms.reportProvisioning(vmId);
        vms.reportRunning(vmId);
        vm.stopPrank();
    }

    /// Settles every VM; the escrow is then exactly the live balances plus unwithdrawn earnings.
    function _assertEscrowIsLiveBalancesPlusEarningsOnceSettled() internal {
        uint256 n = vms.vmCount();
        uint256 live;
        for (uint256 id = 1; id <= n; id++) {
            vms.settle(id);
            live += vms.getVm(id).balance;
        }
        assertEq(
            token.balanceOf(address(vms)),
            live + vms.earningsOf(provider) + vms.earningsOf(provider2),
            "escrow == live balances + unwithdrawn earnings"
        );
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }
}

contract VmRegistryFuzzTest is VmRegistryTestBase {
    /// Settling at arbitrary moments pays exactly min(price * elapsed, deposit), never more.
    function testFuzz_settle_neverPaysMoreThanDeposit(uint256 price, uint256 deposit, uint256[8] calldata gaps)
        public
    {
        price = bound(price, 0, type(uint64).max);
        deposit = bound(deposit, 1, type(uint96).max);
        _setPrice(uint64(price));
        uint256 vmId = _running(deposit);
        uint256 startedAt = block.timestamp;

        for (uint256 i = 0; i < gaps.length; i++) {
            vm.warp(block.timestamp + bound(gaps[i], 0, 365 days));
            vm.prank(stranger);
            vms.settle(vmId);

            uint256 expected = _min(price * (block.timestamp - startedAt), deposit);
            uint256 earned = vms.earningsOf(provider);
            assertLe(earned, deposit, "paid more than the deposit");
            assertEq(earned, expected, "earnings");
            IVmRegistry.VmView memory v = vms.getVm(vmId);
            assertEq(v.paid, expected, "view paid");
            assertEq(v.balance, deposit - expected, "view balance");
            assertEq(token.balanceOf(address(vms)), deposit, "settling moves no tokens");
        }
    }

    /// Over any run / stop / start / run sequence ending in terminate or failure, the deposit splits
    /// exactly into what the provider withdraws and what the tenant gets back, by token balances.
    function testFuzz_terminate_depositEqualsRefundPlusPaid(
        uint256 price,
        uint256 deposit,
        uint256 run1,
        uint256 stopped,
        uint256 starting,
        uint256 run2,
        uint8 ending
    ) public {
        price = bound(price, 0, type(uint64).max);
        deposit = bound(deposit, 1, type(uint96).max);
        run1 = bound(run1, 0, 3650 days);
        stopped = bound(stopped, 0, 3650 days);
        starting = bound(starting, 0, 3650 days);
        run2 = bound(run2, 0, 3650 days);
        ending = uint8(bound(ending, 0, 4));
        _setPrice(uint64(price));
        uint256 tenantBefore = token.balanceOf(tenant);

        uint256 vmId = _running(deposit);
        vm.warp(block.timestamp + run1);
        uint256 expectedPaid = _min(price * run1, deposit);
        // A VM whose deposit ran out is Suspended: it can still be terminated or failed, not stopped.
        if (expectedPaid == deposit && price != 0 && ending >= 2) ending = ending % 2;

        if (ending == 0) {
            vm.prank(tenant);
            vms.terminateVm(vmId); // from Running
        } else if (ending == 1) {
            vm.prank(operator);
            vms.reportFailed(vmId, 7); // from Running
        } else {
            vm.prank(tenant);
            vms.stopVm(vmId);
            vm.warp(block.timestamp + stopped);
            if (ending == 2) {
                vm.prank(tenant);
                vms.terminateVm(vmId); // from Stopped
            } else {
                vm.prank(tenant);
                vms.startVm(vmId);
                vm.warp(block.timestamp + starting);
                if (ending == 3) {
                    vm.prank(operator);
                    vms.reportFailed(vmId, 9); // from Starting
                } else {
                    vm.prank(operator);
                    vms.reportRunning(vmId);
                    vm.warp(block.timestamp + run2);
                    expectedPaid += _min(price * run2, deposit - expectedPaid);
                    vm.prank(tenant);
                    vms.terminateVm(vmId); // from Running again
                }
            }
        }

        IVmRegistry.VmView memory v = vms.getVm(vmId);
        assertEq(v.paid, expectedPaid, "paid");
        assertEq(v.refunded + v.paid, deposit, "deposit == refunded + paid");
        assertEq(v.balance, 0, "terminal balance");
        assertEq(tenantBefore - token.balanceOf(tenant), expectedPaid, "tenant is out of pocket by what was paid");
        assertEq(token.balanceOf(address(vms)), expectedPaid, "escrow keeps only the earnings");

        if (expectedPaid != 0) {
            vm.prank(provider);
            assertEq(vms.withdrawEarnings(), expectedPaid, "withdrawn");
        }
        assertEq(token.balanceOf(provider), expectedPaid, "provider received what was paid");
        assertEq(token.balanceOf(address(vms)), 0, "escrow empty");
    }

    /// The quote is the per-dimension price times the amount, summed in uint256, and a request
    /// that fits records exactly that price.
    /// Issue 9, finding 1: whatever the provider's price when the request runs, the lease is made at that price only if
    /// it is at most the tenant's stated maximum, and no later price change moves it.
    function testFuzz_request_neverLeasesAboveTheTenantsMax(uint64 price, uint256 maxPrice, uint64 later, uint256 run)
        public
    {
        maxPrice = bound(maxPrice, 0, type(uint88).max);
        _setPrice(price);
        vm.prank(tenant);
        if (price > maxPrice) {
            vm.expectRevert(abi.encodeWithSelector(IVmRegistry.VmRegistryPriceAboveMax.selector, provider, price, maxPrice));
            vms.requestVm(provider, MANIFEST, oneVcpu, maxPrice, 1e18);
            return;
        }
        uint256 vmId = vms.requestVm(provider, MANIFEST, oneVcpu, maxPrice, 1e18);
        _setPrice(later);
        vm.prank(operator);
        vms.reportRunning(vmId);
        vm.warp(block.timestamp + bound(run, 0, 30 days));
        vms.settle(vmId);
        IVmRegistry.VmView memory v = vms.getVm(vmId);
        assertEq(v.pricePerSecond, price, "leased at the price the request ran at");
        assertLe(v.pricePerSecond, maxPrice, "never above the tenant's max");
        assertLe(v.paid, maxPrice * bound(run, 0, 30 days), "never billed above max x running time");
    }

    function testFuzz_quote_matchesPrices(
        uint64 perVcpu,
        uint64 perMemory,
        uint64 perDisk,
        uint32 vcpu,
        uint32 memoryMiB,
        uint32 diskGiB
    ) public {
        Resources memory capacity =
            Resources({vcpu: type(uint32).max, memoryMiB: type(uint32).max, diskGiB: type(uint32).max});
        vm.prank(provider);
        providers.updateOffer(
            REGION,
            capacity,
            Prices({perVcpuSecond: perVcpu, perMemoryMiBSecond: perMemory, perDiskGiBSecond: perDisk}),
            ""
        );
        Resources memory r = Resources({vcpu: vcpu, memoryMiB: memoryMiB, diskGiB: diskGiB});
        uint256 expected = uint256(perVcpu) * vcpu + uint256(perMemory) * memoryMiB + uint256(perDisk) * diskGiB;

        (bool registered, Resources memory quotedCapacity, uint256 price) = providers.quote(provider, r);
        assertTrue(registered);
        assertEq(quotedCapacity.vcpu, capacity.vcpu);
        assertEq(quotedCapacity.memoryMiB, capacity.memoryMiB);
        assertEq(quotedCapacity.diskGiB, capacity.diskGiB);
        assertEq(price, expected, "quote");

        (bool unregistered,, uint256 none) = providers.quote(stranger, r);
        assertFalse(unregistered);
        assertEq(none, 0);

        if (vcpu == 0 || memoryMiB == 0 || diskGiB == 0 || expected > type(uint88).max) return;
        vm.prank(tenant);
        uint256 vmId = vms.requestVm(provider, MANIFEST, r, expected, 1);
        assertEq(vms.getVm(vmId).pricePerSecond, expected, "recorded price");
    }

    /// getVm shows, without writing, exactly what a settle in the same block would store.
    function testFuzz_getVm_matchesStateAfterSettle(uint256 price, uint256 deposit, uint256 gap1, uint256 gap2)
        public
    {
        price = bound(price, 0, type(uint64).max);
        deposit = bound(deposit, 1, type(uint96).max);
        _setPrice(uint64(price));
        uint256 vmId = _running(deposit);

        vm.warp(block.timestamp + bound(gap1, 0, 365 days));
        vms.settle(vmId);
        vm.warp(block.timestamp + bound(gap2, 0, 365 days));

        IVmRegistry.VmView memory before = vms.getVm(vmId);
        vms.settle(vmId);
        IVmRegistry.VmView memory afterSettle = vms.getVm(vmId);
        assertEq(keccak256(abi.encode(before)), keccak256(abi.encode(afterSettle)), "view == settled state");
        if (before.state == VmState.Running) {
            assertEq(before.lastSettledAt, block.timestamp, "a Running VM is settled up to now");
        } else {
            assertEq(uint8(before.state), uint8(VmState.Suspended), "only an exhausted VM stops running");
            assertEq(before.balance, 0, "suspended: deposit used up");
        }
        assertEq(before.deposit, before.balance + before.paid + before.fee + before.refunded, "deposit identity");
    }

    /// After any sequence of calls by the right (and sometimes wrong) accounts, on several VMs of two
    /// tenants at two providers, the escrow holds exactly the live balances plus unwithdrawn earnings,
    /// and no token leaves the five participants.
    function testFuzz_escrow_equalsLiveBalancesPlusEarnings(uint256[32] calldata ops) public {
        uint256 everyone = _holdings();
        uint256 withdrawn;

        for (uint256 i = 0; i < ops.length; i++) {
            uint256 op = ops[i];
            vm.warp(block.timestamp + (op >> 16) % 3 days);
            uint256 count = vms.vmCount();
            uint256 action = count == 0 ? 0 : op % 12;
            uint256 vmId = count == 0 ? 0 : 1 + (op >> 8) % count;
            address owner = count == 0 ? address(0) : vms.getVm(vmId).owner;
            address vmOperator = count == 0 ? address(0) : providers.operatorOf(vms.getVm(vmId).provider);
            // The wrong account, one time in eight: the call must revert and change nothing.
            if ((op >> 56) % 8 == 0) (owner, vmOperator) = (stranger, stranger);

            if (action == 0) {
                address who = (op >> 40) % 2 == 0 ? tenant : tenant2;
                _request(who, (op >> 41) % 2 == 0 ? provider : provider2, bound(op >> 64, 1, 2e6));
            } else if (action == 1) {
                vm.prank(vmOperator);
                try vms.reportProvisioning(vmId) {} catch {}
            } else if (action == 2) {
                vm.prank(vmOperator);
                try vms.reportRunning(vmId) {} catch {}
            } else if (action == 3) {
                vm.prank(owner);
                try vms.stopVm(vmId) {} catch {}
            } else if (action == 4) {
                vm.prank(owner);
                try vms.startVm(vmId) {} catch {}
            } else if (action == 5) {
                vm.prank(owner);
                try vms.terminateVm(vmId) {} catch {}
            } else if (action == 6) {
                vm.prank(vmOperator);
                try vms.reportFailed(vmId, uint8(1 + (op >> 48) % 255)) {} catch {}
            } else if (action == 7) {
                vm.prank(stranger);
                vms.settle(vmId);
            } else if (action == 8) {
                address who = (op >> 40) % 2 == 0 ? provider : provider2;
                vm.prank(who);
                try vms.withdrawEarnings() returns (uint256 amount) {
                    withdrawn += amount;
                } catch {}
            } else {
                _advance(vmId, owner, vmOperator, op >> 200);
            }
            _checkEscrow(withdrawn);
            assertEq(_holdings(), everyone, "tokens left the participants");
        }

        _assertEscrowIsLiveBalancesPlusEarningsOnceSettled();
    }

    /// @dev Takes `vmId` one step along the lifecycle with the given accounts; from Running it stops,
    /// terminates or fails it depending on `choice`.
    function _advance(uint256 vmId, address owner, address vmOperator, uint256 choice) internal {
        VmState state = vms.getVm(vmId).state;
        if (state == VmState.Requested) {
            vm.prank(vmOperator);
            try vms.reportProvisioning(vmId) {} catch {}
        } else if (state == VmState.Provisioning || state == VmState.Starting) {
            vm.prank(vmOperator);
            try vms.reportRunning(vmId) {} catch {}
        } else if (state == VmState.Stopped) {
            vm.prank(owner);
            try vms.startVm(vmId) {} catch {}
        } else if (state == VmState.Running) {
            if (choice % 4 < 2) {
                vm.prank(owner);
                try vms.stopVm(vmId) {} catch {}
            } else if (choice % 4 == 2) {
                vm.prank(owner);
                try vms.terminateVm(vmId) {} catch {}
            } else {
                vm.prank(vmOperator);
                try vms.reportFailed(vmId, 1) {} catch {}
            }
        }
    }

    /// Without settling: escrow + withdrawn == sum of (deposit - refunded), and every VM keeps
    /// deposit == balance + paid + refunded.
    function _checkEscrow(uint256 withdrawn) internal view {
        uint256 n = vms.vmCount();
        uint256 kept;
        for (uint256 id = 1; id <= n; id++) {
            IVmRegistry.VmView memory v = vms.getVm(id);
            assertEq(v.deposit, v.balance + v.paid + v.refunded, "deposit identity");
            if (v.state == VmState.Failed || v.state == VmState.Terminated) assertEq(v.balance, 0, "terminal balance");
            else assertEq(v.refunded, 0, "live VMs refund nothing");
            kept += v.deposit - v.refunded;
        }
        assertEq(token.balanceOf(address(vms)) + withdrawn, kept, "escrow + withdrawn == deposits - refunds");
    }

    function _holdings() internal view returns (uint256) {
        return token.balanceOf(tenant) + token.balanceOf(tenant2) + token.balanceOf(address(vms))
            + token.balanceOf(provider) + token.balanceOf(provider2);
    }
}
