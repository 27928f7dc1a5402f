// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IProviderRegistry, LeaseStatus} from "./interfaces/IProviderRegistry.sol";
import {IVmRegistry} from "./interfaces/IVmRegistry.sol";
import {Resources, Prices} from "./types/Resources.sol";

/// @title ProviderRegistry
/// @notice Providers register with a stake, a region, declared capacity, prices and a nominated operator key, which
/// takes the role with `acceptOperator`: a key serves a provider only when its holder agreed to.
/// Stake leaves through a thaw period during which it can still be slashed; leased capacity never exceeds
/// declared capacity; only the bound VM registry leases capacity and slashes, by the rules in `slash`.
contract ProviderRegistry is IProviderRegistry {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @notice The most a single slash can take, in basis points of stake + thawing stake.
    uint16 public constant MAX_SLASH_BPS = 5_000;
    uint32 public constant MIN_THAW_PERIOD = 1 days;
    uint32 public constant MAX_THAW_PERIOD = 90 days;
    uint256 private constant BPS = 10_000;

    /// @dev Seven slots (plus the CID's). Resource fields are inlined because a nested struct would start a new slot;
    /// a lease (tryLease/release) touches slots 0, 2 and 4 only, and slot 2 is never zero once registered.
    struct Record {
        // slot 0: operator (160) | capacity vcpu, memoryMiB, diskGiB (96). `operator` is the accepted operator only.
        address operator;
        uint32 capVcpu;
        uint32 capMemoryMiB;
        uint32 capDiskGiB;
        // slot 1: prices (192)
        Prices prices;
        // slot 2: stake (128) | leased vcpu, memoryMiB, diskGiB (96)
        uint128 stake;
        uint32 leasedVcpu;
        uint32 leasedMemoryMiB;
        uint32 leasedDiskGiB;
        bool registered;
        // slot 3: unstaking (128) | thawEndsAt (40)
        uint128 unstaking;
        uint40 thawEndsAt;
        // slot 4
        bytes32 region;
        // slot 5: the nominated operator, until it accepts (zero when none is pending)
        address pendingOperator;
        // slot 6...
        string metadataCid;
    }

    IERC20 private immutable _stakeToken;
    address private immutable _governance;
    address private immutable _deployer;

    /// @dev What slashes took from one provider in its current slash period. One slot: slashed (128) | startedAt (40).
    struct SlashPeriod {
        uint128 slashed;
        uint40 startedAt;
    }

    IVmRegistry private _vmRegistry;
    Parameters private _parameters;
    mapping(address provider => Record) private _providers;
    mapping(address provider => SlashPeriod) private _slashPeriods;
    mapping(address operator => address provider) private _providerOfOperator;

    constructor(IERC20 stakeToken_, address governance_, Parameters memory parameters_) {
        _stakeToken = stakeToken_;
        _governance = governance_;
        _deployer = msg.sender;
        _setParameters(parameters_);
    }

    modifier onlyRegistered() {
        if (!_providers[msg.sender].registered) revert ProviderRegistryNotRegistered(msg.sender);
        _;
    }

    modifier onlyVmRegistry() {
        if (msg.sender != address(_vmRegistry)) revert ProviderRegistryNotVmRegistry(msg.sender);
        _;
    }

    /// @notice Deployer only, once: binds the VM registry that may lease capacity and slash. It must point back here.
    /// @dev Emits a {VmRegistryBound} event.
    function bindVmRegistry(IVmRegistry vmRegistry_) external {
        if (
            msg.sender != _deployer || address(_vmRegistry) != address(0)
                || vmRegistry_.providerRegistry() != address(this)
        ) revert ProviderRegistryCannotBind(msg.sender, address(vmRegistry_));
        _vmRegistry = vmRegistry_;
        emit VmRegistryBound(address(vmRegistry_));
    }

    // -------------------------------------------------------------- provider

    /// @inheritdoc IProviderRegistry
    function register(
        address operator,
        bytes32 region,
        Resources calldata capacity,
        Prices calldata prices,
        string calldata metadataCid,
        uint256 stake
    ) external {
        if (_providers[msg.sender].registered) revert ProviderRegistryAlreadyRegistered(msg.sender);
        uint256 minimum = _parameters.minimumStake;
        if (stake < minimum) revert ProviderRegistryStakeTooLow(stake, minimum);
        _checkOffer(region, capacity);
        if (operator == address(0)) revert ProviderRegistryInvalidOperator(operator);

        Record storage provider = _providers[msg.sender];
        provider.registered = true;
        _nominate(provider, operator);
        _setCapacity(provider, capacity);
        provider.prices = prices;
        provider.region = region;
        provider.stake = stake.toUint128();
        provider.metadataCid = metadataCid;

        emit ProviderRegistered(msg.sender, operator, region, capacity, prices, metadataCid, stake);
        _stakeToken.safeTransferFrom(msg.sender, address(this), stake);
    }

    /// @inheritdoc IProviderRegistry
    function setOperator(address newOperator) external onlyRegistered {
        _nominate(_providers[msg.sender], newOperator);
    }

    /// @inheritdoc IProviderRegistry
    function acceptOperator(address provider) external {
        Record storage record = _providers[provider];
        if (!record.registered) revert ProviderRegistryNotRegistered(provider);
        address pending = record.pendingOperator;
        if (pending != msg.sender) revert ProviderRegistryNotNominated(provider, msg.sender, pending);
        // Checked again: the key may have accepted another provider's nomination since this one was made.
        address holder = _providerOfOperator[msg.sender];
        if (holder != address(0)) revert ProviderRegistryOperatorTaken(msg.sender, holder);
        address previous = record.operator;
        if (previous != address(0)) delete _providerOfOperator[previous];
        record.operator = msg.sender;
        record.pendingOperator = address(0);
        _providerOfOperator[msg.sender] = provider;
        emit ProviderOperatorChanged(provider, previous, msg.sender);
    }

    /// @inheritdoc IProviderRegistry
    function updateOffer(bytes32 region, Resources calldata capacity, Prices calldata prices, string calldata metadataCid)
        external
        onlyRegistered
    {
        _checkOffer(region, capacity);
        Record storage provider = _providers[msg.sender];
        Resources memory leased = _leasedOf(provider);
        bytes32 current = provider.region;
        if (region != current && (leased.vcpu != 0 || leased.memoryMiB != 0 || leased.diskGiB != 0)) {
            revert ProviderRegistryRegionLocked(msg.sender, current, leased);
        }
        if (capacity.vcpu < leased.vcpu || capacity.memoryMiB < leased.memoryMiB || capacity.diskGiB < leased.diskGiB) {
            revert ProviderRegistryCapacityBelowLeased(capacity, leased);
        }
        _setCapacity(provider, capacity);
        provider.prices = prices;
        provider.region = region;
        provider.metadataCid = metadataCid;
        emit ProviderOfferUpdated(msg.sender, region, capacity, prices, metadataCid);
    }

    /// @inheritdoc IProviderRegistry
    function addStake(uint256 amount) external onlyRegistered {
        if (amount == 0) revert ProviderRegistryZeroAmount();
        Record storage provider = _providers[msg.sender];
        uint256 total = provider.stake + amount;
        provider.stake = total.toUint128();
        emit ProviderStakeAdded(msg.sender, amount, total);
        _stakeToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IProviderRegistry
    function requestUnstake(uint256 amount) external onlyRegistered {
        if (amount == 0) revert ProviderRegistryZeroAmount();
        Record storage provider = _providers[msg.sender];
        uint256 stake = provider.stake;
        if (amount > stake) revert ProviderRegistryInsufficientStake(amount, stake);
        uint256 left = stake - amount;
        uint256 minimum = _parameters.minimumStake;
        if (provider.leasedVcpu != 0 && left < minimum) revert ProviderRegistryStakeTooLow(left, minimum);
        // `amount <= stake`, a uint128, so `left` fits and `unstaking + amount` is checked by toUint128.
        provider.stake = uint128(left);
        uint256 unstaking = provider.unstaking + amount;
        provider.unstaking = unstaking.toUint128();
        uint40 thawEndsAt = uint40(block.timestamp + _parameters.thawPeriod);
        provider.thawEndsAt = thawEndsAt;
        emit ProviderUnstakeRequested(msg.sender, amount, unstaking, thawEndsAt);
    }

    /// @inheritdoc IProviderRegistry
    function withdrawStake() external returns (uint256 amount) {
        Record storage provider = _providers[msg.sender];
        amount = provider.unstaking;
        uint40 thawEndsAt = provider.thawEndsAt;
        if (amount == 0 || block.timestamp < thawEndsAt) revert ProviderRegistryStillThawing(amount, thawEndsAt);
        provider.unstaking = 0;
        provider.thawEndsAt = 0;
        emit ProviderStakeWithdrawn(msg.sender, amount);
        _stakeToken.safeTransfer(msg.sender, amount);
    }

    // ----------------------------------------------------------- VM registry

    /// @inheritdoc IProviderRegistry
    function tryLease(address provider, Resources calldata resources)
        external
        onlyVmRegistry
        returns (LeaseStatus status, bytes32 region, Resources memory available)
    {
        Record storage record = _providers[provider];
        (status, region, available) = _leaseStatus(record, resources);
        if (status != LeaseStatus.Ok) return (status, region, available);
        // `_leaseStatus` checked `leased + resources <= capacity`, all uint32.
        unchecked {
            record.leasedVcpu += resources.vcpu;
            record.leasedMemoryMiB += resources.memoryMiB;
            record.leasedDiskGiB += resources.diskGiB;
        }
    }

    /// @inheritdoc IProviderRegistry
    function release(address provider, Resources calldata resources) external onlyVmRegistry {
        Record storage record = _providers[provider];
        // Checked: the VM registry releases exactly what it leased, so an underflow would be a bug.
        record.leasedVcpu -= resources.vcpu;
        record.leasedMemoryMiB -= resources.memoryMiB;
        record.leasedDiskGiB -= resources.diskGiB;
    }

    /// @inheritdoc IProviderRegistry
    function slash(address provider, uint256 vmId, address tenant, address treasury, uint256 leaseValue)
        external
        onlyVmRegistry
        returns (uint256 amount, uint256 toTenant)
    {
        Record storage record = _providers[provider];
        amount = _chargeSlashBudget(record, _slashPeriods[provider], leaseValue);
        if (amount == 0) return (0, 0);
        uint256 stake = record.stake;
        if (amount <= stake) {
            record.stake = uint128(stake - amount);
        } else {
            record.stake = 0;
            // `amount <= (stake + unstaking) / 2`: no underflow.
            record.unstaking = uint128(record.unstaking - (amount - stake));
        }
        toTenant = amount / 2;
        emit ProviderSlashed(provider, vmId, tenant, amount, toTenant, treasury);
        if (toTenant != 0) _stakeToken.safeTransfer(tenant, toTenant);
        _stakeToken.safeTransfer(treasury, amount - toTenant);
    }

    // ------------------------------------------------------------ governance

    /// @inheritdoc IProviderRegistry
    function setParameters(Parameters calldata parameters_) external {
        if (msg.sender != _governance) revert ProviderRegistryNotGovernance(msg.sender);
        _setParameters(parameters_);
    }

    // ----------------------------------------------------------------- views

    /// @inheritdoc IProviderRegistry
    function getProvider(address provider) external view returns (Provider memory view_) {
        Record storage record = _providers[provider];
        if (!record.registered) revert ProviderRegistryNotRegistered(provider);
        view_.operator = record.operator;
        view_.capacity = _capacityOf(record);
        view_.prices = record.prices;
        view_.region = record.region;
        view_.stake = record.stake;
        view_.metadataCid = record.metadataCid;
        view_.leased = _leasedOf(record);
        view_.unstaking = record.unstaking;
        view_.thawEndsAt = record.thawEndsAt;
    }

    /// @inheritdoc IProviderRegistry
    function isRegistered(address provider) external view returns (bool) {
        return _providers[provider].registered;
    }

    /// @inheritdoc IProviderRegistry
    function operatorOf(address provider) external view returns (address) {
        return _providers[provider].operator;
    }

    /// @inheritdoc IProviderRegistry
    function pendingOperatorOf(address provider) external view returns (address) {
        return _providers[provider].pendingOperator;
    }

    /// @inheritdoc IProviderRegistry
    function providerOfOperator(address operator) external view returns (address) {
        return _providerOfOperator[operator];
    }

    /// @inheritdoc IProviderRegistry
    function quote(address provider, Resources calldata resources)
        external
        view
        returns (bool registered, Resources memory capacity, uint256 pricePerSecond)
    {
        Record storage record = _providers[provider];
        registered = record.registered;
        capacity = _capacityOf(record);
        Prices memory p = record.prices;
        // Three products of a uint64 and a uint32 cannot overflow uint256.
        pricePerSecond = uint256(p.perVcpuSecond) * resources.vcpu + uint256(p.perMemoryMiBSecond) * resources.memoryMiB
            + uint256(p.perDiskGiBSecond) * resources.diskGiB;
    }

    /// @inheritdoc IProviderRegistry
    function leaseStatus(address provider, Resources calldata resources)
        external
        view
        returns (LeaseStatus status, bytes32 region, Resources memory available)
    {
        return _leaseStatus(_providers[provider], resources);
    }

    /// @inheritdoc IProviderRegistry
    function operatorLeaseStatus(address operator, Resources calldata resources)
        external
        view
        returns (address provider, LeaseStatus status, bytes32 region, Resources memory available)
    {
        provider = _providerOfOperator[operator];
        (status, region, available) = _leaseStatus(_providers[provider], resources);
    }

    /// @inheritdoc IProviderRegistry
    function slashBudget(address provider) external view returns (uint256 remaining, uint64 periodEndsAt) {
        Record storage record = _providers[provider];
        SlashPeriod storage period = _slashPeriods[provider];
        uint256 slashed = _slashedInPeriod(period);
        if (slashed != 0) periodEndsAt = uint64(period.startedAt) + _parameters.thawPeriod;
        uint256 budget = (uint256(record.stake) + record.unstaking + slashed) * _parameters.slashBps / BPS;
        remaining = budget > slashed ? budget - slashed : 0;
    }

    /// @inheritdoc IProviderRegistry
    function parameters() external view returns (Parameters memory) {
        return _parameters;
    }

    /// @inheritdoc IProviderRegistry
    function minimumStake() external view returns (uint256) {
        return _parameters.minimumStake;
    }

    /// @inheritdoc IProviderRegistry
    function stakeToken() external view returns (address) {
        return address(_stakeToken);
    }

    /// @inheritdoc IProviderRegistry
    function governance() external view returns (address) {
        return _governance;
    }

    /// @inheritdoc IProviderRegistry
    function vmRegistry() external view returns (address) {
        return address(_vmRegistry);
    }

    // -------------------------------------------------------------- internal

    function _leaseStatus(Record storage record, Resources calldata resources)
        private
        view
        returns (LeaseStatus status, bytes32 region, Resources memory available)
    {
        if (!record.registered) return (LeaseStatus.NotRegistered, 0, available);
        region = record.region;
        Resources memory capacity = _capacityOf(record);
        Resources memory leased = _leasedOf(record);
        // The registry keeps `leased <= capacity`, so no subtraction underflows.
        unchecked {
            available = Resources(
                capacity.vcpu - leased.vcpu, capacity.memoryMiB - leased.memoryMiB, capacity.diskGiB - leased.diskGiB
            );
        }
        // Nobody could report the VM: the nominated operator has not accepted yet.
        if (record.operator == address(0)) return (LeaseStatus.NoOperator, region, available);
        if (record.stake < _parameters.minimumStake) return (LeaseStatus.StakeTooLow, region, available);
        if (
            resources.vcpu > available.vcpu || resources.memoryMiB > available.memoryMiB
                || resources.diskGiB > available.diskGiB
        ) return (LeaseStatus.ExceedsCapacity, region, available);
    }

    /// @dev The slash for a failed lease worth `leaseValue`: `min(leaseValue * slashBps / BPS, budget left)`,
    /// charged to the provider's slash period (the first slash of a period starts it).
    function _chargeSlashBudget(Record storage record, SlashPeriod storage period, uint256 leaseValue)
        private
        returns (uint256 amount)
    {
        uint256 slashBps = _parameters.slashBps;
        uint256 slashed = _slashedInPeriod(period);
        // What was at stake when the period began (plus stake added since): slashes took only `slashed` from it.
        // All uint128 and slashBps <= MAX_SLASH_BPS: no overflow.
        uint256 budget = (uint256(record.stake) + record.unstaking + slashed) * slashBps / BPS;
        uint256 left = budget > slashed ? budget - slashed : 0;
        amount = leaseValue * slashBps / BPS;
        if (amount > left) amount = left;
        if (amount == 0) return 0;
        if (slashed == 0) period.startedAt = uint40(block.timestamp);
        // `slashed + amount <= budget <= (stake + unstaking + slashed) / 2` fits a uint128.
        period.slashed = uint128(slashed + amount);
    }

    /// @dev What slashes took in the period still running (zero once it is over: the next slash starts a new one).
    function _slashedInPeriod(SlashPeriod storage period) private view returns (uint256) {
        if (block.timestamp >= uint256(period.startedAt) + _parameters.thawPeriod) return 0;
        return period.slashed;
    }

    function _setCapacity(Record storage record, Resources calldata capacity) private {
        record.capVcpu = capacity.vcpu;
        record.capMemoryMiB = capacity.memoryMiB;
        record.capDiskGiB = capacity.diskGiB;
    }

    function _capacityOf(Record storage record) private view returns (Resources memory) {
        return Resources(record.capVcpu, record.capMemoryMiB, record.capDiskGiB);
    }

    function _leasedOf(Record storage record) private view returns (Resources memory) {
        return Resources(record.leasedVcpu, record.leasedMemoryMiB, record.leasedDiskGiB);
    }

    /// @dev Emits a {ProviderParametersChanged} event.
    function _setParameters(Parameters memory p) private {
        if (p.minimumStake == 0 || p.minimumStake > type(uint128).max) {
            revert ProviderRegistryInvalidParameter("minimumStake", p.minimumStake, 1, type(uint128).max);
        }
        if (p.thawPeriod < MIN_THAW_PERIOD || p.thawPeriod > MAX_THAW_PERIOD) {
            revert ProviderRegistryInvalidParameter("thawPeriod", p.thawPeriod, MIN_THAW_PERIOD, MAX_THAW_PERIOD);
        }
        if (p.slashBps > MAX_SLASH_BPS) revert ProviderRegistryInvalidParameter("slashBps", p.slashBps, 0, MAX_SLASH_BPS);
        _parameters = p;
        emit ProviderParametersChanged(p);
    }

    /// @dev Nominates `nominee` as the caller's operator; zero withdraws the pending nomination. A nomination
    /// reserves nothing: only `acceptOperator`, sent by the key itself, makes it an operator. The operator is a hot
    /// key on a server, so it is never the owner's cold key; one key serves one provider, so that
    /// `providerOfOperator` is unambiguous, and a key that serves a provider (this one or another) is refused here
    /// already rather than at acceptance. Emits a {ProviderOperatorNominated} event.
    function _nominate(Record storage provider, address nominee) private {
        if (nominee != address(0)) {
            if (nominee == msg.sender) revert ProviderRegistryInvalidOperator(nominee);
            address holder = _providerOfOperator[nominee];
            if (holder != address(0)) revert ProviderRegistryOperatorTaken(nominee, holder);
        }
        provider.pendingOperator = nominee;
        emit ProviderOperatorNominated(msg.sender, nominee, provider.operator);
    }

    function _checkOffer(bytes32 region, Resources calldata capacity) private pure {
        if (region == bytes32(0)) revert ProviderRegistryInvalidRegion();
        if (capacity.vcpu == 0 || capacity.memoryMiB == 0 || capacity.diskGiB == 0) {
            revert ProviderRegistryZeroCapacity(capacity.vcpu, capacity.memoryMiB, capacity.diskGiB);
        }
    }
}
