// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {IVmRegistry, VmState} from "./interfaces/IVmRegistry.sol";
import {Resources} from "./types/Resources.sol";

/// @title VmRegistry
/// @notice Escrow and lifecycle of VMs requested from a chosen provider.
/// @dev Billing is derived, not pushed: a Running VM owes `(now - lastSettledAt) * pricePerSecond`,
/// capped by its balance, and that debt moves to the provider's earnings whenever the VM is touched.
/// Once a VM is terminal its `balance` field keeps the amount refunded, so
/// `paid = deposit - balance` holds in every state and no extra slot is written.
contract VmRegistry is IVmRegistry {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @dev Four slots. Resource fields are inlined because a nested struct would start a new slot.
    struct Vm {
        // slot 0: owner (160) | vcpu (32) | memoryMiB (32) | diskGiB (32)
        address owner;
        uint32 vcpu;
        uint32 memoryMiB;
        uint32 diskGiB;
        // slot 1: provider (160) | deposit (96)
        address provider;
        uint96 deposit;
        // slot 2: pricePerSecond (96) | balance (96) | lastSettledAt (40) | state (8) | failureReason (8)
        uint96 pricePerSecond;
        uint96 balance;
        uint40 lastSettledAt;
        VmState state;
        uint8 failureReason;
        // slot 3
        bytes32 manifestDigest;
    }

    IERC20 private immutable _token;
    IProviderRegistry private immutable _registry;

    uint256 private _vmCount;
    mapping(uint256 vmId => Vm) private _vms;
    mapping(address provider => uint256) private _earnings;

    constructor(IERC20 token, IProviderRegistry registry) {
        _token = token;
        _registry = registry;
    }

    // ---------------------------------------------------------------- tenant

    /// @inheritdoc IVmRegistry
    function requestVm(address provider, bytes32 manifestDigest, Resources calldata resources, uint256 deposit)
        external
        returns (uint256)
    {
        return _request(provider, manifestDigest, resources, deposit);
    }

    /// @inheritdoc IVmRegistry
    function requestVmWithPermit(
        address provider,
        bytes32 manifestDigest,
        Resources calldata resources,
        uint256 deposit,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256) {
        // A front-runner may have submitted the same permit already; the allowance is then in place,
        // and the transfer below still fails if it is not.
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), deposit, permitDeadline, v, r, s) {} catch {}
        return _request(provider, manifestDigest, resources, deposit);
    }

    /// @inheritdoc IVmRegistry
    function stopVm(uint256 vmId) external {
        Vm storage vm = _ownedVm(vmId);
        _expectState(vmId, vm, VmState.Running);
        _settle(vmId, vm);
        _transition(vmId, vm, VmState.Stopped, 0);
    }

    /// @inheritdoc IVmRegistry
    function startVm(uint256 vmId) external {
        Vm storage vm = _ownedVm(vmId);
        _expectState(vmId, vm, VmState.Stopped);
        _transition(vmId, vm, VmState.Starting, 0);
    }

    /// @inheritdoc IVmRegistry
    function terminateVm(uint256 vmId) external {
        Vm storage vm = _ownedVm(vmId);
        VmState state = vm.state;
        if (state == VmState.Failed || state == VmState.Terminated) revert VmRegistryUnexpectedState(vmId, state);
        _close(vmId, vm, VmState.Terminated, 0);
    }

    // -------------------------------------------------------------- provider

    /// @inheritdoc IVmRegistry
    function reportProvisioning(uint256 vmId) external {
        Vm storage vm = _operatedVm(vmId);
        _expectState(vmId, vm, VmState.Requested);
        _transition(vmId, vm, VmState.Provisioning, 0);
    }

    /// @inheritdoc IVmRegistry
    function reportRunning(uint256 vmId) external {
        Vm storage vm = _operatedVm(vmId);
        VmState state = vm.state;
        if (state != VmState.Provisioning && state != VmState.Starting) revert VmRegistryUnexpectedState(vmId, state);
        vm.lastSettledAt = uint40(block.timestamp);
        _transition(vmId, vm, VmState.Running, 0);
    }

    /// @inheritdoc IVmRegistry
    function reportFailed(uint256 vmId, uint8 reason) external {
        Vm storage vm = _operatedVm(vmId);
        if (reason == 0) revert VmRegistryMissingFailureReason(vmId);
        VmState state = vm.state;
        if (state == VmState.Stopped || state == VmState.Failed || state == VmState.Terminated) {
            revert VmRegistryUnexpectedState(vmId, state);
        }
        _close(vmId, vm, VmState.Failed, reason);
    }

    /// @inheritdoc IVmRegistry
    function withdrawEarnings() external returns (uint256 amount) {
        amount = _earnings[msg.sender];
        if (amount == 0) revert VmRegistryNothingToWithdraw(msg.sender);
        _earnings[msg.sender] = 0;
        emit EarningsWithdrawn(msg.sender, msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- anyone

    /// @inheritdoc IVmRegistry
    function settle(uint256 vmId) external {
        _settle(vmId, _existingVm(vmId));
    }

    /// @inheritdoc IVmRegistry
    function getVm(uint256 vmId) external view returns (VmView memory view_) {
        Vm storage vm = _existingVm(vmId);
        bool terminal = vm.state == VmState.Failed || vm.state == VmState.Terminated;
        uint256 due = _due(vm);
        view_.owner = vm.owner;
        view_.provider = vm.provider;
        view_.state = vm.state;
        view_.resources = Resources(vm.vcpu, vm.memoryMiB, vm.diskGiB);
        view_.manifestDigest = vm.manifestDigest;
        view_.pricePerSecond = vm.pricePerSecond;
        view_.deposit = vm.deposit;
        view_.balance = terminal ? 0 : vm.balance - due;
        view_.paid = vm.deposit - vm.balance + due;
        view_.refunded = terminal ? vm.balance : 0;
        // As `_settle` would store it: a Running VM is settled up to now even when nothing is due
        // (zero price or balance used up).
        view_.lastSettledAt = vm.state == VmState.Running ? uint64(block.timestamp) : vm.lastSettledAt;
        view_.failureReason = vm.failureReason;
    }

    /// @inheritdoc IVmRegistry
    function earningsOf(address provider) external view returns (uint256) {
        return _earnings[provider];
    }

    /// @inheritdoc IVmRegistry
    function vmCount() external view returns (uint256) {
        return _vmCount;
    }

    /// @inheritdoc IVmRegistry
    function paymentToken() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IVmRegistry
    function providerRegistry() external view returns (address) {
        return address(_registry);
    }

    // -------------------------------------------------------------- internal

    /// @dev Emits {VmRequested} and {VmStateChanged}.
    function _request(address provider, bytes32 manifestDigest, Resources calldata resources, uint256 deposit)
        private
        returns (uint256 vmId)
    {
        if (deposit == 0) revert VmRegistryZeroDeposit();
        if (resources.vcpu == 0 || resources.memoryMiB == 0 || resources.diskGiB == 0) {
            revert VmRegistryZeroResources(resources.vcpu, resources.memoryMiB, resources.diskGiB);
        }
        if (manifestDigest == bytes32(0)) revert VmRegistryEmptyManifest();
        (bool registered, Resources memory capacity, uint256 price) = _registry.quote(provider, resources);
        if (!registered) revert VmRegistryUnknownProvider(provider);
        if (
            resources.vcpu > capacity.vcpu || resources.memoryMiB > capacity.memoryMiB
                || resources.diskGiB > capacity.diskGiB
        ) revert VmRegistryExceedsCapacity(provider, resources, capacity);

        vmId = ++_vmCount;
        Vm storage vm = _vms[vmId];
        vm.owner = msg.sender;
        vm.vcpu = resources.vcpu;
        vm.memoryMiB = resources.memoryMiB;
        vm.diskGiB = resources.diskGiB;
        vm.provider = provider;
        vm.deposit = deposit.toUint96();
        vm.pricePerSecond = price.toUint96();
        vm.balance = uint96(deposit);
        vm.state = VmState.Requested;
        vm.manifestDigest = manifestDigest;

        emit VmRequested(vmId, msg.sender, provider, manifestDigest, resources, price, deposit);
        emit VmStateChanged(vmId, msg.sender, provider, VmState.None, VmState.Requested, 0);
        _token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @dev Settles, refunds the rest and makes the VM terminal. Emits {VmSettled} (when billing was due),
    /// {VmRefunded} (when anything is left) and {VmStateChanged}.
    function _close(uint256 vmId, Vm storage vm, VmState terminal, uint8 reason) private {
        _settle(vmId, vm);
        uint256 refund = vm.balance;
        _transition(vmId, vm, terminal, reason);
        if (refund != 0) {
            emit VmRefunded(vmId, vm.owner, vm.provider, refund);
            _token.safeTransfer(vm.owner, refund);
        }
    }

    /// @dev Moves what a Running VM owes into its provider's earnings. Emits {VmSettled} when anything moved.
    function _settle(uint256 vmId, Vm storage vm) private {
        uint256 due = _due(vm);
        if (vm.state == VmState.Running) vm.lastSettledAt = uint40(block.timestamp);
        if (due == 0) return;
        // `due` is capped by `balance`, a uint96, so neither line can underflow or overflow.
        uint96 balanceLeft;
        unchecked {
            balanceLeft = vm.balance - uint96(due);
        }
        vm.balance = balanceLeft;
        address provider = vm.provider;
        _earnings[provider] += due;
        emit VmSettled(vmId, vm.owner, provider, due, balanceLeft);
    }

    /// @dev Emits {VmStateChanged}.
    function _transition(uint256 vmId, Vm storage vm, VmState to, uint8 reason) private {
        VmState from = vm.state;
        vm.state = to;
        if (reason != 0) vm.failureReason = reason;
        emit VmStateChanged(vmId, vm.owner, vm.provider, from, to, reason);
    }

    function _due(Vm storage vm) private view returns (uint256) {
        if (vm.state != VmState.Running) return 0;
        uint256 owed = (block.timestamp - vm.lastSettledAt) * vm.pricePerSecond;
        uint256 balance = vm.balance;
        return owed < balance ? owed : balance;
    }

    function _existingVm(uint256 vmId) private view returns (Vm storage vm) {
        vm = _vms[vmId];
        if (vm.state == VmState.None) revert VmRegistryUnknownVm(vmId);
    }

    function _ownedVm(uint256 vmId) private view returns (Vm storage vm) {
        vm = _existingVm(vmId);
        if (vm.owner != msg.sender) revert VmRegistryNotOwner(vmId, msg.sender, vm.owner);
    }

    function _operatedVm(uint256 vmId) private view returns (Vm storage vm) {
        vm = _existingVm(vmId);
        address operator = _registry.operatorOf(vm.provider);
        if (operator != msg.sender) revert VmRegistryNotOperator(vmId, msg.sender, operator);
    }

    function _expectState(uint256 vmId, Vm storage vm, VmState expected) private view {
        VmState current = vm.state;
        if (current != expected) revert VmRegistryUnexpectedState(vmId, current);
    }
}
