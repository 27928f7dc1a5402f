// Where the NovaCron contracts live on the connected chain: the addresses Hardhat Ignition wrote
// for the NovaCron module (ignition/modules/NovaCron.ts) in
// ignition/deployments/chain-<chainId>/deployed_addresses.json.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { getAddress } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { NetworkConnection } from "hardhat/types/network";
import { UserError } from "./errors.ts";

export interface NovaCronAddresses {
  creditToken: string;
  providerRegistry: string;
  vmRegistry: string;
  /** Platform governance: the Governor (proposals, votes) and the TimelockController that owns the parameters. */
  governor: string;
  timelock: string;
}

/** Ignition future ids of the NovaCron module, as keys of deployed_addresses.json. */
export const FUTURE_IDS: Readonly<Record<keyof NovaCronAddresses, string>> = {
  creditToken: "NovaCron#CreditToken",
  providerRegistry: "NovaCron#ProviderRegistry",
  vmRegistry: "NovaCron#VmRegistry",
  governor: "NovaCron#NovaCronGovernor",
  timelock: "NovaCron#NovaCronTimelock",
};

/** The command that deploys the module by hand. */
export const DEPLOY_COMMAND = "npx hardhat ignition deploy ignition/modules/NovaCron.ts --network localhost";

/** `<ignitionDir>/deployments/chain-<chainId>`, Ignition's default deployment directory. */
export function deploymentDirectory(ignitionDir: string, chainId: bigint | number): string {
  return path.join(ignitionDir, "deployments", `chain-${chainId}`);
}

/**
 * Reads the NovaCron addresses Ignition recorded for `chainId`. Throws a {@link UserError} that says
 * how to deploy when the file or one of the module's contracts is missing.
 */
export async function readDeployedAddresses(ignitionDir: string, chainId: bigint | number): Promise<NovaCronAddresses> {
  const file = path.join(deploymentDirectory(ignitionDir, chainId), "deployed_addresses.json");
  const shown = path.relative(process.cwd(), file) || file;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    throw new UserError(
      `NovaCron is not deployed on chain ${chainId}: ${shown} does not exist.`,
      `Start the local stack with \`npm start\`, or deploy the contracts with \`${DEPLOY_COMMAND}\`.`,
    );
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new UserError(`${shown} is not valid JSON.`, `Redeploy with \`${DEPLOY_COMMAND} --reset\`.`);
  }
  const out: Partial<NovaCronAddresses> = {};
  for (const [key, futureId] of Object.entries(FUTURE_IDS) as [keyof NovaCronAddresses, string][]) {
    const value = json[futureId];
    if (typeof value !== "string") {
      throw new UserError(
        `${shown} has no "${futureId}": the NovaCron module is not (completely) deployed on chain ${chainId}.`,
        `Run \`npm start\`, or \`${DEPLOY_COMMAND}\`.`,
      );
    }
    out[key] = getAddress(value);
  }
  return out as NovaCronAddresses;
}

export interface Deployment {
  chainId: bigint;
  addresses: NovaCronAddresses;
}

/**
 * The NovaCron deployment on the chain `connection` talks to, checked to have code: a Hardhat node
 * forgets everything when it restarts, and the in-process network starts empty every time.
 */
export async function loadDeployment(hre: HardhatRuntimeEnvironment, connection: NetworkConnection): Promise<Deployment> {
  const chainId = BigInt((await connection.provider.request({ method: "eth_chainId" })) as string);
  const addresses = await readDeployedAddresses(hre.config.paths.ignition, chainId);
  const code = (await connection.provider.request({
    method: "eth_getCode",
    params: [addresses.vmRegistry, "latest"],
  })) as string;
  if (code === "0x" || code === "") {
    if (connection.networkConfig.type === "edr-simulated") {
      throw new UserError(
        `The task ran on Hardhat's in-process network "${connection.networkName}", which starts empty.`,
        "Add --network localhost to talk to the node started by `npm start` (or `npx hardhat node`).",
      );
    }
    throw new UserError(
      `No contract at the recorded VmRegistry address ${addresses.vmRegistry} on chain ${chainId}: ` +
        "the node was restarted since the deployment, or the deployment files belong to another chain.",
      `Redeploy with \`npm start\` or \`${DEPLOY_COMMAND} --reset\`.`,
    );
  }
  return { chainId, addresses };
}
