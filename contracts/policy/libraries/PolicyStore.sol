// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CalldataConditions} from "./CalldataConditions.sol";
import {Call, MAX_CLASSES, MAX_CONDITIONS, MAX_GUARDIANS, MAX_MEMBERS, MAX_RULES, MAX_SIGNERS} from "../PolicyTypes.sol";

/// @title PolicyStore
/// @notice One immutable policy content (classes, rules, conditions, members) in storage, and the matcher that
/// finds the class of a call. Content is written once by {PolicyWriter-store} and never changed: versions point at content,
/// so restoring an earlier version reuses it.
library PolicyStore {
    using CalldataConditions for CalldataConditions.Condition;

    /// @notice Index of the recovery class in {Content-classes}-style lookups.
    uint8 internal constant RECOVERY = type(uint8).max;

    struct Rule {
        // slot 0: spendArg (8) | actionWords (8) | conditionCount (8)
        uint8 spendArg;
        uint8 actionWords;
        uint8 conditionCount;
        // slot 1
        bytes32 actionTypeHash;
        CalldataConditions.Condition[MAX_CONDITIONS] conditions;
        // For the recovery class only (it is not in the index): what the rule matches.
        address target;
        bytes4 selector;
    }

    struct Class {
        // slot 0: threshold (8) | signerCount (8) | delay (32) | expiryWindow (32) | dominates (16) | signerCode (160)
        uint8 threshold;
        uint8 signerCount;
        uint32 delay;
        uint32 expiryWindow;
        /// @dev Bitmask of the classes this one is at least as strict as (itself included).
        uint16 dominates;
        /// @dev A data contract whose code is 0x00 followed by the sorted signers, 20 bytes each: signature checks
        /// read the whole set with one EXTCODECOPY instead of one SLOAD per signer.
        address signerCode;
        // slot 1: guardianCount (8) | ruleCount (8)
        uint8 guardianCount;
        uint8 ruleCount;
        bytes32 name;
        /// @dev Sorted ascending, so signatures sorted by signer are matched in one forward walk.
        address[MAX_SIGNERS] signers;
        address[MAX_GUARDIANS] guardians;
        Rule[MAX_RULES] rules;
    }

    struct Content {
        // slot 0: classCount (8) | memberCount (8) | maxDelay (32)
        uint8 classCount;
        uint8 memberCount;
        /// @dev Longest delay of the classes (not the recovery class): how long a change of this content can matter.
        uint32 maxDelay;
        bytes32 policyHash;
        Class[MAX_CLASSES] classes;
        Class recovery;
        address[MAX_MEMBERS] members;
        /// @dev (target, selector) -> count (8) | up to MAX_RULES_PER_SELECTOR entries of classIndex (8) | ruleIndex (8).
        /// The target of calls to this account is stored as address(0).
        mapping(address target => mapping(bytes4 selector => uint256 packed)) index;
    }

    // ------------------------------------------------------------------ matching

    /// @notice The classes whose rules match `call` (a bitmask) and, per class, the first matching rule
    /// (8 bits per class index in `rules`). `self_` is this account.
    function candidates(Content storage self, Call calldata call, address self_)
        internal
        view
        returns (uint16 mask, uint256 rules)
    {
        bytes4 selector;
        {
            uint256 length = call.data.length;
            // Calldata of 1 to 3 bytes is no function call at all: nothing matches it.
            if (length != 0 && length < 4) return (0, 0);
            if (length >= 4) selector = bytes4(call.data[:4]);
        }
        uint256 packed = self.index[call.target == self_ ? address(0) : call.target][selector];
        uint256 count = packed & 0xff;
        for (uint256 e; e < count; ++e) {
            uint256 entry = packed >> (8 + 16 * e);
            uint256 classIndex = entry & 0xff;
            if (mask & (1 << classIndex) != 0) continue; // an earlier rule of this class matched already
            uint256 ruleIndex = (entry >> 8) & 0xff;
            if (_ruleHolds(self.classes[classIndex].rules[ruleIndex], call, self_)) {
                mask |= uint16(1 << classIndex);
                rules |= ruleIndex << (8 * classIndex);
            }
        }
    }

    /// @notice The strictest class in `mask`: one that dominates every other; `found` is false when none does.
    function strictest(Content storage self, uint16 mask) internal view returns (bool found, uint8 classIndex) {
        if (mask == 0) return (false, 0);
        // One candidate: no lookup needed.
        if (mask & (mask - 1) == 0) {
            uint8 i;
            while ((mask >> i) & 1 == 0) ++i;
            return (true, i);
        }
        for (uint256 i; i < MAX_CLASSES; ++i) {
            if (mask & (1 << i) == 0) continue;
            if (self.classes[i].dominates & mask == mask) return (true, uint8(i));
        }
        return (false, 0);
    }

    /// @notice The index of the first rule of the recovery class that matches `call`, if any.
    function recoveryRule(Content storage self, Call calldata call, address self_)
        internal
        view
        returns (bool found, uint8 ruleIndex)
    {
        if (call.target != self_ || call.data.length < 4) return (false, 0);
        bytes4 selector = bytes4(call.data[:4]);
        Class storage c = self.recovery;
        for (uint256 r; r < c.ruleCount; ++r) {
            Rule storage rule = c.rules[r];
            if (rule.selector == selector && _ruleHolds(rule, call, self_)) return (true, uint8(r));
        }
        return (false, 0);
    }

    function _ruleHolds(Rule storage rule, Call calldata call, address self_) private view returns (bool) {
        uint256 n = rule.conditionCount;
        for (uint256 k; k < n; ++k) {
            if (!rule.conditions[k].holds(call.data, call.target, self_)) return false;
        }
        return true;
    }

    /// @notice Class `classIndex`, or the recovery class for {RECOVERY}.
    function classAt(Content storage self, uint8 classIndex) internal view returns (Class storage) {
        return classIndex == RECOVERY ? self.recovery : self.classes[classIndex];
    }
}
