// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {CreditToken} from "../../contracts/CreditToken.sol";
import {ProviderRegistry} from "../../contracts/ProviderRegistry.sol";
import {VmRegistry} from "../../contracts/VmRegistry.sol";
import {IVmRegistry, VmState} from "../../contracts/interfaces/IVmRegistry.sol";
import {IProviderRegistry} from "../../contracts/interfaces/IProviderRegistry.sol";
import {Resources, Prices} from "../../contracts/types/Resources.sol";

/// @dev Random marketplace actions by three tenants and three providers (two regions, small capacity so that
/// capacity checks bite), with time jumps and governance changing the fee and slash share. Calls that the
/// contracts may refuse (capacity, stake, region, timing) are made with try/catch: a refused call changes nothing.
contract MarketHandler is Test {
    VmRegistry internal immutable vms;
    ProviderRegistry internal immutable providers;
    CreditToken internal immutable token;
    address[3] internal tenants;
    address[3] internal owners;
    address[3] internal operators;
    address internal immutable governance;

    bytes32 internal constant MANIFEST = keccak256("m");
    bytes32 internal constant EU = "eu-west-1";
    bytes32 internal constant US = "us-east-2";

    uint256 public withdrawnEarnings;
    uint256 public withdrawnFees;
    uint256 public slashes;
    mapping(uint256 vmId => VmState) public terminalState;
    /// The most the tenant said it pays per second for each VM (the request's or the order's maximum).
    mapping(uint256 vmId => uint256) public maxPriceOf;
    /// Slashes of one provider in its current slash period, and the most it had at stake during that period.
    mapping(address provider => uint64) internal _periodEndsAt;
    mapping(address provider => uint256) public slashedInPeriod;
    mapping(address provider => uint256) public atStakeInPeriod;
    mapping(bytes32 action => uint256) public calls;

    constructor(
        VmRegistry vms_,
        ProviderRegistry providers_,
        CreditToken token_,
        address[3] memory tenants_,
        address[3] memory owners_,
        address[3] memory operators_
    ) {
        vms = vms_;
        providers = providers_;
        token = token_;
        tenants = tenants_;
        owners = owners_;
        operators = operators_;
        governance = msg.sender;
    }

    // ------------------------------------------------------------ helpers

    function _vm(uint256 seed) internal view returns (uint256 vmId, IVmRegistry.VmView memory v) {
        uint256 n = vms.vmCount();
        if (n == 0) return (0, v);
        vmId = 1 + seed % n;
        v = vms.getVm(vmId);
    }

    function _resources(uint256 seed) internal pure returns (Resources memory) {
        return Resources(uint32(1 + seed % 3), uint32(1 + (seed >> 8) % 64), uint32(1 + (seed >> 16) % 8));
    }

    function _regions(uint256 seed) internal pure returns (bytes32[] memory r) {
        uint256 k = seed % 3;
        if (k == 0) return r;
        r = new bytes32[](1);
        r[0] = k == 1 ? EU : US;
    }

    function _operatorOf(address provider) internal view returns (address) {
        return providers.operatorOf(provider);
    }

    function _recordTerminal(uint256 vmId) internal {
        VmState s = vms.getVm(vmId).state;
        if (s == VmState.Failed || s == VmState.Terminated) terminalState[vmId] = s;
    }

    // ------------------------------------------------------------ actions

    function warp(uint256 s) external {
        vm.warp(block.timestamp + bound(s, 1, 2 days));
    }

    function request(uint256 t, uint256 p, uint256 r, uint256 deposit) external {
        if (vms.vmCount() >= 24) return;
        uint256 maxPrice = bound(r >> 128, 0, 200);
        vm.prank(tenants[t % 3]);
        try vms.requestVm(owners[p % 3], MANIFEST, _resources(r), maxPrice, bound(deposit, 1, 1e9)) returns (uint256 id) {
            maxPriceOf[id] = maxPrice;
            calls["request"]++;
        } catch {}
    }

    function openOrder(uint256 t, uint256 r, uint256 maxPrice, uint256 deposit) external {
        if (vms.vmCount() >= 24) return;
        maxPrice = bound(maxPrice, 0, 200);
        vm.prank(tenants[t % 3]);
        uint256 id = vms.openOrder(MANIFEST, _resources(r), _regions(r >> 32), maxPrice, bound(deposit, 1, 1e9));
        maxPriceOf[id] = maxPrice;
        calls["openOrder"]++;
    }

    function bid(uint256 seed, uint256 p, uint256 price) external {
        (uint256 vmId, IVmRegistry.VmView memory v) = _vm(seed);
        if (v.state != VmState.Bidding) return;
        vm.prank(operators[p % 3]);
        try vms.bid(vmId, bound(price, 0, v.pricePerSecond)) {
            calls["bid"]++;
        } catch {}
    }

    function award(uint256 seed) external {
        (uint256 vmId, IVmRegistry.VmView memory v) = _vm(seed);
        if (v.state != VmState.Bidding) return;
        try vms.award(vmId) {
            calls["award"]++;
        } catch {}
    }

    function acceptBid(uint256 seed, uint256 index) external {
        (uint256 vmId, IVmRegistry.VmView memory v) = _vm(seed);
        if (v.state != VmState.Bidding || v.bidCount == 0) return;
        index %= v.bidCount;
        address provider = vms.getBids(vmId)[index].provider;
        vm.prank(v.owner);
        try vms.acceptBid(vmId, index, provider) {
            calls["acceptBid"]++;
        } catch {}
    }

    function report(uint256 seed, uint256 what) external {
        (uint256 vmId, IVmRegistry.VmView memory v) = _vm(seed);
        if (v.provider == address(0)) return;
        address op = _operatorOf(v.provider);
        // Past the provisioning deadline only expiry applies (the reports revert; see Audit.test.ts).
        bool late = (v.state == VmState.Requested || v.state == VmState.Provisioning)
            && block.timestamp > v.provisioningDeadline;
        if (late) return;
        vm.startPrank(op);
        if (what % 4 == 0 && v.state == VmState.Requested) vms.reportProvisioning(vmId);
        else if (
            what % 4 == 1
                && (v.state == VmState.Requested || v.state == VmState.Provisioning || v.state == VmState.Starting)
        ) vms.reportRunning(vmId);
        else if (
            what % 4 == 2
                && (v.state == VmState.Requested || v.state == VmState.Provisioning || v.state == VmState.Starting
                    || v.state == VmState.Running || v.state == VmState.Suspended)
        ) vms.reportFailed(vmId, uint8(1 + (what >> 8) % 200));
        else if (what % 4 == 3 && v.reclaimAt == 0 && v.state != VmState.Failed && v.state != VmState.Terminated) {
            vms.reclaimVm(vmId);
        }
        vm.stopPrank();
        calls["report"]++;
        _recordTerminal(vmId);
    }

    function owner(uint256 seed, uint256 what, uint256 amount) external {
        (uint256 vmId, IVmRegistry.VmView memory v) = _vm(seed);
        if (vmId == 0 || v.state == VmState.Failed || v.state == VmState.Terminated) return;
        vm.startPrank(v.owner);
        uint256 w = what % 5;
        if (w == 0 && v.state == VmState.Running) {
            vms.stopVm(vmId);
        } else if (w == 1 && v.state == VmState.Stopped) {
            vms.startVm(vmId);
        } else if (w == 2 && (what >> 8) % 3 == 0) {
            uint256 before = token.balanceOf(v.owner);
            vms.terminateVm(vmId);
            assertEq(token.balanceOf(v.owner) - before, v.balance, "terminate refunds the viewed balance");
        } else if (w == 3) {
            if (v.state == VmState.Suspended && block.timestamp >= v.suspendedAt + 1 days) {
                vm.stopPrank();
                return;
            }
            vms.topUp(vmId, bound(amount, 1, 1e9));
        } else if (w == 4 && v.state != VmState.Bidding && vms.vmCount() < 24) {
            address to = (what >> 16) % 4 == 3 ? address(0) : owners[(what >> 16) % 3];
            try vms.migrateVm(vmId, to, _regions(what >> 24), 100, bound(amount, 1, 1e9)) returns (uint256 id) {
                maxPriceOf[id] = 100;
            } catch {}
        }
        vm.stopPrank();
        calls["owner"]++;
        _recordTerminal(vmId);
    }

    function anyone(uint256 seed, uint256 what) external {
        (uint256 vmId,) = _vm(seed);
        if (vmId == 0) return;
        uint256 w = what % 3;
        if (w == 0) {
            vms.settle(vmId);
        } else if (w == 1) {
            try vms.closeVm(vmId) {
                calls["close"]++;
            } catch {}
        } else {
            IVmRegistry.VmView memory v = vms.getVm(vmId);
            if (v.state != VmState.Requested && v.state != VmState.Provisioning) return;
            if (block.timestamp <= v.provisioningDeadline) return;
            IProviderRegistry.Provider memory p = providers.getProvider(v.provider);
            (uint256 budgetLeft, uint64 periodEndsAt) = providers.slashBudget(v.provider);
            if (periodEndsAt != _periodEndsAt[v.provider]) {
                // A new slash period: the provider's budget starts again.
                slashedInPeriod[v.provider] = 0;
                atStakeInPeriod[v.provider] = 0;
            }
            uint256 atStake = p.stake + p.unstaking + slashedInPeriod[v.provider];
            if (atStake > atStakeInPeriod[v.provider]) atStakeInPeriod[v.provider] = atStake;
            uint256 perLease = v.deposit * providers.parameters().slashBps / 10_000;
            uint256 before = token.balanceOf(address(providers));
            uint256 tenantBefore = token.balanceOf(v.owner);
            vms.expireVm(vmId);
            uint256 slashed = before - token.balanceOf(address(providers));
            assertLe(slashed, v.deposit * providers.MAX_SLASH_BPS() / 10_000, "slash above its per-lease cap");
            assertEq(slashed, perLease < budgetLeft ? perLease : budgetLeft, "slash is min(lease share, budget left)");
            assertLe(token.balanceOf(v.owner) - tenantBefore - v.balance, v.deposit, "tenant wins more than it escrowed");
            (, _periodEndsAt[v.provider]) = providers.slashBudget(v.provider);
            slashedInPeriod[v.provider] += slashed;
            assertLe(
                slashedInPeriod[v.provider],
                atStakeInPeriod[v.provider] * providers.MAX_SLASH_BPS() / 10_000,
                "slashes in one period above the provider's budget"
            );
            slashes++;
        }
        _recordTerminal(vmId);
    }

    function providerAction(uint256 p, uint256 what, uint256 amount) external {
        address who = owners[p % 3];
        vm.startPrank(who);
        uint256 w = what % 4;
        if (w == 0) {
            uint256 earned = vms.earningsOf(who);
            if (earned != 0) {
                vms.withdrawEarnings();
                withdrawnEarnings += earned;
            }
        } else if (w == 1) {
            providers.addStake(bound(amount, 1, 1_000e18));
        } else if (w == 2) {
            try providers.requestUnstake(bound(amount, 1, 2_000e18)) {} catch {}
        } else {
            try providers.withdrawStake() {} catch {}
        }
        vm.stopPrank();
        calls["provider"]++;
    }

    function fees() external {
        uint256 accrued = vms.feesAccrued();
        if (accrued == 0) return;
        vms.withdrawFees();
        withdrawnFees += accrued;
    }

    function govern(uint256 fee, uint256 slash) external {
        IVmRegistry.Parameters memory p = vms.parameters();
        p.feeBps = uint16(bound(fee, 0, 1_000));
        vm.prank(governance);
        vms.setParameters(p);
        IProviderRegistry.Parameters memory q = providers.parameters();
        q.slashBps = uint16(bound(slash, 0, 5_000));
        vm.prank(governance);
        providers.setParameters(q);
    }
}

