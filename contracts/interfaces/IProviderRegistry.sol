// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Resources, Prices} from "../types/Resources.sol";

/// @notice Why a provider cannot take a lease now. `Ok` means it can.
enum LeaseStatus {
    Ok,
    NotRegistered,
    StakeTooLow,
    ExceedsCapacity,
    /// Registered, but no operator has accepted the role yet (`acceptOperator`): nobody could run the VM.
    NoOperator
}

/// @title IProviderRegistry
/// @notice Infrastructure providers: stake, region, capacity, prices and the hot operator key
/// their daemon signs with. A provider is identified by its owner (cold key) address.
/// Stake leaves only through `requestUnstake` + a thaw period, during which it can still be slashed;
/// only the bound VM registry can lease capacity and slash, and only by the rules in `slash`.
interface IProviderRegistry {
    /// @notice A provider as stored. `operator` is the daemon's key, zero until a nominated key accepted the role
    /// (`pendingOperatorOf` shows the nomination); the owner keeps the stake.
    /// `leased` is the capacity held by live leases and never exceeds `capacity`.
    /// `unstaking` left `stake` at a `requestUnstake` and can be withdrawn from `thawEndsAt` on.
    struct Provider {
        address operator;
        Resources capacity;
        Prices prices;
        bytes32 region;
        uint256 stake;
        string metadataCid;
        Resources leased;
        uint256 unstaking;
        uint64 thawEndsAt;
    }

    /// @notice Governance-owned parameters. Bounds: `slashBps <= MAX_SLASH_BPS`, `thawPeriod` within
    /// [MIN_THAW_PERIOD, MAX_THAW_PERIOD], `minimumStake > 0`.
    struct Parameters {
        uint256 minimumStake;
        uint32 thawPeriod;
        uint16 slashBps;
    }

    /// @notice Emitted once per provider when it registers. `operator` is the nominated operator, which takes the role
    /// with `acceptOperator` ({ProviderOperatorNominated} is emitted as well).
    event ProviderRegistered(
        address indexed provider,
        address indexed operator,
        bytes32 indexed region,
        Resources capacity,
        Prices prices,
        string metadataCid,
        uint256 stake
    );
    /// @notice A provider nominated `nominee` as its operator (zero: withdrew its pending nomination). Nothing changes
    /// until the nominee calls `acceptOperator`; `currentOperator` keeps serving until then (zero: none yet).
    event ProviderOperatorNominated(address indexed provider, address indexed nominee, address indexed currentOperator);
    /// @notice `newOperator` accepted the nomination and now operates `provider`; `previousOperator` (zero after
    /// registration) no longer does and is free to serve another provider.
    event ProviderOperatorChanged(address indexed provider, address indexed previousOperator, address indexed newOperator);
    /// @notice Emitted when a provider changes region, capacity, prices or metadata. Existing VMs keep their price.
    event ProviderOfferUpdated(
        address indexed provider, bytes32 indexed region, Resources capacity, Prices prices, string metadataCid
    );
    /// @notice Emitted when a provider adds stake.
    event ProviderStakeAdded(address indexed provider, uint256 amount, uint256 totalStake);
    /// @notice `amount` left the active stake and thaws until `thawEndsAt`; still slashable until withdrawn.
    event ProviderUnstakeRequested(address indexed provider, uint256 amount, uint256 totalUnstaking, uint64 thawEndsAt);
    /// @notice Thawed stake went back to the provider's owner.
    event ProviderStakeWithdrawn(address indexed provider, uint256 amount);
    /// @notice Stake was slashed for VM `vmId`: `toTenant` went to `tenant`, the rest to `treasury`.
    event ProviderSlashed(
        address indexed provider,
        uint256 indexed vmId,
        address indexed tenant,
        uint256 amount,
        uint256 toTenant,
        address treasury
    );
    /// @notice The VM registry that may lease capacity and slash was bound (once).
    event VmRegistryBound(address indexed vmRegistry);
    /// @notice Governance changed the parameters.
    event ProviderParametersChanged(Parameters parameters);

