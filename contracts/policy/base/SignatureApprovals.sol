// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
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
        uint256 j;
        address previous;
        for (uint256 i; i < signatures.length; ++i) {
            address signer = signatures[i].signer;
            if (signer <= previous) revert PolicyAccountUnsortedSigners(i, signer);
            previous = signer;
            if (!_isValid(digest, signer, signatures[i].signature)) revert PolicyAccountInvalidSignature(i, signer);
            // Class signers are sorted too: walk forward to this signer.
            address member;
            while (j < signerCount) {
                assembly ("memory-safe") {
                    member := shr(96, mload(add(list, mul(j, 20))))
                }
                if (member >= signer) break;
                ++j;
            }
            if (j == signerCount || member != signer) revert PolicyAccountSignerNotInClass(i, signer);
            bits |= uint16(1 << j);
            ++j;
        }
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

    /// @dev An ECDSA signature that recovers to `signer`, else whatever `signer`'s ERC-1271 accepts.
    function _isValid(bytes32 digest, address signer, bytes calldata sig) private view returns (bool) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, sig);
        if (err == ECDSA.RecoverError.NoError && recovered == signer) return true;
        return SignatureChecker.isValidERC1271SignatureNowCalldata(signer, digest, sig);
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
