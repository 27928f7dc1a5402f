// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Resources} from "../types/Resources.sol";

/// @notice Lifecycle of a VM. `Failed` and `Terminated` are terminal.
/// Requested -> Provisioning -> Running <-> Stopped (-> Starting -> Running); any live state -> Terminated;
/// Requested / Provisioning / Starting / Running -> Failed.
enum VmState {
    None,
    Requested,
    Provisioning,
    Running,
    Stopped,
    Starting,
    Failed,
    Terminated
}

/// @title IVmRegistry
/// @notice VMs requested from a chosen provider, paid per second from an escrowed deposit.
/// Billing runs only while the VM is Running and is settled lazily on every touch.
/// For every VM: deposit = refunded to the owner + paid to the provider, to the wei.
interface IVmRegistry {
    /// @notice Everything a client needs about a VM, with billing settled up to the current block.
    /// `deposit = balance + paid + refunded` always; `balance` is 0 once the VM is terminal.
    struct VmView {
        address owner;
        address provider;
        VmState state;
        Resources resources;
        bytes32 manifestDigest;
        uint256 pricePerSecond;
        uint256 deposit;
        uint256 balance;
        uint256 paid;
        uint256 refunded;
        uint64 lastSettledAt;
        uint8 failureReason;
    }

    /// @notice A VM was requested and its deposit escrowed. The manifest is the IPFS block
    /// CIDv1(raw, sha2-256(manifestDigest)).
    event VmRequested(
        uint256 indexed vmId,
        address indexed owner,
        address indexed provider,
        bytes32 manifestDigest,
        Resources resources,
        uint256 pricePerSecond,
        uint256 deposit
    );
    /// @notice A VM moved from one state to another; `reason` is the provider's failure code for Failed, else 0.
    event VmStateChanged(
        uint256 indexed vmId, address indexed owner, address indexed provider, VmState from, VmState to, uint8 reason
    );
    /// @notice Billing was settled: `amount` moved from the VM's deposit to the provider's earnings.
    event VmSettled(
        uint256 indexed vmId, address indexed owner, address indexed provider, uint256 amount, uint256 balanceLeft
    );
    /// @notice The unused deposit went back to the owner when the VM ended.
    event VmRefunded(uint256 indexed vmId, address indexed owner, address indexed provider, uint256 amount);
    /// @notice A provider withdrew its settled earnings.
    event EarningsWithdrawn(address indexed provider, address indexed to, uint256 amount);

    /// @notice `vmId` does not exist.
    error VmRegistryUnknownVm(uint256 vmId);
    /// @notice The VM is in `current`, which does not allow this call.
    error VmRegistryUnexpectedState(uint256 vmId, VmState current);
    /// @notice Only the VM's owner may do this.
    error VmRegistryNotOwner(uint256 vmId, address caller, address owner);
    /// @notice Only the operator of the VM's provider may do this.
    error VmRegistryNotOperator(uint256 vmId, address caller, address operator);
    /// @notice A deposit must be non-zero.
    error VmRegistryZeroDeposit();
    /// @notice Every resource dimension must be non-zero.
    error VmRegistryZeroResources(uint32 vcpu, uint32 memoryMiB, uint32 diskGiB);
    /// @notice A manifest digest must be non-zero.
    error VmRegistryEmptyManifest();
    /// @notice `provider` is not a registered provider.
    error VmRegistryUnknownProvider(address provider);
    /// @notice The request does not fit in the provider's declared capacity.
    error VmRegistryExceedsCapacity(address provider, Resources requested, Resources capacity);
    /// @notice A failure report needs a non-zero reason code.
    error VmRegistryMissingFailureReason(uint256 vmId);
    /// @notice The provider has no settled earnings to withdraw.
    error VmRegistryNothingToWithdraw(address provider);

    /// @notice Requests a VM from `provider`, pulling `deposit` tokens from the caller (approve first).
    /// @dev Emits {VmRequested} and {VmStateChanged}.
    /// @return vmId The new VM's id; ids start at 1.
    function requestVm(address provider, bytes32 manifestDigest, Resources calldata resources, uint256 deposit)
        external
        returns (uint256 vmId);

    /// @notice {requestVm} with an EIP-2612 permit instead of a prior approval.
    function requestVmWithPermit(
        address provider,
        bytes32 manifestDigest,
        Resources calldata resources,
        uint256 deposit,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 vmId);

    /// @notice Operator: the provider has accepted the VM and is provisioning it (Requested -> Provisioning).
    function reportProvisioning(uint256 vmId) external;

    /// @notice Operator: the workload runs (Provisioning or Starting -> Running); billing starts now.
    function reportRunning(uint256 vmId) external;

    /// @notice Operator: the VM failed with `reason` (non-zero); billing is settled and the rest refunded.
    function reportFailed(uint256 vmId, uint8 reason) external;

    /// @notice Owner: stops a Running VM; billing pauses.
    function stopVm(uint256 vmId) external;

    /// @notice Owner: asks the provider to start a Stopped VM again (Stopped -> Starting).
    function startVm(uint256 vmId) external;

    /// @notice Owner: ends the VM for good; billing is settled and the unused deposit refunded.
    function terminateVm(uint256 vmId) external;

    /// @notice Anyone: settles a VM's billing up to now. Useful before a provider withdraws.
    function settle(uint256 vmId) external;

    /// @notice Provider owner: sends all settled earnings to the caller.
    function withdrawEarnings() external returns (uint256 amount);

    /// @notice The VM with billing settled up to the current block (a view; nothing is written).
    function getVm(uint256 vmId) external view returns (VmView memory);

    /// @notice Settled, unwithdrawn earnings of `provider`.
    function earningsOf(address provider) external view returns (uint256);

    /// @notice Number of VMs ever requested (ids 1..vmCount).
    function vmCount() external view returns (uint256);

    /// @notice The payment token.
    function paymentToken() external view returns (address);

    /// @notice The provider registry.
    function providerRegistry() external view returns (address);
}
