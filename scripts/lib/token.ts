// Paying with CreditToken: approvals (skipped when the allowance suffices) and EIP-2612 permits.
import { Signature, type Signer } from "ethers";
import type { CreditToken } from "./contracts.ts";
import { mined } from "./contracts.ts";
import { formatTokens } from "./format.ts";
import { UserError } from "./errors.ts";

/** Fails with a clear message when `owner` holds less than `amount`. */
export async function requireBalance(token: CreditToken, owner: string, amount: bigint, purpose: string): Promise<void> {
  const balance = await token.balanceOf(owner);
  if (balance < amount) {
    throw new UserError(
      `${owner} holds ${formatTokens(balance)} but ${purpose} needs ${formatTokens(amount)}.`,
      "Use an account with enough NCC (--from), or lower the amount. On the local node, account #0 holds the supply " +
        "and the demo tenants #3 and #4 get 10,000 NCC each.",
    );
  }
}

/** Approves `spender` for `amount` from `signer` unless the allowance already covers it. */
export async function ensureAllowance(
  token: CreditToken,
  signer: Signer,
  spender: string,
  amount: bigint,
  print: (line: string) => void = console.log,
): Promise<void> {
  const owner = await signer.getAddress();
  const allowance = await token.allowance(owner, spender);
  if (allowance >= amount) return;
  await mined(`approve ${formatTokens(amount)}`, await token.connect(signer).approve(spender, amount), print);
}

export interface Permit {
  deadline: bigint;
  v: number;
  r: string;
  s: string;
}

const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

/**
 * The EIP-712 typed data of a permit from `owner`, ready for `signTypedData`. The domain comes from
 * the token itself (ERC-5267), so its name and version are never guessed.
 */
export async function permitTypedData(token: CreditToken, owner: string, spender: string, value: bigint, deadline: bigint) {
  const { name, version, chainId, verifyingContract } = await token.eip712Domain();
  const nonce = await token.nonces(owner);
  return {
    domain: { name, version, chainId, verifyingContract },
    types: PERMIT_TYPES,
    message: { owner, spender, value, nonce, deadline },
  };
}

/**
 * Signs an EIP-2612 permit letting `spender` take `value` from the signer until `deadline`
 * (default: one hour after the latest block, since a dev chain's clock may run ahead of the wall clock).
 */
export async function signPermit(token: CreditToken, signer: Signer, spender: string, value: bigint, deadline?: bigint): Promise<Permit> {
  const provider = signer.provider;
  if (provider === null) throw new Error("The signer has no provider.");
  const latest = await provider.getBlock("latest");
  const until = deadline ?? BigInt(latest?.timestamp ?? Math.floor(Date.now() / 1000)) + 3600n;
  const { domain, types, message } = await permitTypedData(token, await signer.getAddress(), spender, value, until);
  const signature = Signature.from(await signer.signTypedData(domain, types, message));
  return { deadline: until, v: signature.v, r: signature.r, s: signature.s };
}
