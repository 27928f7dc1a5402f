// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IVmRegistry} from "./IVmRegistry.sol";

/// @title IOrderBook
/// @notice The bids and allowed regions of one VmRegistry's open orders. The order's terms (maximum price, bid
/// window, deposit) stay in the VmRegistry's VM record; only that VmRegistry writes here. It escrows the deposits,
/// reserves the bidders' capacity and emits every event (so the daemon reads all VM events from the VmRegistry's
/// address). A revert here carries the VmRegistry's own errors ({IVmRegistry}), so a client decodes it with the
/// VmRegistry's ABI.
/// @dev A bid is a binding commitment: the VmRegistry reserves the bidder's capacity when the bid enters and releases
/// it when the bid leaves (evicted, lost, cancelled). At most MAX_BIDS bids stand; when they are full, a bid strictly
/// below the highest evicts it (the latest of the highest on a tie), so the order always holds the lowest bids.
/// Bids keep their arrival order: the earliest wins a tie.
interface IOrderBook {
    /// @notice `caller` is not the VmRegistry this book belongs to.
    error OrderBookNotVmRegistry(address caller);

    /// @notice VmRegistry only: order `vmId` allows only `regions` (at most MAX_REGIONS, none zero). An order that
    /// never gets here allows every region. Reverts with {IVmRegistry-VmRegistryInvalidRegions}.
    function setRegions(uint256 vmId, bytes32[] calldata regions) external;

    /// @notice VmRegistry only: `provider` (whose capacity the registry just reserved, in `region`) bids
    /// `pricePerSecond` on order `vmId`, whose window and maximum price the registry checked. Reverts with the
    /// registry's AlreadyBid, RegionNotAllowed or BidNotLowEnough errors.
    /// @return index The bid's place in the list. @return evicted The bid it pushed out (zero provider: none); its
    /// reservation must be released.
    function place(uint256 vmId, address provider, uint256 pricePerSecond, bytes32 region)
        external
        returns (uint256 index, IVmRegistry.Bid memory evicted);

    /// @notice The lowest bid of order `vmId` (the earliest on a tie), with every bid so that the VmRegistry can
    /// release the losers' reservations. Nothing a bidder does after bidding changes the result.
    /// Reverts with {IVmRegistry-VmRegistryNoValidBid} when there is no bid.
    function lowestBid(uint256 vmId) external view returns (uint256 index, IVmRegistry.Bid[] memory bids);

    /// @notice The standing bids of order `vmId`, in arrival order (empty for a direct request).
    function bids(uint256 vmId) external view returns (IVmRegistry.Bid[] memory);

    /// @notice The allowed regions of order `vmId` (empty: any).
    function regions(uint256 vmId) external view returns (bytes32[] memory);

    /// @notice The VmRegistry this book belongs to.
    function vmRegistry() external view returns (address);
}
