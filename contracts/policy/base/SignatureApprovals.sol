// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IPolicyAccount} from "../interfaces/IPolicyAccount.sol";
import {PolicyContent} from "../libraries/PolicyContent.sol";
import {CallsCalldata} from "../libraries/CallsCalldata.sol";
import {ClassPtr, RulePtr} from "../libraries/PolicyLayout.sol";
import {Call} from "../PolicyTypes.sol";

/// @title SignatureApprovals
/// @notice EIP-712 typed data of operations and the check of signatures submitted together.
/// The domain binds the chain id and this account; the message binds the calls, the operation nonce, the policy
/// version and a deadline. A single call whose rule names an action type is signed as that type, so a wallet
/// shows e.g. `TerminateVm(address target,uint256 value,bytes4 selector,uint256 vmId,uint256 nonce,uint64 policyVersion,uint256 deadline)`;
/// anything else is signed as the generic `Operation`. The named type binds the target and the function selector, so
/// two rules that share an action name never accept each other's signatures.
/// @dev Signatures arrive packed in one `bytes` (see {IPolicyAccount-executeSignedCalls}), ordered by signer:
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

    /// @dev The digest to sign. `only` is {CallsCalldata-single} of `calls`; `rule` is the single call's rule (a
    /// memory address; ignored for batches).
    function _digest(Call[] calldata calls, uint256 only, RulePtr rule, uint256 nonce, uint64 version, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        if (only != 0) {
            (, uint256 actionWords, bytes32 typeHash) = PolicyContent.action(rule);
            // The named type covers exactly the call's argument words, so it commits to the whole calldata.
            if (typeHash != 0) {
                uint256 dataLength;
                unchecked {
                    dataLength = 4 + 32 * actionWords; // actionWords < 256
                }
                bytes32 named = _namedDigest(typeHash, only, dataLength, nonce, version, deadline);
                if (named != 0) return named;
            }
        }
        return _hashTypedDataV4(_operationStructHash(calls, nonce, version, deadline));
    }

    /// @dev The digest ({_hashTypedDataV4}) of keccak256(typeHash ‖ target ‖ value ‖ selector ‖ argument words ‖ nonce ‖
    /// version ‖ deadline) of the single call at `only` ({CallsCalldata-single}): for `bytes4` and static arguments,
    /// EIP-712's encodeData of each field is exactly its ABI word (the selector left-aligned). Zero (no named digest)
    /// when the call's data is not `dataLength` bytes.
    function _namedDigest(
        bytes32 typeHash,
        uint256 only,
        uint256 dataLength,
        uint256 nonce,
        uint64 version,
        uint256 deadline
    ) private view returns (bytes32 h) {
        (address target, uint256 value, bytes calldata data) = CallsCalldata.fields(only);
        if (data.length != dataLength) return 0;
        bytes32 separator = _domainSeparatorV4();
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            // `target` is clean: {CallsCalldata-element} rejected a call whose target word is not an address.
            mstore(add(ptr, 0x20), target)
            mstore(add(ptr, 0x40), value)
            // The selector as a bytes4 field (left-aligned in a cleared word), then the argument words.
            mstore(add(ptr, 0x60), 0)
            calldatacopy(add(ptr, 0x60), data.offset, 4)
            let argsLength := sub(data.length, 4)
            calldatacopy(add(ptr, 0x80), add(data.offset, 4), argsLength)
            let tailPtr := add(add(ptr, 0x80), argsLength)
            mstore(tailPtr, nonce)
            mstore(add(tailPtr, 0x20), and(version, 0xffffffffffffffff))
            mstore(add(tailPtr, 0x40), deadline)
            h := keccak256(ptr, add(argsLength, 0xe0))
            // keccak256("\x19\x01" ‖ domain separator ‖ struct hash) in the same memory, as {_hashTypedDataV4}
            // computes it: the signed path takes this digest once per transaction.
            mstore(ptr, 0x1901)
            mstore(add(ptr, 0x20), separator)
            mstore(add(ptr, 0x40), h)
            h := keccak256(add(ptr, 0x1e), 0x42)
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
    /// returns the bitmask of the class's signers who signed and how many they are. Entries must be in strictly
    /// ascending signer order.
    function _signedBy(bytes32 digest, ClassPtr cls, bytes calldata signatures)
        internal
        view
        returns (uint16 bits, uint256 count)
    {
        uint256 walked; // see {_walk}
        while (true) {
            uint256 reason;
            address signer;
            (reason, walked, signer) = _walk(digest, signatures, cls, walked);
            if (reason == WALK_DONE) return (uint16(walked >> 128), walked >> 144);
            uint256 at = uint64(walked);
            uint256 i = _entryIndex(signatures, at);
            if (reason == WALK_INVALID) revert PolicyAccountInvalidSignature(i, signer);
            if (reason == WALK_NOT_NEXT) _rejectSigner(cls, i, signer, uint8(signatures[at]) == SIGNATURE_CONTRACT);
            // WALK_CONTRACT: a class signer in order, so only now is the contract asked, about its own bytes.
            uint256 next = _entryEnd(signatures, at);
            if (!SignatureChecker.isValidERC1271SignatureNowCalldata(signer, digest, signatures[at + 23:next])) {
                revert PolicyAccountInvalidSignature(i, signer);
            }
            walked = (walked & ~uint256(type(uint64).max)) | next;
        }
    }

    /// @dev Matches entries to the class signers of `cls`, from the position packed in `walked` (entry offset `at`
    /// (64 bits) | class signer `j` (64) | `bits` (16) | their count): both lists ascend, so one forward walk matches them. Stops
    /// at the end ({WALK_DONE}), at an entry that proves nothing ({WALK_INVALID}: truncated, unknown kind, high s,
    /// not recoverable; `signer` is what it recovers to, or zero), at a signer that is not the next class signer in
    /// order ({WALK_NOT_NEXT}), or after matching a contract signer whose ERC-1271 check is due ({WALK_CONTRACT});
    /// returns the position there. In assembly with few values live: besides the precompile, this loop is most of
    /// what a signature costs.
    function _walk(bytes32 digest, bytes calldata signatures, ClassPtr cls, uint256 walked)
        private
        view
        returns (uint256 reason, uint256, address signer)
    {
        (uint256 list, uint256 count) = PolicyContent.signerList(cls);
        assembly ("memory-safe") {
            // Memory from the free pointer holds the digest, then v, r and s for the precompile. One loop body
            // without Yul functions: every value stays on the stack, and a signature pays no call overhead.
            let input := mload(0x40)
            mstore(input, digest)
            let at := and(walked, 0xffffffffffffffff)
            let j := and(shr(64, walked), 0xffffffffffffffff)
            let bits := shr(128, walked)
            let length := signatures.length
            // `reason` is WALK_DONE (0) here and after every entry that matched.
            for {} lt(at, length) {} {
                let entry := add(signatures.offset, at)
                let kind := byte(0, calldataload(entry))
                let isContract := eq(kind, SIGNATURE_CONTRACT)
                // Its head must fit before it is read: 65 bytes, or a contract entry's 23.
                let next := add(at, sub(65, mul(42, isContract)))
                signer := 0
                reason := WALK_INVALID
                if gt(next, length) { break }
                switch isContract
                case 0 {
                    let s := calldataload(add(entry, 33))
                    // Kind 0 is ERC-2098: v is 27 + the top bit of s. Any other kind is v itself.
                    let compact := eq(kind, SIGNATURE_COMPACT)
                    let v := add(kind, mul(compact, add(27, shr(255, s))))
                    s := and(s, shr(compact, not(0)))
                    if or(eq(v, 27), eq(v, 28)) {
                        mstore(add(input, 0x20), v)
                        mstore(add(input, 0x40), calldataload(add(entry, 1)))
                        mstore(add(input, 0x60), s)
                        mstore(0x00, 0)
                        // The precompile accepts a high s, so the error can name whose malleable twin this is.
                        if staticcall(gas(), 0x01, input, 0x80, 0x00, 0x20) { signer := mload(0x00) }
                    }
                    if or(iszero(signer), gt(s, 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0)) {
                        break
                    }
                }
                default {
                    signer := shr(96, calldataload(add(entry, 1)))
                    next := add(next, shr(240, calldataload(add(entry, 21))))
                    if or(iszero(signer), gt(next, length)) { break }
                }
                // The next class signer at or after position `j` must be `signer` (signers are PolicyLayout's
                // ADDRESS fields, 20 bytes each, from `list`).
                let member := 0
                for {} lt(j, count) { j := add(j, 1) } {
                    member := shr(96, mload(add(list, mul(j, 20))))
                    if iszero(lt(member, signer)) { break }
                }
                reason := WALK_NOT_NEXT
                if iszero(and(lt(j, count), eq(member, signer))) { break }
                // Bit j is new (j ascends): adding it sets it, and counts it in the bits above the mask.
                bits := add(bits, add(0x10000, shl(j, 1)))
                j := add(j, 1)
                reason := WALK_CONTRACT
                if isContract { break }
                reason := WALK_DONE
                at := next
            }
            walked := or(at, or(shl(64, j), shl(128, bits)))
        }
        return (reason, walked, signer);
    }

    /// @dev Where the entry at `at` ends (its declared end). Only for entries the walk passed or stopped after: their
    /// head (a contract entry's 23 bytes) is within `signatures`.
    function _entryEnd(bytes calldata signatures, uint256 at) private pure returns (uint256) {
        if (uint8(signatures[at]) != SIGNATURE_CONTRACT) return at + 65;
        return at + 23 + uint16(bytes2(signatures[at + 21:at + 23]));
    }

    /// @dev The position of the entry at `at` among the entries (for errors and contract signers only).
    function _entryIndex(bytes calldata signatures, uint256 at) private pure returns (uint256 i) {
        for (uint256 p; p < at; p = _entryEnd(signatures, p)) ++i;
    }

    /// @dev Entry `i`'s `signer` is not the next class signer in order: it is a class signer out of order or
    /// repeated, an outsider, or (for ECDSA) the address a signature of other data recovers to.
    function _rejectSigner(ClassPtr cls, uint256 i, address signer, bool isContract) private pure {
        (bool member,) = _signerIndex(cls, signer);
        if (member) revert PolicyAccountUnsortedSigners(i, signer);
        if (isContract) revert PolicyAccountSignerNotInClass(i, signer);
        revert PolicyAccountInvalidSignature(i, signer);
    }

    /// @dev Position of `account` among class `cls`'s signers, or `found = false`.
    function _signerIndex(ClassPtr cls, address account) internal pure returns (bool found, uint256 index) {
        (, uint256 n,,) = PolicyContent.params(cls);
        for (uint256 i; i < n; ++i) {
            if (PolicyContent.signerAt(cls, i) == account) return (true, i);
        }
        return (false, 0);
    }
}
