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

    /// @notice The threshold of class `cls` alone (what {params} reads first): the signed path needs only it here.
    function thresholdOf(uint256 cls) internal pure returns (uint8 v) {
        assembly ("memory-safe") {
            v := byte(0, mload(cls))
        }
    }

    /// @notice The delay of class `cls` alone (as {params} reads it).
    function delayOf(uint256 cls) internal pure returns (uint32 v) {
        assembly ("memory-safe") {
            v := shr(224, mload(add(cls, 4)))
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

    /// @notice Where the class's ascending signers (20 bytes each) start in memory, and how many there are.
    function signerList(uint256 cls) internal pure returns (uint256 list, uint256 count) {
        assembly ("memory-safe") {
            list := add(cls, CLASS_HEADER)
            count := byte(1, mload(cls))
        }
    }

    function signerAt(uint256 cls, uint256 i) internal pure returns (address v) {
        assembly ("memory-safe") {
            v := shr(96, mload(add(add(cls, CLASS_HEADER), mul(i, 20))))
        }
    }

    function guardianAt(uint256 cls, uint256 i) internal pure returns (address v) {
        assembly ("memory-safe") {
            v := shr(96, mload(add(add(cls, CLASS_HEADER), mul(add(byte(1, mload(cls)), i), 20))))
        }
    }

    /// @notice Where rule `ruleIndex` of class `cls` starts in memory.
    function ruleAt(uint256 content, uint256 cls, uint256 ruleIndex) internal pure returns (uint256 rule) {
        assembly ("memory-safe") {
            let w := mload(cls)
            let at := add(add(cls, CLASS_HEADER), add(mul(add(byte(1, w), byte(2, w)), 20), shl(1, ruleIndex)))
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

    /// @notice The classes whose rules match a call to `target` with `data` and ETH `callValue` (a bitmask) and, per
    /// class, the first matching rule (8 bits per class index in `rules`). `self` is this account. A call with value
    /// matches only rules with a condition on it.
    function candidates(uint256 content, address target, uint256 callValue, bytes calldata data, address self)
        internal
        view
        returns (uint16 mask, uint256 rules)
    {
        uint256 key;
        uint256 entry;
        uint256 end;
        {
            uint256 length = data.length;
            // Calldata of 1 to 3 bytes is no function call at all: nothing matches it.
            if (length != 0 && length < 4) return (0, 0);
            assembly ("memory-safe") {
                // An entry's first 24 bytes: target (calls to this account as address(0)) | selector.
                let keyTarget := mul(iszero(eq(target, self)), target)
                key := or(shl(32, keyTarget), mul(iszero(iszero(length)), shr(224, calldataload(data.offset))))
                entry := add(add(content, HEADER), shl(1, add(byte(0, mload(add(content, 36))), 1)))
                end := add(entry, mul(byte(0, mload(add(content, 37))), INDEX_ENTRY))
            }
        }
        while (true) {
            uint256 word;
            (entry, word, mask, rules) = _scan(content, entry, end, key, callValue != 0, mask, rules);
            if (entry == end) return (mask, rules);
            // A rule with conditions (or any rule, for a call with value), the first candidate of its class: its
            // conditions decide.
            if (_ruleHolds(content + ((word >> 32) & 0xffff), data, callValue, target, self)) {
                (mask, rules) = _matched(word, mask, rules);
            }
            unchecked {
                entry += INDEX_ENTRY;
            }
        }
    }

    /// @notice The common case of {candidates} decided without evaluating conditions: `sole` when every index entry
    /// {candidates} would take for a call to `target` with `data` (the first matching one of each class) has a
    /// rule without conditions, and they all belong to one class; then `classIndex` is that class and `ruleIndex`
    /// its first matching rule, which is what {candidates} and {strictest} give. Anything else (no match, a
    /// condition to evaluate, several classes, a call with ETH value) is not `sole`: the caller asks {candidates}.
    /// @dev One assembly loop: the signed path classifies one call per transaction, and most rules have no conditions.
    function soleCandidate(uint256 content, address target, uint256 callValue, bytes calldata data, address self)
        internal
        pure
        returns (bool sole, uint8 classIndex, uint8 ruleIndex)
    {
        assembly ("memory-safe") {
            let length := data.length
            // Calldata of 1 to 3 bytes matches nothing, and a call with value only a rule with conditions: not `sole`.
            if and(iszero(callValue), or(iszero(length), gt(length, 3))) {
                let key := or(shl(32, mul(iszero(eq(target, self)), target)), mul(iszero(iszero(length)), shr(224, calldataload(data.offset))))
                let entry := add(add(content, HEADER), shl(1, add(byte(0, mload(add(content, 36))), 1)))
                let end := add(entry, mul(byte(0, mload(add(content, 37))), INDEX_ENTRY))
                // 0: nothing matched yet; 1: entries of class `classIndex` only; 2: give up.
                let matched := 0
                for {} lt(entry, end) { entry := add(entry, INDEX_ENTRY) } {
                    let word := mload(entry)
                    if eq(shr(64, word), key) {
                        let c := and(shr(56, word), 0xff)
                        // A later entry of the matched class is skipped, as {candidates} skips it.
                        if iszero(and(matched, eq(c, classIndex))) {
                            // Another class, or a rule with conditions: {candidates} decides.
                            if or(matched, byte(2, mload(add(content, and(shr(32, word), 0xffff))))) {
                                matched := 2
                                break
                            }
                            matched := 1
                            classIndex := c
                            ruleIndex := and(shr(48, word), 0xff)
                        }
                    }
                }
                sole := eq(matched, 1)
            }
        }
    }

    /// @dev Walks index entries from `entry` to `end`: entries for `key` of a class that has no match yet are
    /// matched at once when their rule has no conditions and the call no value (`withValue` false); stops at the
    /// first other one (returning it and its `word`), else returns `end`. In assembly because it runs for every
    /// call of every operation, and most rules (a target and a function) have no conditions.
    function _scan(uint256 content, uint256 entry, uint256 end, uint256 key, bool withValue, uint16 mask, uint256 rules)
        private
        pure
        returns (uint256, uint256 word, uint16, uint256)
    {
        assembly ("memory-safe") {
            for {} lt(entry, end) { entry := add(entry, INDEX_ENTRY) } {
                word := mload(entry)
                let classIndex := and(shr(56, word), 0xff)
                // Its (target, selector), and no earlier rule of its class matched already.
                if and(eq(shr(64, word), key), iszero(and(shr(classIndex, mask), 1))) {
                    if or(withValue, byte(2, mload(add(content, and(shr(32, word), 0xffff))))) { break }
                    mask := or(mask, shl(classIndex, 1))
                    rules := or(rules, shl(shl(3, classIndex), and(shr(48, word), 0xff)))
                }
            }
        }
        return (entry, word, mask, rules);
    }

    /// @dev `mask` and `rules` with the class and rule of index entry `word` added.
    function _matched(uint256 word, uint16 mask, uint256 rules) private pure returns (uint16, uint256) {
        uint256 classIndex = (word >> 56) & 0xff;
        return (mask | uint16(1 << classIndex), rules | (((word >> 48) & 0xff) << (8 * classIndex)));
    }

    /// @notice The strictest class in `mask`: one that dominates every other; `found` is false when none does.
    function strictest(uint256 content, uint16 mask) internal pure returns (bool found, uint8 classIndex) {
        if (mask == 0) return (false, 0);
        // One candidate: no lookup needed.
        if (mask & (mask - 1) == 0) {
            assembly ("memory-safe") {
                for {} iszero(and(shr(classIndex, mask), 1)) {} { classIndex := add(classIndex, 1) }
            }
            return (true, classIndex);
        }
        for (uint256 i; mask >> i != 0; ++i) {
            if (mask & (1 << i) == 0) continue;
            (,, uint16 dominates) = shape(classAt(content, i));
            if (dominates & mask == mask) return (true, uint8(i));
        }
        return (false, 0);
    }

    /// @notice The index of the first rule of the recovery class that matches a call to `target` with `data` and ETH
    /// `callValue`.
    function recoveryRule(uint256 content, address target, uint256 callValue, bytes calldata data, address self)
        internal
        view
        returns (bool found, uint8 ruleIndex)
    {
        if (target != self || data.length < 4) return (false, 0);
        uint256 cls = classAt(content, RECOVERY);
        (, uint256 ruleCount,) = shape(cls);
        for (uint256 r; r < ruleCount; ++r) {
            uint256 rule = _recoveryCandidate(content, cls, r, data);
            // The recovery class calls only this account: the call's target is `self`.
            if (rule != 0 && _ruleHolds(rule, data, callValue, self, self)) return (true, uint8(r));
        }
        return (false, 0);
    }

    /// @dev Rule `r` of recovery class `cls`, or zero when its selector is not `data`'s.
    function _recoveryCandidate(uint256 content, uint256 cls, uint256 r, bytes calldata data)
        private
        pure
        returns (uint256 rule)
    {
        uint256 at = ruleAt(content, cls, r);
        assembly ("memory-safe") {
            if eq(shr(224, mload(add(at, 55))), shr(224, calldataload(data.offset))) { rule := at }
        }
    }

    /// @dev Whether every condition of `rule` holds for the call, and, when the call sends ETH, one of them is on its
    /// value: a rule that says nothing about value lets no ETH leave.
    function _ruleHolds(uint256 rule, bytes calldata data, uint256 callValue, address target, address self)
        private
        view
        returns (bool)
    {
        uint256 conditions = _byteAt(rule + 2);
        uint256 condition = rule + RULE_HEADER;
        bool valueChecked;
        for (uint256 k; k < conditions; ++k) {
            if (!CalldataConditions.holds(condition, data, callValue, target, self)) return false;
            if (CalldataConditions.readsValue(condition)) valueChecked = true;
            condition = CalldataConditions.next(condition);
        }
        return callValue == 0 || valueChecked;
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
