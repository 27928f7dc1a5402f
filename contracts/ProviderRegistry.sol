// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {Resources, Prices} from "./types/Resources.sol";

/// @title ProviderRegistry
/// @notice Providers register with a stake, a region, declared capacity, prices and an operator key.
/// @dev Stake can only grow here; unstaking with a thaw period and slashing arrive with the marketplace.
contract ProviderRegistry is IProviderRegistry {
    using SafeERC20 for IERC20;

    IERC20 private immutable _stakeToken;
    uint256 private immutable _minimumStake;

    mapping(address provider => Provider) private _providers;
    mapping(address operator => address provider) private _providerOfOperator;

    constructor(IERC20 stakeToken_, uint256 minimumStake_) {
        _stakeToken = stakeToken_;
        _minimumStake = minimumStake_;
    }

    modifier onlyRegistered() {
        if (_providers[msg.sender].operator == address(0)) revert ProviderRegistryNotRegistered(msg.sender);
        _;
    }

    /// @inheritdoc IProviderRegistry
    function register(
        address operator,
        bytes32 region,
        Resources calldata capacity,
        Prices calldata prices,
        string calldata metadataCid,
        uint256 stake
    ) external {
        if (_providers[msg.sender].operator != address(0)) revert ProviderRegistryAlreadyRegistered(msg.sender);
        if (stake < _minimumStake) revert ProviderRegistryStakeTooLow(stake, _minimumStake);
        _checkOffer(region, capacity);

        Provider storage provider = _providers[msg.sender];
        _assignOperator(provider, operator);
        provider.capacity = capacity;
        provider.prices = prices;
        provider.region = region;
        provider.stake = stake;
        provider.metadataCid = metadataCid;

        emit ProviderRegistered(msg.sender, operator, region, capacity, prices, metadataCid, stake);
        _stakeToken.safeTransferFrom(msg.sender, address(this), stake);
    }

    /// @inheritdoc IProviderRegistry
    function setOperator(address newOperator) external onlyRegistered {
        Provider storage provider = _providers[msg.sender];
        address previous = provider.operator;
        delete _providerOfOperator[previous];
        _assignOperator(provider, newOperator);
        emit ProviderOperatorChanged(msg.sender, previous, newOperator);
    }

    /// @inheritdoc IProviderRegistry
    function updateOffer(bytes32 region, Resources calldata capacity, Prices calldata prices, string calldata metadataCid)
        external
        onlyRegistered
    {
        _checkOffer(region, capacity);
        Provider storage provider = _providers[msg.sender];
        provider.capacity = capacity;
        provider.prices = prices;
        provider.region = region;
        provider.metadataCid = metadataCid;
        emit ProviderOfferUpdated(msg.sender, region, capacity, prices, metadataCid);
    }

    /// @inheritdoc IProviderRegistry
    function addStake(uint256 amount) external onlyRegistered {
        if (amount == 0) revert ProviderRegistryZeroAmount();
        uint256 total = _providers[msg.sender].stake + amount;
        _providers[msg.sender].stake = total;
        emit ProviderStakeAdded(msg.sender, amount, total);
        _stakeToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IProviderRegistry
    function getProvider(address provider) external view returns (Provider memory) {
        Provider memory record = _providers[provider];
        if (record.operator == address(0)) revert ProviderRegistryNotRegistered(provider);
        return record;
    }

    /// @inheritdoc IProviderRegistry
    function isRegistered(address provider) external view returns (bool) {
        return _providers[provider].operator != address(0);
    }

    /// @inheritdoc IProviderRegistry
    function operatorOf(address provider) external view returns (address) {
        return _providers[provider].operator;
    }

    /// @inheritdoc IProviderRegistry
    function providerOfOperator(address operator) external view returns (address) {
        return _providerOfOperator[operator];
    }

    /// @inheritdoc IProviderRegistry
    function quote(address provider, Resources calldata resources)
        external
        view
        returns (bool registered, Resources memory capacity, uint256 pricePerSecond)
    {
        Provider storage record = _providers[provider];
        registered = record.operator != address(0);
        capacity = record.capacity;
        Prices memory p = record.prices;
        // Three products of a uint64 and a uint32 cannot overflow uint256.
        pricePerSecond = uint256(p.perVcpuSecond) * resources.vcpu + uint256(p.perMemoryMiBSecond) * resources.memoryMiB
            + uint256(p.perDiskGiBSecond) * resources.diskGiB;
    }

    /// @inheritdoc IProviderRegistry
    function minimumStake() external view returns (uint256) {
        return _minimumStake;
    }

    /// @inheritdoc IProviderRegistry
    function stakeToken() external view returns (address) {
        return address(_stakeToken);
    }

    /// @dev The operator is a hot key on a server: it must not be the owner's cold key, and one key
    /// serves one provider so that `providerOfOperator` is unambiguous.
    function _assignOperator(Provider storage provider, address operator) private {
        if (operator == address(0) || operator == msg.sender) revert ProviderRegistryInvalidOperator(operator);
        address holder = _providerOfOperator[operator];
        if (holder != address(0)) revert ProviderRegistryOperatorTaken(operator, holder);
        provider.operator = operator;
        _providerOfOperator[operator] = msg.sender;
    }

    function _checkOffer(bytes32 region, Resources calldata capacity) private pure {
        if (region == bytes32(0)) revert ProviderRegistryInvalidRegion();
        if (capacity.vcpu == 0 || capacity.memoryMiB == 0 || capacity.diskGiB == 0) {
            revert ProviderRegistryZeroCapacity(capacity.vcpu, capacity.memoryMiB, capacity.diskGiB);
        }
    }
}
