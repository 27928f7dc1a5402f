// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IPolicyAccount} from "../interfaces/IPolicyAccount.sol";
import {PolicyStore} from "../libraries/PolicyStore.sol";
import {Call, SignerSignature} from "../PolicyTypes.sol";

/// @title SignatureApprovals
/// @notice EIP-712 typed data of operations and the check of signatures submitted together.
/// The domain binds the chain id and this account; the message binds the calls, the operation nonce, the policy
/// version and a deadline. A single call whose rule names an action type is signed as that type, so a wallet
/// shows e.g. `TerminateVm(address target,uint256 value,uint256 vmId,uint256 nonce,uint64 policyVersion,uint256 deadline)`;
/// anything else is signed as the generic `Operation`.
abstract contract SignatureApprovals is IPolicyAccount, EIP712 {
    bytes32 internal constant CALL_TYPEHASH = keccak256("Call(address target,uint256 value,bytes data)");
    bytes32 internal constant OPERATION_TYPEHASH = keccak256(
        "Operation(Call[] calls,uint256 nonce,uint64 policyVersion,uint256 deadline)Call(address target,uint256 value,bytes data)"
    );

    constructor() EIP712("NovaCron PolicyAccount", "1") {}

    /// @dev The digest to sign. `rule` is the single call's rule (ignored for batches).
    function _digest(
        Call[] calldata calls,
        PolicyStore.Rule storage rule,
        uint256 nonce,
        uint64 version,
        uint256 deadline
    ) internal view returns (bytes32) {
        if (calls.length == 1) {
            bytes32 typeHash = rule.actionTypeHash;
            Call calldata call = calls[0];
            // The named type covers exactly the call's argument words, so it commits to the whole calldata.
            if (typeHash != 0 && call.data.length == 4 + 32 * uint256(rule.actionWords)) {
                return _hashTypedDataV4(_namedStructHash(typeHash, call, nonce, version, deadline));
            }
        }
        return _hashTypedDataV4(_operationStructHash(calls, nonce, version, deadline));
    }

    /// @dev keccak256(typeHash ‖ target ‖ value ‖ argument words ‖ nonce ‖ version ‖ deadline): for static
    /// arguments, EIP-712's encodeData of each field is exactly its ABI word.
    function _namedStructHash(bytes32 typeHash, Call calldata call, uint256 nonce, uint64 version, uint256 deadline)
        private
        pure
        returns (bytes32 h)
    {
        bytes calldata data = call.data;
        address target = call.target;
        uint256 value = call.value;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            mstore(add(ptr, 0x20), and(target, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(ptr, 0x40), value)
            let argsLength := sub(data.length, 4)
            calldatacopy(add(ptr, 0x60), add(data.offset, 4), argsLength)
            let tailPtr := add(add(ptr, 0x60), argsLength)
            mstore(tailPtr, nonce)
            mstore(add(tailPtr, 0x20), and(version, 0xffffffffffffffff))
            mstore(add(tailPtr, 0x40), deadline)
            h := keccak256(ptr, add(argsLength, 0xc0))
        }
    }

    function _operationStructHash(Call[] calldata calls, uint256 nonce, uint64 version, uint256 deadline)
        private
        pure
        returns (bytes32)
    {
        bytes32[] memory hashes = new bytes32[](calls.length);
        for (uint256 i; i < calls.length; ++i) {
            hashes[i] = keccak256(abi.encode(CALL_TYPEHASH, calls[i].target, calls[i].value, keccak256(calls[i].data)));
        }
        return keccak256(abi.encode(OPERATION_TYPEHASH, keccak256(abi.encodePacked(hashes)), nonce, version, deadline));
    }

    /// @dev Checks `signatures` (sorted by signer, unique) over `digest` against class `c` and returns the
    /// bitmask of the class's signers who signed. An EOA signature is an ECDSA signature that recovers to the
    /// signer; otherwise the signer must be a contract whose ERC-1271 `isValidSignature` accepts it.
    function _signedBy(bytes32 digest, PolicyStore.Class storage c, SignerSignature[] calldata signatures)
        internal
        view
        returns (uint16 bits)
    {
        uint256 signerCount = c.signerCount;
        uint256 list = _loadSigners(c.signerCode, signerCount);
        uint256 n = signatures.length;
        uint256 j;
        address previous;
        for (uint256 i; i < n;) {
            (address signer, bool recovered) = _recoverAt(digest, signatures, i);
            if (signer <= previous) revert PolicyAccountUnsortedSigners(i, signer);
            // Not an ECDSA signature of `signer`: maybe a contract signer (ERC-1271). The checked ABI access is
            // only paid on this path.
            if (!recovered && !SignatureChecker.isValidERC1271SignatureNowCalldata(signer, digest, signatures[i].signature)) {
                revert PolicyAccountInvalidSignature(i, signer);
            }
            // Class signers are sorted too: walk forward to this signer.
            bool found;
            assembly ("memory-safe") {
                let member := 0
                for {} lt(j, signerCount) { j := add(j, 1) } {
                    member := shr(96, mload(add(list, mul(j, 20))))
                    if iszero(lt(member, signer)) { break }
                }
                found := and(lt(j, signerCount), eq(member, signer))
                if found {
                    bits := or(bits, shl(j, 1))
                    j := add(j, 1)
                }
            }
            if (!found) revert PolicyAccountSignerNotInClass(i, signer);
            previous = signer;
            // i < n <= calldata size: cannot overflow.
            unchecked {
                ++i;
            }
        }
    }

    /// @dev Signature `i`'s signer and whether its signature is an ECDSA signature of `digest` by that signer:
    /// 65 bytes (r ‖ s ‖ v) or 64 bytes (ERC-2098 r ‖ vs), low s only (EIP-2), as OpenZeppelin's ECDSA accepts.
    /// Reads the ABI-encoded array directly: an offset out of the calldata reads zeros, which never form a valid
    /// signature, and the signer word must be a clean address.
    function _recoverAt(bytes32 digest, SignerSignature[] calldata signatures, uint256 i)
        private
        view
        returns (address signer, bool recovered)
    {
        bool dirty;
        assembly ("memory-safe") {
            let elem := add(signatures.offset, calldataload(add(signatures.offset, shl(5, i))))
            let word := calldataload(elem)
            dirty := shr(160, word)
            signer := word
            let sig := add(elem, calldataload(add(elem, 0x20)))
            let length := calldataload(sig)
            let r := calldataload(add(sig, 0x20))
            let s := calldataload(add(sig, 0x40))
            let v := 0
            switch length
            case 65 { v := byte(0, calldataload(add(sig, 0x60))) }
            case 64 {
                v := add(27, shr(255, s))
                s := and(s, 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff)
            }
            if and(iszero(iszero(v)), iszero(gt(s, 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0))) {
                let ptr := mload(0x40)
                mstore(ptr, digest)
                mstore(add(ptr, 0x20), v)
                mstore(add(ptr, 0x40), r)
                mstore(add(ptr, 0x60), s)
                mstore(0x00, 0)
                if staticcall(gas(), 0x01, ptr, 0x80, 0x00, 0x20) {
                    let who := mload(0x00)
                    recovered := and(iszero(iszero(who)), eq(who, signer))
                }
            }
        }
        if (dirty) revert PolicyAccountInvalidSignature(i, signer);
    }

    /// @dev The class's sorted signers, 20 bytes each, copied to memory from its signer code: one EXTCODECOPY
    /// instead of one SLOAD per signer. Returns the memory address of the first one.
    function _loadSigners(address code, uint256 count) private view returns (uint256 list) {
        assembly ("memory-safe") {
            list := mload(0x40)
            extcodecopy(code, list, 1, mul(count, 20))
            mstore(0x40, add(list, add(mul(count, 20), 32)))
        }
    }

    /// @dev Position of `account` among class `c`'s signers, or `found = false`.
    function _signerIndex(PolicyStore.Class storage c, address account) internal view returns (bool found, uint256 index) {
        uint256 n = c.signerCount;
        for (uint256 i; i < n; ++i) {
            if (c.signers[i] == account) return (true, i);
        }
        return (false, 0);
    }
}
