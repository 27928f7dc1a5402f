// Deploys NovaCron with Ignition and prepares the local demo: funded tenants and one registered
// provider. Used by scripts/deploy-local.ts (which `npm start` runs) and by tests.
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";
import type { Provider } from "ethers";
import type { NetworkConnection } from "hardhat/types/network";
import NovaCronModule from "../ignition/modules/NovaCron.ts";
import { ROLE_INDEX, TENANT_INDEXES } from "./lib/accounts.ts";
import { getContracts, mined } from "./lib/contracts.ts";
import type { NovaCronAddresses } from "./lib/deployment.ts";
import { formatPrice, formatTokens, regionToBytes32 } from "./lib/format.ts";
import { ensureAllowance } from "./lib/token.ts";

const TOKEN = 10n ** 18n;

export interface DemoOptions {
  /** NCC each demo tenant (#3, #4) should hold. */
  tenantFunding: bigint;
  region: string;
  capacity: { vcpu: number; memoryMiB: number; diskGiB: number };
  /** Wei per unit per second. */
  prices: { perVcpuSecond: bigint; perMemoryMiBSecond: bigint; perDiskGiBSecond: bigint };
  stake: bigint;
  metadataCid: string;
  /** Progress lines; stderr by default so stdout stays machine-readable. */
  log: (line: string) => void;
}

/**
 * The demo provider's offer. Prices are chosen so that examples/hello.json
 * (1 vCPU, 128 MiB, 1 GiB) costs 0.0006 + 128 × 0.0000025 + 0.00008 = 0.001 NCC per second (3.6 NCC/h),
 * so the default 100 NCC deposit lasts about 27.8 hours.
 */
export const DEMO_DEFAULTS: DemoOptions = {
  tenantFunding: 10_000n * TOKEN,
  region: "local-dev-1",
  capacity: { vcpu: 16, memoryMiB: 32_768, diskGiB: 200 },
  prices: {
    perVcpuSecond: 600_000_000_000_000n, // 0.0006 NCC
    perMemoryMiBSecond: 2_500_000_000_000n, // 0.0000025 NCC
    perDiskGiBSecond: 80_000_000_000_000n, // 0.00008 NCC
  },
  stake: 1_000n * TOKEN,
  metadataCid: "",
  log: (line) => console.error(line),
};

export interface DemoAccounts {
  deployer: string;
  providerOwner: string;
  providerOperator: string;
  tenants: string[];
}

/**
 * Funds the demo tenants from the deployer and registers the demo provider (owner #1, operator #2, which accepts
 * the role). Idempotent: tenants already holding `tenantFunding`, an already registered provider and an already
 * accepted operator are skipped.
 */
export async function setupDemo(
  ethers: HardhatEthers,
  addresses: NovaCronAddresses,
  options: Partial<DemoOptions> = {},
): Promise<DemoAccounts> {
  const opts: DemoOptions = { ...DEMO_DEFAULTS, ...options };
  const { log } = opts;
  const print = (line: string) => log(`  ${line}`);
  const signers = await ethers.getSigners();
  const need = Math.max(ROLE_INDEX.providerOperator, ...TENANT_INDEXES) + 1;
  if (signers.length < need) throw new Error(`The demo needs ${need} accounts; this network provides ${signers.length}.`);
  const at = (i: number) => signers[i]!;
  const deployer = at(ROLE_INDEX.deployer);
  const owner = at(ROLE_INDEX.providerOwner);
  const operator = at(ROLE_INDEX.providerOperator);
  const tenants = TENANT_INDEXES.map(at);
  const { creditToken, providerRegistry } = await getContracts(ethers, addresses);
  const token = creditToken.connect(deployer);

  for (const tenant of tenants) {
    const balance = await creditToken.balanceOf(tenant.address);
    if (balance >= opts.tenantFunding) {
      log(`tenant ${tenant.address} already holds ${formatTokens(balance)}`);
      continue;
    }
    await mined(`fund tenant ${tenant.address} with ${formatTokens(opts.tenantFunding - balance)}`, await token.transfer(tenant.address, opts.tenantFunding - balance), print);
  }

  if (await providerRegistry.isRegistered(owner.address)) {
    log(`provider ${owner.address} is already registered`);
  } else {
    const balance = await creditToken.balanceOf(owner.address);
    if (balance < opts.stake) {
      await mined(`fund provider ${owner.address} with ${formatTokens(opts.stake - balance)}`, await token.transfer(owner.address, opts.stake - balance), print);
    }
    await ensureAllowance(creditToken, owner, addresses.providerRegistry, opts.stake, print);
    const tx = await providerRegistry
      .connect(owner)
      .register(operator.address, regionToBytes32(opts.region), opts.capacity, opts.prices, opts.metadataCid, opts.stake);
    await mined(`register provider ${owner.address} (operator ${operator.address}, region ${opts.region})`, tx, print);
    const [, , helloPrice] = await providerRegistry.quote(owner.address, { vcpu: 1, memoryMiB: 128, diskGiB: 1 });
    log(`provider registered; examples/hello.json costs ${formatPrice(helloPrice)} there`);
  }
  // The nominated operator takes the role itself (an operator key serves a provider only once it accepted).
  if ((await providerRegistry.operatorOf(owner.address)) === operator.address) {
    log(`operator ${operator.address} already operates the provider`);
  } else if ((await providerRegistry.pendingOperatorOf(owner.address)) === operator.address) {
    await mined(`operator ${operator.address} accepts the role`, await providerRegistry.connect(operator).acceptOperator(owner.address), print);
  } else {
    throw new Error(`The demo provider ${owner.address} neither has nor nominated operator ${operator.address}; redeploy the local chain.`);
  }

  return {
    deployer: deployer.address,
    providerOwner: owner.address,
    providerOperator: operator.address,
    tenants: tenants.map((t) => t.address),
  };
}