contract MarketplaceInvariantTest is Test {
    CreditToken internal token;
    ProviderRegistry internal providers;
    VmRegistry internal vms;
    MarketHandler internal handler;
    address[3] internal tenants = [makeAddr("t0"), makeAddr("t1"), makeAddr("t2")];
    address[3] internal owners = [makeAddr("p0"), makeAddr("p1"), makeAddr("p2")];
    address[3] internal operators = [makeAddr("o0"), makeAddr("o1"), makeAddr("o2")];
    address internal treasury = makeAddr("treasury");
    uint256 internal supplyOutside;

    function setUp() public {
        vm.warp(1_700_000_000);
        token = new CreditToken(address(this), 1e30);
        providers = new ProviderRegistry(
            token, address(this), IProviderRegistry.Parameters({minimumStake: 1_000e18, thawPeriod: 1 days, slashBps: 1_000})
        );
        vms = new VmRegistry(
            token,
            providers,
            address(this),
            IVmRegistry.Parameters({
                treasury: treasury,
                feeBps: 100,
                bidWindow: 5 minutes,
                provisioningTimeout: 1 hours,
                gracePeriod: 1 days,
                lowBalanceHorizon: 1 hours,
                exitNotice: 1 days
            })
        );
        providers.bindVmRegistry(vms);
        bytes32[3] memory regions = [bytes32("eu-west-1"), bytes32("eu-west-1"), bytes32("us-east-2")];
        for (uint256 i; i < 3; ++i) {
            token.transfer(owners[i], 10_000e18);
            vm.startPrank(owners[i]);
            token.approve(address(providers), type(uint256).max);
            providers.register(
                operators[i],
                regions[i],
                Resources(6, 256, 32),
                Prices({perVcpuSecond: uint64(1 + i), perMemoryMiBSecond: 0, perDiskGiBSecond: 1}),
                "",
                1_000e18
            );
            vm.stopPrank();
            vm.prank(operators[i]);
            providers.acceptOperator(owners[i]);
            token.transfer(tenants[i], 1e24);
            vm.prank(tenants[i]);
            token.approve(address(vms), type(uint256).max);
        }
        handler = new MarketHandler(vms, providers, token, tenants, owners, operators);
        targetContract(address(handler));
        supplyOutside = token.balanceOf(address(this));
    }

    /// Runs and depth come from the test profile in hardhat.config.ts (CI: 256 runs; bench: 10,000).
    function invariant_marketplace() public {
        uint256 n = vms.vmCount();
        uint256 kept;
        for (uint256 id = 1; id <= n; ++id) {
            IVmRegistry.VmView memory v = vms.getVm(id);
            assertEq(v.deposit, v.balance + v.paid + v.fee + v.refunded, "deposit == balance + paid + fee + refunded");
            bool terminal = v.state == VmState.Failed || v.state == VmState.Terminated;
            if (terminal) assertEq(v.balance, 0, "terminal VMs hold nothing");
            VmState seen = handler.terminalState(id);
            if (seen != VmState.None) assertEq(uint8(v.state), uint8(seen), "terminal states stay terminal");
            if (v.feeBps != 0 || v.fee != 0) assertEq(v.fee, (v.paid + v.fee) * v.feeBps / 10_000, "fee is exact");
            if (v.provider != address(0)) {
                assertLe(v.pricePerSecond, handler.maxPriceOf(id), "a tenant never pays above its stated maximum price");
            }
            kept += v.deposit - v.refunded;
        }
        // Without settling: escrow + what left it to providers and the treasury == deposits not refunded.
        assertEq(
            token.balanceOf(address(vms)) + handler.withdrawnEarnings() + handler.withdrawnFees(),
            kept,
            "escrow conservation"
        );
        uint256 staked;
        for (uint256 i; i < 3; ++i) {
            IProviderRegistry.Provider memory p = providers.getProvider(owners[i]);
            assertLe(p.leased.vcpu, p.capacity.vcpu, "leased vcpu <= declared");
            assertLe(p.leased.memoryMiB, p.capacity.memoryMiB, "leased memory <= declared");
            assertLe(p.leased.diskGiB, p.capacity.diskGiB, "leased disk <= declared");
            staked += p.stake + p.unstaking;
        }
        assertEq(token.balanceOf(address(providers)), staked, "stake conservation");
        _checkSettledEscrow();
        assertEq(_holdings() + supplyOutside, token.totalSupply(), "no token is created or lost");
    }

    /// Once everything is settled the escrow is exactly live balances + unwithdrawn earnings + fees (on a snapshot).
    function _checkSettledEscrow() internal {
        uint256 snapshot = vm.snapshotState();
        uint256 n = vms.vmCount();
        uint256 live;
        for (uint256 id = 1; id <= n; ++id) {
            vms.settle(id);
            live += vms.getVm(id).balance;
        }
        uint256 earnings = vms.earningsOf(owners[0]) + vms.earningsOf(owners[1]) + vms.earningsOf(owners[2]);
        assertEq(token.balanceOf(address(vms)), live + earnings + vms.feesAccrued(), "escrow == balances + earnings + fees");
        vm.revertToState(snapshot);
    }

    function _holdings() internal view returns (uint256 sum) {
        sum = token.balanceOf(address(vms)) + token.balanceOf(address(providers)) + token.balanceOf(treasury);
        for (uint256 i; i < 3; ++i) {
            sum += token.balanceOf(tenants[i]) + token.balanceOf(owners[i]);
        }
    }
}
