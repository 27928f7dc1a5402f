// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {GovernorVotesQuorumFraction} from "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";

/// @title NovaCronGovernor
/// @notice Platform governance over CreditToken votes. Proposals that pass are queued in and executed by a
/// TimelockController, which is the `governance` address of ProviderRegistry and VmRegistry: the only
/// caller of their parameter setters. Parameters are bounded by constants in those contracts, and no
/// governance function moves a tenant's deposit or a provider's stake (see docs/trust.md).
/// Voting delay and voting period have floors (`MIN_VOTING_DELAY`, `MIN_VOTING_PERIOD`) that neither the
/// deployment nor a proposal can go below.
/// @dev OpenZeppelin composition; apart from the two floors, the overrides below only resolve the multiple inheritance.
contract NovaCronGovernor is
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction,
    GovernorTimelockControl
{
    /// @notice The shortest voting delay, in blocks (the CreditToken clock). At least one block lies between a
    /// proposal and the snapshot its votes are counted at, so nobody can acquire and delegate votes in the proposal's
    /// own block and have them counted.
    uint48 public constant MIN_VOTING_DELAY = 1;
    /// @notice The shortest voting period, in blocks: every holder gets this many blocks to see and vote on a proposal.
    uint32 public constant MIN_VOTING_PERIOD = 50;

    /// @notice `votingDelay` is below `minimum` (`MIN_VOTING_DELAY`).
    error NovaCronGovernorVotingDelayTooShort(uint256 votingDelay, uint256 minimum);
    /// @notice `votingPeriod` is below `minimum` (`MIN_VOTING_PERIOD`).
    error NovaCronGovernorVotingPeriodTooShort(uint256 votingPeriod, uint256 minimum);

    constructor(
        IVotes token,
        TimelockController timelock,
        uint48 votingDelay_,
        uint32 votingPeriod_,
        uint256 proposalThreshold_,
        uint256 quorumPercent
    )
        Governor("NovaCronGovernor")
        GovernorSettings(votingDelay_, votingPeriod_, proposalThreshold_)
        GovernorVotes(token)
        GovernorVotesQuorumFraction(quorumPercent)
        GovernorTimelockControl(timelock)
    {}

    /// @dev Checked at deployment (GovernorSettings' constructor) and in `setVotingDelay`.
    function _setVotingDelay(uint48 newVotingDelay) internal override {
        if (newVotingDelay < MIN_VOTING_DELAY) revert NovaCronGovernorVotingDelayTooShort(newVotingDelay, MIN_VOTING_DELAY);
        super._setVotingDelay(newVotingDelay);
    }

    /// @dev Checked at deployment (GovernorSettings' constructor) and in `setVotingPeriod`.
    function _setVotingPeriod(uint32 newVotingPeriod) internal override {
        if (newVotingPeriod < MIN_VOTING_PERIOD) {
            revert NovaCronGovernorVotingPeriodTooShort(newVotingPeriod, MIN_VOTING_PERIOD);
        }
        super._setVotingPeriod(newVotingPeriod);
    }

    function state(uint256 proposalId) public view override(Governor, GovernorTimelockControl) returns (ProposalState) {
        return super.state(proposalId);
    }

    function proposalNeedsQueuing(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (bool)
    {
        return super.proposalNeedsQueuing(proposalId);
    }

    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}
