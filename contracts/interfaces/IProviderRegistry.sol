// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Resources, Prices} from "../types/Resources.sol";

/// @title IProviderRegistry
/// @notice Infrastructure providers: stake, region, capacity, prices and the hot operator key
/// their daemon signs with. A provider is identified by its owner (cold key) address.
interface IProviderRegistry {
    /// @notice A provider as stored. `operator` is the daemon's key; the owner keeps the stake.
    struct Provider {
        address operator;
        Resources capacity;
        Prices prices;
        bytes32 region;
        uint256 stake;
        string metadataCid;
    }

    /// @notice Emitted once per provider when it registers.
    event ProviderRegistered(
        address indexed provider,
        address indexed operator,
        bytes32 indexed region,
        Resources capacity,
        Prices prices,
        string metadataCid,
        uint256 stake
    );
    /// @notice Emitted when a provider rotates its operator key.
    event ProviderOperatorChanged(address indexed provider, address indexed previousOperator, address indexed newOperator);
    /// @notice Emitted when a provider changes region, capacity, prices or metadata. Existing VMs keep their price.
    event ProviderOfferUpdated(
        address indexed provider, bytes32 indexed region, Resources capacity, Prices prices, string metadataCid
    );
    /// @notice Emitted when a provider adds stake.
    event ProviderStakeAdded(address indexed provider, uint256 amount, uint256 totalStake);

    /// @notice `provider` is already registered.
    error ProviderRegistryAlreadyRegistered(address provider);
    /// @notice `provider` is not registered.
    error ProviderRegistryNotRegistered(address provider);
    /// @notice The stake offered is below the minimum.
    error ProviderRegistryStakeTooLow(uint256 stake, uint256 minimumStake);
    /// @notice The operator must be a non-zero address other than the provider's owner.
    error ProviderRegistryInvalidOperator(address operator);
    /// @notice `operator` already operates `provider`; one key serves one provider.
    error ProviderRegistryOperatorTaken(address operator, address provider);
    /// @notice Declared capacity must be non-zero in every dimension.
    error ProviderRegistryZeroCapacity(uint32 vcpu, uint32 memoryMiB, uint32 diskGiB);
    /// @notice The region code must be non-zero.
    error ProviderRegistryInvalidRegion();
    /// @notice An amount must be non-zero.
    error ProviderRegistryZeroAmount();

    /// @notice Registers the caller as a provider, pulling `stake` tokens (approve first).
    /// @dev Emits a {ProviderRegistered} event.
    function register(
        address operator,
        bytes32 region,
        Resources calldata capacity,
        Prices calldata prices,
        string calldata metadataCid,
        uint256 stake
    ) external;

    /// @notice Replaces the caller's operator key. Emits a {ProviderOperatorChanged} event.
    function setOperator(address newOperator) external;

    /// @notice Replaces the caller's offer. Emits a {ProviderOfferUpdated} event.
    function updateOffer(bytes32 region, Resources calldata capacity, Prices calldata prices, string calldata metadataCid)
        external;

    /// @notice Adds `amount` to the caller's stake. Emits a {ProviderStakeAdded} event.
    function addStake(uint256 amount) external;

    /// @notice The provider record; reverts with {ProviderRegistryNotRegistered} for unknown addresses.
    function getProvider(address provider) external view returns (Provider memory);

    /// @notice Whether `provider` is registered.
    function isRegistered(address provider) external view returns (bool);

    /// @notice The operator key of `provider` (zero when unregistered).
    function operatorOf(address provider) external view returns (address);

    /// @notice The provider that `operator` operates (zero when none).
    function providerOfOperator(address operator) external view returns (address);

    /// @notice What `resources` would cost at `provider` now, in one call for the VM registry.
    /// @return registered Whether `provider` is registered (when false the other values are zero).
    /// @return capacity The provider's declared capacity.
    /// @return pricePerSecond Token wei per second for `resources` at the provider's current prices.
    function quote(address provider, Resources calldata resources)
        external
        view
        returns (bool registered, Resources memory capacity, uint256 pricePerSecond);

    /// @notice The minimum stake to register.
    function minimumStake() external view returns (uint256);

    /// @notice The token providers stake.
    function stakeToken() external view returns (address);
}
