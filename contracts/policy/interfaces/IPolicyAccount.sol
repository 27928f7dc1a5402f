// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Call, Limit, OperationState, PolicySpec, RecoveryProblem} from "../PolicyTypes.sol";

/// @title IPolicyAccount
/// @notice An account contract that owns VMs and tokens for an organisation. Every outgoing call belongs to an
/// action class of the active policy version, matched by (target, selector, typed conditions on the ABI-encoded
/// arguments); each class has its own signers, M-of-N threshold, delay, expiry window and guardians. Calls no
/// class matches are denied; a batch takes its strictest class. Operations go Proposed -> Queued (eta = last
/// needed approval + delay) -> Ready -> Executed, or Cancelled / Expired / Stale. Agents act alone within the
/// classes and the refilling allowance they were granted.
interface IPolicyAccount {
    /// @notice What a stored operation records. `approvals` is a bitmask over its class's sorted signers.
    struct OperationView {
        OperationState state;
        address proposer;
        uint64 version;
        uint8 classIndex;
        bool recovery;
        uint16 approvals;
        uint8 threshold;
        uint40 eta;
        uint40 expiresAt;
        uint40 notBefore;
        bytes32 callsHash;
    }

    /// @notice A class of a stored policy version, as the signers and tools need it.
    struct ClassView {
        bytes32 name;
        address[] signers;
        uint8 threshold;
        uint32 delay;
        uint32 expiryWindow;
        address[] guardians;
        uint8 ruleCount;
        uint16 dominates;
    }

    /// @notice What an agent may do. Its allowance refills linearly by `maxAllowance` per `period`, up to `maxAllowance`.
    struct AgentView {
        uint16 classMask;
        uint32 contentId;
        uint40 expiresAt;
        uint32 period;
        uint128 maxAllowance;
        uint128 available;
        bool active;
    }

    // ------------------------------------------------------------------ events

    /// @notice The policy content `contentId` was stored; `policy` is all of it, so an indexer can rebuild it.
    event PolicyStored(uint32 indexed contentId, bytes32 indexed policyHash, PolicySpec policy);
    /// @notice Version `version` is active from now; it uses content `contentId` (its hash `policyHash`).
    /// `restoredFrom` is the earlier version it restores, or 0 for new content.
    event PolicyChanged(uint64 indexed version, uint32 indexed contentId, bytes32 policyHash, uint64 restoredFrom);
    /// @notice An operation was proposed under `version`; `calls` are what it will do.
    event OperationProposed(
        uint256 indexed opId,
        address indexed proposer,
        uint64 indexed version,
        uint8 classIndex,
        bytes32 className,
        bool recovery,
        Call[] calls,
        uint40 notBefore,
        uint40 expiresAt
    );
    /// @notice `signer` approved; `approvals` is the signer bitmask now and `count` its population.
    event OperationApproved(uint256 indexed opId, address indexed signer, uint16 approvals, uint256 count);
    /// @notice The operation has its last needed approval; it can be executed in [eta, expiresAt).
    event OperationQueued(uint256 indexed opId, uint40 eta, uint40 expiresAt);
    /// @notice The operation ran (every call succeeded). `signers` is its approval bitmask.
    event OperationExecuted(
        uint256 indexed opId, address indexed executor, uint64 indexed version, uint8 classIndex, uint16 signers
    );
    /// @notice A signed operation ran in one transaction (it was never stored). `signers` is the bitmask of the
    /// class's signers who signed; `digest` is the EIP-712 digest they signed (see {operationDigest}), which commits
    /// to the calls: the calls themselves are in the transaction's input, not copied into the log. Only `opId` is
    /// indexed: every further topic would cost each signed execution 375 gas. Who submitted it is not logged (like
    /// Safe's ExecutionSuccess and OZ Governor's ProposalExecuted): it is the transaction's sender, or the caller in
    /// its trace, and the signers, not the submitter, authorised it.
    event SignedOperationExecuted(uint256 indexed opId, uint64 version, uint8 classIndex, uint16 signers, bytes32 digest);
    /// @notice The operation was cancelled by its proposer or a guardian.
    event OperationCancelled(uint256 indexed opId, address indexed by);
    /// @notice `agent` may act alone within `classMask` of content `contentId`, spending up to its allowance.
    event AgentGranted(
        address indexed agent, uint16 classMask, uint32 contentId, uint128 maxAllowance, uint32 period, uint40 expiresAt
    );
    /// @notice `agent` lost its role.
    event AgentRevoked(address indexed agent);
    /// @notice `agent` ran `calls` alone, spending `spent`; `availableLeft` remains of its allowance.
    event AgentExecuted(
        address indexed agent, uint64 indexed version, uint256 spent, uint256 availableLeft, Call[] calls
    );

