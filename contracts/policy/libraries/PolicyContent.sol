// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CalldataConditions} from "./CalldataConditions.sol";

/// @title PolicyContent
/// @notice One immutable policy content, as the code of a data contract written once by {PolicyWriter-store}, and
/// the matcher that finds the class of a call in it. Versions point at content, so restoring an earlier version
/// reuses it. Reading a whole content costs one EXTCODECOPY (2,600 gas cold) where storage would cost a cold
/// SLOAD per slot; every reader below works on the copy in memory.
/// @dev Layout (after the code's leading STOP byte; integers big-endian; offsets are from the start of the content):
///   header   contentId (4) | policyHash (32) | classCount (1) | ruleCount (1) | memberCount (1) | maxDelay (4) |
///            membersOffset (2)
///   classes  (classCount + 1) class offsets (2 each); the last one is the recovery class
///   index    ruleCount entries of target (20) | selector (4) | classIndex (1) | ruleIndex (1) | ruleOffset (2) for
///            the rules of every class but recovery; a rule for this account has target address(0)
///   class    threshold (1) | signerCount (1) | guardianCount (1) | ruleCount (1) | delay (4) | expiryWindow (4) |
///            dominates (2) | name (32) | signers (20 each, ascending) | guardians (20 each, ascending) |
///            rule offsets (2 each)
///   rule     spendArg (1) | actionWords (1) | conditionCount (1) | actionTypeHash (32) | target (20) |
///            selector (4) | conditions
///   condition  see {CalldataConditions}
///   members  memberCount addresses (20 each)
library PolicyContent {
    /// @notice Index of the recovery class in class lookups.
    uint8 internal constant RECOVERY = type(uint8).max;

    uint256 internal constant HEADER = 45;
    uint256 internal constant INDEX_ENTRY = 28;
    uint256 internal constant CLASS_HEADER = 46;
    uint256 internal constant RULE_HEADER = 59;

    // ------------------------------------------------------------------ loading

    /// @notice Copies content `code` (`size` bytes after its STOP byte) to memory and returns where it starts.
    /// `code` must be a content written by {PolicyWriter-store}: the readers trust its layout.
    function load(address code, uint256 size) internal view returns (uint256 content) {
        assembly ("memory-safe") {
            content := mload(0x40)
            extcodecopy(code, content, 1, size)
            // 32 bytes of slack: a reader loads a whole word at the offset of its field.
            mstore(0x40, add(content, add(size, 32)))
        }
    }

    // ------------------------------------------------------------------ header

    function contentId(uint256 content) internal pure returns (uint32 v) {
        assembly ("memory-safe") {
            v := shr(224, mload(content))
        }
    }

    function policyHash(uint256 content) internal pure returns (bytes32 v) {
        assembly ("memory-safe") {
            v := mload(add(content, 4))
        }
    }

    function classCount(uint256 content) internal pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := byte(0, mload(add(content, 36)))
        }
    }

    /// @notice Longest delay of the classes (not recovery): how long a change away from this content can matter.
    function maxDelay(uint256 content) internal pure returns (uint32 v) {
        assembly ("memory-safe") {
            v := shr(224, mload(add(content, 39)))
        }
    }

    function members(uint256 content) internal pure returns (address[] memory list) {
        uint256 count;
        uint256 at;
        assembly ("memory-safe") {
            count := byte(0, mload(add(content, 38)))
            at := add(content, shr(240, mload(add(content, 43))))
        }
        list = new address[](count);
        for (uint256 i; i < count; ++i) {
            list[i] = _addressAt(at + 20 * i);
        }
    }

    /// @notice Where class `classIndex` ({RECOVERY} for the recovery class) starts in memory.
    function classAt(uint256 content, uint256 classIndex) internal pure returns (uint256 cls) {
        if (classIndex == RECOVERY) classIndex = classCount(content);
        assembly ("memory-safe") {
            cls := add(content, shr(240, mload(add(add(content, HEADER), shl(1, classIndex)))))
        }
    }

    // ------------------------------------------------------------------ a class

    /// @notice threshold, signerCount, delay and expiryWindow of class `cls`, read with one word.
    function params(uint256 cls)
        internal
        pure
        returns (uint8 threshold, uint256 signerCount, uint32 delay, uint32 expiryWindow)
    {
        assembly ("memory-safe") {
            let w := mload(cls)
            threshold := byte(0, w)
            signerCount := byte(1, w)
            delay := and(shr(192, w), 0xffffffff)
            expiryWindow := and(shr(160, w), 0xffffffff)
        }
    }

    /// @notice guardianCount, ruleCount and dominates (the classes this one is at least as strict as).
    function shape(uint256 cls) internal pure returns (uint256 guardianCount, uint8 ruleCount, uint16 dominates) {
        assembly ("memory-safe") {
            let w := mload(cls)
            guardianCount := byte(2, w)
            ruleCount := byte(3, w)
            dominates := and(shr(144, w), 0xffff)
        }
    }

    function name(uint256 cls) internal pure returns (bytes32 v) {
        assembly ("memory-safe") {
            v := mload(add(cls, 14))
        }
    }

    /// @notice Where the class's ascending signers (20 bytes each) start in memory.
    function signers(uint256 cls) internal pure returns (uint256) {
        return cls + CLASS_HEADER;
    }

    function signerAt(uint256 cls, uint256 i) internal pure returns (address) {
        return _addressAt(cls + CLASS_HEADER + 20 * i);
    }

    function guardianAt(uint256 cls, uint256 i) internal pure returns (address) {
        uint256 signerCount = _byteAt(cls + 1);
        return _addressAt(cls + CLASS_HEADER + 20 * (signerCount + i));
    }

    /// @notice Where rule `ruleIndex` of class `cls` starts in memory.
    function ruleAt(uint256 content, uint256 cls, uint256 ruleIndex) internal pure returns (uint256 rule) {
        uint256 lists = _byteAt(cls + 1) + _byteAt(cls + 2);
        assembly ("memory-safe") {
            let at := add(add(cls, CLASS_HEADER), add(mul(lists, 20), shl(1, ruleIndex)))
            rule := add(content, shr(240, mload(at)))
        }
    }

    // ------------------------------------------------------------------ a rule

    /// @notice spendArg (1-based argument word an agent is charged with; 0 = none), actionWords and actionTypeHash.
    function action(uint256 rule) internal pure returns (uint256 spendArg, uint256 actionWords, bytes32 actionTypeHash) {
        assembly ("memory-safe") {
            let w := mload(rule)
            spendArg := byte(0, w)
            actionWords := byte(1, w)
            actionTypeHash := mload(add(rule, 3))
        }
    }

    // ------------------------------------------------------------------ matching

    /// @notice The classes whose rules match a call to `target` with `data` (a bitmask) and, per class, the first
    /// matching rule (8 bits per class index in `rules`). `self` is this account.
    function candidates(uint256 content, address target, bytes calldata data, address self)
        internal
        view
        returns (uint16 mask, uint256 rules)
    {
        uint256 key;
        {
            uint256 length = data.length;
            // Calldata of 1 to 3 bytes is no function call at all: nothing matches it.
            if (length != 0 && length < 4) return (0, 0);
            // The index keys calls to this account as address(0): target (20) | selector (4) | 8 bytes not compared.
            uint256 keyTarget = target == self ? 0 : uint160(target);
            uint256 selector;
            assembly ("memory-safe") {
                selector := mul(iszero(iszero(length)), shr(224, calldataload(data.offset)))
            }
            key = (keyTarget << 96) | (selector << 64);
        }
        uint256 count;
        uint256 entry;
        assembly ("memory-safe") {
            count := byte(0, mload(add(content, 37)))
            entry := add(add(content, HEADER), shl(1, add(byte(0, mload(add(content, 36))), 1)))
        }
        for (uint256 e; e < count; ++e) {
            uint256 word;
            assembly ("memory-safe") {
                word := mload(add(entry, mul(e, INDEX_ENTRY)))
            }
            if (word >> 64 != key >> 64) continue;
            uint256 classIndex = (word >> 56) & 0xff;
            if (mask & (1 << classIndex) != 0) continue; // an earlier rule of this class matched already
            if (_ruleHolds(content + ((word >> 32) & 0xffff), data, target, self)) {
                mask |= uint16(1 << classIndex);
                rules |= ((word >> 48) & 0xff) << (8 * classIndex);
            }
        }
    }

    /// @notice The strictest class in `mask`: one that dominates every other; `found` is false when none does.
    function strictest(uint256 content, uint16 mask) internal pure returns (bool found, uint8 classIndex) {
        if (mask == 0) return (false, 0);
        // One candidate: no lookup needed.
        if (mask & (mask - 1) == 0) {
            uint8 i;
            while ((mask >> i) & 1 == 0) ++i;
            return (true, i);
        }
        for (uint256 i; mask >> i != 0; ++i) {
            if (mask & (1 << i) == 0) continue;
            (,, uint16 dominates) = shape(classAt(content, i));
            if (dominates & mask == mask) return (true, uint8(i));
        }
        return (false, 0);
    }

    /// @notice The index of the first rule of the recovery class that matches a call to `target` with `data`.
    function recoveryRule(uint256 content, address target, bytes calldata data, address self)
        internal
        view
        returns (bool found, uint8 ruleIndex)
    {
        if (target != self || data.length < 4) return (false, 0);
        bytes4 selector = bytes4(data[:4]);
        uint256 cls = classAt(content, RECOVERY);
        (, uint256 ruleCount,) = shape(cls);
        for (uint256 r; r < ruleCount; ++r) {
            uint256 rule = ruleAt(content, cls, r);
            bytes4 ruleSelector;
            assembly ("memory-safe") {
                ruleSelector := shl(224, shr(224, mload(add(rule, 55))))
            }
            if (ruleSelector == selector && _ruleHolds(rule, data, target, self)) return (true, uint8(r));
        }
        return (false, 0);
    }

    function _ruleHolds(uint256 rule, bytes calldata data, address target, address self) private view returns (bool) {
        uint256 n = _byteAt(rule + 2);
        uint256 condition = rule + RULE_HEADER;
        for (uint256 k; k < n; ++k) {
            if (!CalldataConditions.holds(condition, data, target, self)) return false;
            condition = CalldataConditions.next(condition);
        }
        return true;
    }

    function _byteAt(uint256 at) private pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := byte(0, mload(at))
        }
    }

    function _addressAt(uint256 at) private pure returns (address v) {
        assembly ("memory-safe") {
            v := shr(96, mload(at))
        }
    }
}
