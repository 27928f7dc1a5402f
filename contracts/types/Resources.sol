// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice Compute resources of one VM or one provider's declared capacity.
/// @dev Packs into 96 bits so it shares a slot with an address.
struct Resources {
    uint32 vcpu;
    uint32 memoryMiB;
    uint32 diskGiB;
}

/// @notice A provider's prices in payment-token wei per unit per second.
/// @dev Three uint64 pack into one slot; 2^64 wei/s per unit is far above any sane price.
struct Prices {
    uint64 perVcpuSecond;
    uint64 perMemoryMiBSecond;
    uint64 perDiskGiBSecond;
}