    // ------------------------------------------------------------------ errors

    /// @notice Only the initializer the account was deployed with may call {initialize}; `caller` did.
    error PolicyAccountNotInitializer(address caller);
    /// @notice The data contract holding content `contentId` (`size` bytes) could not be deployed (out of gas).
    error PolicyAccountStoreFailed(uint32 contentId, uint256 size);
    /// @notice Only the account itself (through an executed operation) may call this; `caller` did.
    error PolicyAccountOnlySelf(address caller);
    /// @notice A policy or a call is over a bound: `count` of `what` where at most `max` are allowed.
    error PolicyAccountTooMany(Limit what, uint256 count, uint256 max);
    /// @notice Class `classIndex` has threshold `threshold` for `signers` signers; it needs 0 < threshold <= signers.
    error PolicyAccountInvalidThreshold(uint256 classIndex, uint256 threshold, uint256 signers);
    /// @notice Class `classIndex` lists `account` out of ascending order, twice, or as the zero address.
    error PolicyAccountUnsortedAddresses(uint256 classIndex, address account);
    /// @notice Class `classIndex` has a zero expiry window.
    error PolicyAccountZeroExpiryWindow(uint256 classIndex);
    /// @notice Condition `conditionIndex` of rule `ruleIndex` of class `classIndex` cannot be evaluated as written.
    error PolicyAccountInvalidCondition(uint256 classIndex, uint256 ruleIndex, uint256 conditionIndex);
    /// @notice The recovery class breaks a rule; `problem` says which.
    error PolicyAccountInvalidRecovery(RecoveryProblem problem);
    /// @notice `version` is not an earlier version of this account's policy.
    error PolicyAccountUnknownVersion(uint64 version);
    /// @notice An operation must make between 1 and MAX_CALLS calls.
    error PolicyAccountNoCalls();
    /// @notice Call `callIndex` targets the zero address.
    error PolicyAccountZeroTarget(uint256 callIndex);
    /// @notice No class of the active policy matches call `callIndex` (`target`, `selector`): the action is denied.
    error PolicyAccountActionDenied(uint256 callIndex, address target, bytes4 selector);
    /// @notice The classes in `candidates` (a bitmask of class indices) all apply and none is at least as strict as
    /// every other one (higher or equal threshold and delay, signers a subset of each).
    error PolicyAccountNoStrictestClass(uint16 candidates);
    /// @notice Operation nonce `nonce` was used already.
    error PolicyAccountNonceUsed(uint256 nonce);
    /// @notice `account` is not a signer of operation `opId`'s class.
    error PolicyAccountNotSigner(uint256 opId, address account);
    /// @notice `signer` approved operation `opId` already.
    error PolicyAccountAlreadyApproved(uint256 opId, address signer);
    /// @notice Operation `opId` is `current`, which does not allow this call.
    error PolicyAccountUnexpectedState(uint256 opId, OperationState current);
    /// @notice The calls passed for operation `opId` hash to `given`, not to the proposed `expected`.
    error PolicyAccountCallsMismatch(uint256 opId, bytes32 expected, bytes32 given);
    /// @notice The signatures were valid until `deadline`; it is `nowTime`.
    error PolicyAccountSignatureExpired(uint256 deadline, uint256 nowTime);
    /// @notice Signature `index` is by `signer`, a signer of the class, but out of ascending order or repeated.
    error PolicyAccountUnsortedSigners(uint256 index, address signer);
    /// @notice Signature `index` does not prove that a signer of the class signed this operation. For an ECDSA
    /// entry `signer` is the address it recovers to (a key outside the class, or an unrelated address when it signed
    /// other data: another chain, account, nonce, deadline, policy version or calls), or zero when the entry is
    /// truncated, of an unknown kind or does not recover; for a contract entry, the contract that rejected it.
    error PolicyAccountInvalidSignature(uint256 index, address signer);
    /// @notice Contract signature `index` names `signer`, who is not a signer of the operation's class.
    error PolicyAccountSignerNotInClass(uint256 index, address signer);
    /// @notice `count` valid approvals were given where `threshold` are needed.
    error PolicyAccountNotEnoughApprovals(uint256 count, uint256 threshold);
    /// @notice The class needs a delay (`eta` would be later than now); propose the operation instead.
    error PolicyAccountDelayRequired(uint256 eta);
    /// @notice `caller` is neither the proposer of operation `opId` nor a guardian of its classes.
    error PolicyAccountNotCanceller(uint256 opId, address caller);
    /// @notice Call `callIndex` reverted with `reason`; nothing happened and the operation stays executable.
    error PolicyAccountCallFailed(uint256 callIndex, bytes reason);
    /// @notice `agent` has no role (never granted, revoked, or granted under other policy content).
    error PolicyAccountNotAgent(address agent);
    /// @notice `agent`'s role ended at `expiresAt`.
    error PolicyAccountAgentExpired(address agent, uint40 expiresAt);
    /// @notice Call `callIndex` is of class `classIndex`, outside `agent`'s scope.
    error PolicyAccountAgentOutOfScope(address agent, uint256 callIndex, uint8 classIndex);
    /// @notice `agent` would spend `needed` with only `available` of its allowance left.
    error PolicyAccountAllowanceExceeded(address agent, uint256 needed, uint256 available);
    /// @notice An agent grant needs a non-zero agent, scope and period and an expiry in the future.
    error PolicyAccountInvalidAgentGrant(address agent);

