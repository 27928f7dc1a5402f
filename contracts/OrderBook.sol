// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IOrderBook} from "./interfaces/IOrderBook.sol";
import {IVmRegistry} from "./interfaces/IVmRegistry.sol";

/// @title OrderBook
/// @notice The bids and allowed regions of open orders, kept for one VmRegistry (which deploys it). See {IOrderBook}.
/// @dev Every loop runs over at most MAX_BIDS bids or MAX_REGIONS regions.
contract OrderBook is IOrderBook {
    /// @notice Bids that stand on one order at a time.
    uint256 public constant MAX_BIDS = 8;
    /// @notice Regions one order can allow.
    uint256 public constant MAX_REGIONS = 4;

    address private immutable _vmRegistry;

    /// @dev Allowed regions, zero-terminated (all zero: any region).
    mapping(uint256 vmId => bytes32[MAX_REGIONS]) private _regions;
    /// @dev The standing bids in arrival order, one slot each, followed by empty ones (a bid's provider is never zero).
    mapping(uint256 vmId => IVmRegistry.Bid[MAX_BIDS]) private _bids;

    constructor() {
        _vmRegistry = msg.sender;
    }

    modifier onlyVmRegistry() {
        if (msg.sender != _vmRegistry) revert OrderBookNotVmRegistry(msg.sender);
        _;
    }

    /// @inheritdoc IOrderBook
    function setRegions(uint256 vmId, bytes32[] calldata regions_) external onlyVmRegistry {
        uint256 count = regions_.length;
        if (count > MAX_REGIONS) revert IVmRegistry.VmRegistryInvalidRegions(count, MAX_REGIONS);
        bytes32[MAX_REGIONS] storage stored = _regions[vmId];
        for (uint256 i; i < count; ++i) {
            bytes32 region = regions_[i];
            if (region == 0) revert IVmRegistry.VmRegistryInvalidRegions(count, MAX_REGIONS);
            stored[i] = region;
        }
    }

    /// @inheritdoc IOrderBook
    function place(uint256 vmId, address provider, uint256 pricePerSecond, bytes32 region)
        external
        onlyVmRegistry
        returns (uint256 index, IVmRegistry.Bid memory evicted)
    {
        if (!_regionAllowed(vmId, region)) revert IVmRegistry.VmRegistryRegionNotAllowed(vmId, region);
        IVmRegistry.Bid[MAX_BIDS] storage list = _bids[vmId];
        // One pass: the number of standing bids, a duplicate, and the highest bid (the latest of them on a tie),
        // the one a full order gives up.
        uint256 count;
        uint256 highest;
        uint256 highestPrice;
        for (; count < MAX_BIDS; ++count) {
            IVmRegistry.Bid storage standing = list[count];
            address bidder = standing.provider;
            if (bidder == address(0)) break;
            if (bidder == provider) revert IVmRegistry.VmRegistryAlreadyBid(vmId, provider);
            uint256 price = standing.pricePerSecond;
            if (price >= highestPrice) (highest, highestPrice) = (count, price);
        }
        if (count == MAX_BIDS) {
            if (pricePerSecond >= highestPrice) {
                revert IVmRegistry.VmRegistryBidNotLowEnough(vmId, pricePerSecond, highestPrice);
            }
            evicted = list[highest];
            // Close the gap so the list keeps its arrival order; the new bid goes last.
            for (uint256 i = highest + 1; i < MAX_BIDS; ++i) {
                list[i - 1] = list[i];
            }
            --count;
        }
        // The VmRegistry checked `pricePerSecond` against the order's maximum, a uint88.
        list[count] = IVmRegistry.Bid(provider, uint88(pricePerSecond));
        index = count;
    }

    /// @inheritdoc IOrderBook
    function lowestBid(uint256 vmId) external view returns (uint256 index, IVmRegistry.Bid[] memory all) {
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
    function vmRegistry() external view returns (address) {
        return _vmRegistry;
    }

    function _bidsOf(uint256 vmId) private view returns (IVmRegistry.Bid[] memory list) {
        IVmRegistry.Bid[MAX_BIDS] storage stored = _bids[vmId];
        uint256 count;
        while (count < MAX_BIDS && stored[count].provider != address(0)) ++count;
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
