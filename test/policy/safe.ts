// A real Safe 1.5.0, deployed from the build artifacts of the npm package @safe-global/safe-smart-account:
// the singleton, the proxy factory and the CompatibilityFallbackHandler (which answers ERC-1271 for the Safe).
// Used as a contract signer of a PolicyAccount and as the benchmark's baseline.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { AbiCoder, Contract, ContractFactory, ZeroAddress, concat, type Signer } from "ethers";
import type { HardhatEthers, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";

const require = createRequire(import.meta.url);
const ROOT = path.dirname(require.resolve("@safe-global/safe-smart-account/package.json"));

function artifact(file: string): { abi: unknown[]; bytecode: string } {
  return JSON.parse(readFileSync(path.join(ROOT, "build/artifacts/contracts", file), "utf8")) as { abi: unknown[]; bytecode: string };
}

export const SAFE_VERSION = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;

export interface SafeDeployment {
  singleton: string;
  factory: Contract;
  handler: string;
}

async function deploy(file: string, signer: Signer): Promise<Contract> {
  const a = artifact(file);
  const c = await new ContractFactory(a.abi as never, a.bytecode, signer).deploy();
  await c.waitForDeployment();
  return c as Contract;
}

export async function deploySafeInfrastructure(deployer: Signer): Promise<SafeDeployment> {
  const singleton = await deploy("Safe.sol/Safe.json", deployer);
  const factory = await deploy("proxies/SafeProxyFactory.sol/SafeProxyFactory.json", deployer);
  const handler = await deploy("handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json", deployer);
  return { singleton: await singleton.getAddress(), factory, handler: await handler.getAddress() };
}

/** A Safe proxy with `owners` and `threshold` and the compatibility fallback handler (ERC-1271). */
export async function createSafe(
  ethers: HardhatEthers,
  infra: SafeDeployment,
  owners: string[],
  threshold: number,
  saltNonce = 0n,
): Promise<Contract> {
  const safeAbi = artifact("Safe.sol/Safe.json").abi;
  const iface = new Contract(ZeroAddress, safeAbi as never).interface;
  const setup = iface.encodeFunctionData("setup", [owners, threshold, ZeroAddress, "0x", infra.handler, ZeroAddress, 0, ZeroAddress]);
  const tx = await infra.factory.getFunction("createProxyWithNonce")(infra.singleton, setup, saltNonce);
  const receipt = await tx.wait();
  const log = receipt!.logs.map((l: { topics: string[]; data: string }) => infra.factory.interface.parseLog(l)).find((p: { name?: string } | null) => p?.name === "ProxyCreation");
  const address = log!.args[0] as string;
  return new Contract(address, safeAbi as never, ethers.provider);
}

const sortByAddress = (owners: HardhatEthersSigner[]) => [...owners].sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1));

/** The owners' signatures (r ‖ s ‖ v each, sorted by owner) that make the Safe's ERC-1271 accept `hash`. */
export async function safeMessageSignature(safe: Contract, chainId: bigint, owners: HardhatEthersSigner[], hash: string): Promise<string> {
  const domain = { chainId, verifyingContract: await safe.getAddress() };
  const types = { SafeMessage: [{ name: "message", type: "bytes" }] };
  const message = { message: AbiCoder.defaultAbiCoder().encode(["bytes32"], [hash]) };
  const sigs = await Promise.all(sortByAddress(owners).map((o) => o.signTypedData(domain, types, message)));
  return concat(sigs);
}

/** The owners' signatures for a Safe transaction (operation CALL, no refund). */
export async function safeTransactionSignature(
  safe: Contract,
  chainId: bigint,
  owners: HardhatEthersSigner[],
  tx: { to: string; value: bigint; data: string },
): Promise<string> {
  const nonce = (await safe.getFunction("nonce")()) as bigint;
  const domain = { chainId, verifyingContract: await safe.getAddress() };
  const types = {
    SafeTx: [
      { name: "to", type: "address" },
      { name: "value", type: "uint256" },
      { name: "data", type: "bytes" },
      { name: "operation", type: "uint8" },
      { name: "safeTxGas", type: "uint256" },
      { name: "baseGas", type: "uint256" },
      { name: "gasPrice", type: "uint256" },
      { name: "gasToken", type: "address" },
      { name: "refundReceiver", type: "address" },
      { name: "nonce", type: "uint256" },
    ],
  };
  const message = { ...tx, operation: 0, safeTxGas: 0, baseGas: 0, gasPrice: 0, gasToken: ZeroAddress, refundReceiver: ZeroAddress, nonce };
  const sigs = await Promise.all(sortByAddress(owners).map((o) => o.signTypedData(domain, types, message)));
  return concat(sigs);
}

/** Sends `execTransaction` for a CALL with the given signatures. */
export async function safeExec(safe: Contract, sender: Signer, tx: { to: string; value: bigint; data: string }, signatures: string) {
  return await (safe.connect(sender) as Contract).getFunction("execTransaction")(
    tx.to, tx.value, tx.data, 0, 0, 0, 0, ZeroAddress, ZeroAddress, signatures,
  );
}
