// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPolicyAccount} from "../interfaces/IPolicyAccount.sol";
import {CalldataConditions} from "./CalldataConditions.sol";
import {PolicyContent} from "./PolicyContent.sol";
import {
    ClassSpec,
    ConditionOp,
    ConditionSpec,
    ConditionSubject,
    Limit,
    PolicySpec,
    RecoveryProblem,
    RuleSpec,
    MAX_CLASSES,
    MAX_CONDITIONS,
    MAX_DELAY,
    MAX_EXPIRY_WINDOW,
    MAX_GUARDIANS,
    MAX_MEMBERS,
    MAX_POLICY_BYTES,
    MAX_RULES,
    MAX_RULES_PER_SELECTOR,
    MAX_SET,
    MAX_SIGNERS,
    RECOVERY_MIN_DELAY
} from "../PolicyTypes.sol";

/// @title PolicyWriter
/// @notice Validates a policy and writes it as new, immutable content: a data contract in the layout
/// {PolicyContent} reads. An external (linked) library: policy changes are rare, and keeping this code out of
/// PolicyAccount keeps the account small. Called by delegatecall, so the account deploys the data contract.
library PolicyWriter {
    uint8 private constant RECOVERY = type(uint8).max;
    /// @dev Init code before the data: PUSH4 size, DUP1, PUSH1 14, PUSH1 0, CODECOPY, PUSH1 0, RETURN.
    uint256 private constant INIT_CODE = 14;

    /// @notice Validates `spec`, deploys it as content `contentId` and returns the data contract, the content's
    /// size and its hash. Emits {IPolicyAccount-PolicyStored}. `recoverySelectors` are the only functions of this
    /// account the recovery class may call.
    function store(uint32 contentId, PolicySpec calldata spec, bytes4[4] memory recoverySelectors)
        external
        returns (address code, uint256 size, bytes32 policyHash)
    {
        policyHash = keccak256(abi.encode(spec));
        (uint256 ruleCount, uint32 maxDelay, address[] memory memberList) = _checkPolicy(spec, recoverySelectors);
        size = PolicyContent.HEADER + 2 * (spec.classes.length + 1) + PolicyContent.INDEX_ENTRY * ruleCount
            + 20 * memberList.length;
        for (uint256 i; i <= spec.classes.length; ++i) {
            size += _sizeOf(i < spec.classes.length ? spec.classes[i] : spec.recovery);
        }
        if (size > MAX_POLICY_BYTES) revert IPolicyAccount.PolicyAccountTooMany(Limit.PolicyBytes, size, MAX_POLICY_BYTES);
        // 32 bytes of slack: {_put} reads and writes whole words.
        bytes memory init = new bytes(INIT_CODE + 1 + size + 32);
        uint256 content;
        assembly ("memory-safe") {
            content := add(init, add(32, add(INIT_CODE, 1)))
        }
        _put(content, contentId, 4);
        _put(content + 4, uint256(policyHash), 32);
        _put(content + 36, spec.classes.length, 1);
        _put(content + 37, ruleCount, 1);
        _put(content + 38, memberList.length, 1);
        _put(content + 39, maxDelay, 4);
        _writeBody(content, spec, ruleCount, memberList);
        code = _deploy(init, size);
        emit IPolicyAccount.PolicyStored(contentId, policyHash, spec);
    }

    // ------------------------------------------------------------------ checking

    /// @dev Checks the whole policy; returns the number of rules of the indexed classes, their longest delay and
    /// the members.
    function _checkPolicy(PolicySpec calldata spec, bytes4[4] memory recoverySelectors)
        private
        pure
        returns (uint256 ruleCount, uint32 maxDelay, address[] memory memberList)
    {
        uint256 n = spec.classes.length;
        if (n > MAX_CLASSES) revert IPolicyAccount.PolicyAccountTooMany(Limit.Classes, n, MAX_CLASSES);
        for (uint256 i; i < n; ++i) {
            ClassSpec calldata cs = spec.classes[i];
            _checkClass(cs, i);
            ruleCount += cs.rules.length;
            if (cs.delay > maxDelay) maxDelay = cs.delay;
        }
        _checkClass(spec.recovery, RECOVERY);
        _checkRecovery(spec.recovery, maxDelay, recoverySelectors);
        memberList = _members(spec);
    }

    function _checkClass(ClassSpec calldata cs, uint256 classIndex) private pure {
        uint256 signers = cs.signers.length;
        if (signers > MAX_SIGNERS) revert IPolicyAccount.PolicyAccountTooMany(Limit.Signers, signers, MAX_SIGNERS);
        if (cs.threshold == 0 || cs.threshold > signers) {
            revert IPolicyAccount.PolicyAccountInvalidThreshold(classIndex, cs.threshold, signers);
        }
        uint256 guardians = cs.guardians.length;
        if (guardians > MAX_GUARDIANS) revert IPolicyAccount.PolicyAccountTooMany(Limit.Guardians, guardians, MAX_GUARDIANS);
        uint256 rules = cs.rules.length;
        if (rules > MAX_RULES) revert IPolicyAccount.PolicyAccountTooMany(Limit.Rules, rules, MAX_RULES);
        if (cs.expiryWindow == 0) revert IPolicyAccount.PolicyAccountZeroExpiryWindow(classIndex);
        if (cs.delay > MAX_DELAY) revert IPolicyAccount.PolicyAccountTooMany(Limit.Delay, cs.delay, MAX_DELAY);
        if (cs.expiryWindow > MAX_EXPIRY_WINDOW) {
            revert IPolicyAccount.PolicyAccountTooMany(Limit.ExpiryWindow, cs.expiryWindow, MAX_EXPIRY_WINDOW);
        }
        _requireSortedUnique(cs.signers, classIndex);
        _requireSortedUnique(cs.guardians, classIndex);
        for (uint256 r; r < rules; ++r) {
            _checkRule(cs.rules[r], classIndex, r);
        }
    }

    /// @dev Strictly ascending, so every address appears once and lookups can stop early.
    function _requireSortedUnique(address[] calldata list, uint256 classIndex) private pure {
        address previous;
        for (uint256 i; i < list.length; ++i) {
            address a = list[i];
            if (a <= previous) revert IPolicyAccount.PolicyAccountUnsortedAddresses(classIndex, a);
            previous = a;
        }
    }

    function _checkRule(RuleSpec calldata rs, uint256 classIndex, uint256 ruleIndex) private pure {
        uint256 conditions = rs.conditions.length;
        if (conditions > MAX_CONDITIONS) {
            revert IPolicyAccount.PolicyAccountTooMany(Limit.Conditions, conditions, MAX_CONDITIONS);
        }
        for (uint256 k; k < conditions; ++k) {
            ConditionSpec calldata cs = rs.conditions[k];
            uint256 setLength = cs.set.length;
            if (setLength > MAX_SET) revert IPolicyAccount.PolicyAccountTooMany(Limit.SetValues, setLength, MAX_SET);
            if (!_validCondition(cs)) revert IPolicyAccount.PolicyAccountInvalidCondition(classIndex, ruleIndex, k);
        }
    }

    /// @dev Whether condition `cs` can be evaluated as written: a set where the op reads one (OwnedBy: at most the view
    /// selector), `field` only for ArgField, AllInSet only on a whole array argument (ArgField, field 0), and
    /// the call's value (CallValue, no arg or field) only compared, never as an array or a VM id.
    function _validCondition(ConditionSpec calldata cs) private pure returns (bool) {
        ConditionOp op = cs.op;
        uint256 setLength = cs.set.length;
        bool needsSet = op == ConditionOp.InSet || op == ConditionOp.NotInSet || op == ConditionOp.AllInSet;
        if (needsSet ? setLength == 0 : (op == ConditionOp.OwnedBy ? setLength > 1 : setLength != 0)) return false;
        if (cs.subject == ConditionSubject.CallValue) {
            return cs.arg == 0 && cs.field == 0 && op != ConditionOp.AllInSet && op != ConditionOp.OwnedBy;
        }
        if (op == ConditionOp.AllInSet) return cs.subject == ConditionSubject.ArgField && cs.field == 0;
        return cs.subject == ConditionSubject.ArgField || cs.field == 0;
    }

    function _checkRecovery(ClassSpec calldata rs, uint32 maxDelay, bytes4[4] memory allowed) private pure {
        if (rs.threshold != rs.signers.length) {
            revert IPolicyAccount.PolicyAccountInvalidRecovery(RecoveryProblem.ThresholdNotAllSigners);
        }
        if (rs.delay < RECOVERY_MIN_DELAY || rs.delay < maxDelay) {
            revert IPolicyAccount.PolicyAccountInvalidRecovery(RecoveryProblem.DelayTooShort);
        }
        if (rs.guardians.length != 0) revert IPolicyAccount.PolicyAccountInvalidRecovery(RecoveryProblem.HasGuardians);
        for (uint256 r; r < rs.rules.length; ++r) {
            bytes4 selector = rs.rules[r].selector;
            if (
                rs.rules[r].target != address(0)
                    || (selector != allowed[0] && selector != allowed[1] && selector != allowed[2] && selector != allowed[3])
            ) revert IPolicyAccount.PolicyAccountInvalidRecovery(RecoveryProblem.RuleNotPolicyChange);
        }
    }

    /// @dev Every signer and guardian of the policy, once each, in order of first appearance.
    function _members(PolicySpec calldata spec) private pure returns (address[] memory list) {
        list = new address[](MAX_MEMBERS);
        uint256 count;
        for (uint256 i; i <= spec.classes.length; ++i) {
            ClassSpec calldata cs = i < spec.classes.length ? spec.classes[i] : spec.recovery;
            for (uint256 k; k < cs.signers.length + cs.guardians.length; ++k) {
                address a = k < cs.signers.length ? cs.signers[k] : cs.guardians[k - cs.signers.length];
                bool known;
                for (uint256 m; m < count; ++m) {
                    if (list[m] == a) {
                        known = true;
                        break;
                    }
                }
                if (known) continue;
                if (count == MAX_MEMBERS) revert IPolicyAccount.PolicyAccountTooMany(Limit.Members, count + 1, MAX_MEMBERS);
                list[count++] = a;
            }
        }
        assembly ("memory-safe") {
            mstore(list, count)
        }
    }

    // ------------------------------------------------------------------ writing

    /// @dev The bytes a checked class takes: its record and its rules.
    function _sizeOf(ClassSpec calldata cs) private pure returns (uint256 size) {
        size = PolicyContent.CLASS_HEADER + 20 * (cs.signers.length + cs.guardians.length) + 2 * cs.rules.length;
        for (uint256 r; r < cs.rules.length; ++r) {
            RuleSpec calldata rs = cs.rules[r];
            size += PolicyContent.RULE_HEADER;
            for (uint256 k; k < rs.conditions.length; ++k) {
                size += CalldataConditions.HEADER + 32 * rs.conditions[k].set.length;
            }
        }
    }

    /// @dev Writes the class table, the classes with their rules and index entries, the members and each class's
    /// dominance mask after the header.
    function _writeBody(uint256 content, PolicySpec calldata spec, uint256 ruleCount, address[] memory memberList)
        private
        pure
    {
        uint256 n = spec.classes.length;
        uint256 entry = PolicyContent.HEADER + 2 * (n + 1);
        uint256 at = entry + PolicyContent.INDEX_ENTRY * ruleCount;
        for (uint256 i; i <= n; ++i) {
            _put(content + PolicyContent.HEADER + 2 * i, at, 2);
            (at, entry) = _writeClass(content, at, entry, i < n ? spec.classes[i] : spec.recovery, i < n ? i : RECOVERY);
        }
        _put(content + 43, at, 2);
        for (uint256 i; i < memberList.length; ++i) {
            _put(content + at + 20 * i, uint160(memberList[i]), 20);
        }
        for (uint256 i; i < n; ++i) {
            _put(PolicyContent.classAt(content, i) + 12, _dominated(content, i, n), 2);
        }
    }

    /// @dev Writes class `cs` at offset `at` and its rules after it, and index entries for its rules at `entry`
    /// (none for the recovery class). Returns the offsets after what it wrote.
    function _writeClass(uint256 content, uint256 at, uint256 entry, ClassSpec calldata cs, uint256 classIndex)
        private
        pure
        returns (uint256, uint256)
    {
        uint256 offsets = _writeClassRecord(content + at, cs);
        at = offsets + 2 * cs.rules.length - content;
        for (uint256 r; r < cs.rules.length; ++r) {
            RuleSpec calldata rs = cs.rules[r];
            _put(offsets + 2 * r, at, 2);
            if (classIndex != RECOVERY) {
                _index(content, entry, rs, (classIndex << 24) | (r << 16) | at);
                entry += PolicyContent.INDEX_ENTRY;
            }
            at = _writeRule(content, at, rs);
        }
        return (at, entry);
    }

    /// @dev Writes the record of class `cs` at memory address `cls` up to its rule offsets; returns where they go.
    function _writeClassRecord(uint256 cls, ClassSpec calldata cs) private pure returns (uint256 offsets) {
        uint256 signers = cs.signers.length;
        uint256 guardians = cs.guardians.length;
        _put(cls, cs.threshold, 1);
        _put(cls + 1, signers, 1);
        _put(cls + 2, guardians, 1);
        _put(cls + 3, cs.rules.length, 1);
        _put(cls + 4, cs.delay, 4);
        _put(cls + 8, cs.expiryWindow, 4);
        _put(cls + 14, uint256(cs.name), 32);
        offsets = cls + PolicyContent.CLASS_HEADER;
        for (uint256 i; i < signers; ++i) _put(offsets + 20 * i, uint160(cs.signers[i]), 20);
        offsets += 20 * signers;
        for (uint256 i; i < guardians; ++i) _put(offsets + 20 * i, uint160(cs.guardians[i]), 20);
        offsets += 20 * guardians;
    }

    /// @dev Writes index entry `entry` for rule `rs` (its last four bytes, `classIndex | ruleIndex | ruleOffset`,
    /// given as `tail`), after checking that its (target, selector) has fewer than MAX_RULES_PER_SELECTOR rules so far.
    function _index(uint256 content, uint256 entry, RuleSpec calldata rs, uint256 tail) private pure {
        uint256 key = (uint256(uint160(rs.target)) << 32) | uint32(rs.selector);
        uint256 first = PolicyContent.HEADER + 2 * (PolicyContent.classCount(content) + 1);
        uint256 count;
        for (uint256 e = first; e < entry; e += PolicyContent.INDEX_ENTRY) {
            uint256 word;
            assembly ("memory-safe") {
                word := mload(add(content, e))
            }
            if (word >> 64 == key) ++count;
        }
        if (count == MAX_RULES_PER_SELECTOR) {
            revert IPolicyAccount.PolicyAccountTooMany(Limit.RulesPerSelector, count + 1, MAX_RULES_PER_SELECTOR);
        }
        _put(content + entry, key, 24);
        _put(content + entry + 24, tail, 4);
    }

    /// @dev Writes rule `rs` at offset `at`; returns the offset after it.
    function _writeRule(uint256 content, uint256 at, RuleSpec calldata rs) private pure returns (uint256) {
        uint256 rule = content + at;
        uint256 conditions = rs.conditions.length;
        _put(rule, rs.spendArg, 1);
        _put(rule + 1, rs.actionWords, 1);
        _put(rule + 2, conditions, 1);
        _put(rule + 3, uint256(rs.actionTypeHash), 32);
        _put(rule + 35, uint160(rs.target), 20);
        _put(rule + 55, uint32(rs.selector), 4);
        uint256 c = rule + PolicyContent.RULE_HEADER;
        for (uint256 k; k < conditions; ++k) {
            ConditionSpec calldata cs = rs.conditions[k];
            uint256 setLength = cs.set.length;
            _put(c, uint8(cs.op), 1);
            _put(c + 1, cs.arg, 1);
            _put(c + 2, cs.field, 1);
            _put(c + 3, uint8(cs.subject), 1);
            _put(c + 4, setLength, 1);
            _put(c + 5, cs.value, 32);
            for (uint256 s; s < setLength; ++s) _put(c + CalldataConditions.HEADER + 32 * s, uint256(cs.set[s]), 32);
            c = CalldataConditions.next(c);
        }
        return c - content;
    }

    /// @dev Bitmask of the classes class `s` dominates: threshold and delay at least theirs, signers a subset of theirs.
    function _dominated(uint256 content, uint256 s, uint256 n) private pure returns (uint16 mask) {
        uint256 strict = PolicyContent.classAt(content, s);
        (uint8 threshold,, uint32 delay,) = PolicyContent.params(strict);
        for (uint256 c; c < n; ++c) {
            uint256 other = PolicyContent.classAt(content, c);
            (uint8 otherThreshold,, uint32 otherDelay,) = PolicyContent.params(other);
            if (threshold >= otherThreshold && delay >= otherDelay && _isSubset(strict, other)) mask |= uint16(1 << c);
        }
    }

    /// @dev Whether every signer of class `a` is a signer of class `b` (both sorted: one forward walk).
    function _isSubset(uint256 a, uint256 b) private pure returns (bool) {
        (, uint256 na,,) = PolicyContent.params(a);
        (, uint256 nb,,) = PolicyContent.params(b);
        uint256 j;
        for (uint256 i; i < na; ++i) {
            address s = PolicyContent.signerAt(a, i);
            while (j < nb && PolicyContent.signerAt(b, j) < s) ++j;
            if (j == nb || PolicyContent.signerAt(b, j) != s) return false;
            ++j;
        }
        return true;
    }

    /// @dev Writes the low `size` bytes of `value` at memory address `at`, leaving the bytes around them as they are.
    function _put(uint256 at, uint256 value, uint256 size) private pure {
        assembly ("memory-safe") {
            let shift := sub(256, shl(3, size))
            let mask := shl(shift, sub(shl(shl(3, size), 1), 1))
            mstore(at, or(and(mload(at), not(mask)), and(shl(shift, value), mask)))
        }
    }

    /// @dev Deploys a contract whose code is 0x00 (STOP, so calling it does nothing) followed by the content.
    /// `init` holds INIT_CODE bytes of space, the STOP byte (zero, as `new bytes` left it) and the content.
    function _deploy(bytes memory init, uint256 size) private returns (address code) {
        uint256 start;
        assembly ("memory-safe") {
            start := add(init, 32)
        }
        // PUSH4 (STOP + content) | DUP1 | PUSH1 14 | PUSH1 0 | CODECOPY | PUSH1 0 | RETURN
        _put(start, (0x63 << 104) | ((size + 1) << 72) | 0x80600e6000396000f3, INIT_CODE);
        uint256 length = INIT_CODE + 1 + size;
        assembly ("memory-safe") {
            code := create(0, start, length)
        }
        if (code == address(0)) revert IPolicyAccount.PolicyAccountTooMany(Limit.PolicyBytes, size, MAX_POLICY_BYTES);
    }
}