    /// @notice `provider` is already registered.
    error ProviderRegistryAlreadyRegistered(address provider);
    /// @notice `provider` is not registered.
    error ProviderRegistryNotRegistered(address provider);
    /// @notice The stake offered (or left) is below the minimum.
    error ProviderRegistryStakeTooLow(uint256 stake, uint256 minimumStake);
    /// @notice The operator must be a non-zero address other than the provider's owner.
    error ProviderRegistryInvalidOperator(address operator);
    /// @notice `operator` already operates `provider`; one key serves one provider.
    error ProviderRegistryOperatorTaken(address operator, address provider);
    /// @notice `caller` is not the operator `provider` nominated (`pending`, zero when none is pending).
    error ProviderRegistryNotNominated(address provider, address caller, address pending);
    /// @notice Declared capacity must be non-zero in every dimension.
    error ProviderRegistryZeroCapacity(uint32 vcpu, uint32 memoryMiB, uint32 diskGiB);
    /// @notice The region code must be non-zero.
    error ProviderRegistryInvalidRegion();
    /// @notice An amount must be non-zero.
    error ProviderRegistryZeroAmount();
    /// @notice `provider` holds leased or bid-reserved capacity (`leased`) in `region`: its region cannot change until
    /// those leases and bids end (a standing bid must stay valid).
    error ProviderRegistryRegionLocked(address provider, bytes32 region, Resources leased);
    /// @notice The new capacity is below what live leases hold.
    error ProviderRegistryCapacityBelowLeased(Resources capacity, Resources leased);
    /// @notice Unstaking `amount` is more than the active stake.
    error ProviderRegistryInsufficientStake(uint256 amount, uint256 stake);
    /// @notice Nothing is thawing, or the thaw ends at `thawEndsAt`.
    error ProviderRegistryStillThawing(uint256 unstaking, uint64 thawEndsAt);
    /// @notice Only the bound VM registry may call this.
    error ProviderRegistryNotVmRegistry(address caller);
    /// @notice Only governance (the timelock) may call this.
    error ProviderRegistryNotGovernance(address caller);
    /// @notice Only the deployer may bind the VM registry, once, to a registry that points back here.
    error ProviderRegistryCannotBind(address caller, address vmRegistry);
    /// @notice A parameter is outside its bounds.
    error ProviderRegistryInvalidParameter(bytes32 name, uint256 value, uint256 min, uint256 max);

    /// @notice Registers the caller as a provider, pulling `stake` tokens (approve first), and nominates `operator`.
    /// The provider takes no lease until `operator` accepts with `acceptOperator`.
    /// @dev Emits {ProviderRegistered} and {ProviderOperatorNominated} events.
    function register(
        address operator,
        bytes32 region,
        Resources calldata capacity,
        Prices calldata prices,
        string calldata metadataCid,
        uint256 stake
    ) external;

    /// @notice Nominates `newOperator` as the caller's operator key, replacing any pending nomination; zero
    /// withdraws the pending nomination. The current operator serves until `newOperator` accepts with
    /// `acceptOperator`. Emits a {ProviderOperatorNominated} event.
    function setOperator(address newOperator) external;

    /// @notice The caller, nominated by `provider` (register/setOperator), becomes its operator; the previous
    /// operator, if any, is released. Emits a {ProviderOperatorChanged} event.
    function acceptOperator(address provider) external;

    /// @notice Replaces the caller's offer; capacity may not drop below what is leased (live leases and standing bids),
    /// and the region may not change while anything is leased ({ProviderRegistryRegionLocked}). New prices apply
    /// to new requests and bids only: a lease keeps the price it was made at.
    /// Emits a {ProviderOfferUpdated} event.
    function updateOffer(bytes32 region, Resources calldata capacity, Prices calldata prices, string calldata metadataCid)
        external;

    /// @notice Adds `amount` to the caller's stake. Emits a {ProviderStakeAdded} event.
    function addStake(uint256 amount) external;

    /// @notice Moves `amount` of the caller's stake into thawing (restarting the thaw for all of it).
    /// A provider with live leases keeps at least the minimum stake. Emits {ProviderUnstakeRequested}.
    function requestUnstake(uint256 amount) external;