    // ------------------------------------------------------------------ operations

    /// @notice Proposes `calls` under nonce `nonce` (the operation's id) and counts the caller's approval.
    /// The caller must be a signer of the class the calls match. Emits {OperationProposed},
    /// {OperationApproved} and, when that approval is the last needed, {OperationQueued}.
    function propose(Call[] calldata calls, uint256 nonce) external returns (uint256 opId);

    /// @notice Proposes `calls` under the recovery class (every recovery signer, long delay). Only recovery
    /// signers may; only the proposer can cancel it; policy changes do not make it stale.
    function proposeRecovery(Call[] calldata calls, uint256 nonce) external returns (uint256 opId);

    /// @notice Approves operation `opId` as the caller, a signer of its class. Emits {OperationApproved} and,
    /// with the last needed approval, {OperationQueued}.
    function approve(uint256 opId) external;

    /// @notice Adds EIP-712 approvals (see {operationDigest}) of operation `opId`; `signatures` are packed as for
    /// {executeSignedCalls}. Signers who approved already are skipped. Emits {OperationApproved} per new signer and
    /// maybe {OperationQueued}.
    function approveWithSignatures(uint256 opId, Call[] calldata calls, uint256 deadline, bytes calldata signatures)
        external;

    /// @notice Anyone: runs Ready operation `opId`. Reverts (and leaves it Ready) when a call fails.
    /// Emits {OperationExecuted}.
    function execute(uint256 opId, Call[] calldata calls) external payable;

