// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ConditionOp, ConditionSubject, MAX_ARRAY} from "../PolicyTypes.sol";
import {PolicyLayout as L, ConditionPtr} from "./PolicyLayout.sol";

/// @title CalldataConditions
/// @notice Reads ABI words of a call's arguments and evaluates one typed condition on them. Nothing here
/// decodes by type: a condition names a head word (or a word of a dynamic tuple / array the head word points
/// to) and compares the 32-byte word. Because the target's own ABI decoder rejects words that are out of range
/// for their declared type, comparing the whole word is sound for every static type. A word that is not in the
/// calldata makes the condition false, never a revert, so a malformed call is simply denied.
/// @dev A condition is read from a loaded content in the layout {PolicyLayout} names (OP, ARG, FIELD, SUBJECT,
/// SET_LENGTH, VALUE, then the set).
library CalldataConditions {
    bytes4 internal constant GET_VM_SELECTOR = bytes4(keccak256("getVm(uint256)"));

    /// @notice Where the condition after `c` starts.
    function next(ConditionPtr c) internal pure returns (ConditionPtr) {
        uint256 at = ConditionPtr.unwrap(c);
        return ConditionPtr.wrap(at + L.CONDITION_HEADER_SIZE + L.SET_VALUE_SIZE * L.get(at, L.SET_LENGTH));
    }

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

    /// @notice Whether condition `c` reads the call's ETH value (subject CallValue).
    function readsValue(ConditionPtr c) internal pure returns (bool) {
        (,,, ConditionSubject subject) = _parameters(c);
        return subject == ConditionSubject.CallValue;
    }

    /// @notice Whether the call `data` with ETH `callValue` to `target` meets condition `c` (a memory address);
    /// `self` is this account (for OwnedBy).
    function holds(ConditionPtr c, bytes calldata data, uint256 callValue, address target, address self)
        internal
        view
        returns (bool)
    {
        (ConditionOp op, uint256 arg, uint256 field, ConditionSubject subject) = _parameters(c);
        if (op == ConditionOp.AllInSet) return _allInSet(c, data, arg);
        (bool ok, uint256 word) =
            subject == ConditionSubject.CallValue ? (true, callValue) : _wordOf(data, arg, field, subject);
        if (!ok) return false;
        uint256 value = _value(c);
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

    function _parameters(ConditionPtr c)
        private
        pure
        returns (ConditionOp op, uint256 arg, uint256 field, ConditionSubject subject)
    {
        uint256 at = ConditionPtr.unwrap(c);
        // The writer stored a valid ConditionOp and ConditionSubject.
        return (ConditionOp(L.get(at, L.OP)), L.get(at, L.ARG), L.get(at, L.FIELD), ConditionSubject(L.get(at, L.SUBJECT)));
    }

    function _value(ConditionPtr c) private pure returns (uint256) {
        return L.get(ConditionPtr.unwrap(c), L.VALUE);
    }

    /// @dev Value `i` of the condition's set.
    function _setValue(ConditionPtr c, uint256 i) private pure returns (bytes32) {
        return bytes32(L.get(ConditionPtr.unwrap(c) + L.CONDITION_HEADER_SIZE + L.SET_VALUE_SIZE * i, L.SET_VALUE));
    }

    function _setLength(ConditionPtr c) private pure returns (uint256) {
        return L.get(ConditionPtr.unwrap(c), L.SET_LENGTH);
    }

    /// @notice The word a condition reads.
    function _wordOf(bytes calldata data, uint256 arg, uint256 field, ConditionSubject subject)
        private
        pure
        returns (bool ok, uint256 word)
    {
        if (subject == ConditionSubject.Arg) return headWord(data, arg);
        (bool inRange, uint256 start) = tail(data, arg);
        if (!inRange) return (false, 0);
        // field <= 255 and start < data.length, so this cannot overflow.
        uint256 at = start + 32 * field;
        if (data.length < at + 32) return (false, 0);
        return (true, uint256(bytes32(data[at:at + 32])));
    }

    function _inSet(ConditionPtr c, bytes32 word) private pure returns (bool) {
        uint256 n = _setLength(c);
        for (uint256 i; i < n; ++i) {
            if (_setValue(c, i) == word) return true;
        }
        return false;
    }

    function _allInSet(ConditionPtr c, bytes calldata data, uint256 arg) private pure returns (bool) {
        (bool ok, uint256 start) = tail(data, arg);
        if (!ok) return false;
        uint256 length = uint256(bytes32(data[start:start + 32]));
        // An empty list means "no restriction" to the functions this guards (VmRegistry's regions): it does not hold.
        if (length == 0 || length > MAX_ARRAY) return false;
        // length <= MAX_ARRAY, so the end cannot overflow.
        if (data.length < start + 32 + 32 * length) return false;
        for (uint256 i; i < length; ++i) {
            uint256 at = start + 32 + 32 * i;
            if (!_inSet(c, bytes32(data[at:at + 32]))) return false;
        }
        return true;
    }

    /// @dev A view call `registry.<selector>(id)` whose first returned word must be `self`.
    function _ownedBy(ConditionPtr c, uint256 id, address target, address self) private view returns (bool) {
        uint256 value = _value(c);
        address registry = value == 0 ? target : address(uint160(value));
        bytes4 selector = _setLength(c) == 0 ? GET_VM_SELECTOR : bytes4(_setValue(c, 0));
        (bool success, bytes memory ret) = registry.staticcall(abi.encodeWithSelector(selector, id));
        if (!success || ret.length < 32) return false;
        return abi.decode(ret, (uint256)) == uint256(uint160(self));
    }
}
