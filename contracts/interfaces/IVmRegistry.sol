// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Resources} from "../types/Resources.sol";

/// @notice Lifecycle of a VM. `Failed` and `Terminated` are terminal. New values are only ever appended.
/// Direct request: Requested -> Provisioning -> Running <-> Stopped (-> Starting -> Running).
/// Open order: Bidding -> (award / acceptBid) -> Requested -> ... as above.
/// Running -> Suspended when the deposit runs out; Suspended -> Starting on a top-up within the grace period.
/// Any live state -> Terminated (owner, expiry, close, migration); Requested / Provisioning / Starting /
/// Running / Suspended -> Failed (operator).
enum VmState {
    None,
    Requested,
    Provisioning,
    Running,
    Stopped,
    Starting,
    Failed,
    Terminated,
    Bidding,
    Suspended
}

/// @title IVmRegistry
/// @notice The marketplace: VMs requested from a chosen provider or through an open order with bids,
/// paid per second from an escrowed deposit at the leased price. Billing runs only while the VM is Running and
/// is settled lazily on every touch; a platform fee (basis points fixed at lease time) goes to the treasury.
/// For every VM: deposit = refunded to the owner + paid to the provider + fee, to the wei.
/// Every VM event has the topics (vmId, owner, provider) in that order; provider is zero while an order is open.
interface IVmRegistry {
    /// @notice Everything a client needs about a VM, with billing settled up to the current block.
    /// `deposit = balance + paid + fee + refunded` always; `balance` is 0 once the VM is terminal.
    /// `state` is derived: a Running VM whose deposit ran out reads as Suspended before anyone touches it.
    /// `pricePerSecond` is the order's maximum price while Bidding, the leased price afterwards.
    struct VmView {
        address owner;
        address provider;
        VmState state;
        Resources resources;
        bytes32 manifestDigest;
        uint256 pricePerSecond;
        uint256 deposit;
        uint256 balance;
        uint256 paid;
        uint256 refunded;
        uint64 lastSettledAt;
        uint8 failureReason;
        uint256 fee;
        uint16 feeBps;
        uint64 biddingEndsAt;
        uint64 provisioningDeadline;
        uint64 suspendedAt;
        uint64 reclaimAt;
        uint256 migratedFrom;
        uint8 bidCount;
    }

    /// @notice A bid on an open order.
    struct Bid {
        address provider;
        uint88 pricePerSecond;
    }

    /// @notice Governance-owned parameters; bounds in {VmRegistryInvalidParameter} and docs/trust.md.
    struct Parameters {
        address treasury;
        uint16 feeBps;
        uint32 bidWindow;
        uint32 provisioningTimeout;
        uint32 gracePeriod;
        uint32 lowBalanceHorizon;
        uint32 exitNotice;
    }

