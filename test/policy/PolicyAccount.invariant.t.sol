// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {CreditToken} from "../../contracts/CreditToken.sol";
import {PolicyAccount} from "../../contracts/policy/PolicyAccount.sol";
import {IPolicyAccount} from "../../contracts/policy/interfaces/IPolicyAccount.sol";
import {
    Call,
    ClassSpec,
    ConditionOp,
    ConditionSpec,
    ConditionSubject,
    OperationState,
    PolicySpec,
    RuleSpec
} from "../../contracts/policy/PolicyTypes.sol";

/// @dev Builds the policies the invariant campaign switches between: "pay" (token transfers up to a cap, tips of up
/// to 1 ETH and ETH-less pings to PAYEE, 2 of 3, `payDelay`), "change" (policy changes, 3 of 3, 10 minutes) and
/// recovery (3 of 3, 3 days).
abstract contract PolicyBuilder {
    uint256 internal constant CAP = 1_000e18;
    uint256 internal constant TIP_CAP = 1 ether;
    address internal constant PAYEE = address(0xBEEF);
    bytes4 internal constant TIP = bytes4(keccak256("tip()"));
    bytes4 internal constant PING = bytes4(keccak256("ping()"));

    function _sorted3(address a, address b, address c) internal pure returns (address[] memory s) {
        s = new address[](3);
        s[0] = a;
        s[1] = b;
        s[2] = c;
        for (uint256 i; i < 3; ++i) {
            for (uint256 j = i + 1; j < 3; ++j) {
                if (s[j] < s[i]) (s[i], s[j]) = (s[j], s[i]);
            }
        }
    }

    function _policy(address token, address[] memory signers, address guardian, uint32 payDelay)
        internal
        pure
        returns (PolicySpec memory p)
    {
        p.classes = new ClassSpec[](2);
        ConditionSpec[] memory cap = new ConditionSpec[](1);
        cap[0] = ConditionSpec(ConditionOp.Le, 1, 0, ConditionSubject.Arg, CAP, new bytes32[](0));
        ConditionSpec[] memory tipCap = new ConditionSpec[](1);
        tipCap[0] = ConditionSpec(ConditionOp.Le, 0, 0, ConditionSubject.CallValue, TIP_CAP, new bytes32[](0));
        RuleSpec[] memory payRules = new RuleSpec[](3);
        payRules[0] = RuleSpec(token, bytes4(keccak256("transfer(address,uint256)")), 2, 0, bytes32(0), cap);
        payRules[1] = RuleSpec(PAYEE, TIP, 0, 0, bytes32(0), tipCap);
        payRules[2] = RuleSpec(PAYEE, PING, 0, 0, bytes32(0), new ConditionSpec[](0));
        address[] memory guardians = new address[](1);
        guardians[0] = guardian;
        p.classes[0] = ClassSpec("pay", signers, 2, payDelay, 1 days, guardians, payRules);
        RuleSpec[] memory changeRules = new RuleSpec[](2);
        changeRules[0] =
            RuleSpec(address(0), IPolicyAccount.setPolicy.selector, 0, 0, bytes32(0), new ConditionSpec[](0));
        changeRules[1] =
            RuleSpec(address(0), IPolicyAccount.restoreVersion.selector, 0, 0, bytes32(0), new ConditionSpec[](0));
        p.classes[1] = ClassSpec("change", signers, 3, 10 minutes, 1 days, new address[](0), changeRules);
        p.recovery = ClassSpec("recovery", signers, 3, 3 days, 3 days, new address[](0), changeRules);
    }
}

