// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {VmState} from "../interfaces/IVmRegistry.sol";

/// @notice One VM as the VmRegistry stores it. Every field means one thing in every state; an open order's bids and
/// allowed regions live in the OrderBook.
/// @dev Five slots. Slot 2 is the billing slot: a settlement reads and writes it alone.
struct Vm {
    // slot 0: owner (160) | vcpu (32) | memoryMiB (32) | diskGiB (32)
    address owner;
    uint32 vcpu;
    uint32 memoryMiB;
    uint32 diskGiB;
    // slot 1: provider (160) | deposit (96)
    /// The leased provider; zero while an order is open or after it was cancelled.
    address provider;
    /// Everything the owner ever escrowed for this VM (the first deposit plus top-ups).
    uint96 deposit;
    // slot 2: pricePerSecond (88) | balance (96) | settledAt (32) | state (8) | feeBps (16) | reclaimed (8) |
    // migrationPending (8)
    /// The leased price; zero until the VM is leased.
    uint88 pricePerSecond;
    /// What is left of the deposit: billing takes from it, a top-up adds to it. Once the VM is terminal, the amount
    /// refunded to the owner (so `deposit - balance` is what was billed, in every state).
    uint96 balance;
    /// The second billing was settled up to (the second the money ran out, for a Suspended VM); zero before the VM
    /// first runs. A uint32 of seconds is good until the year 2106.
    uint32 settledAt;
    VmState state;
    /// The platform fee in basis points, fixed when the VM is leased.
    uint16 feeBps;
    /// The provider announced it reclaims the lease at `reclaimAt` (kept here so billing reads one slot).
    bool reclaimed;
    /// The VM replaces `migratedFrom` and has not run yet; it cannot be migrated itself until it runs.
    bool migrationPending;
    // slot 3
    bytes32 manifestDigest;
    // slot 4: maxPricePerSecond (88) | biddingEndsAt (32) | provisioningDeadline (32) | reclaimAt (32) |
    // failureReason (8)
    /// The most the owner pays per second, as it stated in the request or the order: the lease price never exceeds it.
    uint88 maxPricePerSecond;
    /// The end of an open order's bid window; zero for a direct request.
    uint32 biddingEndsAt;
    /// The last second the provider may report the leased VM Provisioning or Running; zero before the lease.
    uint32 provisioningDeadline;
    /// The second billing stops for a reclaimed lease; zero unless `reclaimed`.
    uint32 reclaimAt;
    /// The provider's failure code once Failed, else zero.
    uint8 failureReason;
}
