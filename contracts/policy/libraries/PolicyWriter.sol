// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPolicyAccount} from "../interfaces/IPolicyAccount.sol";
import {CalldataConditions} from "./CalldataConditions.sol";
import {PolicyStore} from "./PolicyStore.sol";
import {
    ClassSpec,
    ConditionOp,
    ConditionSpec,
    Limit,
    PolicySpec,
    RecoveryProblem,
    RuleSpec,
    MAX_CLASSES,
    MAX_CONDITIONS,
    MAX_DELAY,
    MAX_GUARDIANS,
    MAX_MEMBERS,
    MAX_RULES,
    MAX_RULES_PER_SELECTOR,
    MAX_SET,
    MAX_SIGNERS,
    RECOVERY_MIN_DELAY
} from "../PolicyTypes.sol";

/// @title PolicyWriter
/// @notice Validates a policy and writes it as new, immutable content. An external (linked) library: policy
/// changes are rare, and keeping this code out of PolicyAccount keeps the account under the 24 KiB code limit.
library PolicyWriter {
    uint8 private constant RECOVERY = type(uint8).max;

    // ------------------------------------------------------------------ writing

    /// @notice Validates `spec`, writes it into empty `self` and returns its hash. Emits {IPolicyAccount-PolicyStored}.
    /// `recoverySelectors` are the only functions of
    /// this account the recovery class may call.
    function store(PolicyStore.Content storage self, uint32 contentId, PolicySpec calldata spec, bytes4[4] memory recoverySelectors)
        external
        returns (bytes32 policyHash)
    {
        policyHash = keccak256(abi.encode(spec));
        uint256 n = spec.classes.length;
        if (n > MAX_CLASSES) revert IPolicyAccount.PolicyAccountTooMany(Limit.Classes, n, MAX_CLASSES);
        self.classCount = uint8(n);
        self.policyHash = policyHash;
        uint32 maxDelay;
        for (uint256 i; i < n; ++i) {
            ClassSpec calldata cs = spec.classes[i];
            _storeClass(self.classes[i], cs, i);
            if (cs.delay > maxDelay) maxDelay = cs.delay;
            for (uint256 r; r < cs.rules.length; ++r) {
                _index(self, cs.rules[r], i, r);
            }
        }
        self.maxDelay = maxDelay;
        for (uint256 i; i < n; ++i) {
            self.classes[i].dominates = _dominated(self, i, n);
        }
        _storeRecovery(self, spec.recovery, maxDelay, recoverySelectors);
        _storeMembers(self, spec);
        emit IPolicyAccount.PolicyStored(contentId, policyHash, spec);
    }

    function _storeClass(PolicyStore.Class storage c, ClassSpec calldata cs, uint256 classIndex) private {
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
        c.threshold = cs.threshold;
        c.signerCount = uint8(signers);
        c.guardianCount = uint8(guardians);
        c.ruleCount = uint8(rules);
        c.delay = cs.delay;
        c.expiryWindow = cs.expiryWindow;
        c.name = cs.name;
        // Fixed storage arrays of different lengths cannot share a parameter type, so only the
        // ordering rule is shared; each list is then copied as it is.
        _requireSortedUnique(cs.signers, classIndex);
        for (uint256 i; i < signers; ++i) c.signers[i] = cs.signers[i];
        c.signerCode = _deploySignerCode(cs.signers);
        _requireSortedUnique(cs.guardians, classIndex);
        for (uint256 i; i < guardians; ++i) c.guardians[i] = cs.guardians[i];
        for (uint256 r; r < rules; ++r) {
            _storeRule(c.rules[r], cs.rules[r], classIndex, r);
        }
    }

    /// @dev Deploys a contract whose code is 0x00 (STOP, so calling it does nothing) followed by `signers`, 20 bytes
    /// each. Init code: PUSH4 size, DUP1, PUSH1 14, PUSH1 0, CODECOPY, PUSH1 0, RETURN, then the data.
    function _deploySignerCode(address[] calldata signers) private returns (address code) {
        uint256 n = signers.length;
        // n <= MAX_SIGNERS: the sizes are small.
        bytes memory data = new bytes(1 + 20 * n + 32); // 32 bytes of slack for the last 32-byte store
        for (uint256 i; i < n; ++i) {
            address signer = signers[i];
            assembly ("memory-safe") {
                mstore(add(add(data, 33), mul(i, 20)), shl(96, signer))
            }
        }
        assembly ("memory-safe") {
            mstore(data, add(1, mul(20, n)))
        }
        bytes memory init = abi.encodePacked(hex"63", uint32(data.length), hex"80600e6000396000f3", data);
        assembly ("memory-safe") {
            code := create(0, add(init, 32), mload(init))
        }
        if (code == address(0)) revert IPolicyAccount.PolicyAccountTooMany(Limit.Signers, n, MAX_SIGNERS);
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

    function _storeRule(PolicyStore.Rule storage rule, RuleSpec calldata rs, uint256 classIndex, uint256 ruleIndex) private {
        uint256 conditions = rs.conditions.length;
        if (conditions > MAX_CONDITIONS) {
            revert IPolicyAccount.PolicyAccountTooMany(Limit.Conditions, conditions, MAX_CONDITIONS);
        }
        rule.spendArg = rs.spendArg;
        rule.actionWords = rs.actionWords;
        rule.conditionCount = uint8(conditions);
        rule.actionTypeHash = rs.actionTypeHash;
        rule.target = rs.target;
        rule.selector = rs.selector;
        for (uint256 k; k < conditions; ++k) {
            ConditionSpec calldata cs = rs.conditions[k];
            uint256 setLength = cs.set.length;
            if (setLength > MAX_SET) revert IPolicyAccount.PolicyAccountTooMany(Limit.SetValues, setLength, MAX_SET);
            bool needsSet = cs.op == ConditionOp.InSet || cs.op == ConditionOp.NotInSet || cs.op == ConditionOp.AllInSet;
            if (
                (needsSet && setLength == 0) || (cs.op == ConditionOp.AllInSet && !cs.deref)
                    || (cs.op == ConditionOp.OwnedBy && setLength > 1) || (!cs.deref && cs.field != 0)
                    || (!needsSet && cs.op != ConditionOp.OwnedBy && setLength != 0)
            ) revert IPolicyAccount.PolicyAccountInvalidCondition(classIndex, ruleIndex, k);
            CalldataConditions.Condition storage c = rule.conditions[k];
            c.op = cs.op;
            c.arg = cs.arg;
            c.field = cs.field;
            c.deref = cs.deref;
            c.setLength = uint8(setLength);
            c.value = cs.value;
            for (uint256 s; s < setLength; ++s) {
                c.set[s] = cs.set[s];
            }
        }
    }

    function _index(PolicyStore.Content storage self, RuleSpec calldata rs, uint256 classIndex, uint256 ruleIndex) private {
        uint256 packed = self.index[rs.target][rs.selector];
        uint256 count = packed & 0xff;
        if (count == MAX_RULES_PER_SELECTOR) {
            revert IPolicyAccount.PolicyAccountTooMany(Limit.RulesPerSelector, count + 1, MAX_RULES_PER_SELECTOR);
        }
        packed |= (classIndex | (ruleIndex << 8)) << (8 + 16 * count);
        self.index[rs.target][rs.selector] = (packed & ~uint256(0xff)) | (count + 1);
    }

    /// @dev Bitmask of the classes class `s` dominates: threshold and delay at least theirs, signers a subset of theirs.
    function _dominated(PolicyStore.Content storage self, uint256 s, uint256 n) private view returns (uint16 mask) {
        PolicyStore.Class storage strict = self.classes[s];
        for (uint256 c; c < n; ++c) {
            PolicyStore.Class storage other = self.classes[c];
            if (
                strict.threshold >= other.threshold && strict.delay >= other.delay
                    && _isSubset(strict, other)
            ) mask |= uint16(1 << c);
        }
    }

    /// @dev Whether every signer of `a` is a signer of `b` (both sorted: one forward walk).
    function _isSubset(PolicyStore.Class storage a, PolicyStore.Class storage b) private view returns (bool) {
        uint256 j;
        uint256 nb = b.signerCount;
        for (uint256 i; i < a.signerCount; ++i) {
            address s = a.signers[i];
            while (j < nb && b.signers[j] < s) ++j;
            if (j == nb || b.signers[j] != s) return false;
            ++j;
        }
        return true;
    }

    function _storeRecovery(PolicyStore.Content storage self, ClassSpec calldata rs, uint32 maxDelay, bytes4[4] memory allowed)
        private
    {
        _storeClass(self.recovery, rs, RECOVERY);
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

    function _storeMembers(PolicyStore.Content storage self, PolicySpec calldata spec) private {
        uint256 count;
        for (uint256 i; i <= spec.classes.length; ++i) {
            ClassSpec calldata cs = i < spec.classes.length ? spec.classes[i] : spec.recovery;
            for (uint256 k; k < cs.signers.length + cs.guardians.length; ++k) {
                address a = k < cs.signers.length ? cs.signers[k] : cs.guardians[k - cs.signers.length];
                bool known;
                for (uint256 m; m < count; ++m) {
                    if (self.members[m] == a) {
                        known = true;
                        break;
                    }
                }
                if (known) continue;
                if (count == MAX_MEMBERS) revert IPolicyAccount.PolicyAccountTooMany(Limit.Members, count + 1, MAX_MEMBERS);
                self.members[count++] = a;
            }
        }
        self.memberCount = uint8(count);
    }
}
