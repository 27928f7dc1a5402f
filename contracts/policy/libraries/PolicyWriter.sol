// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPolicyAccount} from "../interfaces/IPolicyAccount.sol";
import {PolicyContent} from "./PolicyContent.sol";
import {PolicyLayout as L, ClassPtr, ContentPtr} from "./PolicyLayout.sol";
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
    RECOVERY,
    RECOVERY_MIN_DELAY
} from "../PolicyTypes.sol";

/// @title PolicyWriter
/// @notice Validates a policy and writes it as new, immutable content: a data contract in the layout
/// {PolicyContent} reads. An external (linked) library: policy changes are rare, and keeping this code out of
/// PolicyAccount keeps the account small. Called by delegatecall, so the account deploys the data contract.
library PolicyWriter {
    /// @dev Init code before the data contract's code: PUSH4 codeSize, DUP1, PUSH1 14 (where the code starts),
    /// PUSH1 0, CODECOPY, PUSH1 0, RETURN. A field of the init code (offset 0, 14 bytes), written like the content's.
    uint256 private constant INIT_CODE = 0 << 8 | 14;
    uint256 private constant INIT_CODE_SIZE = 14;
    uint256 private constant INIT_CODE_OPS = 0x80600e6000396000f3; // DUP1 PUSH1 14 PUSH1 0 CODECOPY PUSH1 0 RETURN
    uint256 private constant PUSH4 = 0x63;

    /// @notice Validates `spec`, deploys it as content `contentId` and returns the data contract, the content's
    /// size and its hash. Emits {IPolicyAccount-PolicyStored}. `recoverySelectors` are the only functions of this
    /// account the recovery class may call.
    function store(uint32 contentId, PolicySpec calldata spec, bytes4[4] memory recoverySelectors)
        external
        returns (address code, uint256 size, bytes32 policyHash)
    {
        policyHash = keccak256(abi.encode(spec));
        (uint256 ruleCount, uint32 maxDelay, address[] memory memberList) = _checkPolicy(spec, recoverySelectors);
        size = L.HEADER_SIZE + L.OFFSET_SIZE * (spec.classes.length + 1) + L.ENTRY_SIZE * ruleCount
            + L.ADDRESS_SIZE * memberList.length;
        for (uint256 i; i <= spec.classes.length; ++i) {
            size += _sizeOf(i < spec.classes.length ? spec.classes[i] : spec.recovery);
        }
        if (size > MAX_POLICY_BYTES) revert IPolicyAccount.PolicyAccountTooMany(Limit.PolicyBytes, size, MAX_POLICY_BYTES);
        // The init code, the STOP byte (zero, as `new bytes` leaves it), the content and 32 bytes of slack:
        // {PolicyLayout-set} reads and writes whole words.
        bytes memory init = new bytes(INIT_CODE_SIZE + 1 + size + 32);
        uint256 start = L.pointer(init);
        ContentPtr content = ContentPtr.wrap(start + INIT_CODE_SIZE + 1);
        uint256 header = ContentPtr.unwrap(content);
        L.set(header, L.CONTENT_ID, contentId);
        L.set(header, L.POLICY_HASH, uint256(policyHash));
        L.set(header, L.CLASS_COUNT, spec.classes.length);
        L.set(header, L.RULE_COUNT, ruleCount);
        L.set(header, L.MEMBER_COUNT, memberList.length);
        L.set(header, L.MAX_DELAY, maxDelay);
        _writeBody(content, spec, ruleCount, memberList);
        L.set(start, INIT_CODE, PUSH4 << 104 | (size + 1) << 72 | INIT_CODE_OPS);
        code = _deploy(init, INIT_CODE_SIZE + 1 + size);
        if (code == address(0)) revert IPolicyAccount.PolicyAccountStoreFailed(contentId, size);
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
        address[] memory seen = new address[](MAX_MEMBERS);
        uint256 count;
        for (uint256 i; i <= spec.classes.length; ++i) {
            ClassSpec calldata cs = i < spec.classes.length ? spec.classes[i] : spec.recovery;
            for (uint256 k; k < cs.signers.length + cs.guardians.length; ++k) {
                address a = k < cs.signers.length ? cs.signers[k] : cs.guardians[k - cs.signers.length];
                if (_contains(seen, count, a)) continue;
                if (count == MAX_MEMBERS) revert IPolicyAccount.PolicyAccountTooMany(Limit.Members, count + 1, MAX_MEMBERS);
                seen[count++] = a;
            }
        }
        list = new address[](count);
        for (uint256 m; m < count; ++m) {
            list[m] = seen[m];
        }
    }

    /// @dev Whether `a` is among the first `count` entries of `list`.
    function _contains(address[] memory list, uint256 count, address a) private pure returns (bool) {
        for (uint256 m; m < count; ++m) {
            if (list[m] == a) return true;
        }
        return false;
    }

    // ------------------------------------------------------------------ writing

    /// @dev The bytes a checked class takes: its record and its rules.
    function _sizeOf(ClassSpec calldata cs) private pure returns (uint256 size) {
        size = L.CLASS_HEADER_SIZE + L.ADDRESS_SIZE * (cs.signers.length + cs.guardians.length)
            + L.OFFSET_SIZE * cs.rules.length;
        for (uint256 r; r < cs.rules.length; ++r) {
            RuleSpec calldata rs = cs.rules[r];
            size += L.RULE_HEADER_SIZE;
            for (uint256 k; k < rs.conditions.length; ++k) {
                size += L.CONDITION_HEADER_SIZE + L.SET_VALUE_SIZE * rs.conditions[k].set.length;
            }
        }
    }

    /// @dev Writes the class table, the classes with their rules and index entries, the members and each class's
    /// dominance mask after the header.
    function _writeBody(ContentPtr content, PolicySpec calldata spec, uint256 ruleCount, address[] memory memberList)
        private
        pure
    {
        uint256 base = ContentPtr.unwrap(content);
        uint256 n = spec.classes.length;
        uint256 entry = L.HEADER_SIZE + L.OFFSET_SIZE * (n + 1);
        uint256 at = entry + L.ENTRY_SIZE * ruleCount;
        for (uint256 i; i <= n; ++i) {
            L.set(base + L.HEADER_SIZE + L.OFFSET_SIZE * i, L.TABLE_ENTRY, at);
            (at, entry) = _writeClass(content, at, entry, i < n ? spec.classes[i] : spec.recovery, i < n ? i : RECOVERY);
        }
        L.set(base, L.MEMBERS_AT, at);
        for (uint256 i; i < memberList.length; ++i) {
            L.set(base + at + L.ADDRESS_SIZE * i, L.ADDRESS, uint160(memberList[i]));
        }
        for (uint256 i; i < n; ++i) {
            L.set(ClassPtr.unwrap(PolicyContent.classAt(content, i)), L.DOMINATES, _dominated(content, i, n));
        }
    }

    /// @dev Writes class `cs` at offset `at` and its rules after it, and index entries for its rules at offset
    /// `entry` (none for the recovery class). Returns the offsets after what it wrote.
    function _writeClass(ContentPtr content, uint256 at, uint256 entry, ClassSpec calldata cs, uint256 classIndex)
        private
        pure
        returns (uint256, uint256)
    {
        uint256 base = ContentPtr.unwrap(content);
        uint256 ruleOffsets = _writeClassRecord(base + at, cs);
        at = ruleOffsets + L.OFFSET_SIZE * cs.rules.length - base;
        for (uint256 r; r < cs.rules.length; ++r) {
            RuleSpec calldata rs = cs.rules[r];
            L.set(ruleOffsets + L.OFFSET_SIZE * r, L.RULE_AT, at);
            if (classIndex != RECOVERY) {
                _index(content, entry, rs, classIndex, r, at);
                entry += L.ENTRY_SIZE;
            }
            at = _writeRule(base + at, rs) - base;
        }
        return (at, entry);
    }

    /// @dev Writes the record of class `cs` at memory address `cls` up to its rule offsets; returns where they go.
    function _writeClassRecord(uint256 cls, ClassSpec calldata cs) private pure returns (uint256 ruleOffsets) {
        L.set(cls, L.THRESHOLD, cs.threshold);
        L.set(cls, L.SIGNER_COUNT, cs.signers.length);
        L.set(cls, L.GUARDIAN_COUNT, cs.guardians.length);
        L.set(cls, L.CLASS_RULE_COUNT, cs.rules.length);
        L.set(cls, L.DELAY, cs.delay);
        L.set(cls, L.EXPIRY_WINDOW, cs.expiryWindow);
        L.set(cls, L.NAME, uint256(cs.name));
        uint256 at = cls + L.CLASS_HEADER_SIZE;
        for (uint256 i; i < cs.signers.length; ++i) {
            L.set(at, L.ADDRESS, uint160(cs.signers[i]));
            at += L.ADDRESS_SIZE;
        }
        for (uint256 i; i < cs.guardians.length; ++i) {
            L.set(at, L.ADDRESS, uint160(cs.guardians[i]));
            at += L.ADDRESS_SIZE;
        }
        return at;
    }

    /// @dev Writes the index entry at offset `entry` for rule `ruleIndex` (`rs`, at offset `ruleAt`) of class
    /// `classIndex`, after checking that its (target, selector) has fewer than MAX_RULES_PER_SELECTOR rules so far.
    function _index(
        ContentPtr content,
        uint256 entry,
        RuleSpec calldata rs,
        uint256 classIndex,
        uint256 ruleIndex,
        uint256 ruleAt
    ) private pure {
        uint256 base = ContentPtr.unwrap(content);
        uint256 key = uint256(uint160(rs.target)) << 32 | uint32(rs.selector);
        uint256 count;
        for (uint256 e = L.HEADER_SIZE + L.OFFSET_SIZE * (PolicyContent.classCount(content) + 1); e < entry; e += L.ENTRY_SIZE) {
            if (L.get(base + e, L.ENTRY_KEY) == key) ++count;
        }
        if (count == MAX_RULES_PER_SELECTOR) {
            revert IPolicyAccount.PolicyAccountTooMany(Limit.RulesPerSelector, count + 1, MAX_RULES_PER_SELECTOR);
        }
        L.set(base + entry, L.ENTRY_KEY, key);
        L.set(base + entry, L.ENTRY_CLASS, classIndex);
        L.set(base + entry, L.ENTRY_RULE, ruleIndex);
        L.set(base + entry, L.ENTRY_RULE_AT, ruleAt);
    }

    /// @dev Writes rule `rs` at memory address `rule`; returns the address after it.
    function _writeRule(uint256 rule, RuleSpec calldata rs) private pure returns (uint256 at) {
        L.set(rule, L.SPEND_ARG, rs.spendArg);
        L.set(rule, L.ACTION_WORDS, rs.actionWords);
        L.set(rule, L.CONDITION_COUNT, rs.conditions.length);
        L.set(rule, L.ACTION_TYPE_HASH, uint256(rs.actionTypeHash));
        L.set(rule, L.RULE_TARGET, uint160(rs.target));
        L.set(rule, L.RULE_SELECTOR, uint32(rs.selector));
        at = rule + L.RULE_HEADER_SIZE;
        for (uint256 k; k < rs.conditions.length; ++k) {
            ConditionSpec calldata cs = rs.conditions[k];
            L.set(at, L.OP, uint8(cs.op));
            L.set(at, L.ARG, cs.arg);
            L.set(at, L.FIELD, cs.field);
            L.set(at, L.SUBJECT, uint8(cs.subject));
            L.set(at, L.SET_LENGTH, cs.set.length);
            L.set(at, L.VALUE, cs.value);
            at += L.CONDITION_HEADER_SIZE;
            for (uint256 v; v < cs.set.length; ++v) {
                L.set(at, L.SET_VALUE, uint256(cs.set[v]));
                at += L.SET_VALUE_SIZE;
            }
        }
    }

    /// @dev Bitmask of the classes class `s` dominates: threshold and delay at least theirs, signers a subset of theirs.
    function _dominated(ContentPtr content, uint256 s, uint256 n) private pure returns (uint16 mask) {
        ClassPtr strict = PolicyContent.classAt(content, s);
        (uint8 threshold,, uint32 delay,) = PolicyContent.params(strict);
        for (uint256 c; c < n; ++c) {
            ClassPtr other = PolicyContent.classAt(content, c);
            (uint8 otherThreshold,, uint32 otherDelay,) = PolicyContent.params(other);
            if (threshold >= otherThreshold && delay >= otherDelay && _isSubset(strict, other)) mask |= uint16(1 << c);
        }
    }

    /// @dev Whether every signer of class `a` is a signer of class `b` (both sorted: one forward walk).
    function _isSubset(ClassPtr a, ClassPtr b) private pure returns (bool) {
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

    /// @dev Deploys the first `length` bytes of `init` as init code; zero when the deployment failed.
    function _deploy(bytes memory init, uint256 length) private returns (address code) {
        // CREATE of raw init code has no Solidity form (`new` needs a contract type).
        assembly ("memory-safe") {
            code := create(0, add(init, 32), length)
        }
    }
}
