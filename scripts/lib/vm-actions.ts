// The owner's lifecycle calls (stopVm, startVm, terminateVm), shared by vm:stop, vm:start and vm:terminate.
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { resolveSigner, roleSigner, signerFor } from "./accounts.ts";
import { eventsIn, mined, openNovaCron } from "./contracts.ts";
import { command, runTask } from "./errors.ts";
import { formatTokens, parseVmId, vmStateName } from "./format.ts";

export type OwnerAction = "stop" | "start" | "terminate";

export interface OwnerActionArgs {
  id: string | undefined;
  from: string | undefined;
}

export interface OwnerActionResult {
  vmId: bigint;
  txHash: string;
  from: string;
  to: string;
  /** Moved to the provider's earnings by this transaction (billing up to now, after the platform fee). */
  settled: bigint;
  /** Returned to the owner (terminate only). */
  refunded: bigint;
}

const METHOD = { stop: "stopVm", start: "startVm", terminate: "terminateVm" } as const;

const AFTERWORD: Record<OwnerAction, string> = {
  stop: "Billing is paused; the provider's daemon stops the workload.",
  start: "The provider's daemon starts the workload again and reports Running; billing resumes then.",
  terminate: "The VM is gone for good; the provider's daemon destroys the workload.",
};

export async function runOwnerAction(action: OwnerAction, args: OwnerActionArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<OwnerActionResult> => {
    const vmId = parseVmId(args.id);
    const s = await openNovaCron(hre);
    const vm = await s.vmRegistry.getVm(vmId); // reverts with VmRegistryUnknownVm for unknown ids
    // Only the owner may act, so by default send from the owner when this network can sign for it.
    const signer =
      args.from !== undefined && args.from.trim() !== ""
        ? await resolveSigner(s.ethers, args.from, "tenant")
        : ((await signerFor(s.ethers, vm.owner)) ?? (await roleSigner(s.ethers, "tenant")));

    const registry = s.vmRegistry.connect(signer);
    const tx = await registry[METHOD[action]](vmId);
    const receipt = await mined(`${METHOD[action]}(${vmId}) from ${signer.address}`, tx);

    const changed = eventsIn(receipt, s.vmRegistry, "VmStateChanged")[0];
    const from = changed !== undefined ? vmStateName(changed.args["from"] as bigint) : vmStateName(vm.state);
    const to = changed !== undefined ? vmStateName(changed.args["to"] as bigint) : "?";
    const settled = eventsIn(receipt, s.vmRegistry, "VmSettled").reduce((sum, e) => sum + (e.args["amount"] as bigint) - (e.args["fee"] as bigint), 0n);
    const refunded = eventsIn(receipt, s.vmRegistry, "VmRefunded").reduce((sum, e) => sum + (e.args["amount"] as bigint), 0n);

    console.log(`VM ${vmId}: ${from} -> ${to}`);
    if (settled > 0n) console.log(`Paid to the provider for running time: ${formatTokens(settled)}`);
    if (action === "terminate") console.log(`Refunded to ${vm.owner}: ${formatTokens(refunded)}`);
    console.log(AFTERWORD[action]);
    if (action !== "terminate") console.log(`Follow it with \`${command({ network: hre.globalOptions.network }, `vm:status --id ${vmId}`)}\`.`);
    return { vmId, txHash: tx.hash, from, to, settled, refunded };
  });
}
