// Who does what on the local node. `npx hardhat node` unlocks 20 accounts derived from Hardhat's
// public test mnemonic; the demo gives the first five fixed roles. `--from` overrides the role with
// any account the node manages, by address or by index (`--from 5` or `--from #5`).
import { HDNodeWallet, getAddress, isAddress } from "ethers";
import type { HardhatEthers, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { UserError } from "./errors.ts";

/** Account index of each demo role on the local node. */
export const ROLE_INDEX = {
  /** Deploys the contracts and holds the CreditToken supply (the treasury). */
  deployer: 0,
  /** Owns the demo provider: its stake and earnings (the "cold" key). */
  providerOwner: 1,
  /** The demo provider's operator: the daemon's hot key. */
  providerOperator: 2,
  /** First demo tenant: the default sender of vm:* tasks. */
  tenant: 3,
  /** Second demo tenant. */
  secondTenant: 4,
} as const;

export type Role = keyof typeof ROLE_INDEX;

export const TENANT_INDEXES: readonly number[] = [ROLE_INDEX.tenant, ROLE_INDEX.secondTenant];

/**
 * Hardhat's well-known development mnemonic. Its keys are PUBLIC: anything sent to them on a real
 * network is stolen at once. Only for the local demo chain.
 */
export const HARDHAT_DEV_MNEMONIC = "test test test test test test test test test test test junk";

/** The well-known development key of account `index` (public knowledge; local demo only). */
export function devPrivateKey(index: number): string {
  return HDNodeWallet.fromPhrase(HARDHAT_DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`).privateKey;
}

/** The signers the connected node (or the network config) provides, in order. */
export async function nodeSigners(ethers: HardhatEthers): Promise<HardhatEthersSigner[]> {
  return await ethers.getSigners();
}

/** The signer of a demo role. */
export async function roleSigner(ethers: HardhatEthers, role: Role): Promise<HardhatEthersSigner> {
  const signers = await nodeSigners(ethers);
  const signer = signers[ROLE_INDEX[role]];
  if (signer === undefined) {
    throw new UserError(
      `This network provides ${signers.length} account(s), so there is no account #${ROLE_INDEX[role]} (${role}).`,
      "Pass --from with an account this network can sign for.",
    );
  }
  return signer;
}

/** Parses `5` or `#5` as an account index, else `undefined`. */
function accountIndex(text: string): number | undefined {
  const match = /^#?(\d{1,4})$/.exec(text.trim());
  return match?.[1] !== undefined ? Number(match[1]) : undefined;
}

/**
 * The signer for `--from`: an address or index of an account the node manages; the role's account
 * when `from` is empty.
 */
export async function resolveSigner(ethers: HardhatEthers, from: string | undefined, role: Role): Promise<HardhatEthersSigner> {
  if (from === undefined || from.trim() === "") return await roleSigner(ethers, role);
  const signers = await nodeSigners(ethers);
  const index = accountIndex(from);
  if (index !== undefined) {
    const signer = signers[index];
    if (signer === undefined) throw new UserError(`--from ${from}: this network provides only ${signers.length} account(s).`);
    return signer;
  }
  if (!isAddress(from.trim())) throw new UserError(`--from must be an address or an account index, got "${from}".`);
  const address = getAddress(from.trim());
  const signer = signers.find((s) => s.address === address);
  if (signer === undefined) {
    throw new UserError(
      `--from ${address} is not an account this network can sign for.`,
      "On the local node use one of its 20 unlocked accounts (`--from 5` picks account #5); " +
        "for other networks configure `accounts` for the network in hardhat.config.ts (e.g. with the keystore plugin).",
    );
  }
  return signer;
}

/** An address option (`--provider`, `--owner`): an address or a node account index; the role's address when empty. */
export async function resolveAddress(ethers: HardhatEthers, text: string | undefined, what: string, role?: Role): Promise<string> {
  if (text === undefined || text.trim() === "") {
    if (role === undefined) throw new UserError(`${what} is required.`);
    return (await roleSigner(ethers, role)).address;
  }
  const index = accountIndex(text);
  if (index !== undefined) {
    const signer = (await nodeSigners(ethers))[index];
    if (signer === undefined) throw new UserError(`${what} ${text}: this network provides no account #${index}.`);
    return signer.address;
  }
  if (!isAddress(text.trim())) throw new UserError(`${what} must be an address or an account index, got "${text}".`);
  return getAddress(text.trim());
}

/** The signer for `address` when this network can sign for it, else `undefined`. */
export async function signerFor(ethers: HardhatEthers, address: string): Promise<HardhatEthersSigner | undefined> {
  return (await nodeSigners(ethers)).find((s) => s.address === getAddress(address));
}
