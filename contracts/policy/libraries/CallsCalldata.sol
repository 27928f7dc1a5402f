// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Call} from "../PolicyTypes.sol";

/// @title CallsCalldata
/// @notice Reads one call of a `Call[] calldata` operation. Solidity's own accessors validate every field on every
/// access (a few hundred gas per call on the signed path); this reads the three fields at once with the same checks.
/// @dev A call is found and checked once ({element}, {single}); {fields} then reads it as often as needed.
library CallsCalldata {
    /// @notice Call `i` of `calls` (i < calls.length). Reverts, without data, where Solidity's ABI decoder would:
    /// an element or its bytes out of the calldata, a length beyond 64 bits, or a target that is not a clean address.
    function at(Call[] calldata calls, uint256 i) internal pure returns (address target, uint256 value, bytes calldata data) {
        return fields(element(calls, i));
    }

    /// @notice Where call `i` of `calls` (i < calls.length) starts in the calldata, after the checks of {at}.
    function element(Call[] calldata calls, uint256 i) internal pure returns (uint256 e) {
        bool malformed;
        assembly ("memory-safe") {
            let relative := calldataload(add(calls.offset, shl(5, i)))
            e := add(calls.offset, relative)
            let dataRelative := calldataload(add(e, 0x40))
            let pointer := add(e, dataRelative)
            let length := calldataload(pointer)
            // Offsets and length under 2^64 cannot wrap the additions above; then everything must lie in the calldata.
            malformed := or(
                or(shr(160, calldataload(e)), gt(or(or(relative, dataRelative), length), 0xffffffffffffffff)),
                or(gt(add(e, 0x60), calldatasize()), gt(add(add(pointer, 0x20), length), calldatasize()))
            )
        }
        if (malformed) revert();
    }

    /// @notice The only call of `calls` (checked as {element} checks it), or 0 when there is not exactly one.
    function single(Call[] calldata calls) internal pure returns (uint256 e) {
        if (calls.length == 1) e = element(calls, 0);
    }

    /// @notice The fields of the call at `e`, which must come from {element} or {single}: they checked them.
    function fields(uint256 e) internal pure returns (address target, uint256 value, bytes calldata data) {
        assembly ("memory-safe") {
            target := calldataload(e)
            value := calldataload(add(e, 0x20))
            let pointer := add(e, calldataload(add(e, 0x40)))
            data.length := calldataload(pointer)
            data.offset := add(pointer, 0x20)
        }
    }
}