    /// @notice A VM was requested from a chosen provider and its deposit escrowed. The manifest is the IPFS block
    /// CIDv1(raw, sha2-256(manifestDigest)).
    event VmRequested(
        uint256 indexed vmId,
        address indexed owner,
        address indexed provider,
        bytes32 manifestDigest,
        Resources resources,
        uint256 pricePerSecond,
        uint256 deposit
    );
    /// @notice An open order was placed (provider is zero); bids are taken until `biddingEndsAt`.
    /// An empty `regions` allows every region.
    event VmOrderOpened(
        uint256 indexed vmId,
        address indexed owner,
        address indexed provider,
        bytes32 manifestDigest,
        Resources resources,
        bytes32[] regions,
        uint256 maxPricePerSecond,
        uint256 deposit,
        uint64 biddingEndsAt
    );
    /// @notice `provider` bid `pricePerSecond` on open order `vmId`; `index` is its place in the bid list.
    event VmBidPlaced(
        uint256 indexed vmId, address indexed owner, address indexed provider, uint256 pricePerSecond, uint8 index
    );
    /// @notice A full order took a lower bid: `provider`'s bid of `pricePerSecond` left it and its capacity reservation
    /// was released.
    event VmBidEvicted(uint256 indexed vmId, address indexed owner, address indexed provider, uint256 pricePerSecond);
    /// @notice Order `vmId` was leased to `provider` at `pricePerSecond`; it must run by `provisioningDeadline`.
    event VmAwarded(
        uint256 indexed vmId,
        address indexed owner,
        address indexed provider,
        uint256 pricePerSecond,
        uint64 provisioningDeadline
    );
    /// @notice A VM moved from one state to another; `reason` is the provider's failure code for Failed, else 0.
    event VmStateChanged(
        uint256 indexed vmId, address indexed owner, address indexed provider, VmState from, VmState to, uint8 reason
    );
    /// @notice Billing was settled: `amount` left the VM's deposit; `amount - fee` went to the provider's
    /// earnings and `fee` to the platform fees.
    event VmSettled(
        uint256 indexed vmId,
        address indexed owner,
        address indexed provider,
        uint256 amount,
        uint256 fee,
        uint256 balanceLeft
    );
    /// @notice The deposit left lasts less than the warning horizon: `secondsLeft` at the current price.
    event VmLowBalance(
        uint256 indexed vmId, address indexed owner, address indexed provider, uint256 balance, uint256 secondsLeft
    );
    /// @notice The owner added `amount` to the deposit.
    event VmToppedUp(
        uint256 indexed vmId, address indexed owner, address indexed provider, uint256 amount, uint256 balance
    );
    /// @notice The unused deposit went back to the owner when the VM ended.
    event VmRefunded(uint256 indexed vmId, address indexed owner, address indexed provider, uint256 amount);
    /// @notice The provider will reclaim the lease: billing stops at `reclaimAt`, after which anyone may close it.
    event VmReclaimAnnounced(uint256 indexed vmId, address indexed owner, address indexed provider, uint64 reclaimAt);
    /// @notice The provider missed the provisioning deadline: the deposit was refunded in full and
    /// `slashed` of its stake taken, `toTenant` of it to the owner and the rest to the treasury.
    event VmExpired(
        uint256 indexed vmId, address indexed owner, address indexed provider, uint256 slashed, uint256 toTenant
    );
    /// @notice The owner asked to move VM `vmId` to `newVmId`; `vmId` is closed when `newVmId` is reported Running.
    event VmMigrationRequested(uint256 indexed vmId, address indexed owner, address indexed provider, uint256 newVmId);
    /// @notice VM `vmId` was closed because its replacement `newVmId` runs.
    event VmMigrated(uint256 indexed vmId, address indexed owner, address indexed provider, uint256 newVmId);
    /// @notice A provider withdrew its settled earnings.
    event EarningsWithdrawn(address indexed provider, address indexed to, uint256 amount);
    /// @notice Accrued platform fees went to the treasury.
    event FeesWithdrawn(address indexed treasury, uint256 amount);
    /// @notice Governance changed the parameters.
    event ParametersChanged(Parameters parameters);

