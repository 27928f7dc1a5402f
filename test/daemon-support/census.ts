// Independent witnesses of what the daemon did, for fault tests: the workload processes alive on this
// machine (read from /proc, not from the driver's own state files) and the operator's report
// transactions on-chain (read from the blocks, not from the daemon's journal).
import { decodeFunctionData, type Address } from "viem";
import { vmRegistryAbi } from "../../offchain-daemon/src/chain/abi.generated.ts";
import type { PublicClient } from "../../offchain-daemon/src/chain/clients.ts";
import { listProcesses, readEnviron } from "../../offchain-daemon/src/drivers/procfs.ts";

/**
 * For each VM id, the process groups alive under `vmsDir` that carry it in
 * their environment (HOME = <vmsDir>/<vmId>/work, as the process driver sets it).
 * More than one group for a VM is a duplicate workload.
 */
export async function workloadGroups(vmsDir: string): Promise<Map<bigint, Set<number>>> {
  const groups = new Map<bigint, Set<number>>();
  for (const proc of await listProcesses()) {
    if (proc.state === "Z") continue;
    const env = await readEnviron(proc.pid);
    const vmId = env?.get("NOVACRON_VM_ID");
    if (vmId === undefined || env!.get("HOME") !== `${vmsDir}/${vmId}/work`) continue;
    const set = groups.get(BigInt(vmId)) ?? new Set<number>();
    set.add(proc.pgid);
    groups.set(BigInt(vmId), set);
  }
  return groups;
}

export type ReportTx = { vmId: bigint; action: string; block: bigint; status: "success" | "reverted" };

/** Every VmRegistry report transaction `operator` got mined in [fromBlock, toBlock], reverted ones included. */
export async function operatorReports(client: PublicClient, vmRegistry: Address, operator: Address, fromBlock: bigint, toBlock: bigint): Promise<ReportTx[]> {
  const reports: ReportTx[] = [];
  for (let n = fromBlock; n <= toBlock; n++) {
    const block = await client.getBlock({ blockNumber: n, includeTransactions: true });
    for (const tx of block.transactions) {
      if (tx.from.toLowerCase() !== operator.toLowerCase() || tx.to?.toLowerCase() !== vmRegistry.toLowerCase()) continue;
      const call = decodeFunctionData({ abi: vmRegistryAbi, data: tx.input });
      if (!call.functionName.startsWith("report")) continue;
      const receipt = await client.getTransactionReceipt({ hash: tx.hash });
      reports.push({ vmId: (call.args as readonly [bigint])[0], action: call.functionName, block: n, status: receipt.status });
    }
  }
  return reports;
}

/** `reports` counted per VM and action: "<vmId> <action>" -> count. */
export function countReports(reports: ReportTx[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const report of reports) {
    const key = `${report.vmId} ${report.action}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}
