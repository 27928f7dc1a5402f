// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IOrderBook} from "./interfaces/IOrderBook.sol";
import {IVmRegistry} from "./interfaces/IVmRegistry.sol";

/// @title OrderBook
/// @notice Open orders and their bids, kept for one VmRegistry (which deploys it). See {IOrderBook}.
/// @dev Every loop runs over at most MAX_BIDS bids or MAX_REGIONS regions.
contract OrderBook is IOrderBook {
    /// @notice Bids that stand on one order at a time.
    uint256 public constant MAX_BIDS = 8;
    /// @notice Regions one order can allow.
    uint256 public constant MAX_REGIONS = 4;

    address private immutable _vmRegistry;

    /// @dev One slot: maxPricePerSecond (88) | biddingEndsAt (32) | bidCount (8).
    mapping(uint256 vmId => Order) private _orders;
    /// @dev Allowed regions, zero-terminated (all zero: any region).
    mapping(uint256 vmId => bytes32[MAX_REGIONS]) private _regions;
    /// @dev The standing bids in arrival order: `_bids[vmId][0 .. bidCount - 1]`, one slot each.
    mapping(uint256 vmId => IVmRegistry.Bid[MAX_BIDS]) private _bids;

    constructor() {
        _vmRegistry = msg.sender;
    }

    modifier onlyVmRegistry() {
        if (msg.sender != _vmRegistry) revert OrderBookNotVmRegistry(msg.sender);
        _;
    }

    /// @inheritdoc IOrderBook
    function open(uint256 vmId, bytes32[] calldata regions_, uint88 maxPricePerSecond, uint32 biddingEndsAt)
        external
        onlyVmRegistry
    {
        uint256 count = regions_.length;
        if (count > MAX_REGIONS) revert IVmRegistry.VmRegistryInvalidRegions(count, MAX_REGIONS);
        bytes32[MAX_REGIONS] storage stored = _regions[vmId];
        for (uint256 i; i < count; ++i) {
            bytes32 region = regions_[i];
            if (region == 0) revert IVmRegistry.VmRegistryInvalidRegions(count, MAX_REGIONS);
            stored[i] = region;
        }
        _orders[vmId] = Order(maxPricePerSecond, biddingEndsAt, 0);
    }

    /// @inheritdoc IOrderBook
    function place(uint256 vmId, address provider, uint256 pricePerSecond, bytes32 region)
        external
        onlyVmRegistry
        returns (uint256 index, IVmRegistry.Bid memory evicted)
    {
        Order storage order_ = _orders[vmId];
        uint32 endsAt = order_.biddingEndsAt;
        if (block.timestamp >= endsAt) revert IVmRegistry.VmRegistryBiddingClosed(vmId, endsAt);
        uint256 maxPrice = order_.maxPricePerSecond;
        if (pricePerSecond > maxPrice) revert IVmRegistry.VmRegistryBidAboveMax(vmId, pricePerSecond, maxPrice);
        if (!_regionAllowed(vmId, region)) revert IVmRegistry.VmRegistryRegionNotAllowed(vmId, region);

        IVmRegistry.Bid[MAX_BIDS] storage list = _bids[vmId];
        uint256 count = order_.bidCount;
        // The highest standing bid, the latest of them on a tie: the one a full order gives up.
        uint256 highest;
        for (uint256 i; i < count; ++i) {
            IVmRegistry.Bid storage standing = list[i];
            if (standing.provider == provider) revert IVmRegistry.VmRegistryAlreadyBid(vmId, provider);
            if (standing.pricePerSecond >= list[highest].pricePerSecond) highest = i;
        }
        if (count == MAX_BIDS) {
            evicted = list[highest];
            if (pricePerSecond >= evicted.pricePerSecond) {
                revert IVmRegistry.VmRegistryBidNotLowEnough(vmId, pricePerSecond, evicted.pricePerSecond);
            }
            // Close the gap so the list keeps its arrival order; the new bid goes last.
            for (uint256 i = highest + 1; i < count; ++i) {
                list[i - 1] = list[i];
            }
            --count;
        }
        // `pricePerSecond <= maxPrice`, a uint88; `count < MAX_BIDS`.
        list[count] = IVmRegistry.Bid(provider, uint88(pricePerSecond));
        order_.bidCount = uint8(count + 1);
        index = count;
    }

    /// @inheritdoc IOrderBook
    function bestBid(uint256 vmId) external view returns (uint256 index, IVmRegistry.Bid[] memory all) {
        uint32 endsAt = _orders[vmId].biddingEndsAt;
        if (block.timestamp < endsAt) revert IVmRegistry.VmRegistryBiddingOpen(vmId, endsAt);
        all = _bidsOf(vmId);
        uint256 count = all.length;
        if (count == 0) revert IVmRegistry.VmRegistryNoValidBid(vmId);
        for (uint256 i = 1; i < count; ++i) {
            // Strictly lower: the earliest of equal bids stays the best.
            if (all[i].pricePerSecond < all[index].pricePerSecond) index = i;
        }
    }

    /// @inheritdoc IOrderBook
    function bids(uint256 vmId) external view returns (IVmRegistry.Bid[] memory) {
        return _bidsOf(vmId);
    }

    /// @inheritdoc IOrderBook
    function regions(uint256 vmId) external view returns (bytes32[] memory list) {
        bytes32[MAX_REGIONS] storage stored = _regions[vmId];
        uint256 count;
        while (count < MAX_REGIONS && stored[count] != 0) ++count;
        list = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            list[i] = stored[i];
        }
    }

    /// @inheritdoc IOrderBook
    function order(uint256 vmId) external view returns (Order memory) {
        return _orders[vmId];
    }

    /// @inheritdoc IOrderBook
    function vmRegistry() external view returns (address) {
        return _vmRegistry;
    }

    function _bidsOf(uint256 vmId) private view returns (IVmRegistry.Bid[] memory list) {
        uint256 count = _orders[vmId].bidCount;
        IVmRegistry.Bid[MAX_BIDS] storage stored = _bids[vmId];
        list = new IVmRegistry.Bid[](count);
        for (uint256 i; i < count; ++i) {
            list[i] = stored[i];
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
}
