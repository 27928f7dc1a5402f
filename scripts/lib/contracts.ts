// Typed ethers contracts for the NovaCron deployment. The types come from the TypeChain output
// that `npx hardhat compile` writes to types/ethers-contracts (type-only imports: nothing of the
// generated code runs).
import type {
  Addressable,
  ContractTransactionResponse,
  Interface,
  LogDescription,
  Signer,
  TransactionReceipt,
} from "ethers";
import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { NetworkConnection } from "hardhat/types/network";
import type { CreditToken, NovaCronGovernor, ProviderRegistry, VmRegistry } from "../../types/ethers-contracts/index.ts";
import { loadDeployment, type NovaCronAddresses } from "./deployment.ts";
import { connect } from "./network.ts";

export type { CreditToken, NovaCronGovernor, ProviderRegistry, VmRegistry };

export async function getGovernor(ethers: HardhatEthers, address: string, signer?: Signer): Promise<NovaCronGovernor> {
  return (await ethers.getContractAt("NovaCronGovernor", address, signer)) as unknown as NovaCronGovernor;
}

export interface NovaCronContracts {
  creditToken: CreditToken;
  providerRegistry: ProviderRegistry;
  vmRegistry: VmRegistry;
}

export async function getCreditToken(ethers: HardhatEthers, address: string, signer?: Signer): Promise<CreditToken> {
  return (await ethers.getContractAt("CreditToken", address, signer)) as unknown as CreditToken;
}

export async function getProviderRegistry(ethers: HardhatEthers, address: string, signer?: Signer): Promise<ProviderRegistry> {
  return (await ethers.getContractAt("ProviderRegistry", address, signer)) as unknown as ProviderRegistry;
}

export async function getVmRegistry(ethers: HardhatEthers, address: string, signer?: Signer): Promise<VmRegistry> {
  return (await ethers.getContractAt("VmRegistry", address, signer)) as unknown as VmRegistry;
}

/** All three contracts, connected to `signer` when given (else read-only through the provider). */
export async function getContracts(ethers: HardhatEthers, addresses: NovaCronAddresses, signer?: Signer): Promise<NovaCronContracts> {
  const [creditToken, providerRegistry, vmRegistry] = await Promise.all([
    getCreditToken(ethers, addresses.creditToken, signer),
    getProviderRegistry(ethers, addresses.providerRegistry, signer),
    getVmRegistry(ethers, addresses.vmRegistry, signer),
  ]);
  return { creditToken, providerRegistry, vmRegistry };
}

export interface NovaCronSession extends NovaCronContracts {
  connection: NetworkConnection;
  ethers: HardhatEthers;
  chainId: bigint;
  addresses: NovaCronAddresses;
}

/**
 * Connects to the network chosen with `--network`, finds the NovaCron deployment there and returns
 * the contracts (read-only; use `.connect(signer)` to send transactions).
 */
export async function openNovaCron(hre: HardhatRuntimeEnvironment): Promise<NovaCronSession> {
  const connection = await connect(hre);
  const { chainId, addresses } = await loadDeployment(hre, connection);
  const contracts = await getContracts(connection.ethers, addresses);
  return { connection, ethers: connection.ethers, chainId, addresses, ...contracts };
}

/** The events named `eventName` that `contract` emitted in `receipt`, decoded. */
export function eventsIn(
  receipt: TransactionReceipt,
  contract: { interface: Interface; target: string | Addressable },
  eventName: string,
): LogDescription[] {
  const address = String(contract.target).toLowerCase();
  const out: LogDescription[] = [];
  for (const log of receipt.logs) {
    if (log.address.toLowerCase() !== address) continue;
    const parsed = contract.interface.parseLog({ topics: [...log.topics], data: log.data });
    if (parsed !== null && parsed.name === eventName) out.push(parsed);
  }
  return out;
}

/**
 * Waits for a sent transaction and returns its receipt; prints `label: tx 0x…` first so the hash is
 * known even if the wait fails. Throws when the transaction reverted.
 */
export async function mined(
  label: string,
  tx: ContractTransactionResponse,
  print: (line: string) => void = console.log,
): Promise<TransactionReceipt> {
  print(`${label}: tx ${tx.hash}`);
  const receipt = await tx.wait();
  if (receipt === null) throw new Error(`${label}: transaction ${tx.hash} was dropped`);
  return receipt;
}
