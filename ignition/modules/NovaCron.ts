import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { id, ZeroAddress } from "ethers";

/** 10^18: CreditToken has 18 decimals. */
const TOKEN = 10n ** 18n;
const PROPOSER_ROLE = id("PROPOSER_ROLE");
const CANCELLER_ROLE = id("CANCELLER_ROLE");
const DEFAULT_ADMIN_ROLE = "0x" + "00".repeat(32);

/**
 * The NovaCron DCP core: the payment/stake/vote token, platform governance (Governor + TimelockController over
 * CreditToken votes), the provider registry and the VM registry (the marketplace). The timelock owns every
 * platform parameter and is the fee treasury; after deployment nobody else holds a role on it.
 *
 *   npx hardhat ignition deploy ignition/modules/NovaCron.ts --network localhost
 *
 * Parameters (pass with --parameters FILE.json, e.g. {"NovaCron": {"minimumStake": "5000000000000000000000"}}):
 * - initialSupply: CreditToken minted once to account #0 (default 1,000,000,000 NCC).
 * - minimumStake: stake a provider must lock to register, bid and take leases (default 1,000 NCC).
 * - thawPeriod (s, default 7 days), slashBps (default 1,000 = 10% of stake per missed deadline).
 * - feeBps (default 100 = 1%), bidWindow (s, 300), provisioningTimeout (s, 1 hour), gracePeriod (s, 1 day),
 *   lowBalanceHorizon (s, 1 hour), exitNotice (s, 1 day).
 * - timelockDelay (s, default 1 hour), votingDelay (blocks, 1), votingPeriod (blocks, 50), proposalThreshold (0),
 *   quorumPercent (4). These defaults suit a local chain; production deployments pass days, not minutes.
 *
 * Future ids: "NovaCron#CreditToken", "NovaCron#ProviderRegistry", "NovaCron#VmRegistry",
 * "NovaCron#NovaCronGovernor" and "NovaCron#NovaCronTimelock"; scripts/lib/deployment.ts reads them.
 */
export default buildModule("NovaCron", (m) => {
  const deployer = m.getAccount(0);
  const initialSupply = m.getParameter("initialSupply", 1_000_000_000n * TOKEN);
  const minimumStake = m.getParameter("minimumStake", 1_000n * TOKEN);
  const thawPeriod = m.getParameter("thawPeriod", 7 * 86_400);
  const slashBps = m.getParameter("slashBps", 1_000);
  const feeBps = m.getParameter("feeBps", 100);
  const bidWindow = m.getParameter("bidWindow", 300);
  const provisioningTimeout = m.getParameter("provisioningTimeout", 3_600);
  const gracePeriod = m.getParameter("gracePeriod", 86_400);
  const lowBalanceHorizon = m.getParameter("lowBalanceHorizon", 3_600);
  const exitNotice = m.getParameter("exitNotice", 86_400);
  const timelockDelay = m.getParameter("timelockDelay", 3_600);
  const votingDelay = m.getParameter("votingDelay", 1);
  const votingPeriod = m.getParameter("votingPeriod", 50);
  const proposalThreshold = m.getParameter("proposalThreshold", 0n);
  const quorumPercent = m.getParameter("quorumPercent", 4);

  const creditToken = m.contract("CreditToken", [deployer, initialSupply]);
  // Anyone may execute a proposal once its delay has passed; only the governor proposes and cancels.
  const timelock = m.contract("NovaCronTimelock", [timelockDelay, [], [ZeroAddress], deployer]);
  const governor = m.contract("NovaCronGovernor", [
    creditToken,
    timelock,
    votingDelay,
    votingPeriod,
    proposalThreshold,
    quorumPercent,
  ]);
  const grantProposer = m.call(timelock, "grantRole", [PROPOSER_ROLE, governor], { id: "GrantProposer" });
  const grantCanceller = m.call(timelock, "grantRole", [CANCELLER_ROLE, governor], { id: "GrantCanceller" });

  const providerRegistry = m.contract("ProviderRegistry", [creditToken, timelock, [minimumStake, thawPeriod, slashBps]]);
  const vmRegistry = m.contract("VmRegistry", [
    creditToken,
    providerRegistry,
    timelock,
    [timelock, feeBps, bidWindow, provisioningTimeout, gracePeriod, lowBalanceHorizon, exitNotice],
  ]);
  m.call(providerRegistry, "bindVmRegistry", [vmRegistry]);
  // The deployer gives up the timelock's admin role: from here on only proposals change parameters.
  m.call(timelock, "renounceRole", [DEFAULT_ADMIN_ROLE, deployer], { after: [grantProposer, grantCanceller] });

  return { creditToken, providerRegistry, vmRegistry, governor, timelock };
});
