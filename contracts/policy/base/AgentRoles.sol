// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPolicyAccount} from "../interfaces/IPolicyAccount.sol";

/// @title AgentRoles
/// @notice Automation keys and AI agents: each may act alone within a set of classes of one policy content,
/// until an expiry, spending from an allowance that refills linearly by `maxAllowance` per `period` and never
/// holds more than `maxAllowance`.
abstract contract AgentRoles is IPolicyAccount {
    /// @dev Two slots.
    struct Agent {
        // slot 0: classMask (16) | contentId (32) | expiresAt (40) | period (32) | updatedAt (40)
        uint16 classMask;
        uint32 contentId;
        uint40 expiresAt;
        uint32 period;
        uint40 updatedAt;
        // slot 1: maxAllowance (128) | available (128)
        uint128 maxAllowance;
        uint128 available;
    }

    mapping(address agent => Agent) private _agents;

    /// @inheritdoc IPolicyAccount
    function getAgent(address agent) external view returns (AgentView memory v) {
        Agent storage a = _agents[agent];
        v.classMask = a.classMask;
        v.contentId = a.contentId;
        v.expiresAt = a.expiresAt;
        v.period = a.period;
        v.maxAllowance = a.maxAllowance;
        // Capped by maxAllowance, a uint128.
        v.available = uint128(_available(a));
        v.active = a.classMask != 0 && block.timestamp < a.expiresAt;
    }

    /// @dev Emits {AgentGranted}. The allowance starts full.
    function _grant(address agent, uint16 classMask, uint32 contentId, uint128 maxAllowance, uint32 period, uint40 expiresAt)
        internal
    {
        if (agent == address(0) || classMask == 0 || period == 0 || expiresAt <= block.timestamp) {
            revert PolicyAccountInvalidAgentGrant(agent);
        }
        _agents[agent] = Agent({
            classMask: classMask,
            contentId: contentId,
            expiresAt: expiresAt,
            period: period,
            updatedAt: uint40(block.timestamp),
            maxAllowance: maxAllowance,
            available: maxAllowance
        });
        emit AgentGranted(agent, classMask, contentId, maxAllowance, period, expiresAt);
    }

    /// @dev Emits {AgentRevoked}.
    function _revoke(address agent) internal {
        if (_agents[agent].classMask == 0) revert PolicyAccountNotAgent(agent);
        delete _agents[agent];
        emit AgentRevoked(agent);
    }

    /// @dev Checks that `agent` is active under `contentId` and returns its class mask.
    function _agentScope(address agent, uint32 contentId) internal view returns (uint16) {
        Agent storage a = _agents[agent];
        if (a.classMask == 0 || a.contentId != contentId) revert PolicyAccountNotAgent(agent);
        if (block.timestamp >= a.expiresAt) revert PolicyAccountAgentExpired(agent, a.expiresAt);
        return a.classMask;
    }

    /// @dev Takes `amount` from `agent`'s refilled allowance; returns what is left.
    function _spend(address agent, uint256 amount) internal returns (uint256 left) {
        Agent storage a = _agents[agent];
        uint256 available = _available(a);
        if (amount > available) revert PolicyAccountAllowanceExceeded(agent, amount, available);
        // amount <= available: no underflow.
        unchecked {
            left = available - amount;
        }
        a.available = uint128(left);
        a.updatedAt = uint40(block.timestamp);
    }

    function _available(Agent storage a) private view returns (uint256) {
        uint256 max = a.maxAllowance;
        if (a.period == 0) return 0;
        uint256 refill = (block.timestamp - a.updatedAt) * max / a.period;
        uint256 total = uint256(a.available) + refill;
        return total < max ? total : max;
    }
}
