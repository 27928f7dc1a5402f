// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPolicyAccount} from "./interfaces/IPolicyAccount.sol";
import {PolicyContent} from "./libraries/PolicyContent.sol";
import {CallsCalldata} from "./libraries/CallsCalldata.sol";
import {AgentRoles} from "./base/AgentRoles.sol";
import {PolicyVersions} from "./base/PolicyVersions.sol";
import {SignatureApprovals} from "./base/SignatureApprovals.sol";
import {ClassPtr, ContentPtr, RulePtr} from "./libraries/PolicyLayout.sol";
import {
    Call,
    Limit,
    OperationState,
    PolicySpec,
    MAX_CALLS,
    MAX_PENDING,
    RECOVERY
} from "./PolicyTypes.sol";

/// @title PolicyAccount
/// @notice The organisation's account: it holds tokens and owns VMs, and every call it makes went through the
/// class the active policy gives it (see {IPolicyAccount}). Operation ids are their nonces, chosen by the
/// proposer, so one stuck operation never blocks another.
/// @dev Composition: {PolicyVersions} (versioned policy and the matcher), {SignatureApprovals} (EIP-712 and
/// ERC-1271), {AgentRoles} (scoped agents); this contract keeps the operation lifecycle.
contract PolicyAccount is PolicyVersions, SignatureApprovals, AgentRoles {
    enum Status {
        None,
        Pending,
        Executed,
        Cancelled
    }

    /// @dev Three slots.
    struct Operation {
        // slot 0: proposer (160) | version (64) | classIndex (8) | recovery (8) | status (8)
        address proposer;
        uint64 version;
        uint8 classIndex;
        bool recovery;
        Status status;
        // slot 1: contentId (32) | approvals (16) | classMask (16) | ruleIndex (8) | notBefore (40) | eta (40) | expiresAt (40)
        uint32 contentId;
        uint16 approvals;
        uint16 classMask;
        uint8 ruleIndex;
        uint40 notBefore;
        /// @dev 0 until the last needed approval.
        uint40 eta;
        /// @dev While Proposed: end of the approval window; once queued: eta + expiry window.
        uint40 expiresAt;
        // slot 2
        bytes32 callsHash;
    }

    /// @dev What proposing settles about a new operation.
    struct Draft {
        uint64 version;
        uint8 classIndex;
        /// @dev Bitmask of the classes of the single calls (for guardians).
        uint16 classMask;
        /// @dev The rule of `classIndex` a single call matched (for its EIP-712 action type).
        uint8 ruleIndex;
        uint40 notBefore;
        bool recovery;
    }

    /// @dev Who may call {initialize} once: the deployer or a factory. Nobody else can front-run it.
    address private immutable _initializer;

    mapping(uint256 opId => Operation) private _operations;
    mapping(uint256 wordIndex => uint256 bits) private _usedNonces;
    /// @dev Each proposer's own pending list: one signer's proposals never take another's slots.
    mapping(address proposer => uint256[] opIds) private _pending;
    mapping(uint256 opId => uint256 position) private _pendingPosition; // 1-based in its proposer's list; 0 = not listed

    error PolicyAccountAlreadyInitialized();

    constructor(address initializer) {
        _initializer = initializer;
    }

    /// @notice Sets the first policy (version 1). Only the initializer, once.
    function initialize(PolicySpec calldata policy) external {
        if (msg.sender != _initializer) revert PolicyAccountNotInitializer(msg.sender);
        if (_activeVersion() != 0) revert PolicyAccountAlreadyInitialized();
        _setPolicy(policy);
    }

    receive() external payable {}

    // ------------------------------------------------------------------ proposing and approving

    /// @inheritdoc IPolicyAccount
    function propose(Call[] calldata calls, uint256 nonce) external returns (uint256) {
        (ContentPtr content, uint64 version, uint40 floorUntil) = _active();
        Draft memory d;
        d.version = version;
        (d.classIndex, d.classMask, d.ruleIndex) = _classify(content, calls);
        d.notBefore = _notBefore(version, floorUntil, calls);
        return _propose(calls, nonce, content, d);
    }

    /// @inheritdoc IPolicyAccount
    function proposeRecovery(Call[] calldata calls, uint256 nonce) external returns (uint256) {
        uint256 n = calls.length;
        if (n == 0) revert PolicyAccountNoCalls();
        if (n > MAX_CALLS) revert PolicyAccountTooMany(Limit.Calls, n, MAX_CALLS);
        (ContentPtr content, uint64 version,) = _active();
        Draft memory d;
        for (uint256 i; i < n; ++i) {
            (address target, uint256 value, bytes calldata data) = CallsCalldata.at(calls, i);
            (bool found, uint8 ruleIndex) = PolicyContent.recoveryRule(content, target, value, data, address(this));
            if (!found) revert PolicyAccountActionDenied(i, target, _selectorOf(data));
            // A single call is signed as its rule's named action, if it has one.
            d.ruleIndex = ruleIndex;
        }
        d.version = version;
        d.classIndex = RECOVERY;
        d.recovery = true;
        // A shortened recovery delay does not apply until the old one has passed, across any later changes.
        d.notBefore = _recoveryNotBefore(version, calls);
        return _propose(calls, nonce, content, d);
    }

    /// @dev Stores the operation and counts the proposer's approval. Emits {OperationProposed},
    /// {OperationApproved} and maybe {OperationQueued}.
    function _propose(Call[] calldata calls, uint256 nonce, ContentPtr content, Draft memory d)
        private
        returns (uint256 opId)
    {
        ClassPtr cls = PolicyContent.classAt(content, d.classIndex);
        (bool isSigner, uint256 index) = _signerIndex(cls, msg.sender);
        if (!isSigner) revert PolicyAccountNotSigner(nonce, msg.sender);
        (,,, uint32 expiryWindow) = PolicyContent.params(cls);
        opId = _newOperation(calls, nonce, PolicyContent.contentId(content), d, expiryWindow);
        Operation storage op = _operations[opId];
        _emitProposed(opId, op, PolicyContent.name(cls), calls);
        _addApprovals(opId, op, cls, uint16(1 << index));
    }

    /// @dev Emits {OperationProposed}.
    function _emitProposed(uint256 opId, Operation storage op, bytes32 className, Call[] calldata calls) private {
        emit OperationProposed(
            opId, op.proposer, op.version, op.classIndex, className, op.recovery, calls, op.notBefore, op.expiresAt
        );
    }

    /// @inheritdoc IPolicyAccount
    function approve(uint256 opId) external {
        Operation storage op = _operations[opId];
        _expectState(opId, op, OperationState.Proposed);
        (, ClassPtr cls) = _classOfOp(op);
        (bool isSigner, uint256 index) = _signerIndex(cls, msg.sender);
        if (!isSigner) revert PolicyAccountNotSigner(opId, msg.sender);
        if (op.approvals & (1 << index) != 0) revert PolicyAccountAlreadyApproved(opId, msg.sender);
        _addApprovals(opId, op, cls, uint16(1 << index));
    }

    /// @inheritdoc IPolicyAccount
    function approveWithSignatures(uint256 opId, Call[] calldata calls, uint256 deadline, bytes calldata signatures)
        external
    {
        if (block.timestamp > deadline) revert PolicyAccountSignatureExpired(deadline, block.timestamp);
        Operation storage op = _operations[opId];
        _expectState(opId, op, OperationState.Proposed);
        _expectCalls(opId, op, calls);
        (ContentPtr content, ClassPtr cls) = _classOfOp(op);
        bytes32 digest = _digest(
            calls, CallsCalldata.single(calls), PolicyContent.ruleAt(content, cls, op.ruleIndex), opId, op.version, deadline
        );
        (uint16 signed,) = _signedBy(digest, cls, signatures);
        _addApprovals(opId, op, cls, signed & ~op.approvals);
    }

    // ------------------------------------------------------------------ executing and cancelling

    /// @inheritdoc IPolicyAccount
    function execute(uint256 opId, Call[] calldata calls) external payable {
        Operation storage op = _operations[opId];
        _expectState(opId, op, OperationState.Ready);
        _expectCalls(opId, op, calls);
        // Terminal before the calls run, so a call cannot re-enter and run it twice.
        op.status = Status.Executed;
        _unlist(op.proposer, opId);
        emit OperationExecuted(opId, msg.sender, op.version, op.classIndex, op.approvals);
        _run(calls);
    }

    /// @inheritdoc IPolicyAccount
    function executeSignedCalls(Call[] calldata calls, uint256 nonce, uint256 deadline, bytes calldata signatures)
        external
        payable
    {
        if (block.timestamp > deadline) revert PolicyAccountSignatureExpired(deadline, block.timestamp);
        _useNonce(nonce);
        // A single call is found and checked once, then read by the classification, the digest and the call.
        uint256 only = CallsCalldata.single(calls);
        (uint64 version, uint8 classIndex, uint16 signed, bytes32 digest) =
            _checkSigned(calls, only, nonce, deadline, signatures);
        emit SignedOperationExecuted(nonce, version, classIndex, signed, digest);
        if (only != 0) _call(0, only);
        else _run(calls);
    }

    /// @dev For {executeSignedCalls}: the class must have no delay now, and enough of its signers signed. `only` is
    /// {CallsCalldata-single} of `calls`.
    function _checkSigned(Call[] calldata calls, uint256 only, uint256 nonce, uint256 deadline, bytes calldata signatures)
        private
        view
        returns (uint64 version, uint8 classIndex, uint16 signed, bytes32 digest)
    {
        ClassPtr cls;
        RulePtr rule;
        (version, classIndex, cls, rule) = _immediateClass(calls, only);
        digest = _digest(calls, only, rule, nonce, version, deadline);
        uint256 count;
        (signed, count) = _signedBy(digest, cls, signatures);
        uint8 threshold = PolicyContent.thresholdOf(cls);
        if (count < threshold) revert PolicyAccountNotEnoughApprovals(count, threshold);
    }

    /// @dev The class of `calls` under the active version (`cls`, in memory), which must let them run now: no
    /// delay and no delay floor. `rule` is the rule a single call matched.
    function _immediateClass(Call[] calldata calls, uint256 only)
        private
        view
        returns (uint64 version, uint8 classIndex, ClassPtr cls, RulePtr rule)
    {
        ContentPtr content;
        uint40 floorUntil;
        (content, version, floorUntil) = _active();
        uint8 ruleIndex;
        (classIndex, ruleIndex) = _classifyCall(content, calls, only);
        cls = PolicyContent.classAt(content, classIndex);
        rule = PolicyContent.ruleAt(content, cls, ruleIndex);
        uint40 eta = _etaFromNow(PolicyContent.delayOf(cls), _notBefore(version, floorUntil, calls));
        if (eta > block.timestamp) revert PolicyAccountDelayRequired(eta);
    }

    /// @dev When an operation whose last needed approval lands now may run: after its class delay, never before
    /// `notBefore`.
    function _etaFromNow(uint32 delay, uint40 notBefore) private view returns (uint40 eta) {
        unchecked {
            eta = uint40(block.timestamp) + delay; // a uint32 past a uint40 timestamp: no overflow for millennia
        }
        if (notBefore > eta) eta = notBefore;
    }

    /// @inheritdoc IPolicyAccount
    function cancel(uint256 opId) external {
        Operation storage op = _operations[opId];
        OperationState s = _state(op);
        if (s != OperationState.Proposed && s != OperationState.Queued && s != OperationState.Ready) {
            revert PolicyAccountUnexpectedState(opId, s);
        }
        if (msg.sender != op.proposer && (op.recovery || !_isGuardian(op, msg.sender))) {
            revert PolicyAccountNotCanceller(opId, msg.sender);
        }
        op.status = Status.Cancelled;
        _unlist(op.proposer, opId);
        emit OperationCancelled(opId, msg.sender);
    }

    /// @inheritdoc IPolicyAccount
    function agentExecute(Call[] calldata calls) external payable {
        (ContentPtr content, uint64 version,) = _active();
        uint16 scope = _agentScope(msg.sender, PolicyContent.contentId(content));
        uint256 spend = _agentSpend(content, calls, msg.sender, scope);
        // Charged before the calls run; when one fails the whole transaction reverts, charge included.
        uint256 left = _spend(msg.sender, spend);
        emit AgentExecuted(msg.sender, version, spend, left, calls);
        _run(calls);
    }

    /// @inheritdoc IPolicyAccount
    function prunePending(address proposer) external {
        _prune(proposer);
    }

    // ------------------------------------------------------------------ agents (self-calls)

    /// @inheritdoc IPolicyAccount
    function grantAgent(address agent, uint16 classMask, uint128 maxAllowance, uint32 period, uint40 expiresAt)
        external
        onlySelf
    {
        (ContentPtr content,,) = _active();
        if (classMask >> PolicyContent.classCount(content) != 0) revert PolicyAccountInvalidAgentGrant(agent);
        _grant(agent, classMask, PolicyContent.contentId(content), maxAllowance, period, expiresAt);
    }

    /// @inheritdoc IPolicyAccount
    function revokeAgent(address agent) external onlySelf {
        _revoke(agent);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IPolicyAccount
    function operationDigest(Call[] calldata calls, uint256 nonce, uint64 version, uint256 deadline)
        external
        view
        returns (bytes32)
    {
        Operation storage op = _operations[nonce];
        // A stored operation is signed as its class and rule of its version; anything else as the active policy classifies it.
        ContentPtr content;
        ClassPtr cls;
        uint8 ruleIndex;
        if (op.status != Status.None) {
            (content, cls) = _classOfOp(op);
            ruleIndex = op.ruleIndex;
        } else {
            (content,,) = _active();
            uint8 classIndex;
            (classIndex,, ruleIndex) = _classify(content, calls);
            cls = PolicyContent.classAt(content, classIndex);
        }
        return _digest(
            calls, CallsCalldata.single(calls), PolicyContent.ruleAt(content, cls, ruleIndex), nonce, version, deadline
        );
    }

    /// @inheritdoc IPolicyAccount
    function state(uint256 opId) external view returns (OperationState) {
        return _state(_operations[opId]);
    }

    /// @inheritdoc IPolicyAccount
    function getOperation(uint256 opId) external view returns (OperationView memory v) {
        Operation storage op = _operations[opId];
        v.state = _state(op);
        v.proposer = op.proposer;
        v.version = op.version;
        v.classIndex = op.classIndex;
        v.recovery = op.recovery;
        v.approvals = op.approvals;
        v.eta = op.eta;
        v.expiresAt = op.expiresAt;
        v.notBefore = op.notBefore;
        v.callsHash = op.callsHash;
        if (op.status != Status.None) {
            (, ClassPtr cls) = _classOfOp(op);
            (v.threshold,,,) = PolicyContent.params(cls);
        }
    }

    /// @inheritdoc IPolicyAccount
    function pendingOperations(address proposer) external view returns (uint256[] memory) {
        return _pending[proposer];
    }

    /// @inheritdoc IPolicyAccount
    function nonceUsed(uint256 nonce) external view returns (bool) {
        return _usedNonces[nonce >> 8] & (1 << (nonce & 0xff)) != 0;
    }

    // ------------------------------------------------------------------ internal

    /// @dev Stores a new operation (no approvals yet) and lists it as pending.
    function _newOperation(Call[] calldata calls, uint256 nonce, uint32 contentId, Draft memory d, uint32 expiryWindow)
        private
        returns (uint256 opId)
    {
        _useNonce(nonce);
        opId = nonce;
        _list(msg.sender, opId);
        Operation storage op = _operations[opId];
        op.proposer = msg.sender;
        op.version = d.version;
        op.classIndex = d.classIndex;
        op.recovery = d.recovery;
        op.status = Status.Pending;
        op.contentId = contentId;
        op.classMask = d.classMask;
        op.ruleIndex = d.ruleIndex;
        op.notBefore = d.notBefore;
        op.expiresAt = uint40(block.timestamp) + expiryWindow;
        op.callsHash = keccak256(abi.encode(calls));
    }

    /// @dev Adds the signers in `newBits` of class `cls`; with the last needed one, sets eta = max(now + delay,
    /// notBefore). Emits {OperationApproved} per signer and {OperationQueued} with the last needed approval.
    function _addApprovals(uint256 opId, Operation storage op, ClassPtr cls, uint16 newBits) private {
        if (newBits == 0) return;
        uint16 approvals = op.approvals | newBits;
        op.approvals = approvals;
        uint256 count = _popcount(approvals);
        (uint8 threshold, uint256 signerCount, uint32 delay, uint32 expiryWindow) = PolicyContent.params(cls);
        for (uint256 i; i < signerCount; ++i) {
            if (newBits & (1 << i) != 0) emit OperationApproved(opId, PolicyContent.signerAt(cls, i), approvals, count);
        }
        if (count >= threshold && op.eta == 0) {
            uint40 eta = _etaFromNow(delay, op.notBefore);
            uint40 expiresAt = eta + expiryWindow;
            op.eta = eta;
            op.expiresAt = expiresAt;
            emit OperationQueued(opId, eta, expiresAt);
        }
    }

    function _state(Operation storage op) private view returns (OperationState) {
        Status status = op.status;
        if (status == Status.None) return OperationState.None;
        if (status == Status.Executed) return OperationState.Executed;
        if (status == Status.Cancelled) return OperationState.Cancelled;
        if (!op.recovery && op.version != _activeVersion()) return OperationState.Stale;
        uint40 eta = op.eta;
        if (block.timestamp >= op.expiresAt) return OperationState.Expired;
        if (eta == 0) return OperationState.Proposed;
        return block.timestamp < eta ? OperationState.Queued : OperationState.Ready;
    }

    function _expectState(uint256 opId, Operation storage op, OperationState expected) private view {
        OperationState current = _state(op);
        if (current != expected) revert PolicyAccountUnexpectedState(opId, current);
    }

    function _expectCalls(uint256 opId, Operation storage op, Call[] calldata calls) private view {
        bytes32 given = keccak256(abi.encode(calls));
        if (given != op.callsHash) revert PolicyAccountCallsMismatch(opId, op.callsHash, given);
    }

    /// @dev The content of stored operation `op` (in memory) and its class in it.
    function _classOfOp(Operation storage op) private view returns (ContentPtr content, ClassPtr cls) {
        (, content) = _contentOf(op.contentId);
        cls = PolicyContent.classAt(content, op.classIndex);
    }

    function _isGuardian(Operation storage op, address account) private view returns (bool) {
        (, ContentPtr content) = _contentOf(op.contentId);
        uint16 mask = op.classMask;
        for (uint256 i; mask >> i != 0; ++i) {
            if (mask & (1 << i) == 0) continue;
            ClassPtr cls = PolicyContent.classAt(content, i);
            (uint256 guardianCount,,) = PolicyContent.shape(cls);
            for (uint256 g; g < guardianCount; ++g) {
                if (PolicyContent.guardianAt(cls, g) == account) return true;
            }
        }
        return false;
    }

    function _useNonce(uint256 nonce) private {
        // The word's slot hashed once for its SLOAD and SSTORE (Solidity hashes the mapping key for each), and the
        // error raised in the same block: this runs on every signed execution.
        bytes4 used = PolicyAccountNonceUsed.selector;
        assembly ("memory-safe") {
            mstore(0x00, shr(8, nonce))
            mstore(0x20, _usedNonces.slot)
            let slot := keccak256(0x00, 0x40)
            let bits := sload(slot)
            let bit := shl(and(nonce, 0xff), 1)
            if and(bits, bit) {
                mstore(0x00, used)
                mstore(0x04, nonce)
                revert(0x00, 0x24)
            }
            sstore(slot, or(bits, bit))
        }
    }

    function _run(Call[] calldata calls) private {
        for (uint256 i; i < calls.length; ++i) {
            _call(i, CallsCalldata.element(calls, i));
        }
    }

    /// @dev Makes call `i` of the operation, the call at `e` ({CallsCalldata-element}); reverts with its reason
    /// when it fails.
    function _call(uint256 i, uint256 e) private {
        (address target, uint256 value, bytes calldata data) = CallsCalldata.fields(e);
        bool ok;
        // Solidity's `call` copies the return data into memory; nobody reads it unless the call failed.
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, data.offset, data.length)
            ok := call(gas(), target, value, ptr, data.length, 0, 0)
        }
        if (!ok) {
            bytes memory reason;
            // The call above copied nothing back; only a failure's reason is copied, for the error.
            assembly ("memory-safe") {
                reason := mload(0x40)
                mstore(reason, returndatasize())
                returndatacopy(add(reason, 32), 0, returndatasize())
                mstore(0x40, add(add(reason, 32), and(add(returndatasize(), 31), not(31))))
            }
            revert PolicyAccountCallFailed(i, reason);
        }
    }

    /// @dev Lists `opId` as pending in `proposer`'s own list; prunes its terminal entries when the list is full.
    /// Only the proposer's own operations can fill it, and the proposer can cancel them.
    function _list(address proposer, uint256 opId) private {
        uint256[] storage list = _pending[proposer];
        if (list.length >= MAX_PENDING) _prune(proposer);
        if (list.length >= MAX_PENDING) revert PolicyAccountTooMany(Limit.Pending, list.length + 1, MAX_PENDING);
        list.push(opId);
        _pendingPosition[opId] = list.length;
    }

    /// @dev Removes listed operation `opId` from `proposer`'s pending list. Every operation that can still be executed
    /// or cancelled is listed: only Expired and Stale ones, which stay so, are pruned.
    function _unlist(address proposer, uint256 opId) private {
        uint256 position = _pendingPosition[opId];
        uint256[] storage list = _pending[proposer];
        uint256 last = list[list.length - 1];
        list[position - 1] = last;
        _pendingPosition[last] = position;
        list.pop();
        delete _pendingPosition[opId];
    }

    /// @dev Drops Expired and Stale operations from `proposer`'s pending list (at most MAX_PENDING entries).
    function _prune(address proposer) private {
        uint256[] storage list = _pending[proposer];
        uint256 i;
        while (i < list.length) {
            uint256 opId = list[i];
            OperationState s = _state(_operations[opId]);
            if (s == OperationState.Expired || s == OperationState.Stale) {
                _unlist(proposer, opId); // the last entry moves to i: look at i again
            } else {
                ++i;
            }
        }
    }

    /// @dev How many bits of `x` are set: approvals of a stored operation (the signed path counts in its signature walk).
    function _popcount(uint16 x) private pure returns (uint256 count) {
        for (; x != 0; x &= x - 1) ++count;
    }
}
