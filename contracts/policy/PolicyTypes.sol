// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

// Shared types of the PolicyAccount contracts: the policy as it is submitted (…Spec, calldata),
// the calls an operation makes, and the limits that keep every loop bounded.

/// @notice One call an operation makes. `target` may not be the zero address.
struct Call {
    address target;
    uint256 value;
    bytes data;
}

/// @notice How a condition compares its word (see {ConditionSubject}).
/// Eq..Ge compare the word, read as uint256, with `value`. InSet / NotInSet test the word against `set`.
/// AllInSet reads a dynamic array argument (subject `ArgField`, `field` 0: the array head word `arg` points to) and
/// needs it non-empty with every element in `set`: an empty array does not hold, because the functions it
/// guards read an empty list as "no restriction" (VmRegistry's `regions`: any region).
/// OwnedBy makes a view call `registry.<selector>(word)` and needs its first returned word to be this
/// account: `registry` is `address(uint160(value))`, or the call's target when `value` is 0; the selector is
/// `bytes4(set[0])`, or `getVm(uint256)` when `set` is empty.
enum ConditionOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    InSet,
    NotInSet,
    AllInSet,
    OwnedBy
}

/// @notice Which word of a call a condition reads.
/// Arg: argument head word `arg` (a static tuple's fields are consecutive head words:
/// `requestVm(address,bytes32,(uint32,uint32,uint32),uint256)` has vcpu at 2, memoryMiB at 3, diskGiB at 4,
/// deposit at 5). ArgField: head word `arg` is an offset to a dynamic tuple or array and the word read is its word
/// `field` (for an array, word 0 is the length and elements start at 1). CallValue: the ETH value the call sends
/// (`arg` and `field` 0; ops Eq..NotInSet). A call that sends ETH matches only a rule with a CallValue condition.
enum ConditionSubject {
    Arg,
    ArgField,
    CallValue
}

/// @notice A typed condition on a call: `subject` says which word it reads, `op` how it compares it.
struct ConditionSpec {
    ConditionOp op;
    uint8 arg;
    uint8 field;
    ConditionSubject subject;
    uint256 value;
    bytes32[] set;
}

/// @notice A rule matches calls to `target` (address(0) means this account) with `selector` whose arguments
/// meet every condition. `spendArg` (1-based; 0 = none) names the argument word an agent's allowance is
/// charged with. `actionTypeHash`, when non-zero, is the EIP-712 type hash signers see for a single call of
/// this rule, `Name(address target,uint256 value,<the function's static arguments>,uint256 nonce,uint64 policyVersion,uint256 deadline)`,
/// and `actionWords` is the number of argument words the call must have to use it.
struct RuleSpec {
    address target;
    bytes4 selector;
    uint8 spendArg;
    uint8 actionWords;
    bytes32 actionTypeHash;
    ConditionSpec[] conditions;
}

/// @notice An action class: the rules it matches, who approves (`threshold` of the sorted `signers`), how long an
/// operation waits after its last needed approval (`delay`), how long it may then be executed
/// (`expiryWindow`, also the time allowed to collect approvals) and who besides the proposer may cancel it.
struct ClassSpec {
    bytes32 name;
    address[] signers;
    uint8 threshold;
    uint32 delay;
    uint32 expiryWindow;
    address[] guardians;
    RuleSpec[] rules;
}

/// @notice A whole policy. `recovery` needs every one of its signers and a long delay; it is used only through
/// `proposeRecovery` and no policy change, guardian or agent can stop its operations.
struct PolicySpec {
    ClassSpec[] classes;
    ClassSpec recovery;
}

/// @notice Derived state of an operation (see {IPolicyAccount-state}).
/// Proposed: collecting approvals. Queued: approved, waiting for its eta. Ready: executable now.
/// Executed, Cancelled, Expired and Stale (the policy version changed; recovery operations never go stale) are terminal.
enum OperationState {
    None,
    Proposed,
    Queued,
    Ready,
    Executed,
    Cancelled,
    Expired,
    Stale
}

/// @notice Which bound a policy or a call exceeded (see {IPolicyAccount-PolicyAccountTooMany}).
enum Limit {
    Classes,
    Signers,
    Guardians,
    Rules,
    Conditions,
    SetValues,
    RulesPerSelector,
    Members,
    Calls,
    Pending,
    Delay,
    PolicyBytes,
    ExpiryWindow
}

/// @notice What is wrong with a policy's recovery class (see {IPolicyAccount-PolicyAccountInvalidRecovery}).
enum RecoveryProblem {
    ThresholdNotAllSigners,
    DelayTooShort,
    HasGuardians,
    RuleNotPolicyChange
}

/// @dev The class index of the recovery class, wherever a class index is given (getClass, OperationProposed, ...).
uint8 constant RECOVERY = type(uint8).max;

uint256 constant MAX_CLASSES = 12;
uint256 constant MAX_SIGNERS = 16;
uint256 constant MAX_GUARDIANS = 8;
uint256 constant MAX_RULES = 8;
uint256 constant MAX_CONDITIONS = 8;
uint256 constant MAX_SET = 16;
uint256 constant MAX_RULES_PER_SELECTOR = 8;
uint256 constant MAX_MEMBERS = 64;
uint256 constant MAX_CALLS = 8;
/// @dev Pending operations per proposer: each proposer has its own list, so nobody can crowd out another's
/// proposals (a policy change or a recovery included); a proposer frees its own slots by cancelling.
uint256 constant MAX_PENDING = 16;
uint256 constant MAX_DELAY = 90 days;
/// @dev The longest expiry window (approval window, and execution window after eta) a class may have: how long one
/// operation can stay pending.
uint256 constant MAX_EXPIRY_WINDOW = 30 days;
/// @dev A policy content is the code of one data contract (see PolicyContent): at most EIP-170's 24,576 bytes,
/// one of which is the leading STOP.
uint256 constant MAX_POLICY_BYTES = 24_575;
uint256 constant RECOVERY_MIN_DELAY = 3 days;
/// @dev AllInSet reads at most this many array elements; a longer array does not match.
uint256 constant MAX_ARRAY = 32;
/// @dev How many earlier versions a new operation is checked against for the delay floor (see docs/policy.md).
uint256 constant MAX_FLOOR_WALK = 4;
