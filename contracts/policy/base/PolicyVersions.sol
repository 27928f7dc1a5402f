// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPolicyAccount} from "../interfaces/IPolicyAccount.sol";
import {PolicyStore} from "../libraries/PolicyStore.sol";
import {PolicyWriter} from "../libraries/PolicyWriter.sol";
import {CalldataConditions} from "../libraries/CalldataConditions.sol";
import {Call, Limit, PolicySpec, MAX_CALLS, MAX_FLOOR_WALK} from "../PolicyTypes.sol";

/// @title PolicyVersions
/// @notice The versioned policy: immutable contents, versions pointing at them, and the classification of calls
/// under the active version with the delay floor that keeps a shortened delay from fast-tracking anything.
abstract contract PolicyVersions is IPolicyAccount {
    using PolicyStore for PolicyStore.Content;

    /// @dev One slot: what every operation reads first.
    struct Head {
        // version (64) | contentId (32) | activatedAt (40) | floorUntil (40) | prevContentId (32)
        uint64 version;
        uint32 contentId;
        uint40 activatedAt;
        /// @dev Until then, some earlier version's delay can still bound new operations (see {_notBefore}).
        uint40 floorUntil;
        uint32 prevContentId;
    }

    /// @notice How a batch of calls classifies.
    struct Classification {
        uint8 classIndex;
        /// @dev Bitmask of the classes of the single calls (for guardians).
        uint16 classMask;
        /// @dev The rule of `classIndex` the single call matched (for its EIP-712 action type).
        uint8 ruleIndex;
        uint40 notBefore;
    }

    Head private _head;
    mapping(uint64 version => Head) private _versions;
    uint32 private _contentCount;
    mapping(uint32 contentId => PolicyStore.Content) private _contents;

    modifier onlySelf() {
        if (msg.sender != address(this)) revert PolicyAccountOnlySelf(msg.sender);
        _;
    }

    /// @inheritdoc IPolicyAccount
    function setPolicy(PolicySpec calldata policy) external onlySelf {
        _setPolicy(policy);
    }

    /// @inheritdoc IPolicyAccount
    function restoreVersion(uint64 version) external onlySelf {
        if (version == 0 || version >= _head.version) revert PolicyAccountUnknownVersion(version);
        uint32 contentId = _versions[version].contentId;
        _activate(contentId, version);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IPolicyAccount
    function policyVersion() external view returns (uint64 version, uint32 contentId, bytes32 policyHash) {
        Head memory h = _head;
        return (h.version, h.contentId, _contents[h.contentId].policyHash);
    }

    /// @inheritdoc IPolicyAccount
    function versionInfo(uint64 version) external view returns (uint32 contentId, bytes32 policyHash, uint40 activatedAt) {
        Head memory h = _versions[version];
        if (h.version == 0) revert PolicyAccountUnknownVersion(version);
        return (h.contentId, _contents[h.contentId].policyHash, h.activatedAt);
    }

    /// @inheritdoc IPolicyAccount
    function members(uint32 contentId) external view returns (address[] memory list) {
        PolicyStore.Content storage c = _contents[contentId];
        list = new address[](c.memberCount);
        for (uint256 i; i < list.length; ++i) {
            list[i] = c.members[i];
        }
    }

    /// @inheritdoc IPolicyAccount
    function classCount(uint32 contentId) external view returns (uint256) {
        return _contents[contentId].classCount;
    }

    /// @inheritdoc IPolicyAccount
    function getClass(uint32 contentId, uint8 classIndex) external view returns (ClassView memory v) {
        PolicyStore.Class storage c = _contents[contentId].classAt(classIndex);
        v.name = c.name;
        v.threshold = c.threshold;
        v.delay = c.delay;
        v.expiryWindow = c.expiryWindow;
        v.ruleCount = c.ruleCount;
        v.dominates = c.dominates;
        v.signers = new address[](c.signerCount);
        for (uint256 i; i < v.signers.length; ++i) {
            v.signers[i] = c.signers[i];
        }
        v.guardians = new address[](c.guardianCount);
        for (uint256 i; i < v.guardians.length; ++i) {
            v.guardians[i] = c.guardians[i];
        }
    }

    /// @inheritdoc IPolicyAccount
    function classOf(Call[] calldata calls) external view returns (uint8 classIndex, uint40 notBefore) {
        Classification memory k = _classify(calls);
        return (k.classIndex, k.notBefore);
    }

    // ------------------------------------------------------------------ internal

    /// @dev Stores `policy` as new content and activates it. Emits {PolicyStored} and {PolicyChanged}.
    function _setPolicy(PolicySpec calldata policy) internal {
        uint32 contentId = ++_contentCount;
        PolicyWriter.store(
            _contents[contentId],
            contentId,
            policy,
            [
                IPolicyAccount.setPolicy.selector,
                IPolicyAccount.restoreVersion.selector,
                IPolicyAccount.grantAgent.selector,
                IPolicyAccount.revokeAgent.selector
            ]
        );
        _activate(contentId, 0);
    }

    /// @dev Makes `contentId` the next version. The floor window grows to cover the old content's longest delay.
    /// Emits {PolicyChanged}.
    function _activate(uint32 contentId, uint64 restoredFrom) private {
        Head memory old = _head;
        uint40 nowTime = uint40(block.timestamp);
        uint40 floorUntil = old.floorUntil;
        if (old.version != 0) {
            uint40 oldEnd = nowTime + _contents[old.contentId].maxDelay;
            if (oldEnd > floorUntil) floorUntil = oldEnd;
        }
        Head memory h = Head({
            version: old.version + 1,
            contentId: contentId,
            activatedAt: nowTime,
            floorUntil: floorUntil,
            prevContentId: old.contentId
        });
        _head = h;
        _versions[h.version] = h;
        emit PolicyChanged(h.version, contentId, _contents[contentId].policyHash, restoredFrom);
    }

    function _headNow() internal view returns (Head memory) {
        return _head;
    }

    function _content(uint32 contentId) internal view returns (PolicyStore.Content storage) {
        return _contents[contentId];
    }

    /// @dev The class of `calls` under the active version (reverting when denied or ambiguous) and the delay floor.
    function _classify(Call[] calldata calls) internal view returns (Classification memory k) {
        Head memory h = _head;
        uint16 mask;
        (k.classIndex, mask, k.ruleIndex) = _classifyIn(_contents[h.contentId], calls, true);
        k.classMask = mask;
        k.notBefore = _notBefore(h, calls);
    }

    /// @dev Per call: its strictest matching class; then the strictest of those. With `strict`, reverts
    /// instead of returning `found = false`.
    function _classifyIn(PolicyStore.Content storage content, Call[] calldata calls, bool strict)
        private
        view
        returns (uint8 classIndex, uint16 classMask, uint8 ruleIndex)
    {
        uint256 n = calls.length;
        if (n == 0) revert PolicyAccountNoCalls();
        if (n > MAX_CALLS) revert PolicyAccountTooMany(Limit.Calls, n, MAX_CALLS);
        uint256 rules;
        for (uint256 i; i < n; ++i) {
            (bool found, uint8 c, uint256 r) = _classOfCall(content, calls[i], i, strict);
            if (!found) return (0, 0, 0);
            classMask |= uint16(1 << c);
            rules = r;
        }
        bool ok;
        (ok, classIndex) = content.strictest(classMask);
        if (!ok) {
            if (!strict) return (0, 0, 0);
            revert PolicyAccountNoStrictestClass(classMask);
        }
        // Only single calls use the rule (for their named EIP-712 type).
        ruleIndex = uint8(rules >> (8 * classIndex));
    }

    /// @dev The strictest class matching `call` (number `i` of its batch) and its matched rules; with `strict`,
    /// reverts instead of returning `found = false`.
    function _classOfCall(PolicyStore.Content storage content, Call calldata call, uint256 i, bool strict)
        internal
        view
        returns (bool found, uint8 classIndex, uint256 rules)
    {
        if (call.target == address(0)) revert PolicyAccountZeroTarget(i);
        uint16 mask;
        (mask, rules) = content.candidates(call, address(this));
        (found, classIndex) = content.strictest(mask);
        if (!found && strict) {
            if (mask == 0) revert PolicyAccountActionDenied(i, call.target, _selectorOf(call.data));
            revert PolicyAccountNoStrictestClass(mask);
        }
    }

    /// @dev For an agent: every call's class must be in `scope` (a class bitmask of content `contentId`);
    /// returns the total of the calls' spend words.
    function _agentSpend(uint32 contentId, Call[] calldata calls, address agent, uint16 scope)
        internal
        view
        returns (uint256 spend)
    {
        uint256 n = calls.length;
        if (n == 0) revert PolicyAccountNoCalls();
        if (n > MAX_CALLS) revert PolicyAccountTooMany(Limit.Calls, n, MAX_CALLS);
        PolicyStore.Content storage content = _contents[contentId];
        for (uint256 i; i < n; ++i) {
            Call calldata call = calls[i];
            (, uint8 c, uint256 rules) = _classOfCall(content, call, i, true);
            if (scope & (1 << c) == 0) revert PolicyAccountAgentOutOfScope(agent, i, c);
            uint8 spendArg = content.classes[c].rules[uint8(rules >> (8 * c))].spendArg;
            if (spendArg != 0) {
                (bool ok, uint256 word) = CalldataConditions.headWord(call.data, spendArg - 1);
                // A call too short to hold its spend word would be rejected by the target's decoder anyway.
                if (!ok) revert PolicyAccountActionDenied(i, call.target, _selectorOf(call.data));
                spend += word;
            }
        }
    }

    /// @dev The earliest time an operation on `calls` proposed now may run: for each recent version change, the
    /// change time plus the delay the calls had under the content before it. Walks at most MAX_FLOOR_WALK changes
    /// back; beyond that it takes the whole window (coarse, never too early).
    function _notBefore(Head memory h, Call[] calldata calls) private view returns (uint40 notBefore) {
        Head memory w = h;
        for (uint256 step; w.version > 1 && block.timestamp < w.floorUntil; ++step) {
            if (step == MAX_FLOOR_WALK) return w.floorUntil > notBefore ? w.floorUntil : notBefore;
            PolicyStore.Content storage prev = _contents[w.prevContentId];
            (uint8 c, uint16 mask,) = _classifyIn(prev, calls, false);
            if (mask != 0) {
                uint40 floor = w.activatedAt + prev.classes[c].delay;
                if (floor > notBefore) notBefore = floor;
            }
            w = _versions[w.version - 1];
        }
    }

    function _selectorOf(bytes calldata data) internal pure returns (bytes4) {
        return data.length >= 4 ? bytes4(data[:4]) : bytes4(0);
    }
}
