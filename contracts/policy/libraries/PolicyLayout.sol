// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @dev Where a loaded policy content starts in memory (the byte after its data contract's STOP byte).
type ContentPtr is uint256;
/// @dev Where a class record of a loaded content starts in memory.
type ClassPtr is uint256;
/// @dev Where a rule record of a loaded content starts in memory.
type RulePtr is uint256;
/// @dev Where a condition record of a loaded content starts in memory.
type ConditionPtr is uint256;

/// @title PolicyLayout
/// @notice The binary layout of a policy content, named once: {PolicyWriter} writes every field with these names
/// and {PolicyContent} and {CalldataConditions} read them with the same names. A field is a constant
/// `offset << 8 | size`: its offset from the start of its record and its size in bytes, so writer and reader
/// cannot disagree on either. Integers are big-endian.
///
///   content    header, class table, index, then the classes (each followed by its rules) and the members
///   header     CONTENT_ID | POLICY_HASH | CLASS_COUNT | RULE_COUNT | MEMBER_COUNT | MAX_DELAY | MEMBERS_AT
///   class table (CLASS_COUNT + 1) TABLE_ENTRY fields from HEADER_SIZE: each class's offset in the content; the
///              last one is the recovery class's
///   index      RULE_COUNT entries of ENTRY_SIZE: ENTRY_KEY (target (20) | selector (4); a rule for the account
///              itself has target 0) | ENTRY_CLASS | ENTRY_RULE | ENTRY_RULE_AT (the rule's offset), for the
///              rules of every class but recovery, class by class
///   class      CLASS_HEADER_SIZE bytes of fields, then the signers (ascending) and guardians (ascending),
///              ADDRESS_SIZE each, then one RULE_AT field per rule (the rule's offset in the content)
///   rule       RULE_HEADER_SIZE bytes of fields, then CONDITION_COUNT conditions
///   condition  CONDITION_HEADER_SIZE bytes of fields, then SET_LENGTH values of SET_VALUE_SIZE
///   members    MEMBER_COUNT addresses at MEMBERS_AT
library PolicyLayout {
    // ------------------------------------------------------------------ header
    uint256 internal constant CONTENT_ID = 0 << 8 | 4;
    uint256 internal constant POLICY_HASH = 4 << 8 | 32;
    uint256 internal constant CLASS_COUNT = 36 << 8 | 1;
    uint256 internal constant RULE_COUNT = 37 << 8 | 1;
    uint256 internal constant MEMBER_COUNT = 38 << 8 | 1;
    /// @dev The longest delay of the classes (not recovery).
    uint256 internal constant MAX_DELAY = 39 << 8 | 4;
    uint256 internal constant MEMBERS_AT = 43 << 8 | 2;
    uint256 internal constant HEADER_SIZE = 45;

    /// @dev An entry of the class table and a class's rule list: an offset in the content.
    uint256 internal constant TABLE_ENTRY = 0 << 8 | 2;
    uint256 internal constant RULE_AT = 0 << 8 | 2;
    uint256 internal constant OFFSET_SIZE = 2;

    // ------------------------------------------------------------------ index entry
    uint256 internal constant ENTRY_KEY = 0 << 8 | 24;
    uint256 internal constant ENTRY_CLASS = 24 << 8 | 1;
    uint256 internal constant ENTRY_RULE = 25 << 8 | 1;
    uint256 internal constant ENTRY_RULE_AT = 26 << 8 | 2;
    uint256 internal constant ENTRY_SIZE = 28;

    // ------------------------------------------------------------------ class
    uint256 internal constant THRESHOLD = 0 << 8 | 1;
    uint256 internal constant SIGNER_COUNT = 1 << 8 | 1;
    uint256 internal constant GUARDIAN_COUNT = 2 << 8 | 1;
    uint256 internal constant CLASS_RULE_COUNT = 3 << 8 | 1;
    uint256 internal constant DELAY = 4 << 8 | 4;
    uint256 internal constant EXPIRY_WINDOW = 8 << 8 | 4;
    /// @dev Bitmask of the classes this one is at least as strict as.
    uint256 internal constant DOMINATES = 12 << 8 | 2;
    uint256 internal constant NAME = 14 << 8 | 32;
    uint256 internal constant CLASS_HEADER_SIZE = 46;
    /// @dev A signer, guardian or member.
    uint256 internal constant ADDRESS = 0 << 8 | 20;
    uint256 internal constant ADDRESS_SIZE = 20;

    // ------------------------------------------------------------------ rule
    /// @dev 1-based argument word an agent's allowance is charged with; 0 = none.
    uint256 internal constant SPEND_ARG = 0 << 8 | 1;
    uint256 internal constant ACTION_WORDS = 1 << 8 | 1;
    uint256 internal constant CONDITION_COUNT = 2 << 8 | 1;
    uint256 internal constant ACTION_TYPE_HASH = 3 << 8 | 32;
    uint256 internal constant RULE_TARGET = 35 << 8 | 20;
    uint256 internal constant RULE_SELECTOR = 55 << 8 | 4;
    uint256 internal constant RULE_HEADER_SIZE = 59;

    // ------------------------------------------------------------------ condition
    uint256 internal constant OP = 0 << 8 | 1;
    uint256 internal constant ARG = 1 << 8 | 1;
    uint256 internal constant FIELD = 2 << 8 | 1;
    uint256 internal constant SUBJECT = 3 << 8 | 1;
    uint256 internal constant SET_LENGTH = 4 << 8 | 1;
    uint256 internal constant VALUE = 5 << 8 | 32;
    uint256 internal constant CONDITION_HEADER_SIZE = 37;
    uint256 internal constant SET_VALUE = 0 << 8 | 32;
    uint256 internal constant SET_VALUE_SIZE = 32;

    /// @notice Where the bytes of `b` start in memory: the writer builds a content in a `bytes` buffer.
    function pointer(bytes memory b) internal pure returns (uint256 at) {
        // A memory address has no Solidity form: the bytes follow the array's length word.
        assembly ("memory-safe") {
            at := add(b, 32)
        }
    }

    /// @notice Field `field` of the record at memory address `record`.
    function get(uint256 record, uint256 field) internal pure returns (uint256 v) {
        uint256 at = record + (field >> 8);
        uint256 bits = (field & 0xff) << 3;
        // Memory is addressed only from assembly: one MLOAD and a shift read any field (every reader uses this).
        assembly ("memory-safe") {
            v := shr(sub(256, bits), mload(at))
        }
    }

    /// @notice Writes `value` (its low bytes) into field `field` of the record at memory address `record`, leaving
    /// the bytes around it as they are. The caller provides 32 bytes of room after the field.
    function set(uint256 record, uint256 field, uint256 value) internal pure {
        uint256 at = record + (field >> 8);
        uint256 shift = 256 - ((field & 0xff) << 3);
        uint256 mask = type(uint256).max >> (256 - ((field & 0xff) << 3)) << shift;
        // Memory is addressed only from assembly: a read-modify-write of the word the field starts in.
        assembly ("memory-safe") {
            mstore(at, or(and(mload(at), not(mask)), and(shl(shift, value), mask)))
        }
    }
}
