// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title NovaCronTimelock
/// @notice OpenZeppelin's TimelockController, unchanged; declared here so that Hardhat compiles an artifact
/// for the Ignition module. It owns the platform parameters and holds the platform treasury.
contract NovaCronTimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