/// @dev Drives a PolicyAccount through proposals, on-chain and signed approvals (valid and forged), executions,
/// cancellations, policy changes and agent spending, and asserts the per-step properties as it goes.
contract PolicyAccountHandler is Test, PolicyBuilder {
    PolicyAccount internal immutable account;
    CreditToken internal immutable token;
    uint256[3] internal keys;
    address[3] internal members;
    address[] internal sorted;
    uint256 internal immutable outsiderKey;
    address internal immutable guardian;
    address internal immutable agent;

    uint256 internal nextNonce = 1;
    uint256[] public ops;
    uint256 internal constant MAX_OPS = 24;
    mapping(uint256 opId => OperationState) public terminal;
    mapping(uint256 opId => uint40) public firstEta;
    mapping(bytes32 what => uint256) public calls;

    /// @dev Version changes: when, and the pay delay in force before.
    uint40[] internal changedAt;
    uint32[] internal delayBefore;
    uint32 public payDelay;

    constructor(PolicyAccount account_, CreditToken token_, uint256[3] memory keys_, uint256 outsiderKey_, address guardian_, address agent_, uint32 payDelay_) {
        account = account_;
        token = token_;
        keys = keys_;
        for (uint256 i; i < 3; ++i) members[i] = vm.addr(keys_[i]);
        address[] memory s = _sorted3(members[0], members[1], members[2]);
        for (uint256 i; i < 3; ++i) sorted.push(s[i]);
        outsiderKey = outsiderKey_;
        guardian = guardian_;
        agent = agent_;
        payDelay = payDelay_;
        clock = vm.getBlockTimestamp();
    }

    /// @dev The campaign's clock: each call starts from the block environment of setUp, so time is kept here.
    uint256 public clock;

    modifier timed() {
        if (clock < vm.getBlockTimestamp()) clock = vm.getBlockTimestamp();
        vm.warp(clock);
        _;
        clock = vm.getBlockTimestamp();
    }

    function opCount() external view returns (uint256) {
        return ops.length;
    }

    // ------------------------------------------------------------------ actions

    function warp(uint256 seconds_) external timed {
        vm.warp(vm.getBlockTimestamp() + bound(seconds_, 1, 2 hours));
    }

    function propose(uint256 who, uint256 amount) external timed {
        if (ops.length >= MAX_OPS) return;
        uint256 nonce = nextNonce++;
        Call[] memory c = _pay(nonce + amount % 2);
        // Even amounts propose what execute passes again; odd ones never match (CallsMismatch paths).
        vm.prank(members[who % 3]);
        try account.propose(c, nonce) {
            ops.push(nonce);
            calls["propose"]++;
        } catch {}
    }

    function approve(uint256 who, uint256 opSeed) external timed {
        if (ops.length == 0) return;
        uint256 opId = ops[opSeed % ops.length];
        vm.prank(members[who % 3]);
        try account.approve(opId) {
            calls["approve"]++;
        } catch {}
        _noteEta(opId);
    }

    function cancel(uint256 who, uint256 opSeed) external timed {
        if (ops.length == 0) return;
        uint256 opId = ops[opSeed % ops.length];
        address by = who % 4 == 3 ? guardian : members[who % 3];
        vm.prank(by);
        try account.cancel(opId) {
            terminal[opId] = OperationState.Cancelled;
            calls["cancel"]++;
        } catch {}
    }

    /// @dev `when` may first move time to the edges of a queued operation's window (a second before its eta, its
    /// eta, a second before its expiry, its expiry) or anywhere up to an hour past its eta: random warps alone
    /// rarely land on an edge, and an off-by-one there is exactly what the window checks must catch.
    function execute(uint256 opSeed, uint256 when) external timed {
        if (ops.length == 0) return;
        uint256 opId = ops[opSeed % ops.length];
        IPolicyAccount.OperationView memory before = account.getOperation(opId);
        uint256 now_ = vm.getBlockTimestamp();
        if (before.eta > now_) {
            uint256[5] memory moments =
                [uint256(before.eta) - 1, before.eta, uint256(before.expiresAt) - 1, before.expiresAt, _bound(when >> 3, now_, uint256(before.eta) + 1 hours)];
            if (when % 8 < 5) vm.warp(moments[when % 8]);
        }
        Call[] memory c = _pay(opId);
        try account.execute(opId, c) {
            // executed only in [eta, expiresAt), with at least M distinct approvals of class signers
            assertGt(before.eta, 0, "executed unqueued");
            assertGe(vm.getBlockTimestamp(), before.eta, "executed before eta");
            assertLt(vm.getBlockTimestamp(), before.expiresAt, "executed after expiry");
            assertGe(_popcount(before.approvals), before.threshold, "executed with fewer than M approvals");
            assertEq(before.approvals >> 3, 0, "approval of a non-signer");
            terminal[opId] = OperationState.Executed;
            calls["execute"]++;
        } catch {}
    }

    /// @dev One-shot with `mask` choosing among the three members and the outsider; some signatures forged.
    function executeSigned(uint256 mask, uint256 amount, uint256 forge) external timed {
        Call[] memory c = _pay(amount);
        uint256 nonce = nextNonce++;
        (uint64 version,,) = account.policyVersion();
        bytes32 digest = account.operationDigest(c, nonce, version, type(uint40).max);
        (bytes memory sigs, uint256 valid) = _sign(digest, mask, forge);
        try account.executeSignedCalls(c, nonce, type(uint40).max, sigs) {
            assertGe(valid, 2, "signed execution with fewer than M valid signatures");
            // no faster than any delay in force before a recent change
            for (uint256 i; i < changedAt.length; ++i) {
                assertGe(vm.getBlockTimestamp(), uint256(changedAt[i]) + delayBefore[i], "shortened delay applied early");
            }
            assertEq(payDelay, 0, "signed execution of a delayed class");
            calls["executeSigned"]++;
        } catch {}
    }

    function approveSigned(uint256 opSeed, uint256 mask, uint256 forge) external timed {
        if (ops.length == 0) return;
        uint256 opId = ops[opSeed % ops.length];
        IPolicyAccount.OperationView memory op = account.getOperation(opId);
        Call[] memory c = _pay(opId);
        bytes32 digest = account.operationDigest(c, opId, op.version, type(uint40).max);
        (bytes memory sigs,) = _sign(digest, mask, forge);
        try account.approveWithSignatures(opId, c, type(uint40).max, sigs) {
            calls["approveSigned"]++;
        } catch {}
        _noteEta(opId);
    }

    /// @dev A policy change through the change class: the pay delay becomes 0, 1 h or 2 h.
    function changePolicy(uint256 delaySeed) external timed {
        uint32 newDelay = uint32([uint256(0), 1 hours, 2 hours][delaySeed % 3]);
        Call[] memory c = new Call[](1);
        c[0] = Call(
            address(account),
            0,
            abi.encodeCall(IPolicyAccount.setPolicy, (_policy(address(token), sorted, guardian, newDelay)))
        );
        uint256 nonce = nextNonce++;
        // Members 0 and 1 share at most MAX_OPS proposals (member 2 floods): one of them has room.
        uint256 p = account.pendingOperations(members[0]).length < 16 ? 0 : 1;
        vm.prank(members[p]);
        account.propose(c, nonce);
        vm.prank(members[(p + 1) % 3]);
        account.approve(nonce);
        vm.prank(members[(p + 2) % 3]);
        account.approve(nonce);
        // 10 minutes, or later when a recent change's delay floor (or the coarse floor after
        // MAX_FLOOR_WALK quick changes) still applies
        uint40 eta = account.getOperation(nonce).eta;
        assertGe(eta, vm.getBlockTimestamp() + 10 minutes, "policy change faster than its class delay");
        vm.warp(eta);
        account.execute(nonce, c);
        changedAt.push(uint40(vm.getBlockTimestamp()));
        delayBefore.push(payDelay);
        payDelay = newDelay;
        calls["changePolicy"]++;
    }

    /// @dev The agent transfers tokens, tips PAYEE (ETH, with a value condition) or pings it with ETH (a rule without
    /// a value condition, which must not let ETH leave); every success moves at most what its allowance held.
    function agentSpend(uint256 amount, uint256 kind) external timed {
        Call[] memory c = new Call[](1);
        uint256 value;
        if (kind % 3 == 0) {
            amount = bound(amount, 1, 400e18);
            c[0] = Call(address(token), 0, abi.encodeCall(token.transfer, (PAYEE, amount)));
        } else {
            value = bound(amount, 1, 2 ether);
            amount = 0;
            c[0] = Call(PAYEE, value, abi.encodeWithSelector(kind % 3 == 1 ? TIP : PING));
        }
        uint256 available = account.getAgent(agent).available;
        vm.prank(agent);
        try account.agentExecute(c) {
            assertLe(amount + value, available, "agent moved more than its allowance");
            assertTrue(value == 0 || kind % 3 == 1, "ETH left along a rule without a value condition");
            assertLe(value, TIP_CAP, "ETH above the value condition");
            agentMoved += amount + value;
            calls["agentSpend"]++;
        } catch {}
    }

    /// @dev Member 2 proposes up to `count` operations (never executed: they sit until they expire), as a signer
    /// trying to fill the pending list would.
    function flood(uint256 count) external timed {
        count = bound(count, 1, 20);
        for (uint256 i; i < count; ++i) {
            uint256 nonce = nextNonce++;
            vm.prank(members[2]);
            try account.propose(_pay(nonce), nonce) {
                calls["flood"]++;
            } catch {}
        }
    }

    /// @dev What the agent moved in total (tokens and wei alike, as its allowance counts them).
    uint256 public agentMoved;

    // ------------------------------------------------------------------ helpers

    /// @dev The calls of proposal `opId` (amount derived from the id) or, for others, any amount.
    /// @dev The transfer an operation proposed with nonce `seed` (an even amount in {propose}) carries.
    function _pay(uint256 seed) internal view returns (Call[] memory c) {
        c = new Call[](1);
        c[0] = Call(address(token), 0, abi.encodeCall(token.transfer, (address(0xCAFE), 1 + seed % 10e18)));
    }

    function _noteEta(uint256 opId) internal {
        uint40 eta = account.getOperation(opId).eta;
        if (eta != 0 && firstEta[opId] == 0) firstEta[opId] = eta;
    }

    /// @dev Packed signatures (`v ‖ r ‖ s` each) of the members chosen by `mask` (bit 3: the outsider), in signer
    /// order; `forge` bits corrupt some.
    function _sign(bytes32 digest, uint256 mask, uint256 forge) internal view returns (bytes memory sigs, uint256 valid) {
        uint256[4] memory ks = [keys[0], keys[1], keys[2], outsiderKey];
        uint256[4] memory chosen;
        uint256 n;
        for (uint256 i; i < 4; ++i) {
            if ((mask >> i) & 1 == 1) chosen[n++] = i;
        }
        for (uint256 i; i < n; ++i) {
            for (uint256 j = i + 1; j < n; ++j) {
                if (vm.addr(ks[chosen[j]]) < vm.addr(ks[chosen[i]])) (chosen[i], chosen[j]) = (chosen[j], chosen[i]);
            }
        }
        for (uint256 x; x < n; ++x) {
            uint256 i = chosen[x];
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(ks[i], digest);
            bool forged = (forge >> i) & 1 == 1;
            if (forged) r = bytes32(uint256(r) ^ 1);
            sigs = abi.encodePacked(sigs, v, r, s);
            if (i < 3 && !forged) valid++;
        }
    }

    function _popcount(uint256 x) internal pure returns (uint256 n) {
        for (; x != 0; x &= x - 1) ++n;
    }
}

