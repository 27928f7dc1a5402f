// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IProviderRegistry, LeaseStatus} from "./interfaces/IProviderRegistry.sol";
import {IVmRegistry, VmState} from "./interfaces/IVmRegistry.sol";
import {Resources} from "./types/Resources.sol";

/// @title VmRegistry
/// @notice The marketplace: direct requests and open orders with bids, leases, streaming escrow with a platform
/// fee, top-ups, suspension with a grace period, provisioning deadlines with slashing, provider exit with notice
/// and migration.
/// @dev Billing is derived, not pushed: a Running VM owes `(min(now, reclaimAt) - lastSettledAt) * price`, capped
/// by its balance; that debt moves to the provider's earnings and the fees whenever the VM is touched, and a debt
/// that empties the balance suspends the VM at the second the money ran out. The fee is derived too:
/// `fee = billed * feeBps / 10_000` (rounded down) of the VM's cumulative billing `billed = deposit - balance`,
/// so every settlement charges `fee(billedAfter) - fee(billedBefore)` and no fee total is stored.
/// Once a VM is terminal its `balance` field keeps the amount refunded, so `billed = deposit - balance` holds in
/// every state.
contract VmRegistry is IVmRegistry {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @notice Bids one open order can take.
    uint256 public constant MAX_BIDS = 8;
    /// @notice Regions one open order can allow.
    uint256 public constant MAX_REGIONS = 4;
    /// @notice Highest platform fee governance can set (10%).
    uint16 public constant MAX_FEE_BPS = 1_000;
    uint32 public constant MIN_WINDOW = 1 minutes;
    uint32 public constant MAX_WINDOW = 30 days;
    uint256 private constant BPS = 10_000;

    uint8 private constant FLAG_RECLAIMED = 1;
    uint8 private constant FLAG_MIGRATION = 2;
    /// @dev Opened as an order: until FLAG_AWARDED, slot 1 holds the first bid (see {Vm}).
    uint8 private constant FLAG_ORDER = 4;
    /// @dev The order was leased; bits 4..6 of `flags` hold the winning bid's index.
    uint8 private constant FLAG_AWARDED = 8;
    uint8 private constant WINNER_SHIFT = 4;

    /// @dev Four slots, written once at request time; later transitions rewrite slot 2 (and slot 1 on award).
    struct Vm {
        // slot 0: owner (160) | vcpu (32) | memoryMiB (32) | diskGiB (32)
        address owner;
        uint32 vcpu;
        uint32 memoryMiB;
        uint32 diskGiB;
        // slot 1: provider (160) | deposit (96)
        // An order (FLAG_ORDER) that was never leased (no FLAG_AWARDED: Bidding, or cancelled) keeps its first bid
        // here instead: provider = the bidder, deposit = its price (a uint88). Its provider is then zero and its
        // deposit equals `balance` (nothing is billed before a lease); read both through `_providerOf` and
        // `_depositOf`. On lease, slot 1 becomes (provider, deposit) and the first bid moves to the winner's place in
        // `_bids` (unless it is the winner: the winner's bid is (provider, pricePerSecond)). So one bid costs no slot
        // beyond the record's own, and an order with no bid leaves slot 1 zero until it is leased.
        address provider;
        uint96 deposit;
        // slot 2: pricePerSecond (88) | balance (96) | stamp (32) | state (8) | failureReason (8) | aux (16) | flags (8)
        // (`stamp` is a uint32 of seconds: good until the year 2106.)
        // `pricePerSecond` is the maximum price while Bidding. `stamp` is the bid window end while Bidding, the
        // provisioning deadline in Requested/Provisioning, the suspension time in Suspended and the last settled
        // second otherwise. `aux` is the number of bids while Bidding and the fee in basis points once leased.
        uint88 pricePerSecond;
        uint96 balance;
        uint32 stamp;
        VmState state;
        uint8 failureReason;
        uint16 aux;
        uint8 flags;
        // slot 3
        bytes32 manifestDigest;
    }

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
    address private immutable _governance;

    Config private _config;
    address private _treasury;
    /// @dev `_vmCount` and `_fees` share a slot, so accruing the first fee after a withdrawal does not write a
    /// zero slot (the count is non-zero once any VM exists). A uint64 count and uint192 fees are far beyond any
    /// reachable value (fees are bounded by the tokens escrowed here); the additions stay checked, so they revert, never wrap.
    /// (Declared in this order: a uint64 first would pack with `_treasury` instead.)
    uint192 private _fees;
    uint64 private _vmCount;
    mapping(uint256 vmId => Vm) private _vms;
    mapping(address provider => uint256) private _earnings;
    /// @dev Bids 1.. of an order (bid 0 lives in the record, see {Vm}): bid i is at index i - 1.
    mapping(uint256 vmId => Bid[MAX_BIDS - 1]) private _bids;
    mapping(uint256 vmId => bytes32[MAX_REGIONS]) private _regions;
    mapping(uint256 vmId => uint32) private _reclaimAt;
    mapping(uint256 newVmId => uint256 oldVmId) private _migratedFrom;

    constructor(IERC20 token, IProviderRegistry registry, address governance_, Parameters memory parameters_) {
        _token = token;
        _registry = registry;
        _governance = governance_;
        _setParameters(parameters_);
    }

    // ---------------------------------------------------------------- tenant

    /// @inheritdoc IVmRegistry
    function requestVm(address provider, bytes32 manifestDigest, Resources calldata resources, uint256 deposit)
        external
        returns (uint256)
    {
        return _request(provider, manifestDigest, resources, deposit, 0);
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
        return _request(provider, manifestDigest, resources, deposit, 0);
    }

    /// @inheritdoc IVmRegistry
    function openOrder(
        bytes32 manifestDigest,
        Resources calldata resources,
        bytes32[] calldata regions,
        uint256 maxPricePerSecond,
        uint256 deposit
    ) external returns (uint256) {
        return _openOrder(manifestDigest, resources, regions, maxPricePerSecond, deposit, 0);
    }

    /// @inheritdoc IVmRegistry
    function acceptBid(uint256 vmId, uint256 index) external {
        Vm storage vm = _ownedVm(vmId);
        _expectState(vmId, vm, VmState.Bidding);
        uint256 count = vm.aux;
        if (index >= count) revert VmRegistryUnknownBid(vmId, index, count);
        Bid memory chosen = _bidAt(vmId, vm, index);
        (LeaseStatus status, bytes32 region, Resources memory available) =
            _registry.tryLease(chosen.provider, _resourcesOf(vm));
        _requireLeased(status, chosen.provider, vm, available);
        if (!_regionAllowed(vmId, region)) {
            _registry.release(chosen.provider, _resourcesOf(vm));
            revert VmRegistryRegionNotAllowed(vmId, region);
        }
        _lease(vmId, vm, chosen.provider, chosen.pricePerSecond, index);
    }

    /// @inheritdoc IVmRegistry
    function topUp(uint256 vmId, uint256 amount) external {
        Vm storage vm = _ownedVm(vmId);
        if (amount == 0) revert VmRegistryZeroAmount();
        _settle(vmId, vm, true);
        VmState state = vm.state;
        if (_isTerminal(state)) revert VmRegistryUnexpectedState(vmId, state);
        if (state == VmState.Suspended) {
            uint64 graceEndsAt = uint64(vm.stamp) + _config.gracePeriod;
            if (block.timestamp >= graceEndsAt) revert VmRegistryGraceExpired(vmId, graceEndsAt);
        }
        uint256 balance = vm.balance + amount;
        vm.balance = balance.toUint96();
        // An open order's deposit is its balance (slot 1 holds its first bid).
        if (!_holdsFirstBid(vm)) vm.deposit = (vm.deposit + amount).toUint96();
        emit VmToppedUp(vmId, vm.owner, _providerOf(vm), amount, balance);
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
        newVmId = _vmCount + 1;
        emit VmMigrationRequested(vmId, vm.owner, vm.provider, newVmId);
        _migratedFrom[newVmId] = vmId;
        Resources memory resources = _resourcesOf(vm);
        if (provider == address(0)) {
            _openOrder(vm.manifestDigest, resources, regions, maxPricePerSecond, deposit, FLAG_MIGRATION);
        } else {
            _request(provider, vm.manifestDigest, resources, deposit, FLAG_MIGRATION);
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
        _close(vmId, vm, VmState.Terminated, 0);
    }

    // -------------------------------------------------------------- provider

    /// @inheritdoc IVmRegistry
    function bid(uint256 vmId, uint256 pricePerSecond) external {
        Vm storage vm = _existingVm(vmId);
        _expectState(vmId, vm, VmState.Bidding);
        uint32 endsAt = vm.stamp;
        if (block.timestamp >= endsAt) revert VmRegistryBiddingClosed(vmId, endsAt);
        uint256 maxPrice = vm.pricePerSecond;
        if (pricePerSecond > maxPrice) revert VmRegistryBidAboveMax(vmId, pricePerSecond, maxPrice);
        // One registry call: the caller's provider and whether it could take the lease.
        (address provider, LeaseStatus status, bytes32 region, Resources memory available) =
            _registry.operatorLeaseStatus(msg.sender, _resourcesOf(vm));
        if (provider == address(0)) revert VmRegistryNotAnOperator(msg.sender);
        uint256 count = vm.aux;
        if (count == MAX_BIDS) revert VmRegistryTooManyBids(vmId, MAX_BIDS);
        Bid[MAX_BIDS - 1] storage bids = _bids[vmId];
        if (count != 0) {
            if (vm.provider == provider) revert VmRegistryAlreadyBid(vmId, provider);
            for (uint256 i = 1; i < count; ++i) {
                if (bids[i - 1].provider == provider) revert VmRegistryAlreadyBid(vmId, provider);
            }
        }
        _requireLeased(status, provider, vm, available);
        if (!_regionAllowed(vmId, region)) revert VmRegistryRegionNotAllowed(vmId, region);

        // `pricePerSecond <= maxPrice`, a uint88; `count < MAX_BIDS`.
        if (count == 0) {
            // The first bid lives in the record's slot 1 (see {Vm}).
            vm.provider = provider;
            vm.deposit = uint96(pricePerSecond);
        } else {
            bids[count - 1] = Bid(provider, uint88(pricePerSecond));
        }
        vm.aux = uint16(count + 1);
        emit VmBidPlaced(vmId, vm.owner, provider, pricePerSecond, uint8(count));
    }

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
        // Requested -> Running directly is allowed: a provider that provisions fast need not report Provisioning.
        if (state != VmState.Provisioning && state != VmState.Starting && state != VmState.Requested) {
            revert VmRegistryUnexpectedState(vmId, state);
        }
        vm.stamp = uint32(block.timestamp);
        _transition(vmId, vm, VmState.Running, 0);
        if (vm.flags & FLAG_MIGRATION != 0) {
            vm.flags &= ~FLAG_MIGRATION;
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
        _close(vmId, vm, VmState.Failed, reason);
    }

    /// @inheritdoc IVmRegistry
    function reclaimVm(uint256 vmId) external {
        Vm storage vm = _operatedVm(vmId);
        VmState state = vm.state;
        if (_isTerminal(state)) revert VmRegistryUnexpectedState(vmId, state);
        if (vm.flags & FLAG_RECLAIMED != 0) revert VmRegistryAlreadyReclaimed(vmId, _reclaimAt[vmId]);
        _settle(vmId, vm, true);
        uint32 reclaimAt = uint32(block.timestamp + _config.exitNotice);
        _reclaimAt[vmId] = reclaimAt;
        vm.flags |= FLAG_RECLAIMED;
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
        uint32 endsAt = vm.stamp;
        if (block.timestamp < endsAt) revert VmRegistryBiddingOpen(vmId, endsAt);
        uint256 count = vm.aux;
        Bid[] memory list = new Bid[](count);
        for (uint256 i; i < count; ++i) {
            list[i] = _bidAt(vmId, vm, i);
        }
        Resources memory resources = _resourcesOf(vm);
        // At most MAX_BIDS rounds of a MAX_BIDS scan: the cheapest untried bid (earliest on a tie) is tried next.
        uint256 tried;
        for (uint256 round; round < count; ++round) {
            uint256 best = type(uint256).max;
            for (uint256 i; i < count; ++i) {
                if (tried & (1 << i) != 0) continue;
                if (best == type(uint256).max || list[i].pricePerSecond < list[best].pricePerSecond) best = i;
            }
            tried |= 1 << best;
            Bid memory candidate = list[best];
            (LeaseStatus status, bytes32 region,) = _registry.tryLease(candidate.provider, resources);
            if (status != LeaseStatus.Ok) continue;
            if (!_regionAllowed(vmId, region)) {
                _registry.release(candidate.provider, resources);
                continue;
            }
            _lease(vmId, vm, candidate.provider, candidate.pricePerSecond, best);
            return;
        }
        revert VmRegistryNoValidBid(vmId);
    }

    /// @inheritdoc IVmRegistry
    function expireVm(uint256 vmId) external {
        Vm storage vm = _existingVm(vmId);
        VmState state = vm.state;
        if (state != VmState.Requested && state != VmState.Provisioning) revert VmRegistryUnexpectedState(vmId, state);
        uint32 deadline = vm.stamp;
        if (block.timestamp <= deadline) revert VmRegistryDeadlineNotPassed(vmId, deadline);
        address owner = vm.owner;
        address provider = vm.provider;
        // Nothing was billed before Running, so `_close` refunds the whole balance.
        _close(vmId, vm, VmState.Terminated, 0);
        (uint256 slashed, uint256 toTenant) = _registry.slash(provider, vmId, owner, _treasury);
        emit VmExpired(vmId, owner, provider, slashed, toTenant);
    }

    /// @inheritdoc IVmRegistry
    function closeVm(uint256 vmId) external {
        Vm storage vm = _existingVm(vmId);
        _settle(vmId, vm, true);
        VmState state = vm.state;
        uint64 closableAt;
        if (state == VmState.Suspended) {
            closableAt = uint64(vm.stamp) + _config.gracePeriod;
        }
        if (vm.flags & FLAG_RECLAIMED != 0 && !_isTerminal(state)) {
            uint64 reclaimAt = _reclaimAt[vmId];
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
        (uint256 due, uint32 stamp, bool exhausted) = _billing(vmId, vm);
        VmState state = exhausted ? VmState.Suspended : vm.state;
        bool terminal = _isTerminal(state);
        uint256 balanceLeft = vm.balance - due;
        uint256 deposit = _depositOf(vm);
        uint256 billed = deposit - balanceLeft;
        if (terminal) billed = deposit - vm.balance;
        view_.owner = vm.owner;
        view_.provider = _providerOf(vm);
        view_.state = state;
        view_.resources = _resourcesOf(vm);
        view_.manifestDigest = vm.manifestDigest;
        view_.pricePerSecond = vm.pricePerSecond;
        view_.deposit = deposit;
        view_.balance = terminal ? 0 : balanceLeft;
        view_.refunded = terminal ? vm.balance : 0;
        if (state == VmState.Bidding) {
            view_.biddingEndsAt = vm.stamp;
            view_.bidCount = uint8(vm.aux);
        } else {
            view_.feeBps = vm.aux;
            view_.fee = billed * vm.aux / BPS;
        }
        view_.paid = billed - view_.fee;
        if (state == VmState.Requested || state == VmState.Provisioning) view_.provisioningDeadline = stamp;
        else if (state == VmState.Suspended) view_.suspendedAt = stamp;
        if (state != VmState.Bidding && state != VmState.Requested && state != VmState.Provisioning) {
            view_.lastSettledAt = stamp;
        }
        view_.failureReason = vm.failureReason;
        if (vm.flags & FLAG_RECLAIMED != 0) view_.reclaimAt = _reclaimAt[vmId];
        view_.migratedFrom = _migratedFrom[vmId];
    }

    /// @inheritdoc IVmRegistry
    function getBids(uint256 vmId) external view returns (Bid[] memory bids) {
        Vm storage vm = _existingVm(vmId);
        uint256 count = _countBids(vmId, vm);
        bids = new Bid[](count);
        for (uint256 i; i < count; ++i) {
            bids[i] = _bidAt(vmId, vm, i);
        }
    }

    /// @inheritdoc IVmRegistry
    function getRegions(uint256 vmId) external view returns (bytes32[] memory regions) {
        _existingVm(vmId);
        bytes32[MAX_REGIONS] storage stored = _regions[vmId];
        uint256 count;
        while (count < MAX_REGIONS && stored[count] != 0) ++count;
        regions = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            regions[i] = stored[i];
        }
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
    function governance() external view returns (address) {
        return _governance;
    }

    /// @inheritdoc IVmRegistry
    function parameters() external view returns (Parameters memory p) {
        Config memory c = _config;
        p = Parameters(_treasury, c.feeBps, c.bidWindow, c.provisioningTimeout, c.gracePeriod, c.lowBalanceHorizon, c.exitNotice);
    }

    // -------------------------------------------------------------- internal

    /// @dev Emits {VmRequested} and {VmStateChanged}.
    function _request(
        address provider,
        bytes32 manifestDigest,
        Resources memory resources,
        uint256 deposit,
        uint8 flags
    ) private returns (uint256 vmId) {
        _checkRequest(manifestDigest, resources, deposit);
        (,, uint256 price) = _registry.quote(provider, resources);
        (LeaseStatus status,, Resources memory available) = _registry.tryLease(provider, resources);
        if (status == LeaseStatus.NotRegistered) revert VmRegistryUnknownProvider(provider);
        if (status == LeaseStatus.ExceedsCapacity) revert VmRegistryExceedsCapacity(provider, resources, available);
        if (status == LeaseStatus.StakeTooLow) revert VmRegistryProviderStakeTooLow(provider);
        if (status == LeaseStatus.NoOperator) revert VmRegistryProviderNoOperator(provider);

        Config memory config = _config;
        vmId = ++_vmCount;
        Vm storage vm = _vms[vmId];
        vm.owner = msg.sender;
        vm.vcpu = resources.vcpu;
        vm.memoryMiB = resources.memoryMiB;
        vm.diskGiB = resources.diskGiB;
        vm.provider = provider;
        vm.deposit = deposit.toUint96();
        vm.pricePerSecond = price.toUint88();
        vm.balance = uint96(deposit);
        vm.stamp = uint32(block.timestamp + config.provisioningTimeout);
        vm.state = VmState.Requested;
        vm.aux = config.feeBps;
        vm.flags = flags;
        vm.manifestDigest = manifestDigest;

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
        uint8 flags
    ) private returns (uint256 vmId) {
        _checkRequest(manifestDigest, resources, deposit);
        uint256 regionCount = regions.length;
        if (regionCount > MAX_REGIONS) revert VmRegistryInvalidRegions(regionCount, MAX_REGIONS);
        vmId = ++_vmCount;
        for (uint256 i; i < regionCount; ++i) {
            bytes32 region = regions[i];
            if (region == 0) revert VmRegistryInvalidRegions(regionCount, MAX_REGIONS);
            _regions[vmId][i] = region;
        }
        uint32 biddingEndsAt = uint32(block.timestamp + _config.bidWindow);
        Vm storage vm = _vms[vmId];
        vm.owner = msg.sender;
        vm.vcpu = resources.vcpu;
        vm.memoryMiB = resources.memoryMiB;
        vm.diskGiB = resources.diskGiB;
        // Slot 1 stays zero until the first bid (see {Vm}): the deposit is the balance until the lease.
        uint96 balance = deposit.toUint96();
        vm.pricePerSecond = maxPricePerSecond.toUint88();
        vm.balance = balance;
        vm.stamp = biddingEndsAt;
        vm.state = VmState.Bidding;
        vm.flags = flags | FLAG_ORDER;
        vm.manifestDigest = manifestDigest;

        emit VmOrderOpened(
            vmId, msg.sender, address(0), manifestDigest, resources, regions, maxPricePerSecond, deposit, biddingEndsAt
        );
        emit VmStateChanged(vmId, msg.sender, address(0), VmState.None, VmState.Bidding, 0);
        _token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    function _checkRequest(bytes32 manifestDigest, Resources memory resources, uint256 deposit) private pure {
        if (deposit == 0) revert VmRegistryZeroDeposit();
        if (resources.vcpu == 0 || resources.memoryMiB == 0 || resources.diskGiB == 0) {
            revert VmRegistryZeroResources(resources.vcpu, resources.memoryMiB, resources.diskGiB);
        }
        if (manifestDigest == bytes32(0)) revert VmRegistryEmptyManifest();
    }

    /// @dev Leases an order whose capacity was just reserved. Emits {VmAwarded} and {VmStateChanged}.
    function _lease(uint256 vmId, Vm storage vm, address provider, uint88 price, uint256 index) private {
        Config memory config = _config;
        uint32 deadline = uint32(block.timestamp + config.provisioningTimeout);
        // Slot 1 held the first bid (see {Vm}): it moves to the winner's place unless it won.
        if (index != 0) _bids[vmId][index - 1] = Bid(vm.provider, uint88(vm.deposit));
        vm.provider = provider;
        // Nothing is billed before a lease: the deposit is the balance.
        vm.deposit = vm.balance;
        vm.pricePerSecond = price;
        vm.stamp = deadline;
        vm.state = VmState.Requested;
        vm.aux = config.feeBps;
        // `index < MAX_BIDS` (8) fits bits 4..6.
        vm.flags |= FLAG_AWARDED | uint8(index << WINNER_SHIFT);
        address owner = vm.owner;
        emit VmAwarded(vmId, owner, provider, price, deadline);
        emit VmStateChanged(vmId, owner, provider, VmState.Bidding, VmState.Requested, 0);
    }

    function _requireLeased(LeaseStatus status, address provider, Vm storage vm, Resources memory available)
        private
        view
    {
        if (status == LeaseStatus.NotRegistered) revert VmRegistryUnknownProvider(provider);
        if (status == LeaseStatus.StakeTooLow) revert VmRegistryProviderStakeTooLow(provider);
        if (status == LeaseStatus.ExceedsCapacity) {
            revert VmRegistryExceedsCapacity(provider, _resourcesOf(vm), available);
        }
    }

    function _regionAllowed(uint256 vmId, bytes32 region) private view returns (bool) {
        bytes32[MAX_REGIONS] storage allowed = _regions[vmId];
        bytes32 first = allowed[0];
        if (first == 0 || first == region) return true;
        for (uint256 i = 1; i < MAX_REGIONS; ++i) {
            bytes32 r = allowed[i];
            if (r == 0) return false;
            if (r == region) return true;
        }
        return false;
    }

    /// @dev Settles, refunds the rest, releases the provider's capacity and makes the VM terminal.
    /// Emits {VmSettled} (when billing was due), {VmStateChanged} and {VmRefunded} (when anything is left).
    function _close(uint256 vmId, Vm storage vm, VmState terminal, uint8 reason) private {
        // No low-balance warning for a VM that is ending (and no read of the horizon).
        _settle(vmId, vm, false);
        VmState from = vm.state;
        // A VM that never ran keeps no deadline: a terminal VM's stamp is the second it was last settled.
        if (from == VmState.Bidding || from == VmState.Requested || from == VmState.Provisioning) vm.stamp = 0;
        uint256 refund = vm.balance;
        address provider = _providerOf(vm);
        _transition(vmId, vm, provider, terminal, reason);
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
        (uint256 due, uint32 stamp, bool exhausted) = _billing(vmId, vm);
        vm.stamp = stamp;
        uint256 balance = vm.balance;
        // `due` is capped by `balance`, a uint96.
        uint256 balanceLeft;
        unchecked {
            balanceLeft = balance - due;
        }
        if (due != 0) {
            vm.balance = uint96(balanceLeft);
            address provider = vm.provider;
            uint256 billedBefore = vm.deposit - balance;
            uint256 feeBps = vm.aux;
            uint256 fee = (billedBefore + due) * feeBps / BPS - billedBefore * feeBps / BPS;
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

    /// @dev What a Running VM owes now, the `stamp` a settlement would store and whether the deposit ran out
    /// (the stamp is then the second it did). Billing stops at the reclaim time of a reclaimed lease.
    function _billing(uint256 vmId, Vm storage vm) private view returns (uint256 due, uint32 stamp, bool exhausted) {
        stamp = vm.stamp;
        if (vm.state != VmState.Running) return (0, stamp, false);
        uint256 end = block.timestamp;
        if (vm.flags & FLAG_RECLAIMED != 0) {
            uint256 reclaimAt = _reclaimAt[vmId];
            if (reclaimAt < end) end = reclaimAt;
        }
        if (end <= stamp) return (0, stamp, false);
        uint256 price = vm.pricePerSecond;
        uint256 balance = vm.balance;
        // A uint32 span times a uint88 price cannot overflow.
        uint256 owed = (end - stamp) * price;
        if (price != 0 && owed >= balance) {
            // The second the money ran out: ceil(balance / price) after the last settlement, never after `end`.
            return (balance, uint32(stamp + (balance + price - 1) / price), true);
        }
        return (owed, uint32(end), false);
    }

    /// @dev Emits {VmStateChanged}.
    /// Only for a VM that is leased or a direct request (slot 1 is its provider); `_close` passes the provider.
    function _transition(uint256 vmId, Vm storage vm, VmState to, uint8 reason) private {
        _transition(vmId, vm, vm.provider, to, reason);
    }

    /// @dev Emits {VmStateChanged} with `provider` indexed.
    function _transition(uint256 vmId, Vm storage vm, address provider, VmState to, uint8 reason) private {
        VmState from = vm.state;
        vm.state = to;
        if (reason != 0) vm.failureReason = reason;
        emit VmStateChanged(vmId, vm.owner, provider, from, to, reason);
    }

    /// @dev Emits {ParametersChanged}.
    function _setParameters(Parameters memory p) private {
        if (p.treasury == address(0)) revert VmRegistryInvalidParameter("treasury", 0, 1, type(uint160).max);
        if (p.feeBps > MAX_FEE_BPS) revert VmRegistryInvalidParameter("feeBps", p.feeBps, 0, MAX_FEE_BPS);
        _checkWindow("bidWindow", p.bidWindow, MIN_WINDOW);
        _checkWindow("provisioningTimeout", p.provisioningTimeout, MIN_WINDOW);
        _checkWindow("gracePeriod", p.gracePeriod, 1 hours);
        _checkWindow("lowBalanceHorizon", p.lowBalanceHorizon, 0);
        _checkWindow("exitNotice", p.exitNotice, 1 hours);
        _treasury = p.treasury;
        _config = Config(p.feeBps, p.bidWindow, p.provisioningTimeout, p.gracePeriod, p.lowBalanceHorizon, p.exitNotice);
        emit ParametersChanged(p);
    }

    function _checkWindow(bytes32 name, uint32 value, uint32 min) private pure {
        if (value < min || value > MAX_WINDOW) revert VmRegistryInvalidParameter(name, value, min, MAX_WINDOW);
    }

    /// @dev Bids ever placed on order `vmId` (0 for a direct request).
    function _countBids(uint256 vmId, Vm storage vm) private view returns (uint256 count) {
        uint8 flags = vm.flags;
        if (flags & FLAG_ORDER == 0) return 0;
        if (flags & FLAG_AWARDED == 0 && vm.provider == address(0)) return 0;
        Bid[MAX_BIDS - 1] storage bids = _bids[vmId];
        count = 1;
        while (count < MAX_BIDS && bids[count - 1].provider != address(0)) ++count;
    }

    /// @dev Bid `index` (< the bid count) of order `vmId`, wherever it is stored (see {Vm}).
    function _bidAt(uint256 vmId, Vm storage vm, uint256 index) private view returns (Bid memory) {
        uint8 flags = vm.flags;
        if (flags & FLAG_AWARDED == 0) {
            return index == 0 ? Bid(vm.provider, uint88(vm.deposit)) : _bids[vmId][index - 1];
        }
        uint256 winner = (flags >> WINNER_SHIFT) & 7;
        if (index == winner) return Bid(vm.provider, vm.pricePerSecond);
        // The first bid moved to the winner's place.
        return _bids[vmId][(index == 0 ? winner : index) - 1];
    }

    /// @dev Whether slot 1 holds the first bid of an order never leased rather than (provider, deposit).
    function _holdsFirstBid(Vm storage vm) private view returns (bool) {
        return vm.flags & (FLAG_ORDER | FLAG_AWARDED) == FLAG_ORDER;
    }

    /// @dev The leased provider; zero for an order never leased.
    function _providerOf(Vm storage vm) private view returns (address) {
        return _holdsFirstBid(vm) ? address(0) : vm.provider;
    }

    /// @dev The deposit; an order never leased was never billed, so its deposit is its balance (see {Vm}).
    function _depositOf(Vm storage vm) private view returns (uint256) {
        return _holdsFirstBid(vm) ? vm.balance : vm.deposit;
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
        address operator = _registry.operatorOf(_providerOf(vm));
        if (operator != msg.sender) revert VmRegistryNotOperator(vmId, msg.sender, operator);
    }

    function _expectState(uint256 vmId, Vm storage vm, VmState expected) private view {
        VmState current = vm.state;
        if (current != expected) revert VmRegistryUnexpectedState(vmId, current);
    }
}