    /// @notice Anyone: runs `calls` at once with enough EIP-712 signatures, when their class has no delay
    /// (and no delay floor applies). Marks `nonce` used. Emits {SignedOperationExecuted}.
    /// @param signatures Entries packed one after the other, in strictly ascending order of their signers:
    /// `v ‖ r ‖ s` (a 65-byte ECDSA signature with v, 27 or 28, moved first), `0x00 ‖ r ‖ yParityAndS` (an ERC-2098
    /// 64-byte signature), or `0x01 ‖ signer (20 bytes) ‖ length (2 bytes) ‖ signature` for an ERC-1271 contract
    /// signer such as a Safe. An ECDSA entry's signer is the address it recovers to; s must be low (EIP-2).
    function executeSignedCalls(Call[] calldata calls, uint256 nonce, uint256 deadline, bytes calldata signatures)
        external
        payable;

    /// @notice The proposer, or a guardian of any class of the operation (never for recovery), cancels it.
    /// Emits {OperationCancelled}.
    function cancel(uint256 opId) external;

    /// @notice An agent runs `calls` alone: every call must be in its scope and the total spend within its
    /// allowance, charged only when every call succeeds. Emits {AgentExecuted}.
    function agentExecute(Call[] calldata calls) external payable;

    /// @notice Anyone: drops expired and stale operations from `proposer`'s pending list.
    function prunePending(address proposer) external;

    // ------------------------------------------------------------------ self-calls (through an operation)

    /// @notice Stores `policy` as new content and activates it as the next version. Emits {PolicyStored} and {PolicyChanged}.
    function setPolicy(PolicySpec calldata policy) external;

    /// @notice Activates the content of earlier version `version` as the next version. Emits {PolicyChanged}.
    function restoreVersion(uint64 version) external;

    /// @notice Gives `agent` a role over the classes in `classMask` of the active content. Emits {AgentGranted}.
    function grantAgent(address agent, uint16 classMask, uint128 maxAllowance, uint32 period, uint40 expiresAt)
        external;

    /// @notice Removes `agent`'s role. Emits {AgentRevoked}.
    function revokeAgent(address agent) external;

    // ------------------------------------------------------------------ views

    /// @notice The EIP-712 digest signers sign to approve `calls` under `nonce`, `version` and `deadline`.
    function operationDigest(Call[] calldata calls, uint256 nonce, uint64 version, uint256 deadline)
        external
        view
        returns (bytes32);

    /// @notice The class the active policy gives `calls` (reverts like {propose} when denied), and the
    /// earliest time an operation proposed now could run regardless of approvals.
    function classOf(Call[] calldata calls) external view returns (uint8 classIndex, uint40 notBefore);

    /// @notice The derived state of operation `opId`.
    function state(uint256 opId) external view returns (OperationState);

    /// @notice Everything stored about operation `opId`.
    function getOperation(uint256 opId) external view returns (OperationView memory);

    /// @notice Ids of the operations `proposer` proposed that are pending (each proposer has its own list of at most
    /// MAX_PENDING; expired and stale ones stay listed until pruned).
    function pendingOperations(address proposer) external view returns (uint256[] memory);

    /// @notice Whether nonce `nonce` was used.
    function nonceUsed(uint256 nonce) external view returns (bool);

    /// @notice The active version, its content id and policy hash.
    function policyVersion() external view returns (uint64 version, uint32 contentId, bytes32 policyHash);

    /// @notice When version `version` became active and which content it uses.
    function versionInfo(uint64 version) external view returns (uint32 contentId, bytes32 policyHash, uint40 activatedAt);

    /// @notice Every signer and guardian of content `contentId`, deduplicated (at most MAX_MEMBERS).
    function members(uint32 contentId) external view returns (address[] memory);

    /// @notice Number of classes of content `contentId` (the recovery class is not counted).
    function classCount(uint32 contentId) external view returns (uint256);

    /// @notice Class `classIndex` of content `contentId`; `type(uint8).max` is the recovery class.
    function getClass(uint32 contentId, uint8 classIndex) external view returns (ClassView memory);

    /// @notice `agent`'s role, with its allowance refilled up to now.
    function getAgent(address agent) external view returns (AgentView memory);
}