    /// @notice `vmId` does not exist.
    error VmRegistryUnknownVm(uint256 vmId);
    /// @notice The VM is in `current`, which does not allow this call.
    error VmRegistryUnexpectedState(uint256 vmId, VmState current);
    /// @notice Only the VM's owner may do this.
    error VmRegistryNotOwner(uint256 vmId, address caller, address owner);
    /// @notice Only the operator of the VM's provider may do this.
    error VmRegistryNotOperator(uint256 vmId, address caller, address operator);
    /// @notice A deposit must be non-zero.
    error VmRegistryZeroDeposit();
    /// @notice Every resource dimension must be non-zero.
    error VmRegistryZeroResources(uint32 vcpu, uint32 memoryMiB, uint32 diskGiB);
    /// @notice A manifest digest must be non-zero.
    error VmRegistryEmptyManifest();
    /// @notice `provider` is not a registered provider.
    error VmRegistryUnknownProvider(address provider);
    /// @notice The request does not fit in what is left of the provider's declared capacity.
    error VmRegistryExceedsCapacity(address provider, Resources requested, Resources available);
    /// @notice A failure report needs a non-zero reason code.
    error VmRegistryMissingFailureReason(uint256 vmId);
    /// @notice There are no settled earnings (or fees) to withdraw.
    error VmRegistryNothingToWithdraw(address provider);
    /// @notice `provider` holds less than the minimum stake, so it cannot bid or take leases.
    error VmRegistryProviderStakeTooLow(address provider);
    /// @notice `provider` has no operator yet (its nominated key has not called `acceptOperator`), so it takes no lease.
    error VmRegistryProviderNoOperator(address provider);
    /// @notice `caller` is not the operator key of any provider.
    error VmRegistryNotAnOperator(address caller);
    /// @notice An order allows at most `max` regions, none of them zero.
    error VmRegistryInvalidRegions(uint256 count, uint256 max);
    /// @notice The bid window of `vmId` closed at `biddingEndsAt`.
    error VmRegistryBiddingClosed(uint256 vmId, uint64 biddingEndsAt);
    /// @notice The bid window of `vmId` is open until `biddingEndsAt`; only the owner may accept a bid before.
    error VmRegistryBiddingOpen(uint256 vmId, uint64 biddingEndsAt);
    /// @notice Order `vmId` holds MAX_BIDS bids: a new bid must be strictly below the highest of them,
    /// `highestPricePerSecond`, to enter (and evict it).
    error VmRegistryBidNotLowEnough(uint256 vmId, uint256 pricePerSecond, uint256 highestPricePerSecond);
    /// @notice `provider` quotes `pricePerSecond` for the request, above the tenant's `maxPricePerSecond`.
    error VmRegistryPriceAboveMax(address provider, uint256 pricePerSecond, uint256 maxPricePerSecond);
    /// @notice The provisioning deadline of `vmId` passed at `deadline`: only {expireVm} applies now.
    error VmRegistryDeadlinePassed(uint256 vmId, uint64 deadline);
    /// @notice `vmId` replaces `migratedFrom` and has not run yet: it cannot be migrated before it runs.
    error VmRegistryMigrationPending(uint256 vmId, uint256 migratedFrom);
    /// @notice The bid is above the order's maximum price.
    error VmRegistryBidAboveMax(uint256 vmId, uint256 pricePerSecond, uint256 maxPricePerSecond);
    /// @notice `provider` already bid on `vmId`.
    error VmRegistryAlreadyBid(uint256 vmId, address provider);
    /// @notice The provider's `region` is not in the order's allowed regions.
    error VmRegistryRegionNotAllowed(uint256 vmId, bytes32 region);
    /// @notice `index` is not a bid of `vmId` (it has `count`).
    error VmRegistryUnknownBid(uint256 vmId, uint256 index, uint256 count);
    /// @notice `acceptBid` named `expected` but bid `index` is `actual`'s (the list changed): read the bids again.
    error VmRegistryBidMoved(uint256 vmId, uint256 index, address expected, address actual);
    /// @notice Order `vmId` has no bid.
    error VmRegistryNoValidBid(uint256 vmId);
    /// @notice An amount must be non-zero.
    error VmRegistryZeroAmount();
    /// @notice The grace period of suspended VM `vmId` ended at `graceEndedAt`; it can only be closed.
    error VmRegistryGraceExpired(uint256 vmId, uint64 graceEndedAt);
    /// @notice VM `vmId` cannot be closed by anyone yet (`closableAt` is zero when it never can in this state).
    error VmRegistryNotClosable(uint256 vmId, VmState current, uint64 closableAt);
    /// @notice The provisioning deadline of `vmId` has not passed.
    error VmRegistryDeadlineNotPassed(uint256 vmId, uint64 deadline);
    /// @notice The provider already announced reclaiming `vmId` at `reclaimAt`.
    error VmRegistryAlreadyReclaimed(uint256 vmId, uint64 reclaimAt);
    /// @notice Only governance (the timelock) may call this.
    error VmRegistryNotGovernance(address caller);
    /// @notice A parameter is outside its bounds.
    error VmRegistryInvalidParameter(bytes32 name, uint256 value, uint256 min, uint256 max);

