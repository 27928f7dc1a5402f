// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPolicyAccount} from "../interfaces/IPolicyAccount.sol";
import {PolicyContent} from "../libraries/PolicyContent.sol";
import {PolicyWriter} from "../libraries/PolicyWriter.sol";
import {CalldataConditions} from "../libraries/CalldataConditions.sol";
import {CallsCalldata} from "../libraries/CallsCalldata.sol";
import {ClassPtr, ContentPtr, RulePtr} from "../libraries/PolicyLayout.sol";
import {Call, Limit, PolicySpec, MAX_CALLS, MAX_FLOOR_WALK, RECOVERY} from "../PolicyTypes.sol";

/// @title PolicyVersions
/// @notice The versioned policy: immutable contents (data contracts, see {PolicyContent}), versions pointing at
/// them, and the classification of calls under the active version with the delay floor that keeps a shortened
/// delay from fast-tracking anything.
abstract contract PolicyVersions is IPolicyAccount {
    /// @dev One slot: everything the signed path reads besides its nonce.
    struct Head {
        address code;
        uint16 size;
        /// @dev Narrower than the interface's uint64 to fit the slot; a version is a policy change, so 2^32 of
        /// them cannot happen (and ++ would revert, not wrap).
        uint32 version;
        /// @dev Until then, some earlier version's delay can still bound new operations (see {_notBefore}).
        uint40 floorUntil;
    }

    /// @dev Two slots per version; the signed path reads only the first.
    struct Version {
        // slot 0: code (160) | size (16) | activatedAt (40) | floorUntil (40)
        address code;
        uint16 size;
        uint40 activatedAt;
        uint40 floorUntil;
        // slot 1
        /// @dev Until then, some earlier version's recovery delay can still bound new recovery operations.
        uint40 recoveryFloorUntil;
    }

    /// @dev Where content `contentId` lives: its data contract and size.
    struct ContentRef {
        address code;
        uint16 size;
    }

    Head private _head;
    mapping(uint64 version => Version) private _versions;
    uint32 private _contentCount;
    mapping(uint32 contentId => ContentRef) private _contents;

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
        Version storage v = _versions[version];
        _activate(v.code, v.size, version);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IPolicyAccount
    function policyVersion() external view returns (uint64 version, uint32 contentId, bytes32 policyHash) {
        Head memory h = _head;
        if (h.version == 0) return (0, 0, 0);
        ContentPtr content = PolicyContent.load(h.code, h.size);
        return (h.version, PolicyContent.contentId(content), PolicyContent.policyHash(content));
    }

    /// @inheritdoc IPolicyAccount
    function versionInfo(uint64 version) external view returns (uint32 contentId, bytes32 policyHash, uint40 activatedAt) {
        Version memory v = _versions[version];
        if (v.code == address(0)) revert PolicyAccountUnknownVersion(version);
        ContentPtr content = PolicyContent.load(v.code, v.size);
        return (PolicyContent.contentId(content), PolicyContent.policyHash(content), v.activatedAt);
    }

    /// @inheritdoc IPolicyAccount
    function members(uint32 contentId) external view returns (address[] memory list) {
        (bool known, ContentPtr content) = _contentOf(contentId);
        if (known) list = PolicyContent.members(content);
    }

    /// @inheritdoc IPolicyAccount
    function classCount(uint32 contentId) external view returns (uint256) {
        (bool known, ContentPtr content) = _contentOf(contentId);
        return known ? PolicyContent.classCount(content) : 0;
    }

    /// @inheritdoc IPolicyAccount
    function getClass(uint32 contentId, uint8 classIndex) external view returns (ClassView memory v) {
        (bool known, ContentPtr content) = _contentOf(contentId);
        if (!known || (classIndex != RECOVERY && classIndex >= PolicyContent.classCount(content))) {
            return v;
        }
        ClassPtr cls = PolicyContent.classAt(content, classIndex);
        uint256 signerCount;
        (v.threshold, signerCount, v.delay, v.expiryWindow) = PolicyContent.params(cls);
        uint256 guardianCount;
        (guardianCount, v.ruleCount, v.dominates) = PolicyContent.shape(cls);
        v.name = PolicyContent.name(cls);
        v.signers = new address[](signerCount);
        for (uint256 i; i < signerCount; ++i) {
            v.signers[i] = PolicyContent.signerAt(cls, i);
        }
        v.guardians = new address[](guardianCount);
        for (uint256 i; i < guardianCount; ++i) {
            v.guardians[i] = PolicyContent.guardianAt(cls, i);
        }
    }

    /// @inheritdoc IPolicyAccount
    function classOf(Call[] calldata calls) external view returns (uint8 classIndex, uint40 notBefore) {
        (ContentPtr content, uint64 version, uint40 floorUntil) = _active();
        (classIndex,,) = _classify(content, calls);
        notBefore = _notBefore(version, floorUntil, calls);
    }

    // ------------------------------------------------------------------ internal

    /// @dev Stores `policy` as new content and activates it. Emits {PolicyStored} and {PolicyChanged}.
    function _setPolicy(PolicySpec calldata policy) internal {
        uint32 contentId = ++_contentCount;
        (address code, uint256 size,) = PolicyWriter.store(
            contentId,
            policy,
            [
                IPolicyAccount.setPolicy.selector,
                IPolicyAccount.restoreVersion.selector,
                IPolicyAccount.grantAgent.selector,
                IPolicyAccount.revokeAgent.selector
            ]
        );
        // size <= MAX_POLICY_BYTES < 2^16
        _contents[contentId] = ContentRef(code, uint16(size));
        _activate(code, uint16(size), 0);
    }

    /// @dev Makes content `code` the next version. The floor windows grow to cover the old content's longest delay
    /// and its recovery delay. Emits {PolicyChanged}.
    function _activate(address code, uint16 size, uint64 restoredFrom) private {
        Head memory old = _head;
        uint40 nowTime = uint40(block.timestamp);
        uint40 floorUntil = old.floorUntil;
        uint40 recoveryFloorUntil;
        if (old.version != 0) {
            ContentPtr oldContent = PolicyContent.load(old.code, old.size);
            floorUntil = _max(floorUntil, nowTime + PolicyContent.maxDelay(oldContent));
            uint32 oldRecoveryDelay = PolicyContent.delayOf(PolicyContent.classAt(oldContent, RECOVERY));
            recoveryFloorUntil = _max(_versions[old.version].recoveryFloorUntil, nowTime + oldRecoveryDelay);
        }
        uint32 version = old.version + 1;
        _head = Head({code: code, size: size, version: version, floorUntil: floorUntil});
        _versions[version] = Version({
            code: code,
            size: size,
            activatedAt: nowTime,
            floorUntil: floorUntil,
            recoveryFloorUntil: recoveryFloorUntil
        });
        ContentPtr content = PolicyContent.load(code, size);
        emit PolicyChanged(version, PolicyContent.contentId(content), PolicyContent.policyHash(content), restoredFrom);
    }

    /// @dev The active content (in memory), its version and the end of its delay-floor window: one SLOAD.
    function _active() internal view returns (ContentPtr content, uint64 version, uint40 floorUntil) {
        address code;
        uint256 size;
        // Unpacked on the stack: copying the struct to memory costs more than the signed path can spare.
        assembly ("memory-safe") {
            let head := sload(_head.slot) // code (160) | size (16) | version (32) | floorUntil (40), low bits first
            code := and(head, 0xffffffffffffffffffffffffffffffffffffffff)
            size := and(shr(160, head), 0xffff)
            version := and(shr(176, head), 0xffffffff)
            floorUntil := shr(208, head)
        }
        content = PolicyContent.load(code, size);
    }

    function _activeVersion() internal view returns (uint64) {
        return _head.version;
    }

    /// @dev Content `contentId` in memory, if it exists.
    function _contentOf(uint32 contentId) internal view returns (bool known, ContentPtr content) {
        ContentRef memory ref = _contents[contentId];
        if (ref.code == address(0)) return (false, ContentPtr.wrap(0));
        return (true, PolicyContent.load(ref.code, ref.size));
    }

    /// @dev The class of `calls` under `content` (reverting when denied or ambiguous), the classes of the single
    /// calls (a bitmask, for guardians) and the rule of the class a single call matched (for its EIP-712 type).
    function _classify(ContentPtr content, Call[] calldata calls)
        internal
        view
        returns (uint8 classIndex, uint16 classMask, uint8 ruleIndex)
    {
        return _classifyIn(content, calls, true);
    }

    /// @dev {_classify} without the class mask: for one call (`only`, {CallsCalldata-single} of `calls`) whose
    /// matching rules need no condition evaluated and fall in one class ({PolicyContent-soleCandidate}), that class
    /// and rule at once; anything else through {_classify}, which decides the same way and names the error.
    function _classifyCall(ContentPtr content, Call[] calldata calls, uint256 only)
        internal
        view
        returns (uint8 classIndex, uint8 ruleIndex)
    {
        if (only != 0) {
            (address target, uint256 value, bytes calldata data) = CallsCalldata.fields(only);
            if (target != address(0)) {
                bool sole;
                (sole, classIndex, ruleIndex) = PolicyContent.soleCandidate(content, target, value, data, address(this));
                if (sole) return (classIndex, ruleIndex);
            }
        }
        (classIndex,, ruleIndex) = _classify(content, calls);
    }

    /// @dev Per call: its strictest matching class; then the strictest of those. With `strict`, reverts
    /// instead of returning a zero `classMask`.
    function _classifyIn(ContentPtr content, Call[] calldata calls, bool strict)
        private
        view
        returns (uint8 classIndex, uint16 classMask, uint8 ruleIndex)
    {
        uint256 n = calls.length;
        if (n == 0) revert PolicyAccountNoCalls();
        if (n > MAX_CALLS) revert PolicyAccountTooMany(Limit.Calls, n, MAX_CALLS);
        uint256 rules;
        for (uint256 i; i < n; ++i) {
            (bool found, uint8 c, uint256 r) = _classOfCall(content, calls, i, strict);
            if (!found) return (0, 0, 0);
            classMask |= uint16(1 << c);
            classIndex = c;
            rules = r;
        }
        // A single call's class is its own strictest.
        if (n == 1) return (classIndex, classMask, uint8(rules >> (8 * classIndex)));
        bool ok;
        (ok, classIndex) = PolicyContent.strictest(content, classMask);
        if (!ok) {
            if (!strict) return (0, 0, 0);
            revert PolicyAccountNoStrictestClass(classMask);
        }
        // Only single calls use the rule (for their named EIP-712 type).
        ruleIndex = uint8(rules >> (8 * classIndex));
    }

    /// @dev The strictest class matching call `i` of `calls` and its matched rules; with `strict`, reverts instead
    /// of returning `found = false`.
    function _classOfCall(ContentPtr content, Call[] calldata calls, uint256 i, bool strict)
        private
        view
        returns (bool found, uint8 classIndex, uint256 rules)
    {
        (address target, uint256 value, bytes calldata data) = CallsCalldata.at(calls, i);
        if (target == address(0)) revert PolicyAccountZeroTarget(i);
        uint16 mask;
        (mask, rules) = PolicyContent.candidates(content, target, value, data, address(this));
        (found, classIndex) = PolicyContent.strictest(content, mask);
        if (!found && strict) {
            if (mask == 0) revert PolicyAccountActionDenied(i, target, _selectorOf(data));
            revert PolicyAccountNoStrictestClass(mask);
        }
    }

    /// @dev For an agent: every call's class must be in `scope` (a class bitmask of `content`); returns the total
    /// of the calls' spend words and the ETH they send.
    function _agentSpend(ContentPtr content, Call[] calldata calls, address agent, uint16 scope)
        internal
        view
        returns (uint256 spend)
    {
        uint256 n = calls.length;
        if (n == 0) revert PolicyAccountNoCalls();
        if (n > MAX_CALLS) revert PolicyAccountTooMany(Limit.Calls, n, MAX_CALLS);
        for (uint256 i; i < n; ++i) {
            (, uint8 c, uint256 rules) = _classOfCall(content, calls, i, true);
            if (scope & (1 << c) == 0) revert PolicyAccountAgentOutOfScope(agent, i, c);
            spend += _spendWord(content, c, uint8(rules >> (8 * c)), calls, i);
        }
    }

    /// @dev What call `i` of `calls`, of class `classIndex` by rule `ruleIndex`, charges an agent with: its spend word
    /// plus the ETH it sends.
    function _spendWord(ContentPtr content, uint8 classIndex, uint8 ruleIndex, Call[] calldata calls, uint256 i)
        private
        pure
        returns (uint256)
    {
        (address target, uint256 value, bytes calldata data) = CallsCalldata.at(calls, i);
        RulePtr rule = PolicyContent.ruleAt(content, PolicyContent.classAt(content, classIndex), ruleIndex);
        (uint256 spendArg,,) = PolicyContent.action(rule);
        if (spendArg == 0) return value;
        (bool ok, uint256 word) = CalldataConditions.headWord(data, spendArg - 1);
        // A call too short to hold its spend word would be rejected by the target's decoder anyway.
        if (!ok) revert PolicyAccountActionDenied(i, target, _selectorOf(data));
        return word + value;
    }

    /// @dev The earliest time an operation on `calls` proposed now under `version` may run (see {_floor}). Outside
    /// the window (`floorUntil`, from the head) it reads nothing.
    function _notBefore(uint64 version, uint40 floorUntil, Call[] calldata calls)
        internal
        view
        returns (uint40 notBefore)
    {
        if (block.timestamp >= floorUntil) return 0;
        return _floor(version, calls, false);
    }

    /// @dev The earliest time a recovery operation on `calls` proposed now under `version` may run (see {_floor}).
    function _recoveryNotBefore(uint64 version, Call[] calldata calls) internal view returns (uint40) {
        return _floor(version, calls, true);
    }

    /// @dev The delay floor: for each recent version change, the change time plus the delay the calls had under the
    /// content before it (with `recovery`, that content's recovery delay). Walks at most MAX_FLOOR_WALK changes back
    /// while inside the version's floor window; beyond that it takes the whole window (coarse, never too early).
    function _floor(uint64 version, Call[] calldata calls, bool recovery) private view returns (uint40 notBefore) {
        for (uint256 step; version > 1; ++step) {
            Version storage w = _versions[version];
            uint40 windowEnd = recovery ? w.recoveryFloorUntil : w.floorUntil;
            if (block.timestamp >= windowEnd) break;
            if (step == MAX_FLOOR_WALK) return _max(windowEnd, notBefore);
            Version storage prev = _versions[version - 1];
            ContentPtr content = PolicyContent.load(prev.code, prev.size);
            (bool matched, uint8 c) = recovery ? (true, RECOVERY) : _classUnder(content, calls);
            // Calls the old content denied had no delay to keep.
            if (matched) notBefore = _max(notBefore, w.activatedAt + PolicyContent.delayOf(PolicyContent.classAt(content, c)));
            --version;
        }
    }

    /// @dev The class `content` gives `calls`, if it matches them at all.
    function _classUnder(ContentPtr content, Call[] calldata calls) private view returns (bool matched, uint8 classIndex) {
        uint16 mask;
        (classIndex, mask,) = _classifyIn(content, calls, false);
        matched = mask != 0;
    }

    function _max(uint40 a, uint40 b) private pure returns (uint40) {
        return a > b ? a : b;
    }

    function _selectorOf(bytes calldata data) internal pure returns (bytes4) {
        return data.length >= 4 ? bytes4(data[:4]) : bytes4(0);
    }
}
