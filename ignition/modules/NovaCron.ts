import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/** 10^18: CreditToken has 18 decimals. */
const TOKEN = 10n ** 18n;

/**
 * The NovaCron DCP core: the payment/stake token, the provider registry and the VM registry.
 *
 *   npx hardhat ignition deploy ignition/modules/NovaCron.ts --network localhost
 *
 * Parameters (pass with --parameters FILE.json, e.g. {"NovaCron": {"minimumStake": "5000000000000000000000"}}):
 * - initialSupply: CreditToken minted once to account #0 (default 1,000,000,000 NCC).
 * - minimumStake: stake a provider must lock to register (default 1,000 NCC).
 *
 * Future ids are "NovaCron#CreditToken", "NovaCron#ProviderRegistry" and "NovaCron#VmRegistry";
 * scripts/lib/deployment.ts reads them from deployed_addresses.json.
 */
export default buildModule("NovaCron", (m) => {
  const deployer = m.getAccount(0);
  const initialSupply = m.getParameter("initialSupply", 1_000_000_000n * TOKEN);
  const minimumStake = m.getParameter("minimumStake", 1_000n * TOKEN);

  const creditToken = m.contract("CreditToken", [deployer, initialSupply]);
  const providerRegistry = m.contract("ProviderRegistry", [creditToken, minimumStake]);
  const vmRegistry = m.contract("VmRegistry", [creditToken, providerRegistry]);

  return { creditToken, providerRegistry, vmRegistry };
});
