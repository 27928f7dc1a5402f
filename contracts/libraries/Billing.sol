// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {VmState} from "../interfaces/IVmRegistry.sol";
import {Vm} from "../types/Vm.sol";

/// @title Billing
/// @notice Per-second billing of one VM over its stored record.
/// @dev Billing is derived, not pushed: a Running VM owes `(min(now, reclaimAt) - settledAt) * pricePerSecond`,
/// capped by its balance. The fee is derived too: `fee(billed) = billed * feeBps / BPS` (rounded down) of the VM's
/// cumulative billing `billed = deposit - balance`, so a settlement charges `fee(billedAfter) - fee(billedBefore)`
/// and no fee total is stored. Only slot 2 of the record (and slot 4 for a reclaimed lease) is read.
library Billing {
    uint256 internal constant BPS = 10_000;

    /// @notice What the VM owes at `timestamp`, the `settledAt` a settlement then stores, and whether the deposit
    /// ran out (`settledAt` is then the second it did). Zero for a VM that is not Running.
    function owed(Vm storage self, uint256 timestamp)
        internal
        view
        returns (uint256 due, uint32 settledAt, bool exhausted)
    {
        settledAt = self.settledAt;
        if (self.state != VmState.Running) return (0, settledAt, false);
        uint256 end = timestamp;
        if (self.reclaimed) {
            uint256 reclaimAt = self.reclaimAt;
            if (reclaimAt < end) end = reclaimAt;
        }
        if (end <= settledAt) return (0, settledAt, false);
        uint256 price = self.pricePerSecond;
        uint256 balance = self.balance;
        // A uint32 span times a uint88 price cannot overflow.
        uint256 cost = (end - settledAt) * price;
        if (price != 0 && cost >= balance) {
            // The second the money ran out: ceil(balance / price) after the last settlement, never after `end`.
            return (balance, uint32(settledAt + (balance + price - 1) / price), true);
        }
        return (cost, uint32(end), false);
    }

    /// @notice Settles the VM up to `timestamp`: takes what it owes from its balance.
    /// @return due What left the balance. @return fee The platform's part of `due`. @return exhausted Whether the
    /// deposit ran out (the caller suspends the VM).
    function settle(Vm storage self, uint256 timestamp) internal returns (uint256 due, uint256 fee, bool exhausted) {
        uint32 settledAt;
        (due, settledAt, exhausted) = owed(self, timestamp);
        self.settledAt = settledAt;
        if (due == 0) return (0, 0, exhausted);
        uint256 balance = self.balance;
        uint256 billedBefore = self.deposit - balance;
        fee = feeOf(billedBefore + due, self.feeBps) - feeOf(billedBefore, self.feeBps);
        // `due <= balance`, a uint96.
        unchecked {
            self.balance = uint96(balance - due);
        }
    }

    /// @notice The fee on a cumulative billing of `billed` at `feeBps`.
    function feeOf(uint256 billed, uint256 feeBps) internal pure returns (uint256) {
        return billed * feeBps / BPS;
    }
}