    /// @notice Requests a VM from `provider`, pulling `deposit` tokens from the caller (approve first).
    /// The provider must be staked and have room; its capacity is leased until the VM ends. The lease is made at the
    /// provider's price when the transaction runs, which must not exceed `maxPricePerSecond`; no later price change
    /// touches it.
    /// @dev Emits {VmRequested} and {VmStateChanged}. Reverts with {VmRegistryPriceAboveMax}.
    /// @return vmId The new VM's id; ids start at 1.
    function requestVm(
        address provider,
        bytes32 manifestDigest,
        Resources calldata resources,
        uint256 maxPricePerSecond,
        uint256 deposit
    ) external returns (uint256 vmId);

    /// @notice {requestVm} with an EIP-2612 permit instead of a prior approval.
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
    ) external returns (uint256 vmId);

    /// @notice Opens an order any provider in `regions` (any region when empty, at most MAX_REGIONS) may bid on,
    /// up to `maxPricePerSecond`, during the bid window. Pulls `deposit`.
    /// @dev Emits {VmOrderOpened} and {VmStateChanged}.
    function openOrder(
        bytes32 manifestDigest,
        Resources calldata resources,
        bytes32[] calldata regions,
        uint256 maxPricePerSecond,
        uint256 deposit
    ) external returns (uint256 vmId);

    /// @notice Operator: bids `pricePerSecond` for the operator's provider on open order `vmId`. The provider must
    /// be staked, in an allowed region and have room. A bid is binding: the capacity is reserved until the bid
    /// leaves (evicted, lost or cancelled), so the provider can neither shrink its capacity below it, unstake below
    /// the minimum nor move region while it stands. At most MAX_BIDS bids stand, one per provider; a bid strictly
    /// below the highest of a full order evicts it. Emits {VmBidPlaced} (and {VmBidEvicted}).
    function bid(uint256 vmId, uint256 pricePerSecond) external;

    /// @notice Owner: leases the order to bid `index`, which must be `provider`'s, now, even before the window ends;
    /// the other bidders' reservations are released. Naming the provider keeps an eviction that shifts the list
    /// (front-running the owner) from turning the accepted index into another provider's bid.
    /// @dev Emits {VmAwarded} and {VmStateChanged}. Reverts with {VmRegistryBidMoved}.
    function acceptBid(uint256 vmId, uint256 index, address provider) external;

    /// @notice Anyone, after the bid window: leases the order to the lowest bid (tie: the earliest); the losers'
    /// reservations are released. A standing bid cannot be made invalid, so a bidder cannot steer the result.
    /// @dev Emits {VmAwarded} and {VmStateChanged}.
    function award(uint256 vmId) external;

    /// @notice Owner: adds `amount` to the deposit. A Suspended VM within its grace period goes to Starting.
    /// @dev Emits {VmToppedUp} (and {VmStateChanged} when it revives a VM).
    function topUp(uint256 vmId, uint256 amount) external;

    /// @notice Owner: opens a replacement VM with the same manifest and resources, at `provider` or (when zero) as
    /// an open order; the old VM is closed and settled when the replacement is reported Running.
    /// `maxPricePerSecond` bounds the named provider's price as in {requestVm} (or is the order's maximum), and a
    /// non-empty `regions` must contain the named provider's region. A replacement that has not run yet cannot be
    /// migrated itself ({VmRegistryMigrationPending}), so a chain never leaves an older VM open.
    /// @dev Emits {VmMigrationRequested} and the events of {requestVm} or {openOrder}.
    function migrateVm(
        uint256 vmId,
        address provider,
        bytes32[] calldata regions,
        uint256 maxPricePerSecond,
        uint256 deposit
    ) external returns (uint256 newVmId);

    /// @notice Operator: the provider has accepted the VM and is provisioning it (Requested -> Provisioning).
    /// Not after the provisioning deadline ({VmRegistryDeadlinePassed}).
    function reportProvisioning(uint256 vmId) external;

    /// @notice Operator: the workload runs (Requested, Provisioning or Starting -> Running); billing starts now.
    /// The first Running report of a migration closes the VM it replaces. A leased VM must be reported by its
    /// provisioning deadline ({VmRegistryDeadlinePassed}); after it, only {expireVm} applies.
    function reportRunning(uint256 vmId) external;

    /// @notice Operator: the VM failed with `reason` (non-zero); billing is settled and the rest refunded.
    /// A VM still being provisioned can be failed only by its deadline (a provider cannot escape {expireVm}'s slash).
    function reportFailed(uint256 vmId, uint8 reason) external;

    /// @notice Operator: announces the provider will reclaim the lease after the exit notice; billing stops then.
    /// @dev Emits {VmReclaimAnnounced}.
    function reclaimVm(uint256 vmId) external;

    /// @notice Owner: stops a Running VM; billing pauses.
    function stopVm(uint256 vmId) external;

    /// @notice Owner: asks the provider to start a Stopped VM again (Stopped -> Starting).
    function startVm(uint256 vmId) external;

    /// @notice Owner: ends the VM for good (an open order is cancelled); billing is settled and the unused deposit
    /// refunded.
    function terminateVm(uint256 vmId) external;

    /// @notice Anyone: a leased VM not reported Running by its provisioning deadline is terminated, its deposit
    /// refunded in full, and the provider slashed in proportion to the deposit, within its per-period budget
    /// (see {IProviderRegistry-slash}). Emits {VmExpired}.
    function expireVm(uint256 vmId) external;

    /// @notice Anyone: closes a Suspended VM after its grace period, or a reclaimed VM after its notice.
    function closeVm(uint256 vmId) external;

    /// @notice Anyone: settles a VM's billing up to now. Useful before a provider withdraws.
    function settle(uint256 vmId) external;

    /// @notice Provider owner: sends all settled earnings to the caller.
    function withdrawEarnings() external returns (uint256 amount);

    /// @notice Anyone: sends the accrued platform fees to the treasury. Emits {FeesWithdrawn}.
    function withdrawFees() external returns (uint256 amount);

    /// @notice Governance only: replaces the parameters. Leases keep the fee they were made with.
    function setParameters(Parameters calldata parameters) external;

    /// @notice The VM with billing settled up to the current block (a view; nothing is written).
    function getVm(uint256 vmId) external view returns (VmView memory);

    /// @notice The standing bids on order `vmId` (kept after the award or a cancel), in arrival order.
    function getBids(uint256 vmId) external view returns (Bid[] memory);

    /// @notice The allowed regions of order `vmId` (empty: any).
    function getRegions(uint256 vmId) external view returns (bytes32[] memory);

    /// @notice Settled, unwithdrawn earnings of `provider`.
    function earningsOf(address provider) external view returns (uint256);

    /// @notice Settled, unwithdrawn platform fees.
    function feesAccrued() external view returns (uint256);

    /// @notice Number of VMs ever requested (ids 1..vmCount).
    function vmCount() external view returns (uint256);

    /// @notice The payment token.
    function paymentToken() external view returns (address);

    /// @notice The provider registry.
    function providerRegistry() external view returns (address);

    /// @notice The order book this registry deployed for its open orders.
    function orderBook() external view returns (address);

    /// @notice The timelock that owns the parameters.
    function governance() external view returns (address);

    /// @notice The current parameters.
    function parameters() external view returns (Parameters memory);
}
