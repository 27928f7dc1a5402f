// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ConditionOp} from "../PolicyTypes.sol";
import {MAX_ARRAY, MAX_SET} from "../PolicyTypes.sol";

/// @title CalldataConditions
/// @notice Reads ABI words of a call's arguments and evaluates one typed condition on them. Nothing here
/// decodes by type: a condition names a head word (or a word of a dynamic tuple / array the head word points
/// to) and compares the 32-byte word. Because the target's own ABI decoder rejects words that are out of range
/// for their declared type, comparing the whole word is sound for every static type. A word that is not in the
/// calldata makes the condition false, never a revert, so a malformed call is simply denied.
library CalldataConditions {
    /// @notice A condition as stored: one slot of parameters, one of value, then the set.
    struct Condition {
        // slot 0: op (8) | arg (8) | field (8) | deref (8) | setLength (8)
        ConditionOp op;
        uint8 arg;
        uint8 field;
        bool deref;
        uint8 setLength;
        // slot 1
        uint256 value;
        bytes32[MAX_SET] set;
    }

    bytes4 internal constant GET_VM_SELECTOR = bytes4(keccak256("getVm(uint256)"));

    /// @notice Head word `index` of the arguments (after the 4-byte selector), if present.
    function headWord(bytes calldata data, uint256 index) internal pure returns (bool ok, uint256 word) {
        // index <= 255, so the product cannot overflow.
        uint256 start = 4 + 32 * index;
        if (data.length < start + 32) return (false, 0);
        word = uint256(bytes32(data[start:start + 32]));
        ok = true;
    }

    /// @notice Start (in `data`) of the dynamic tuple or array head word `arg` points to, if in range.
    function tail(bytes calldata data, uint256 arg) internal pure returns (bool ok, uint256 start) {
        (bool present, uint256 offset) = headWord(data, arg);
        // Offsets are relative to the start of the arguments; anything past the calldata is out of range.
        if (!present || offset >= data.length) return (false, 0);
        start = 4 + offset;
        ok = start + 32 <= data.length;
    }

    /// @notice The word a condition reads.
    function wordOf(Condition storage c, bytes calldata data) internal view returns (bool ok, uint256 word) {
        if (!c.deref) return headWord(data, c.arg);
        (bool inRange, uint256 start) = tail(data, c.arg);
        if (!inRange) return (false, 0);
        // field <= 255 and start < data.length, so this cannot overflow.
        uint256 at = start + 32 * uint256(c.field);
        if (data.length < at + 32) return (false, 0);
        return (true, uint256(bytes32(data[at:at + 32])));
    }

    /// @notice Whether the call `data` to `target` meets `c`; `self` is this account (for OwnedBy).
    function holds(Condition storage c, bytes calldata data, address target, address self) internal view returns (bool) {
        ConditionOp op = c.op;
        if (op == ConditionOp.AllInSet) return _allInSet(c, data);
        (bool ok, uint256 word) = wordOf(c, data);
        if (!ok) return false;
        uint256 value = c.value;
        if (op == ConditionOp.Eq) return word == value;
        if (op == ConditionOp.Ne) return word != value;
        if (op == ConditionOp.Lt) return word < value;
        if (op == ConditionOp.Le) return word <= value;
        if (op == ConditionOp.Gt) return word > value;
        if (op == ConditionOp.Ge) return word >= value;
        if (op == ConditionOp.InSet) return _inSet(c, bytes32(word));
        if (op == ConditionOp.NotInSet) return !_inSet(c, bytes32(word));
        return _ownedBy(c, word, target, self);
    }

    function _inSet(Condition storage c, bytes32 word) private view returns (bool) {
        uint256 n = c.setLength;
        for (uint256 i; i < n; ++i) {
            if (c.set[i] == word) return true;
        }
        return false;
    }

    function _allInSet(Condition storage c, bytes calldata data) private view returns (bool) {
        (bool ok, uint256 start) = tail(data, c.arg);
        if (!ok) return false;
        uint256 length = uint256(bytes32(data[start:start + 32]));
        if (length > MAX_ARRAY) return false;
        // length <= MAX_ARRAY, so the end cannot overflow.
        if (data.length < start + 32 + 32 * length) return false;
        for (uint256 i; i < length; ++i) {
            uint256 at = start + 32 + 32 * i;
            if (!_inSet(c, bytes32(data[at:at + 32]))) return false;
        }
        return true;
    }

    /// @dev A view call `registry.<selector>(id)` whose first returned word must be `self`.
    function _ownedBy(Condition storage c, uint256 id, address target, address self) private view returns (bool) {
        address registry = c.value == 0 ? target : address(uint160(c.value));
        bytes4 selector = c.setLength == 0 ? GET_VM_SELECTOR : bytes4(c.set[0]);
        (bool success, bytes memory ret) = registry.staticcall(abi.encodeWithSelector(selector, id));
        if (!success || ret.length < 32) return false;
        return abi.decode(ret, (uint256)) == uint256(uint160(self));
    }
}
