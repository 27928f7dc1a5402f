// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title NovaCronTimelock
/// @notice OpenZeppelin's TimelockController with a floor under its delay. It owns the platform parameters and
/// holds the platform treasury. Every queued change waits at least `MIN_DELAY` before anyone can execute it, so
/// tenants and providers always see a change coming: neither the deployment nor a passed proposal can lower the
/// delay below the floor (docs/trust.md, "Governance path").
contract NovaCronTimelock is TimelockController {
    /// @notice The shortest delay the timelock accepts, at deployment and in `updateDelay`.
    uint256 public constant MIN_DELAY = 1 hours;

    /// @notice `delay` is below `minimum` (`MIN_DELAY`).
    error NovaCronTimelockDelayTooShort(uint256 delay, uint256 minimum);

    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {
        _checkDelay(minDelay);
    }

    /// @notice The timelock itself only (a passed proposal): changes the delay, never below `MIN_DELAY`.
    /// @dev Emits a {MinDelayChange} event.
    function updateDelay(uint256 newDelay) public override {
        _checkDelay(newDelay);
        super.updateDelay(newDelay);
    }

    function _checkDelay(uint256 delay) private pure {
        if (delay < MIN_DELAY) revert NovaCronTimelockDelayTooShort(delay, MIN_DELAY);
    }
}