contract PolicyAccountInvariantTest is Test, PolicyBuilder {
    PolicyAccount internal account;
    CreditToken internal token;
    PolicyAccountHandler internal handler;
    address internal agent = makeAddr("agent");
    uint128 internal constant AGENT_MAX = 500e18;
    uint256 internal grantedAt;
    uint256 internal constant AGENT_PERIOD = 1 hours;

    function setUp() public {
        uint256[3] memory keys = [uint256(0xA11CE), 0xB0B, 0xCA401];
        address[] memory signers = _sorted3(vm.addr(keys[0]), vm.addr(keys[1]), vm.addr(keys[2]));
        address guardian = makeAddr("guardian");
        token = new CreditToken(address(this), 1e27);
        account = new PolicyAccount(address(this));
        account.initialize(_policy(address(token), signers, guardian, 1 hours));
        token.transfer(address(account), 1e24);
        vm.deal(address(account), 100 ether);
        _grantAgent(signers);
        handler = new PolicyAccountHandler(account, token, keys, 0xBAD, guardian, agent, 1 hours);
        targetContract(address(handler));
    }

    /// @dev Grants the agent the pay class with a 500-token allowance per hour (through the change class).
    function _grantAgent(address[] memory signers) internal {
        grantedAt = vm.getBlockTimestamp();
        // The example change class does not cover grantAgent; use a policy that does, then go back to version 1.
        PolicySpec memory p = _policy(address(token), signers, makeAddr("guardian"), 1 hours);
        p.classes[1].rules = new RuleSpec[](3);
        p.classes[1].rules[0] = p.recovery.rules[0];
        p.classes[1].rules[1] = p.recovery.rules[1];
        p.classes[1].rules[2] =
            RuleSpec(address(0), IPolicyAccount.grantAgent.selector, 0, 0, bytes32(0), new ConditionSpec[](0));
        Call[] memory c = new Call[](3);
        c[0] = Call(address(account), 0, abi.encodeCall(IPolicyAccount.setPolicy, (p)));
        c[1] = Call(address(account), 0, abi.encodeCall(IPolicyAccount.grantAgent, (agent, 1, AGENT_MAX, 1 hours, type(uint40).max)));
        // grantAgent is matched under the version the batch was proposed in: run it in two steps.
        Call[] memory first = new Call[](1);
        first[0] = c[0];
        _runChange(signers, first, 1);
        Call[] memory second = new Call[](1);
        second[0] = c[1];
        _runChange(signers, second, 2);
        // The agent is bound to this content; it stays active as long as the policy is this content.
    }

    function _runChange(address[] memory signers, Call[] memory c, uint256 nonce) internal {
        vm.prank(signers[0]);
        account.propose(c, nonce + 1e30);
        vm.prank(signers[1]);
        account.approve(nonce + 1e30);
        vm.prank(signers[2]);
        account.approve(nonce + 1e30);
        vm.warp(vm.getBlockTimestamp() + 10 minutes);
        account.execute(nonce + 1e30, c);
    }

    /// One campaign checks every property after each call. Runs and depth come from the test profile in
    /// hardhat.config.ts (CI: 256 runs; bench: 10,000).
    function invariant_policyHolds() public {
        vm.warp(handler.clock() > vm.getBlockTimestamp() ? handler.clock() : vm.getBlockTimestamp());
        _checkThresholds();
        _checkTerminalStaysTerminal();
        _checkEtaNeverMovesEarlier();
        IPolicyAccount.AgentView memory a = account.getAgent(agent);
        assertLe(a.available, a.maxAllowance, "allowance above its maximum");
        _checkAgentWithinAllowance();
        _checkPolicyChangeProposable();
    }

    /// An agent never moves more than its allowance granted in total: the first full allowance plus the refill
    /// since, tokens and ETH value together.
    function _checkAgentWithinAllowance() internal view {
        uint256 refill = (vm.getBlockTimestamp() - grantedAt) * AGENT_MAX / AGENT_PERIOD;
        assertLe(handler.agentMoved(), AGENT_MAX + refill, "agent moved more than its allowance");
    }

    /// Every signer of the change class can propose a policy change, whatever the others proposed: at worst after cancelling its own
    /// pending operations (on a snapshot, so the campaign's state is not changed).
    function _checkPolicyChangeProposable() internal {
        (, uint32 contentId,) = account.policyVersion();
        address[] memory list = account.getClass(contentId, 1).signers; // the change class
        for (uint256 m; m < list.length; ++m) {
            uint256 snapshot = vm.snapshotState();
            uint256[] memory mine = account.pendingOperations(list[m]);
            for (uint256 i; i < mine.length; ++i) {
                OperationState s = account.state(mine[i]);
                if (s != OperationState.Proposed && s != OperationState.Queued && s != OperationState.Ready) continue;
                vm.prank(list[m]);
                account.cancel(mine[i]);
            }
            Call[] memory c = new Call[](1);
            c[0] = Call(address(account), 0, abi.encodeCall(IPolicyAccount.restoreVersion, (1)));
            vm.prank(list[m]);
            account.propose(c, type(uint256).max - m);
            vm.revertToState(snapshot);
        }
    }

    /// 0 < M <= signers for every class of the active content, recovery included.
    function _checkThresholds() internal view {
        (, uint32 contentId,) = account.policyVersion();
        uint256 n = account.classCount(contentId);
        for (uint256 i; i <= n; ++i) {
            uint8 index = i == n ? type(uint8).max : uint8(i);
            IPolicyAccount.ClassView memory c = account.getClass(contentId, index);
            assertGt(c.threshold, 0, "threshold 0");
            assertLe(c.threshold, c.signers.length, "threshold above signers");
        }
    }

    /// Executed, cancelled and expired operations stay so.
    function _checkTerminalStaysTerminal() internal view {
        uint256 n = handler.opCount();
        for (uint256 i; i < n; ++i) {
            uint256 opId = handler.ops(i);
            OperationState recorded = handler.terminal(opId);
            OperationState now_ = account.state(opId);
            if (recorded != OperationState.None) assertEq(uint8(now_), uint8(recorded), "terminal state changed");
            if (now_ == OperationState.Executed) assertEq(uint8(recorded), uint8(OperationState.Executed), "executed unseen");
        }
    }

    /// A queued operation's eta never moves earlier (a policy change never speeds up an operation in flight).
    function _checkEtaNeverMovesEarlier() internal view {
        uint256 n = handler.opCount();
        for (uint256 i; i < n; ++i) {
            uint256 opId = handler.ops(i);
            uint40 first = handler.firstEta(opId);
            if (first != 0) assertEq(account.getOperation(opId).eta, first, "eta changed");
        }
    }

    function test_handlerReachesEveryAction() public {
        handler.propose(0, 4);
        handler.approve(1, 0);
        handler.warp(2 hours);
        handler.execute(0, 0);
        handler.agentSpend(10e18, 0);
        handler.agentSpend(0.5 ether, 1);
        handler.agentSpend(0.5 ether, 2); // refused: no value condition on ping
        handler.flood(20);
        handler.changePolicy(0);
        handler.executeSigned(3, 5, 0); // refused: the old 1 h pay delay still applies
        handler.warp(2 hours);
        handler.executeSigned(3, 5, 0);
        assertEq(handler.calls("agentSpend"), 2);
        assertEq(handler.calls("flood"), 16); // one proposer's own list is full; the others' are not
        invariant_policyHolds();
        assertEq(handler.calls("execute"), 1);
        assertEq(handler.calls("executeSigned"), 1);
    }
}
