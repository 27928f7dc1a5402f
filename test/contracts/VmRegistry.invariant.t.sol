// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {CreditToken} from "../../contracts/CreditToken.sol";
import {ProviderRegistry} from "../../contracts/ProviderRegistry.sol";
import {VmRegistry} from "../../contracts/VmRegistry.sol";
import {IVmRegistry, VmState} from "../../contracts/interfaces/IVmRegistry.sol";
import {Resources} from "../../contracts/types/Resources.sol";
import {VmRegistryTestBase} from "./VmRegistry.t.sol";

/// @dev Drives VmRegistry through valid calls by the right accounts and checks each step's money
/// movement against the view it started from. The invariant fuzzer calls its functions in random order.
contract VmRegistryHandler is Test {
    VmRegistry internal immutable vms;
    ProviderRegistry internal immutable providers;
    CreditToken internal immutable token;
    address[2] internal tenants;
    address[2] internal providerOwners;

    /// @dev Tokens providers withdrew so far.
    uint256 public withdrawn;
    /// @dev Calls that changed something, by name, to see the fuzzer got somewhere.
    mapping(bytes32 action => uint256) public calls;
    /// @dev VMs that are not terminal yet; the actions pick from these so that sequences go deep.
    uint256[] internal _live;
    uint256 internal constant MAX_LIVE = 6;

    constructor(
        VmRegistry vms_,
        ProviderRegistry providers_,
        CreditToken token_,
        address[2] memory tenants_,
        address[2] memory providerOwners_
    ) {
        vms = vms_;
        providers = providers_;
        token = token_;
        tenants = tenants_;
        providerOwners = providerOwners_;
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 7 days));
    }

    function request(uint256 tenantSeed, uint256 providerSeed, uint256 deposit) external {
        if (_live.length >= MAX_LIVE) return;
        address tenant = tenants[tenantSeed % 2];
        deposit = bound(deposit, 1, 5e6);
        uint256 before = token.balanceOf(tenant);
        vm.prank(tenant);
        _live.push(vms.requestVm(providerOwners[providerSeed % 2], keccak256("m"), Resources(1, 1, 1), type(uint88).max, deposit));
        assertEq(before - token.balanceOf(tenant), deposit, "request pulls the deposit");
        calls["request"]++;
    }

    function reportProvisioning(uint256 vmSeed) external {
        (uint256 vmId, IVmRegistry.VmView memory v) = _pick(vmSeed);
        if (v.state != VmState.Requested || _late(v)) return;
        vm.prank(providers.operatorOf(v.provider));
        vms.reportProvisioning(vmId);
        calls["reportProvisioning"]++;
    }

    function reportRunning(uint256 vmSeed) external {
        (uint256 vmId, IVmRegistry.VmView memory v) = _pick(vmSeed);
        if ((v.state != VmState.Provisioning && v.state != VmState.Starting) || _late(v)) return;
        vm.prank(providers.operatorOf(v.provider));
        vms.reportRunning(vmId);
        assertEq(vms.getVm(vmId).lastSettledAt, block.timestamp, "billing starts now");
        calls["reportRunning"]++;
    }

    function stop(uint256 vmSeed) external {
        (uint256 vmId, IVmRegistry.VmView memory v) = _pick(vmSeed);
        if (v.state != VmState.Running) return;
        vm.prank(v.owner);
        vms.stopVm(vmId);
        IVmRegistry.VmView memory after_ = vms.getVm(vmId);
        assertEq(after_.paid, v.paid, "stop settles exactly what getVm showed as paid");
        assertEq(after_.balance, v.balance, "stop keeps the viewed balance");
        assertEq(after_.lastSettledAt, block.timestamp, "settled up to the stop");
        calls["stop"]++;
    }

    function start(uint256 vmSeed) external {
        (uint256 vmId, IVmRegistry.VmView memory v) = _pick(vmSeed);
        if (v.state != VmState.Stopped) return;
        vm.prank(v.owner);
        vms.startVm(vmId);
        calls["start"]++;
    }

    /// @dev Acts one time in three, so that VMs live long enough to run, stop and start.
    function terminate(uint256 vmSeed) external {
        (uint256 vmId, IVmRegistry.VmView memory v) = _pick(vmSeed);
        if (v.state == VmState.None || (vmSeed >> 128) % 3 != 0) return;
        uint256 before = token.balanceOf(v.owner);
        vm.prank(v.owner);
        vms.terminateVm(vmId);
        assertEq(token.balanceOf(v.owner) - before, v.balance, "terminate refunds the viewed balance");
        _retire(vmSeed);
        calls["terminate"]++;
    }

    /// @dev Acts one time in three, like `terminate`.
    function fail(uint256 vmSeed, uint8 reason) external {
        (uint256 vmId, IVmRegistry.VmView memory v) = _pick(vmSeed);
        if ((vmSeed >> 128) % 3 != 0) return;
        if (v.state != VmState.Requested && v.state != VmState.Provisioning && v.state != VmState.Starting
            && v.state != VmState.Running) return;
        if (_late(v)) return;
        uint256 before = token.balanceOf(v.owner);
        vm.prank(providers.operatorOf(v.provider));
        vms.reportFailed(vmId, uint8(bound(reason, 1, 255)));
        assertEq(token.balanceOf(v.owner) - before, v.balance, "failure refunds the viewed balance");
        assertEq(uint8(vms.getVm(vmId).state), uint8(VmState.Failed), "failed");
        _retire(vmSeed);
        calls["fail"]++;
    }

    function settle(uint256 vmSeed) external {
        (uint256 vmId, IVmRegistry.VmView memory v) = _pick(vmSeed);
        if (v.state == VmState.None) return;
        vms.settle(vmId);
        assertEq(keccak256(abi.encode(vms.getVm(vmId))), keccak256(abi.encode(v)), "settle stores what getVm showed");
        calls["settle"]++;
    }

    function withdraw(uint256 providerSeed) external {
        address provider = providerOwners[providerSeed % 2];
        uint256 earnings = vms.earningsOf(provider);
        if (earnings == 0) return;
        uint256 before = token.balanceOf(provider);
        vm.prank(provider);
        assertEq(vms.withdrawEarnings(), earnings, "withdraws all earnings");
        assertEq(token.balanceOf(provider) - before, earnings, "provider receives its earnings");
        withdrawn += earnings;
        calls["withdraw"]++;
    }

    /// @dev Past its provisioning deadline a VM can only be expired (the provider's reports revert).
    function _late(IVmRegistry.VmView memory v) internal view returns (bool) {
        return (v.state == VmState.Requested || v.state == VmState.Provisioning)
            && block.timestamp > v.provisioningDeadline;
    }

    function _pick(uint256 seed) internal view returns (uint256 vmId, IVmRegistry.VmView memory v) {
        if (_live.length == 0) return (0, v);
        vmId = _live[seed % _live.length];
        v = vms.getVm(vmId);
    }

    /// @dev Drops the VM `_pick(seed)` returned from the live list.
    function _retire(uint256 seed) internal {
        uint256 i = seed % _live.length;
        _live[i] = _live[_live.length - 1];
        _live.pop();
    }
}

