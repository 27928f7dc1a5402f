// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IOrderBook} from "./interfaces/IOrderBook.sol";
import {IProviderRegistry, LeaseStatus} from "./interfaces/IProviderRegistry.sol";
import {IVmRegistry, VmState} from "./interfaces/IVmRegistry.sol";
import {Billing} from "./libraries/Billing.sol";
import {OrderBook} from "./OrderBook.sol";
import {Resources} from "./types/Resources.sol";
import {Vm} from "./types/Vm.sol";

/// @title VmRegistry
/// @notice The marketplace's lifecycle: direct requests and open orders (their bids and regions kept in the
/// {OrderBook} this registry deploys), leases, streaming escrow with a platform fee ({Billing}), top-ups, suspension with a grace period,
/// provisioning deadlines with slashing, provider exit with notice and migration.
/// @dev A Running VM's debt moves to the provider's earnings and the fees whenever the VM is touched, and a debt
/// that empties the balance suspends the VM at the second the money ran out. Once a VM is terminal its `balance`
/// keeps the amount refunded, so `billed = deposit - balance` holds in every state.
contract VmRegistry is IVmRegistry {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;
    using Billing for Vm;

    /// @notice Bids that stand on one open order at a time.
    uint256 public constant MAX_BIDS = 8;
    /// @notice Regions one open order (or one migration to a named provider) can allow.
    uint256 public constant MAX_REGIONS = 4;
    /// @notice Highest platform fee governance can set (10%).
    uint16 public constant MAX_FEE_BPS = 1_000;
    uint32 public constant MIN_WINDOW = 1 minutes;
    uint32 public constant MAX_WINDOW = 30 days;
    /// @notice Shortest grace period and exit notice governance can set.
    uint32 public constant MIN_NOTICE = 1 hours;

    /// @dev One slot, read by every settlement; the treasury lives apart because only fee withdrawals read it.
    struct Config {
        uint16 feeBps;
        uint32 bidWindow;
        uint32 provisioningTimeout;
        uint32 gracePeriod;
        uint32 lowBalanceHorizon;
        uint32 exitNotice;
    }

    IERC20 private immutable _token;
    IProviderRegistry private immutable _registry;
    IOrderBook private immutable _orderBook;
    address private immutable _governance;

    Config private _config;
    address private _treasury;
    /// @dev `_vmCount` and `_fees` share a slot, so accruing the first fee after a withdrawal does not write a
    /// zero slot (the count is non-zero once any VM exists). A uint64 count and uint192 fees are far beyond any
    /// reachable value (fees are bounded by the tokens escrowed here); the additions stay checked, so they revert,
    /// never wrap. (Declared in this order: a uint64 first would pack with `_treasury` instead.)
    uint192 private _fees;
    uint64 private _vmCount;
    mapping(uint256 vmId => Vm) private _vms;
    mapping(address provider => uint256) private _earnings;
    mapping(uint256 newVmId => uint256 oldVmId) private _migratedFrom;

    constructor(IERC20 token, IProviderRegistry registry, address governance_, Parameters memory parameters_) {
        _token = token;
        _registry = registry;
        _governance = governance_;
        _orderBook = new OrderBook();
        _setParameters(parameters_);
    }

    // ---------------------------------------------------------------- tenant

    /// @inheritdoc IVmRegistry
    function requestVm(
        address provider,
        bytes32 manifestDigest,
        Resources calldata resources,
        uint256 maxPricePerSecond,
        uint256 deposit
    ) external returns (uint256 vmId) {
        (vmId,) = _request(provider, manifestDigest, resources, maxPricePerSecond, deposit, false);
    }

    /// @inheritdoc IVmRegistry
    function requestVmWithPermit(
        address provider,
        bytes32 manifestDigest,
        Resources calldata resources,
        uint256 maxPricePerSecond,
        uint256 deposit,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 vmId) {
        // A front-runner may have submitted the same permit already; the allowance is then in place,
        // and the transfer below still fails if it is not.
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), deposit, permitDeadline, v, r, s) {} catch {}
        (vmId,) = _request(provider, manifestDigest, resources, maxPricePerSecond, deposit, false);
    }

    /// @inheritdoc IVmRegistry
    function openOrder(
        bytes32 manifestDigest,
        Resources calldata resources,
        bytes32[] calldata regions,
        uint256 maxPricePerSecond,
        uint256 deposit
    ) external returns (uint256) {
        return _openOrder(manifestDigest, resources, regions, maxPricePerSecond, deposit, false);
    }

    /// @inheritdoc IVmRegistry
    function acceptBid(uint256 vmId, uint256 index, address provider) external {
        Vm storage vm = _ownedVm(vmId);
        _expectState(vmId, vm, VmState.Bidding);
        Bid[] memory bids = _orderBook.bids(vmId);
        uint256 count = bids.length;
        if (index >= count) revert VmRegistryUnknownBid(vmId, index, count);
        // An eviction shifts the list: the owner's choice is the provider, the index only finds it.
        address found = bids[index].provider;
        if (found != provider) revert VmRegistryBidMoved(vmId, index, provider, found);
        _award(vmId, vm, bids, index);
    }

    /// @inheritdoc IVmRegistry
    function topUp(uint256 vmId, uint256 amount) external {
        Vm storage vm = _ownedVm(vmId);
        if (amount == 0) revert VmRegistryZeroAmount();
        _settle(vmId, vm, true);
        VmState state = vm.state;
        if (_isTerminal(state)) revert VmRegistryUnexpectedState(vmId, state);
        if (state == VmState.Suspended) {
            uint64 graceEndsAt = uint64(vm.settledAt) + _config.gracePeriod;
            if (block.timestamp >= graceEndsAt) revert VmRegistryGraceExpired(vmId, graceEndsAt);
        }
        uint256 balance = vm.balance + amount;
        vm.balance = balance.toUint96();
        vm.deposit = (vm.deposit + amount).toUint96();
        emit VmToppedUp(vmId, vm.owner, vm.provider, amount, balance);
        if (state == VmState.Suspended) _transition(vmId, vm, VmState.Starting, 0);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IVmRegistry
    function migrateVm(
        uint256 vmId,
        address provider,
        bytes32[] calldata regions,
        uint256 maxPricePerSecond,
        uint256 deposit
    ) external returns (uint256 newVmId) {
        Vm storage vm = _ownedVm(vmId);
        _settle(vmId, vm, true);
        VmState state = vm.state;
        if (_isTerminal(state) || state == VmState.Bidding) revert VmRegistryUnexpectedState(vmId, state);
        if (vm.migrationPending) revert VmRegistryMigrationPending(vmId, _migratedFrom[vmId]);
        newVmId = _vmCount + 1;
        emit VmMigrationRequested(vmId, vm.owner, vm.provider, newVmId);
        _migratedFrom[newVmId] = vmId;
        Resources memory resources = _resourcesOf(vm);
        if (provider == address(0)) {
            _openOrder(vm.manifestDigest, resources, regions, maxPricePerSecond, deposit, true);
        } else {
            uint256 regionCount = regions.length;
            if (regionCount > MAX_REGIONS) revert VmRegistryInvalidRegions(regionCount, MAX_REGIONS);
            (, bytes32 region) = _request(provider, vm.manifestDigest, resources, maxPricePerSecond, deposit, true);
            if (regionCount != 0 && !_contains(regions, region)) revert VmRegistryRegionNotAllowed(vmId, region);
        }
    }

    /// @inheritdoc IVmRegistry
    function stopVm(uint256 vmId) external {
        Vm storage vm = _ownedVm(vmId);
        _settle(vmId, vm, true);
        _expectState(vmId, vm, VmState.Running);
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
        if (_isTerminal(state)) revert VmRegistryUnexpectedState(vmId, state);
        if (state == VmState.Bidding) _releaseBids(vm, _orderBook.bids(vmId), type(uint256).max);
        _close(vmId, vm, VmState.Terminated, 0);
    }

    // -------------------------------------------------------------- provider

    /// @inheritdoc IVmRegistry
    function bid(uint256 vmId, uint256 pricePerSecond) external {
        Vm storage vm = _existingVm(vmId);
        _expectState(vmId, vm, VmState.Bidding);
        uint32 endsAt = vm.biddingEndsAt;
        if (block.timestamp >= endsAt) revert VmRegistryBiddingClosed(vmId, endsAt);
        uint256 maxPrice = vm.maxPricePerSecond;
        if (pricePerSecond > maxPrice) revert VmRegistryBidAboveMax(vmId, pricePerSecond, maxPrice);
        address provider = _registry.providerOfOperator(msg.sender);
        if (provider == address(0)) revert VmRegistryNotAnOperator(msg.sender);
        Resources memory resources = _resourcesOf(vm);
        // A bid is binding: the capacity is reserved now and returned only when the bid leaves.
        bytes32 region = _lease(provider, resources);
        (uint256 index, Bid memory evicted) = _orderBook.place(vmId, provider, pricePerSecond, region);
        address owner = vm.owner;
        if (evicted.provider != address(0)) {
            _registry.release(evicted.provider, resources);
            emit VmBidEvicted(vmId, owner, evicted.provider, evicted.pricePerSecond);
        }
        // `index < MAX_BIDS`.
        emit VmBidPlaced(vmId, owner, provider, pricePerSecond, uint8(index));
    }

    /// @inheritdoc IVmRegistry
    function reportProvisioning(uint256 vmId) external {
        Vm storage vm = _operatedVm(vmId);
        _expectState(vmId, vm, VmState.Requested);
        _checkDeadline(vmId, vm);
        _transition(vmId, vm, VmState.Provisioning, 0);
    }

    /// @inheritdoc IVmRegistry
    function reportRunning(uint256 vmId) external {
        Vm storage vm = _operatedVm(vmId);
        VmState state = vm.state;
        // Requested -> Running directly is allowed: a provider that provisions fast need not report Provisioning.
        if (state == VmState.Requested || state == VmState.Provisioning) {
            _checkDeadline(vmId, vm);
        } else if (state != VmState.Starting) {
            revert VmRegistryUnexpectedState(vmId, state);
        }
        vm.settledAt = uint32(block.timestamp);
        _transition(vmId, vm, VmState.Running, 0);
        if (vm.migrationPending) {
            vm.migrationPending = false;
            uint256 oldId = _migratedFrom[vmId];
            Vm storage old = _vms[oldId];
            if (!_isTerminal(old.state)) {
                emit VmMigrated(oldId, old.owner, old.provider, vmId);
                _close(oldId, old, VmState.Terminated, 0);
            }
        }
    }

    /// @inheritdoc IVmRegistry
    function reportFailed(uint256 vmId, uint8 reason) external {
        Vm storage vm = _operatedVm(vmId);
        if (reason == 0) revert VmRegistryMissingFailureReason(vmId);
        VmState state = vm.state;
        if (state == VmState.Stopped || _isTerminal(state)) revert VmRegistryUnexpectedState(vmId, state);
        if (state == VmState.Requested || state == VmState.Provisioning) _checkDeadline(vmId, vm);
        _close(vmId, vm, VmState.Failed, reason);
    }

    /// @inheritdoc IVmRegistry
    function reclaimVm(uint256 vmId) external {
        Vm storage vm = _operatedVm(vmId);
        VmState state = vm.state;
        if (_isTerminal(state)) revert VmRegistryUnexpectedState(vmId, state);
        if (vm.reclaimed) revert VmRegistryAlreadyReclaimed(vmId, vm.reclaimAt);
        _settle(vmId, vm, true);
        uint32 reclaimAt = uint32(block.timestamp + _config.exitNotice);
        vm.reclaimAt = reclaimAt;
        vm.reclaimed = true;
        emit VmReclaimAnnounced(vmId, vm.owner, vm.provider, reclaimAt);
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
    function award(uint256 vmId) external {
        Vm storage vm = _existingVm(vmId);
        _expectState(vmId, vm, VmState.Bidding);
        uint32 endsAt = vm.biddingEndsAt;
        if (block.timestamp < endsAt) revert VmRegistryBiddingOpen(vmId, endsAt);
        (uint256 index, Bid[] memory bids) = _orderBook.lowestBid(vmId);
        _award(vmId, vm, bids, index);
    }

    /// @inheritdoc IVmRegistry
    function expireVm(uint256 vmId) external {
        Vm storage vm = _existingVm(vmId);
        VmState state = vm.state;
        if (state != VmState.Requested && state != VmState.Provisioning) revert VmRegistryUnexpectedState(vmId, state);
        uint32 deadline = vm.provisioningDeadline;
        if (block.timestamp <= deadline) revert VmRegistryDeadlineNotPassed(vmId, deadline);
        address owner = vm.owner;
        address provider = vm.provider;
        // Nothing was billed before Running, so `_close` refunds the whole deposit: the lease's value.
        uint256 leaseValue = vm.deposit;
        _close(vmId, vm, VmState.Terminated, 0);
        (uint256 slashed, uint256 toTenant) = _registry.slash(provider, vmId, owner, _treasury, leaseValue);
        emit VmExpired(vmId, owner, provider, slashed, toTenant);
    }

    /// @inheritdoc IVmRegistry
    function closeVm(uint256 vmId) external {
        Vm storage vm = _existingVm(vmId);
        _settle(vmId, vm, true);
        VmState state = vm.state;
        uint64 closableAt;
        if (state == VmState.Suspended) {
            closableAt = uint64(vm.settledAt) + _config.gracePeriod;
        }
        if (vm.reclaimed && !_isTerminal(state)) {
            uint64 reclaimAt = vm.reclaimAt;
            if (closableAt == 0 || reclaimAt < closableAt) closableAt = reclaimAt;
        }
        if (closableAt == 0 || block.timestamp < closableAt) revert VmRegistryNotClosable(vmId, state, closableAt);
        _close(vmId, vm, VmState.Terminated, 0);
    }

    /// @inheritdoc IVmRegistry
    function settle(uint256 vmId) external {
        _settle(vmId, _existingVm(vmId), true);
    }

    /// @inheritdoc IVmRegistry
    function withdrawFees() external returns (uint256 amount) {
        amount = _fees;
        address treasury = _treasury;
        if (amount == 0) revert VmRegistryNothingToWithdraw(treasury);
        _fees = 0;
        emit FeesWithdrawn(treasury, amount);
        _token.safeTransfer(treasury, amount);
    }

    // ------------------------------------------------------------ governance

    /// @inheritdoc IVmRegistry
    function setParameters(Parameters calldata parameters_) external {
        if (msg.sender != _governance) revert VmRegistryNotGovernance(msg.sender);
        _setParameters(parameters_);
    }

    // ----------------------------------------------------------------- views

    /// @inheritdoc IVmRegistry
    function getVm(uint256 vmId) external view returns (VmView memory view_) {
        Vm storage vm = _existingVm(vmId);
        (uint256 due, uint32 settledAt, bool exhausted) = vm.owed(block.timestamp);
        VmState state = exhausted ? VmState.Suspended : vm.state;
        bool terminal = _isTerminal(state);
        uint256 deposit = vm.deposit;
        uint256 balanceLeft = vm.balance - due;
        uint256 billed = deposit - balanceLeft;
        view_.owner = vm.owner;
        view_.provider = vm.provider;
        view_.state = state;
        view_.resources = _resourcesOf(vm);
        view_.manifestDigest = vm.manifestDigest;
        view_.pricePerSecond = vm.pricePerSecond;
        view_.deposit = deposit;
        view_.balance = terminal ? 0 : balanceLeft;
        view_.refunded = terminal ? vm.balance : 0;
        if (state == VmState.Bidding) {
            view_.pricePerSecond = vm.maxPricePerSecond;
            view_.biddingEndsAt = vm.biddingEndsAt;
            // At most MAX_BIDS.
            view_.bidCount = uint8(_orderBook.bids(vmId).length);
        } else {
            view_.feeBps = vm.feeBps;
            view_.fee = Billing.feeOf(billed, vm.feeBps);
        }
        view_.paid = billed - view_.fee;
        if (state == VmState.Requested || state == VmState.Provisioning) {
            view_.provisioningDeadline = vm.provisioningDeadline;
        } else if (state == VmState.Suspended) {
            view_.suspendedAt = settledAt;
        }
        if (state != VmState.Bidding && state != VmState.Requested && state != VmState.Provisioning) {
            view_.lastSettledAt = settledAt;
        }
        view_.failureReason = vm.failureReason;
        view_.reclaimAt = vm.reclaimAt;
        view_.migratedFrom = _migratedFrom[vmId];
    }

    /// @inheritdoc IVmRegistry
    function getBids(uint256 vmId) external view returns (Bid[] memory) {
        _existingVm(vmId);
        return _orderBook.bids(vmId);
    }

    /// @inheritdoc IVmRegistry
    function getRegions(uint256 vmId) external view returns (bytes32[] memory) {
        _existingVm(vmId);
        return _orderBook.regions(vmId);
    }

    /// @inheritdoc IVmRegistry
    function earningsOf(address provider) external view returns (uint256) {
        return _earnings[provider];
    }

    /// @inheritdoc IVmRegistry
    function feesAccrued() external view returns (uint256) {
        return _fees;
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

    /// @inheritdoc IVmRegistry
    function orderBook() external view returns (address) {
        return address(_orderBook);
    }

    /// @inheritdoc IVmRegistry
    function governance() external view returns (address) {
        return _governance;
    }

    /// @inheritdoc IVmRegistry
    function parameters() external view returns (Parameters memory p) {
        Config memory c = _config;
        p = Parameters(_treasury, c.feeBps, c.bidWindow, c.provisioningTimeout, c.gracePeriod, c.lowBalanceHorizon, c.exitNotice);
    }

    // -------------------------------------------------------------- internal

    /// @dev Leases `provider`'s capacity at its current price, refusing a price above `maxPricePerSecond`.
    /// Emits {VmRequested} and {VmStateChanged}. Returns the new id and the provider's region.
    function _request(
        address provider,
        bytes32 manifestDigest,
        Resources memory resources,
        uint256 maxPricePerSecond,
        uint256 deposit,
        bool migration
    ) private returns (uint256 vmId, bytes32 region) {
        _checkRequest(manifestDigest, resources, deposit);
        (,, uint256 price) = _registry.quote(provider, resources);
        region = _lease(provider, resources);
        if (price > maxPricePerSecond) revert VmRegistryPriceAboveMax(provider, price, maxPricePerSecond);

        Config memory config = _config;
        vmId = _newVm(manifestDigest, resources, deposit);
        Vm storage vm = _vms[vmId];
        vm.provider = provider;
        vm.pricePerSecond = price.toUint88();
        vm.state = VmState.Requested;
        vm.feeBps = config.feeBps;
        vm.migrationPending = migration;
        // A stated maximum above uint88 is kept as uint88's maximum: no price (a uint88, cast above) exceeds either.
        vm.maxPricePerSecond = uint88(maxPricePerSecond < type(uint88).max ? maxPricePerSecond : type(uint88).max);
        vm.provisioningDeadline = uint32(block.timestamp + config.provisioningTimeout);

        emit VmRequested(vmId, msg.sender, provider, manifestDigest, resources, price, deposit);
        emit VmStateChanged(vmId, msg.sender, provider, VmState.None, VmState.Requested, 0);
        _token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @dev Emits {VmOrderOpened} and {VmStateChanged}.
    function _openOrder(
        bytes32 manifestDigest,
        Resources memory resources,
        bytes32[] calldata regions,
        uint256 maxPricePerSecond,
        uint256 deposit,
        bool migration
    ) private returns (uint256 vmId) {
        _checkRequest(manifestDigest, resources, deposit);
        uint32 biddingEndsAt = uint32(block.timestamp + _config.bidWindow);
        vmId = _newVm(manifestDigest, resources, deposit);
        // No call to the order book for an order that allows every region.
        if (regions.length != 0) _orderBook.setRegions(vmId, regions);
        Vm storage vm = _vms[vmId];
        vm.state = VmState.Bidding;
        vm.migrationPending = migration;
        vm.maxPricePerSecond = maxPricePerSecond.toUint88();
        vm.biddingEndsAt = biddingEndsAt;

        emit VmOrderOpened(
            vmId, msg.sender, address(0), manifestDigest, resources, regions, maxPricePerSecond, deposit, biddingEndsAt
        );
        emit VmStateChanged(vmId, msg.sender, address(0), VmState.None, VmState.Bidding, 0);
        _token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @dev Writes what every new VM has: its owner, resources, manifest and deposit. Returns its id.
    function _newVm(bytes32 manifestDigest, Resources memory resources, uint256 deposit)
        private
        returns (uint256 vmId)
    {
        vmId = ++_vmCount;
        Vm storage vm = _vms[vmId];
        vm.owner = msg.sender;
        vm.vcpu = resources.vcpu;
        vm.memoryMiB = resources.memoryMiB;
        vm.diskGiB = resources.diskGiB;
        uint96 amount = deposit.toUint96();
        vm.deposit = amount;
        vm.balance = amount;
        vm.manifestDigest = manifestDigest;
    }

    function _checkRequest(bytes32 manifestDigest, Resources memory resources, uint256 deposit) private pure {
        if (deposit == 0) revert VmRegistryZeroDeposit();
        if (resources.vcpu == 0 || resources.memoryMiB == 0 || resources.diskGiB == 0) {
            revert VmRegistryZeroResources(resources.vcpu, resources.memoryMiB, resources.diskGiB);
        }
        if (manifestDigest == bytes32(0)) revert VmRegistryEmptyManifest();
    }

    /// @dev Reserves `resources` of `provider`'s capacity or reverts with why it cannot. Returns its region.
    function _lease(address provider, Resources memory resources) private returns (bytes32 region) {
        LeaseStatus status;
        Resources memory available;
        (status, region, available) = _registry.tryLease(provider, resources);
        if (status == LeaseStatus.NotRegistered) revert VmRegistryUnknownProvider(provider);
        if (status == LeaseStatus.StakeTooLow) revert VmRegistryProviderStakeTooLow(provider);
        if (status == LeaseStatus.ExceedsCapacity) revert VmRegistryExceedsCapacity(provider, resources, available);
        if (status == LeaseStatus.NoOperator) revert VmRegistryProviderNoOperator(provider);
    }

    /// @dev Leases order `vmId` to `bids[winner]` (whose capacity its bid reserved) and releases the other bids.
    /// Emits {VmAwarded} and {VmStateChanged}.
    function _award(uint256 vmId, Vm storage vm, Bid[] memory bids, uint256 winner) private {
        _releaseBids(vm, bids, winner);
        Bid memory chosen = bids[winner];
        Config memory config = _config;
        uint32 deadline = uint32(block.timestamp + config.provisioningTimeout);
        vm.provider = chosen.provider;
        vm.pricePerSecond = chosen.pricePerSecond;
        vm.state = VmState.Requested;
        vm.feeBps = config.feeBps;
        vm.provisioningDeadline = deadline;
        address owner = vm.owner;
        emit VmAwarded(vmId, owner, chosen.provider, chosen.pricePerSecond, deadline);
        emit VmStateChanged(vmId, owner, chosen.provider, VmState.Bidding, VmState.Requested, 0);
    }

    /// @dev Releases the capacity every bid but `keep` reserved (at most MAX_BIDS calls).
    function _releaseBids(Vm storage vm, Bid[] memory bids, uint256 keep) private {
        uint256 count = bids.length;
        if (count == 0) return;
        Resources memory resources = _resourcesOf(vm);
        for (uint256 i; i < count; ++i) {
            if (i != keep) _registry.release(bids[i].provider, resources);
        }
    }

    /// @dev Reverts once the provisioning deadline of a VM still being provisioned has passed.
    function _checkDeadline(uint256 vmId, Vm storage vm) private view {
        uint32 deadline = vm.provisioningDeadline;
        if (block.timestamp > deadline) revert VmRegistryDeadlinePassed(vmId, deadline);
    }

    function _contains(bytes32[] calldata list, bytes32 value) private pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == value) return true;
        }
        return false;
    }

    /// @dev Settles, refunds the rest, releases the provider's capacity and makes the VM terminal.
    /// Emits {VmSettled} (when billing was due), {VmStateChanged} and {VmRefunded} (when anything is left).
    function _close(uint256 vmId, Vm storage vm, VmState terminal, uint8 reason) private {
        // No low-balance warning for a VM that is ending (and no read of the horizon).
        _settle(vmId, vm, false);
        uint256 refund = vm.balance;
        address provider = vm.provider;
        _transition(vmId, vm, terminal, reason);
        if (provider != address(0)) _registry.release(provider, _resourcesOf(vm));
        if (refund != 0) {
            emit VmRefunded(vmId, vm.owner, provider, refund);
            _token.safeTransfer(vm.owner, refund);
        }
    }

    /// @dev Moves what a Running VM owes into its provider's earnings and the fees, suspending the VM when its
    /// deposit ran out. Emits {VmSettled} when anything moved, {VmStateChanged} on suspension and {VmLowBalance}
    /// when `warn` and the balance left lasts less than the warning horizon.
    function _settle(uint256 vmId, Vm storage vm, bool warn) private {
        if (vm.state != VmState.Running) return;
        (uint256 due, uint256 fee, bool exhausted) = vm.settle(block.timestamp);
        uint256 balanceLeft = vm.balance;
        if (due != 0) {
            address provider = vm.provider;
            _earnings[provider] += due - fee;
            // `fee <= due <= balance`, a uint96.
            if (fee != 0) _fees += uint192(fee);
            emit VmSettled(vmId, vm.owner, provider, due, fee, balanceLeft);
        }
        if (exhausted) {
            _transition(vmId, vm, VmState.Suspended, 0);
            return;
        }
        if (!warn) return;
        uint256 price = vm.pricePerSecond;
        if (price != 0 && balanceLeft < price * _config.lowBalanceHorizon) {
            emit VmLowBalance(vmId, vm.owner, vm.provider, balanceLeft, balanceLeft / price);
        }
    }

    /// @dev Emits {VmStateChanged} with the VM's provider indexed.
    function _transition(uint256 vmId, Vm storage vm, VmState to, uint8 reason) private {
        VmState from = vm.state;
        vm.state = to;
        if (reason != 0) vm.failureReason = reason;
        emit VmStateChanged(vmId, vm.owner, vm.provider, from, to, reason);
    }

    /// @dev Emits {ParametersChanged}.
    function _setParameters(Parameters memory p) private {
        if (p.treasury == address(0)) revert VmRegistryInvalidParameter("treasury", 0, 1, type(uint160).max);
        if (p.feeBps > MAX_FEE_BPS) revert VmRegistryInvalidParameter("feeBps", p.feeBps, 0, MAX_FEE_BPS);
        _checkWindow("bidWindow", p.bidWindow, MIN_WINDOW);
        _checkWindow("provisioningTimeout", p.provisioningTimeout, MIN_WINDOW);
        _checkWindow("gracePeriod", p.gracePeriod, MIN_NOTICE);
        _checkWindow("lowBalanceHorizon", p.lowBalanceHorizon, 0);
        _checkWindow("exitNotice", p.exitNotice, MIN_NOTICE);
        _treasury = p.treasury;
        _config = Config(p.feeBps, p.bidWindow, p.provisioningTimeout, p.gracePeriod, p.lowBalanceHorizon, p.exitNotice);
        emit ParametersChanged(p);
    }

    function _checkWindow(bytes32 name, uint32 value, uint32 min) private pure {
        if (value < min || value > MAX_WINDOW) revert VmRegistryInvalidParameter(name, value, min, MAX_WINDOW);
    }

    function _resourcesOf(Vm storage vm) private view returns (Resources memory) {
        return Resources(vm.vcpu, vm.memoryMiB, vm.diskGiB);
    }

    function _isTerminal(VmState state) private pure returns (bool) {
        return state == VmState.Failed || state == VmState.Terminated;
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
