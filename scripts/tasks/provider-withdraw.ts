// provider:withdraw — settle VMs (optional) and withdraw a provider's earnings.
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { resolveSigner } from "../lib/accounts.ts";
import { eventsIn, mined, openNovaCron } from "../lib/contracts.ts";
import { command, runTask, UserError } from "../lib/errors.ts";
import { formatTokens, parseInteger } from "../lib/format.ts";
import { readVms } from "./vm-list.ts";

export interface ProviderWithdrawArgs {
  settle: string | undefined;
  from: string | undefined;
}

export interface ProviderWithdrawResult {
  provider: string;
  settled: bigint;
  amount: bigint;
  txHash: string | undefined;
}

/** `""` -> [], `"1,2, 3"` -> [1n, 2n, 3n]; `"all"` is resolved by the caller. */
export function parseIdList(text: string): bigint[] {
  return text
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "")
    .map((part) => {
      if (!/^\d+$/.test(part)) throw new UserError(`--settle takes VM ids like 1,2,3 or "all", got "${text}".`);
      return parseInteger(part, "--settle", { min: 1n });
    });
}

export default async function providerWithdraw(args: ProviderWithdrawArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<ProviderWithdrawResult> => {
    const settleOption = args.settle?.trim() ?? "";
    const settleAll = settleOption.toLowerCase() === "all";
    const listed = settleAll ? [] : parseIdList(settleOption);
    const s = await openNovaCron(hre);
    const signer = await resolveSigner(s.ethers, args.from, "providerOwner");
    if (!(await s.providerRegistry.isRegistered(signer.address))) {
      throw new UserError(
        `${signer.address} is not a registered provider, so it has no earnings.`,
        "Pass --from with the provider's owner address (the demo provider is account #1).",
      );
    }
    const ids = settleAll
      ? (await readVms(s.vmRegistry, { provider: signer.address })).filter((vm) => vm.state === "Running").map((vm) => vm.id)
      : listed;

    let settled = 0n;
    for (const id of ids) {
      const receipt = await mined(`settle(${id})`, await s.vmRegistry.connect(signer).settle(id));
      // The provider's share: what left the deposit minus the platform fee.
      const amount = eventsIn(receipt, s.vmRegistry, "VmSettled").reduce((sum, e) => sum + (e.args["amount"] as bigint) - (e.args["fee"] as bigint), 0n);
      settled += amount;
      console.log(`  VM ${id}: ${amount > 0n ? `settled ${formatTokens(amount)}` : "nothing due (not Running, or settled already)"}`);
    }

    const earnings = await s.vmRegistry.earningsOf(signer.address);
    if (earnings === 0n) {
      console.log(`Nothing to withdraw: provider ${signer.address} has no settled earnings.`);
      console.log(
        `Running VMs pay as they are touched (stop, terminate, settle). Settle them first with ` +
          `\`${command({ network: hre.globalOptions.network }, "provider:withdraw --settle all")}\` (or --settle 1,2,3).`,
      );
      return { provider: signer.address, settled, amount: 0n, txHash: undefined };
    }
    const tx = await s.vmRegistry.connect(signer).withdrawEarnings();
    const receipt = await mined("withdrawEarnings", tx);
    const amount = eventsIn(receipt, s.vmRegistry, "EarningsWithdrawn").reduce((sum, e) => sum + (e.args["amount"] as bigint), 0n);
    console.log(`Withdrew ${formatTokens(amount)} to ${signer.address}`);
    return { provider: signer.address, settled, amount, txHash: tx.hash };
  });
}
