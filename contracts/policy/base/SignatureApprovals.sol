// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IPolicyAccount} from "../interfaces/IPolicyAccount.sol";
import {PolicyContent} from "../libraries/PolicyContent.sol";
import {CallsCalldata} from "../libraries/CallsCalldata.sol";
import {Call} from "../PolicyTypes.sol";

/// @title SignatureApprovals
/// @notice EIP-712 typed data of operations and the check of signatures submitted together.
/// The domain binds the chain id and this account; the message binds the calls, the operation nonce, the policy
/// version and a deadline. A single call whose rule names an action type is signed as that type, so a wallet
/// shows e.g. `TerminateVm(address target,uint256 value,uint256 vmId,uint256 nonce,uint64 policyVersion,uint256 deadline)`;
/// anything else is signed as the generic `Operation`.
/// @dev Signatures arrive packed in one `bytes` (see {IPolicyAccount-executeWithSignatures}), ordered by signer:
/// an ECDSA entry carries no signer address (it is the recovered one), which saves a calldata word per signature.
abstract contract SignatureApprovals is IPolicyAccount, EIP712 {
    bytes32 internal constant CALL_TYPEHASH = keccak256("Call(address target,uint256 value,bytes data)");
    bytes32 internal constant OPERATION_TYPEHASH = keccak256(
        "Operation(Call[] calls,uint256 nonce,uint64 policyVersion,uint256 deadline)Call(address target,uint256 value,bytes data)"
    );

    /// @dev First byte of a packed entry: ERC-2098 `r ‖ yParityAndS` follows. 27 or 28 (v) mean `r ‖ s` follows.
    uint256 internal constant SIGNATURE_COMPACT = 0;
    /// @dev First byte of a packed entry: an ERC-1271 contract signer; `signer (20) ‖ length (2) ‖ signature` follows.
    uint256 internal constant SIGNATURE_CONTRACT = 1;

    /// @dev Why {_signedBy}'s assembly loop stopped: the end, an entry proving nothing, a signer that is not the next
    /// class signer in order, or a contract signer whose ERC-1271 check is due.
    uint256 private constant WALK_DONE = 0;
    uint256 private constant WALK_INVALID = 1;
    uint256 private constant WALK_NOT_NEXT = 2;
    uint256 private constant WALK_CONTRACT = 3;

    constructor() EIP712("NovaCron PolicyAccount", "1") {}

    /// @dev The digest to sign. `rule` is the single call's rule (a memory address; ignored for batches).
    function _digest(Call[] calldata calls, uint256 rule, uint256 nonce, uint64 version, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        if (calls.length == 1) {
            (, uint256 actionWords, bytes32 typeHash) = PolicyContent.action(rule);
            // The named type covers exactly the call's argument words, so it commits to the whole calldata.
            if (typeHash != 0) {
                bytes32 structHash = _namedStructHash(typeHash, calls, 4 + 32 * actionWords, nonce, version, deadline);
                if (structHash != 0) return _hashTypedDataV4(structHash);
            }
        }
        return _hashTypedDataV4(_operationStructHash(calls, nonce, version, deadline));
    }

    /// @dev keccak256(typeHash ‖ target ‖ value ‖ argument words ‖ nonce ‖ version ‖ deadline) of the single call:
    /// for static arguments, EIP-712's encodeData of each field is exactly its ABI word. Zero (no named hash) when the
    /// call's data is not `dataLength` bytes.
    function _namedStructHash(
        bytes32 typeHash,
        Call[] calldata calls,
        uint256 dataLength,
        uint256 nonce,
        uint64 version,
        uint256 deadline
    ) private pure returns (bytes32 h) {
        (address target, uint256 value, bytes calldata data) = CallsCalldata.at(calls, 0);
        if (data.length != dataLength) return 0;
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
            (address target, uint256 value, bytes calldata data) = CallsCalldata.at(calls, i);
            hashes[i] = keccak256(abi.encode(CALL_TYPEHASH, target, value, keccak256(data)));
        }
        return keccak256(abi.encode(OPERATION_TYPEHASH, keccak256(abi.encodePacked(hashes)), nonce, version, deadline));
    }

    /// @dev Checks the packed `signatures` over `digest` against class `cls` (a memory address in the content) and
    /// returns the bitmask of the class's signers who signed. Entries must be in strictly ascending signer order.
    function _signedBy(bytes32 digest, uint256 cls, bytes calldata signatures) internal view returns (uint16 bits) {
        uint256 list = PolicyContent.signers(cls);
        (, uint256 signerCount,,) = PolicyContent.params(cls);
        uint256 j; // class signers before j are used or skipped: both lists ascend, so one forward walk matches them
        uint256 at;
        uint256 i;
        while (true) {
            uint256 reason;
            uint256 kind;
            address signer;
            uint256 next;
            // Entries are parsed, recovered and matched without leaving assembly: besides the precompile, this loop
            // is most of what a signature costs. It stops at the end, at an error, or after matching a contract
            // signer, whose ERC-1271 check follows below.
            assembly ("memory-safe") {
                for {} 1 {} {
                    if iszero(lt(at, signatures.length)) {
                        reason := WALK_DONE
                        break
                    }
                    let entry := add(signatures.offset, at)
                    kind := byte(0, calldataload(entry))
                    signer := 0
                    let highS := 0
                    switch kind
                    case 1 {
                        next := add(at, 23)
                        if iszero(gt(next, signatures.length)) {
                            signer := shr(96, calldataload(add(entry, 1)))
                            next := add(next, shr(240, calldataload(add(entry, 21))))
                        }
                    }
                    default {
                        next := add(at, 65)
                        let r := calldataload(add(entry, 1))
                        let s := calldataload(add(entry, 33))
                        let v := 0
                        switch kind
                        case 0 {
                            v := add(27, shr(255, s))
                            s := and(s, 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff)
                        }
                        case 27 { v := 27 }
                        case 28 { v := 28 }
                        if and(iszero(iszero(v)), iszero(gt(next, signatures.length))) {
                            let ptr := mload(0x40)
                            mstore(ptr, digest)
                            mstore(add(ptr, 0x20), v)
                            mstore(add(ptr, 0x40), r)
                            mstore(add(ptr, 0x60), s)
                            mstore(0x00, 0)
                            // The precompile accepts a high s, so the error can name whose malleable twin this is.
                            if staticcall(gas(), 0x01, ptr, 0x80, 0x00, 0x20) { signer := mload(0x00) }
                        }
                        highS := gt(s, 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0)
                    }
                    if or(or(iszero(signer), highS), gt(next, signatures.length)) {
                        reason := WALK_INVALID
                        break
                    }
                    let member := 0
                    for {} lt(j, signerCount) { j := add(j, 1) } {
                        member := shr(96, mload(add(list, mul(j, 20))))
                        if iszero(lt(member, signer)) { break }
                    }
                    if iszero(and(lt(j, signerCount), eq(member, signer))) {
                        reason := WALK_NOT_NEXT
                        break
                    }
                    bits := or(bits, shl(j, 1))
                    j := add(j, 1)
                    if eq(kind, 1) {
                        reason := WALK_CONTRACT
                        break
                    }
                    at := next
                    i := add(i, 1)
                }
            }
            if (reason == WALK_DONE) return bits;
            if (reason == WALK_INVALID) revert PolicyAccountInvalidSignature(i, signer);
            if (reason == WALK_NOT_NEXT) _rejectSigner(list, signerCount, i, signer, kind == SIGNATURE_CONTRACT);
            // A class signer in order, so only now is the contract asked, about its own bytes.
            if (!SignatureChecker.isValidERC1271SignatureNowCalldata(signer, digest, signatures[at + 23:next])) {
                revert PolicyAccountInvalidSignature(i, signer);
            }
            at = next;
            ++i;
        }
    }

    /// @dev Entry `i`'s `signer` is not the next class signer in order: it is a class signer out of order or
    /// repeated, an outsider, or (for ECDSA) the address a signature of other data recovers to.
    function _rejectSigner(uint256 list, uint256 signerCount, uint256 i, address signer, bool isContract) private pure {
        for (uint256 k; k < signerCount; ++k) {
            address member;
            assembly ("memory-safe") {
                member := shr(96, mload(add(list, mul(k, 20))))
            }
            if (member == signer) revert PolicyAccountUnsortedSigners(i, signer);
        }
        if (isContract) revert PolicyAccountSignerNotInClass(i, signer);
        revert PolicyAccountInvalidSignature(i, signer);
    }

    /// @dev Position of `account` among class `cls`'s signers, or `found = false`.
    function _signerIndex(uint256 cls, address account) internal pure returns (bool found, uint256 index) {
        (, uint256 n,,) = PolicyContent.params(cls);
        for (uint256 i; i < n; ++i) {
            if (PolicyContent.signerAt(cls, i) == account) return (true, i);
        }
        return (false, 0);
    }
}