/// @dev Money and state-machine invariants over random sequences of handler calls.
contract VmRegistryInvariantTest is VmRegistryTestBase {
    VmRegistryHandler internal handler;
    uint256 internal everyone;

    function setUp() public override {
        super.setUp();
        handler = new VmRegistryHandler(vms, providers, token, [tenant, tenant2], [provider, provider2]);
        everyone = _holdings();
        targetContract(address(handler));
        bytes4[] memory actions = new bytes4[](10);
        actions[0] = VmRegistryHandler.warp.selector;
        actions[1] = VmRegistryHandler.request.selector;
        actions[2] = VmRegistryHandler.reportProvisioning.selector;
        actions[3] = VmRegistryHandler.reportRunning.selector;
        actions[4] = VmRegistryHandler.stop.selector;
        actions[5] = VmRegistryHandler.start.selector;
        actions[6] = VmRegistryHandler.terminate.selector;
        actions[7] = VmRegistryHandler.fail.selector;
        actions[8] = VmRegistryHandler.settle.selector;
        actions[9] = VmRegistryHandler.withdraw.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: actions}));
    }

    /// One campaign checks every money and state property after each call (each `invariant_` function
    /// would otherwise get a campaign of its own).
    /// Runs and depth come from the test profile in hardhat.config.ts (default: CI, bench: 10,000 runs).
    function invariant_moneyIsConserved() public {
        _checkEveryVmSplitsItsDepositExactly();
        _checkEscrowHoldsDepositsMinusRefundsAndWithdrawals();
        _checkEarningsNeverExceedBilling();
        assertEq(_holdings(), everyone, "no token enters or leaves the tenants, providers and escrow");
        _checkEscrowEqualsLiveBalancesPlusEarningsOnceSettled();
    }

    /// deposit == balance + paid + refunded for every VM; terminal VMs hold nothing, live ones refunded nothing.
    function _checkEveryVmSplitsItsDepositExactly() internal view {
        uint256 n = vms.vmCount();
        for (uint256 id = 1; id <= n; id++) {
            IVmRegistry.VmView memory v = vms.getVm(id);
            assertEq(v.deposit, v.balance + v.paid + v.refunded, "deposit identity");
            assertLe(v.paid, v.deposit, "paid more than the deposit");
            if (v.state == VmState.Failed || v.state == VmState.Terminated) assertEq(v.balance, 0, "terminal balance");
            else assertEq(v.refunded, 0, "live VMs refund nothing");
        }
    }

    /// The escrow holds every deposit minus what was refunded and what providers withdrew.
    function _checkEscrowHoldsDepositsMinusRefundsAndWithdrawals() internal view {
        uint256 n = vms.vmCount();
        uint256 kept;
        for (uint256 id = 1; id <= n; id++) {
            IVmRegistry.VmView memory v = vms.getVm(id);
            kept += v.deposit - v.refunded;
        }
        assertEq(token.balanceOf(address(vms)) + handler.withdrawn(), kept, "escrow + withdrawn == deposits - refunds");
    }

    /// Settled earnings plus withdrawals never exceed what the VMs were billed.
    function _checkEarningsNeverExceedBilling() internal view {
        uint256 n = vms.vmCount();
        uint256 billed;
        for (uint256 id = 1; id <= n; id++) {
            billed += vms.getVm(id).paid;
        }
        assertLe(vms.earningsOf(provider) + vms.earningsOf(provider2) + handler.withdrawn(), billed, "earnings > billed");
    }

    /// Settles on a snapshot and reverts to it, so the campaign's state is not changed.
    function _checkEscrowEqualsLiveBalancesPlusEarningsOnceSettled() internal {
        uint256 snapshot = vm.snapshotState();
        _assertEscrowIsLiveBalancesPlusEarningsOnceSettled();
        vm.revertToState(snapshot);
    }

    function _holdings() internal view returns (uint256) {
        return token.balanceOf(tenant) + token.balanceOf(tenant2) + token.balanceOf(address(vms))
            + token.balanceOf(provider) + token.balanceOf(provider2);
    }
}
