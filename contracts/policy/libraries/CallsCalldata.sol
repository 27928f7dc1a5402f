// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Call} from "../PolicyTypes.sol";

/// @title CallsCalldata
/// @notice Reads one call of a `Call[] calldata` operation. Solidity's own accessors validate every field on every
/// access (a few hundred gas per call on the signed path); this reads the three fields at once with the same checks.
library CallsCalldata {
    /// @notice Call `i` of `calls` (i < calls.length). Reverts, without data, where Solidity's ABI decoder would:
    /// an element or its bytes out of the calldata, a length beyond 64 bits, or a target that is not a clean address.
    function at(Call[] calldata calls, uint256 i) internal pure returns (address target, uint256 value, bytes calldata data) {
        bool malformed;
        assembly ("memory-safe") {
            let relative := calldataload(add(calls.offset, shl(5, i)))
            let element := add(calls.offset, relative)
            let word := calldataload(element)
            target := word
            value := calldataload(add(element, 0x20))
            let dataRelative := calldataload(add(element, 0x40))
            let pointer := add(element, dataRelative)
            data.length := calldataload(pointer)
            data.offset := add(pointer, 0x20)
            // Offsets and length under 2^64 cannot wrap the additions above; then everything must lie in the calldata.
            malformed := or(
                or(shr(160, word), gt(or(or(relative, dataRelative), data.length), 0xffffffffffffffff)),
                or(gt(add(element, 0x60), calldatasize()), gt(add(data.offset, data.length), calldatasize()))
            )
        }
        if (malformed) revert();
    }
}
