// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CalldataConditions} from "./CalldataConditions.sol";
import {PolicyLayout as L, ClassPtr, ConditionPtr, ContentPtr, RulePtr} from "./PolicyLayout.sol";
import {RECOVERY} from "../PolicyTypes.sol";

/// @title PolicyContent
/// @notice One immutable policy content, as the code of a data contract written once by {PolicyWriter-store} in
/// the layout {PolicyLayout} names, and the matcher that finds the class of a call in it. Versions point at
/// content, so restoring an earlier version reuses it. Reading a whole content costs one EXTCODECOPY (2,600 gas
/// cold) where storage would cost a cold SLOAD per slot; every reader below works on the copy in memory.
library PolicyContent {
    // ------------------------------------------------------------------ loading

    /// @notice Copies content `code` (`size` bytes after its STOP byte) to memory and returns where it starts.
    /// `code` must be a content written by {PolicyWriter-store}: the readers trust its layout.
    function load(address code, uint256 size) internal view returns (ContentPtr content) {
        // EXTCODECOPY has no Solidity form but `code.code`, which copies the whole code with its STOP byte and
        // a length word: this copies exactly the content to the free memory pointer.
        assembly ("memory-safe") {
            content := mload(0x40)
            extcodecopy(code, content, 1, size)
            // 32 bytes of slack: a reader loads a whole word at the offset of its field.
            mstore(0x40, add(content, add(size, 32)))
        }
    }

    // ------------------------------------------------------------------ header

    function contentId(ContentPtr content) internal pure returns (uint32) {
        return uint32(L.get(ContentPtr.unwrap(content), L.CONTENT_ID));
    }

    function policyHash(ContentPtr content) internal pure returns (bytes32) {
        return bytes32(L.get(ContentPtr.unwrap(content), L.POLICY_HASH));
    }

    function classCount(ContentPtr content) internal pure returns (uint256) {
        return L.get(ContentPtr.unwrap(content), L.CLASS_COUNT);
    }

    /// @notice Longest delay of the classes (not recovery): how long a change away from this content can matter.
    function maxDelay(ContentPtr content) internal pure returns (uint32) {
        return uint32(L.get(ContentPtr.unwrap(content), L.MAX_DELAY));
    }

    function members(ContentPtr content) internal pure returns (address[] memory list) {
        uint256 start = ContentPtr.unwrap(content);
        uint256 at = start + L.get(start, L.MEMBERS_AT);
        list = new address[](L.get(start, L.MEMBER_COUNT));
        for (uint256 i; i < list.length; ++i) {
            list[i] = address(uint160(L.get(at + L.ADDRESS_SIZE * i, L.ADDRESS)));
        }
    }

    /// @notice Where class `classIndex` ({RECOVERY} for the recovery class) starts in memory.
    function classAt(ContentPtr content, uint256 classIndex) internal pure returns (ClassPtr) {
        if (classIndex == RECOVERY) classIndex = classCount(content);
        uint256 start = ContentPtr.unwrap(content);
        return ClassPtr.wrap(start + L.get(start + L.HEADER_SIZE + L.OFFSET_SIZE * classIndex, L.TABLE_ENTRY));
    }

    // ------------------------------------------------------------------ a class

    /// @notice threshold, signerCount, delay and expiryWindow of class `cls`.
    function params(ClassPtr cls)
        internal
        pure
        returns (uint8 threshold, uint256 signerCount, uint32 delay, uint32 expiryWindow)
    {
        uint256 at = ClassPtr.unwrap(cls);
        return (
            uint8(L.get(at, L.THRESHOLD)),
            L.get(at, L.SIGNER_COUNT),
            uint32(L.get(at, L.DELAY)),
            uint32(L.get(at, L.EXPIRY_WINDOW))
        );
    }

    function thresholdOf(ClassPtr cls) internal pure returns (uint8) {
        return uint8(L.get(ClassPtr.unwrap(cls), L.THRESHOLD));
    }

    function delayOf(ClassPtr cls) internal pure returns (uint32) {
        return uint32(L.get(ClassPtr.unwrap(cls), L.DELAY));
    }

    /// @notice guardianCount, ruleCount and dominates (the classes this one is at least as strict as).
    function shape(ClassPtr cls) internal pure returns (uint256 guardianCount, uint8 ruleCount, uint16 dominates) {
        uint256 at = ClassPtr.unwrap(cls);
        return (L.get(at, L.GUARDIAN_COUNT), uint8(L.get(at, L.CLASS_RULE_COUNT)), uint16(L.get(at, L.DOMINATES)));
    }

    function name(ClassPtr cls) internal pure returns (bytes32) {
        return bytes32(L.get(ClassPtr.unwrap(cls), L.NAME));
    }

    /// @notice Where the class's ascending signers (ADDRESS_SIZE bytes each) start in memory, and how many there are.
    function signerList(ClassPtr cls) internal pure returns (uint256 list, uint256 count) {
        uint256 at = ClassPtr.unwrap(cls);
        return (at + L.CLASS_HEADER_SIZE, L.get(at, L.SIGNER_COUNT));
    }

    function signerAt(ClassPtr cls, uint256 i) internal pure returns (address) {
        return address(uint160(L.get(ClassPtr.unwrap(cls) + L.CLASS_HEADER_SIZE + L.ADDRESS_SIZE * i, L.ADDRESS)));
    }

    function guardianAt(ClassPtr cls, uint256 i) internal pure returns (address) {
        (, uint256 signerCount) = signerList(cls);
        return signerAt(cls, signerCount + i);
    }

    /// @notice Where rule `ruleIndex` of class `cls` starts in memory.
    function ruleAt(ContentPtr content, ClassPtr cls, uint256 ruleIndex) internal pure returns (RulePtr) {
        uint256 at = ClassPtr.unwrap(cls);
        uint256 addresses = L.get(at, L.SIGNER_COUNT) + L.get(at, L.GUARDIAN_COUNT);
        uint256 offsets = at + L.CLASS_HEADER_SIZE + L.ADDRESS_SIZE * addresses;
        return RulePtr.wrap(ContentPtr.unwrap(content) + L.get(offsets + L.OFFSET_SIZE * ruleIndex, L.RULE_AT));
    }

    // ------------------------------------------------------------------ a rule

    /// @notice spendArg (1-based argument word an agent is charged with; 0 = none), actionWords and actionTypeHash.
    function action(RulePtr rule) internal pure returns (uint256 spendArg, uint256 actionWords, bytes32 actionTypeHash) {
        uint256 at = RulePtr.unwrap(rule);
        return (L.get(at, L.SPEND_ARG), L.get(at, L.ACTION_WORDS), bytes32(L.get(at, L.ACTION_TYPE_HASH)));
    }

    function conditionCount(RulePtr rule) internal pure returns (uint256) {
        return L.get(RulePtr.unwrap(rule), L.CONDITION_COUNT);
    }

    // ------------------------------------------------------------------ matching

    /// @notice The classes whose rules match a call to `target` with `data` and ETH `callValue` (a bitmask) and, per
    /// class, the first matching rule (8 bits per class index in `rules`). `self` is this account. A call with value
    /// matches only rules with a condition on it.
    function candidates(ContentPtr content, address target, uint256 callValue, bytes calldata data, address self)
        internal
        view
        returns (uint16 mask, uint256 rules)
    {
        (bool callable, uint256 key, uint256 entry, uint256 end) = _indexFor(content, target, data, self);
        if (!callable) return (0, 0);
        for (; entry < end; entry += L.ENTRY_SIZE) {
            if (L.get(entry, L.ENTRY_KEY) != key) continue;
            uint256 classIndex = L.get(entry, L.ENTRY_CLASS);
            // The first matching rule of a class decides for it.
            if (mask & (1 << classIndex) != 0) continue;
            RulePtr rule = RulePtr.wrap(ContentPtr.unwrap(content) + L.get(entry, L.ENTRY_RULE_AT));
            if (_ruleHolds(rule, data, callValue, target, self)) {
                mask |= uint16(1 << classIndex);
                rules |= L.get(entry, L.ENTRY_RULE) << (8 * classIndex);
            }
        }
    }

    /// @notice The common case of {candidates} decided without evaluating conditions: `sole` when every index entry
    /// {candidates} would take for a call to `target` with `data` (the first matching one of each class) has a
    /// rule without conditions, and they all belong to one class; then `classIndex` is that class and `ruleIndex`
    /// its first matching rule, which is what {candidates} and {strictest} give. Anything else (no match, a
    /// condition to evaluate, several classes, a call with ETH value) is not `sole`: the caller asks {candidates}.
    function soleCandidate(ContentPtr content, address target, uint256 callValue, bytes calldata data, address self)
        internal
        pure
        returns (bool sole, uint8 classIndex, uint8 ruleIndex)
    {
        (bool callable, uint256 key, uint256 entry, uint256 end) = _indexFor(content, target, data, self);
        // A call with value matches only a rule with conditions: not `sole`.
        if (!callable || callValue != 0) return (false, 0, 0);
        for (; entry < end; entry += L.ENTRY_SIZE) {
            if (L.get(entry, L.ENTRY_KEY) != key) continue;
            uint256 c = L.get(entry, L.ENTRY_CLASS);
            // A later entry of the matched class is skipped, as {candidates} skips it.
            if (sole && c == classIndex) continue;
            // Another class, or a rule with conditions: {candidates} decides.
            if (sole) return (false, 0, 0);
            RulePtr rule = RulePtr.wrap(ContentPtr.unwrap(content) + L.get(entry, L.ENTRY_RULE_AT));
            if (conditionCount(rule) != 0) return (false, 0, 0);
            (sole, classIndex, ruleIndex) = (true, uint8(c), uint8(L.get(entry, L.ENTRY_RULE)));
        }
    }

    /// @dev The index key of a call to `target` with `data` (target | selector; calls to this account as target 0)
    /// and the index entries to search. Calldata of 1 to 3 bytes is no function call at all: not `callable`.
    function _indexFor(ContentPtr content, address target, bytes calldata data, address self)
        private
        pure
        returns (bool callable, uint256 key, uint256 entry, uint256 end)
    {
        if (data.length != 0 && data.length < 4) return (false, 0, 0, 0);
        uint256 keyTarget = target == self ? 0 : uint160(target);
        key = keyTarget << 32 | (data.length == 0 ? 0 : uint32(bytes4(data[:4])));
        uint256 start = ContentPtr.unwrap(content);
        entry = start + L.HEADER_SIZE + L.OFFSET_SIZE * (classCount(content) + 1);
        end = entry + L.ENTRY_SIZE * L.get(start, L.RULE_COUNT);
        callable = true;
    }

    /// @notice The strictest class in `mask`: one that dominates every other; `found` is false when none does.
    function strictest(ContentPtr content, uint16 mask) internal pure returns (bool found, uint8 classIndex) {
        for (uint256 i; mask >> i != 0; ++i) {
            if (mask & (1 << i) == 0) continue;
            // One candidate: no lookup needed.
            if (mask & (mask - 1) == 0) return (true, uint8(i));
            (,, uint16 dominates) = shape(classAt(content, i));
            if (dominates & mask == mask) return (true, uint8(i));
        }
        return (false, 0);
    }

    /// @notice The index of the first rule of the recovery class that matches a call to `target` with `data` and ETH
    /// `callValue`.
    function recoveryRule(ContentPtr content, address target, uint256 callValue, bytes calldata data, address self)
        internal
        view
        returns (bool found, uint8 ruleIndex)
    {
        if (target != self || data.length < 4) return (false, 0);
        ClassPtr cls = classAt(content, RECOVERY);
        (, uint256 ruleCount,) = shape(cls);
        for (uint256 r; r < ruleCount; ++r) {
            RulePtr rule = ruleAt(content, cls, r);
            if (bytes4(uint32(L.get(RulePtr.unwrap(rule), L.RULE_SELECTOR))) != bytes4(data[:4])) continue;
            // The recovery class calls only this account: the call's target is `self`.
            if (_ruleHolds(rule, data, callValue, self, self)) return (true, uint8(r));
        }
        return (false, 0);
    }

    /// @dev Whether every condition of `rule` holds for the call, and, when the call sends ETH, one of them is on its
    /// value: a rule that says nothing about value lets no ETH leave.
    function _ruleHolds(RulePtr rule, bytes calldata data, uint256 callValue, address target, address self)
        private
        view
        returns (bool)
    {
        uint256 count = conditionCount(rule);
        ConditionPtr condition = ConditionPtr.wrap(RulePtr.unwrap(rule) + L.RULE_HEADER_SIZE);
        bool valueChecked;
        for (uint256 k; k < count; ++k) {
            if (!CalldataConditions.holds(condition, data, callValue, target, self)) return false;
            if (CalldataConditions.readsValue(condition)) valueChecked = true;
            condition = CalldataConditions.next(condition);
        }
        return callValue == 0 || valueChecked;
    }
}