    /// @notice Sends the caller's thawed stake back after the thaw period. Emits {ProviderStakeWithdrawn}.
    function withdrawStake() external returns (uint256 amount);

    /// @notice VM registry only: reserves `resources` of `provider`'s capacity for a new lease when the
    /// provider is registered, has an operator, holds at least the minimum stake and has room; otherwise changes nothing.
    /// @return status Ok, or why the lease was refused.
    /// @return region The provider's region.
    /// @return available Capacity left before this lease.
    function tryLease(address provider, Resources calldata resources)
        external
        returns (LeaseStatus status, bytes32 region, Resources memory available);

    /// @notice VM registry only: returns `resources` of a lease that ended to the provider's capacity.
    function release(address provider, Resources calldata resources) external;

    /// @notice VM registry only: slashes the provider for the failed lease `vmId` worth `leaseValue` (its deposit):
    /// `amount = min(leaseValue * slashBps / BPS, budget left)`, where the budget is `slashBps` of what the provider
    /// had at stake (active + thawing) when the slash period began, once per slash period (the thaw period, so a
    /// provider can lose at most `slashBps` of its stake per thaw period). Taken from the active stake first, then
    /// the thawing stake; half (rounded down) goes to `tenant` (never more than `leaseValue / 4`, since
    /// `slashBps <= MAX_SLASH_BPS`), the rest to `treasury`. Emits a {ProviderSlashed} event when anything is taken.
    function slash(address provider, uint256 vmId, address tenant, address treasury, uint256 leaseValue)
        external
        returns (uint256 amount, uint256 toTenant);

    /// @notice What a slash of `provider` could still take in the current slash period, and when that period ends
    /// (0: no period running; the next slash starts one with the full budget).
    function slashBudget(address provider) external view returns (uint256 remaining, uint64 periodEndsAt);

    /// @notice Governance only: replaces the parameters (within bounds). Emits {ProviderParametersChanged}.
    function setParameters(Parameters calldata parameters) external;

    /// @notice The provider record; reverts with {ProviderRegistryNotRegistered} for unknown addresses.
    function getProvider(address provider) external view returns (Provider memory);

    /// @notice Whether `provider` is registered.
    function isRegistered(address provider) external view returns (bool);

    /// @notice The operator key of `provider` (zero when unregistered or when no nominated key has accepted yet).
    function operatorOf(address provider) external view returns (address);

    /// @notice The operator `provider` nominated that has not accepted yet (zero when none).
    function pendingOperatorOf(address provider) external view returns (address);

    /// @notice The provider that `operator` operates (zero when none).
    function providerOfOperator(address operator) external view returns (address);

    /// @notice What `resources` would cost at `provider` now, in one call for the VM registry.
    /// @return registered Whether `provider` is registered (when false the other values are zero).
    /// @return capacity The provider's declared capacity.
    /// @return pricePerSecond Token wei per second for `resources` at the provider's current prices.
    function quote(address provider, Resources calldata resources)
        external
        view
        returns (bool registered, Resources memory capacity, uint256 pricePerSecond);

    /// @notice {providerOfOperator} and {leaseStatus} of that provider in one call (a bid needs both).
    /// `provider` is zero when `operator` operates none; the rest is then that of an unregistered provider.
    function operatorLeaseStatus(address operator, Resources calldata resources)
        external
        view
        returns (address provider, LeaseStatus status, bytes32 region, Resources memory available);

    /// @notice Whether `provider` could take a lease of `resources` now, and its region (for bids).
    function leaseStatus(address provider, Resources calldata resources)
        external
        view
        returns (LeaseStatus status, bytes32 region, Resources memory available);

    /// @notice The current parameters.
    function parameters() external view returns (Parameters memory);

    /// @notice The minimum stake to register, bid and take leases.
    function minimumStake() external view returns (uint256);

    /// @notice The token providers stake.
    function stakeToken() external view returns (address);

    /// @notice The timelock that owns the parameters.
    function governance() external view returns (address);

    /// @notice The VM registry bound to this registry (zero before binding).
    function vmRegistry() external view returns (address);
}
