// provider:set-operator and provider:accept-operator — an operator key serves a provider only after it accepted:
// the owner nominates (register / setOperator), the key calls acceptOperator(provider). provider:register and
// provider:set-operator send the acceptance themselves when this network can sign for the operator; otherwise they
// print the step to run where the operator key is.
import { ZeroAddress } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { resolveAddress, resolveSigner, signerFor } from "../lib/accounts.ts";
import { eventsIn, mined, openNovaCron, type NovaCronSession } from "../lib/contracts.ts";
import { command, runTask, UserError } from "../lib/errors.ts";
import { renderFields, required } from "../lib/format.ts";

export type Args = Record<string, string | undefined>;

export interface OperatorResult {
  provider: string;
  /** The provider's operator after the task. */
  operator: string;
  /** The nominee still waiting to accept (zero when none). */
  pendingOperator: string;
  /** Whether this task sent acceptOperator. */
  accepted: boolean;
  txHashes: string[];
}

/**
 * After `provider` nominated `nominee`: sends `acceptOperator` from the nominee when this network can sign for it,
 * else prints what to run where the key is. Returns the hash of the acceptance, if sent.
 */
export async function acceptIfLocal(s: NovaCronSession, provider: string, nominee: string, network: string | undefined): Promise<string | undefined> {
  const signer = await signerFor(s.ethers, nominee);
  if (signer === undefined) {
    console.log(
      `Operator ${nominee} is nominated but not yet the operator: the provider takes no VMs until the key accepts. ` +
        `Where the operator key is, either start the daemon with it (configured for provider ${provider}; it accepts at startup) ` +
        `or run \`${command({ network }, `provider:accept-operator --provider ${provider} --from ${nominee}`)}\`.`,
    );
    return undefined;
  }
  const tx = await s.providerRegistry.connect(signer).acceptOperator(provider);
  const receipt = await mined(`acceptOperator(${provider}) from ${nominee}`, tx);
  if (eventsIn(receipt, s.providerRegistry, "ProviderOperatorChanged").length === 0) {
    throw new Error(`Transaction ${tx.hash} emitted no ProviderOperatorChanged event.`);
  }
  console.log(`Operator ${nominee} accepted: it now operates provider ${provider}.`);
  return tx.hash;
}

async function result(s: NovaCronSession, provider: string, accepted: boolean, txHashes: string[]): Promise<OperatorResult> {
  const operator = await s.providerRegistry.operatorOf(provider);
  const pendingOperator = await s.providerRegistry.pendingOperatorOf(provider);
  console.log(renderFields([["provider", provider], ["operator", operator === ZeroAddress ? "(none yet)" : operator], ["pending", pendingOperator === ZeroAddress ? "(none)" : pendingOperator]]));
  return { provider, operator, pendingOperator, accepted, txHashes };
}

/** provider:set-operator — the owner nominates a new operator key (`--operator none` withdraws a nomination). */
export async function providerSetOperator(args: Args, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<OperatorResult> => {
    const s = await openNovaCron(hre);
    const owner = await resolveSigner(s.ethers, args["from"], "providerOwner");
    const text = required(args["operator"], "--operator", "0xNEW_OPERATOR (or none to withdraw a nomination)");
    const nominee = text.trim().toLowerCase() === "none" ? ZeroAddress : await resolveAddress(s.ethers, text, "--operator");
    if (!(await s.providerRegistry.isRegistered(owner.address))) {
      throw new UserError(`${owner.address} is not a registered provider.`, "Send from the provider's owner key with --from.");
    }
    const serves = nominee === ZeroAddress ? ZeroAddress : await s.providerRegistry.providerOfOperator(nominee);
    if (serves !== ZeroAddress) {
      throw new UserError(
        `${nominee} already operates provider ${serves}.`,
        serves === owner.address ? "It is already this provider's operator; nothing to do." : "Use a key of its own for each provider.",
      );
    }
    const tx = await s.providerRegistry.connect(owner).setOperator(nominee);
    await mined(nominee === ZeroAddress ? "setOperator(none): withdraw the nomination" : `setOperator(${nominee})`, tx);
    const hashes = [tx.hash];
    const accept = nominee === ZeroAddress ? undefined : await acceptIfLocal(s, owner.address, nominee, hre.globalOptions.network);
    if (accept !== undefined) hashes.push(accept);
    return await result(s, owner.address, accept !== undefined, hashes);
  });
}

/** provider:accept-operator — the nominated key takes the operator role of --provider. */
export async function providerAcceptOperator(args: Args, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<OperatorResult> => {
    const s = await openNovaCron(hre);
    const provider = await resolveAddress(s.ethers, required(args["provider"], "--provider", "0xPROVIDER (the owner's address)"), "--provider");
    const pending = await s.providerRegistry.pendingOperatorOf(provider);
    const from = args["from"] !== undefined && args["from"].trim() !== "" ? args["from"] : pending !== ZeroAddress ? pending : undefined;
    if (from === undefined) {
      throw new UserError(
        `Provider ${provider} has no pending operator nomination.`,
        `Its owner nominates a key first: \`${command({ network: hre.globalOptions.network }, "provider:set-operator --operator 0xKEY")}\`.`,
      );
    }
    const operator = await resolveSigner(s.ethers, from, "providerOperator");
    const tx = await s.providerRegistry.connect(operator).acceptOperator(provider);
    await mined(`acceptOperator(${provider}) from ${operator.address}`, tx);
    return await result(s, provider, true, [tx.hash]);
  });
}