export interface DeployNovaCronOptions {
  /** Module parameters (see ignition/modules/NovaCron.ts). */
  parameters?: { initialSupply?: bigint; minimumStake?: bigint };
  /** Hardhat's paths; default: those of the running Hardhat (`npx hardhat run`/`test`). */
  paths?: { ignition: string; cache: string };
  log?: (line: string) => void;
}

export interface NovaCronDeployment {
  chainId: number;
  addresses: NovaCronAddresses;
  /** The block that created CreditToken, the first of the three contracts: event scans start here. */
  deployBlock: number;
}

/**
 * Deploys (or finds, when already deployed) the NovaCron Ignition module through `connection.ignition`.
 * On an http network the deployment is recorded in ignition/deployments/chain-<id>/, where the tasks
 * look for it; on an in-process network nothing is written.
 */
export async function deployNovaCron(connection: NetworkConnection, options: DeployNovaCronOptions = {}): Promise<NovaCronDeployment> {
  const log = options.log ?? ((line: string) => console.error(line));
  const paths = options.paths ?? (await import("hardhat")).default.config.paths;
  const chainId = Number(await connection.provider.request({ method: "eth_chainId" }));
  // Tests that run their own nodes beside `npm start` deploy under their own id so the journals never mix.
  const deploymentId = process.env.NOVACRON_DEPLOYMENT_ID ?? `chain-${chainId}`;
  if (chainId === 31337 && connection.networkConfig.type === "http") {
    await forgetDeploymentOfPreviousNode(connection, paths, deploymentId, log);
  }
  const parameters: Record<string, bigint> = {};
  if (options.parameters?.initialSupply !== undefined) parameters["initialSupply"] = options.parameters.initialSupply;
  if (options.parameters?.minimumStake !== undefined) parameters["minimumStake"] = options.parameters.minimumStake;

  log(`deploying the NovaCron module with Ignition to chain ${chainId} (${connection.networkName})`);
  const result = await connection.ignition.deploy(NovaCronModule, { parameters: { NovaCron: parameters }, displayUi: false, deploymentId });
  const addresses: NovaCronAddresses = {
    creditToken: await result.creditToken.getAddress(),
    providerRegistry: await result.providerRegistry.getAddress(),
    vmRegistry: await result.vmRegistry.getAddress(),
    governor: await result.governor.getAddress(),
    timelock: await result.timelock.getAddress(),
  };
  const deployBlock = await firstBlockWithCode(connection.ethers.provider, addresses.creditToken);
  log(`  CreditToken ${addresses.creditToken}, ProviderRegistry ${addresses.providerRegistry}, VmRegistry ${addresses.vmRegistry} (from block ${deployBlock})`);
  return { chainId, addresses, deployBlock };
}

/**
 * A Hardhat node forgets its chain when it restarts, but Ignition's journal on disk remembers the old
 * deployment and would "resume" it. Like `npx hardhat ignition deploy` on chain 31337, compare the
 * node's instance id with the one recorded in cache/.hardhat-network-instances.json (the same file,
 * so the CLI and this function agree) and drop the deployment state of a previous node.
 */
async function forgetDeploymentOfPreviousNode(
  connection: NetworkConnection,
  paths: { ignition: string; cache: string },
  deploymentId: string,
  log: (line: string) => void,
): Promise<void> {
  let instanceId: string;
  try {
    ({ instanceId } = (await connection.provider.request({ method: "hardhat_metadata" })) as { instanceId: string });
  } catch {
    return; // not a Hardhat node: nothing to compare with
  }
  const instanceFile = path.join(paths.cache, ".hardhat-network-instances.json");
  const known = existsSync(instanceFile) ? (JSON.parse(await readFile(instanceFile, "utf8")) as Record<string, string>) : {};
  const deploymentDir = path.join(paths.ignition, "deployments", deploymentId);
  if (known[deploymentId] !== instanceId && existsSync(deploymentDir)) {
    log(`removing ${path.relative(process.cwd(), deploymentDir)}: it belongs to a previous run of the node`);
    await rm(deploymentDir, { recursive: true, force: true });
  }
  known[deploymentId] = instanceId;
  await mkdir(path.dirname(instanceFile), { recursive: true });
  await writeFile(instanceFile, JSON.stringify(known, null, 2));
}

/** Binary search for the block in which `address` got its code (needs the node's historical state). */
export async function firstBlockWithCode(provider: Provider, address: string): Promise<number> {
  let high = await provider.getBlockNumber();
  if ((await provider.getCode(address, high)) === "0x") throw new Error(`No code at ${address}.`);
  let low = 0;
  while (low < high) {
    const mid = Math.floor((low + high) / 2);
    if ((await provider.getCode(address, mid)) === "0x") low = mid + 1;
    else high = mid;
  }
  return low;
}
