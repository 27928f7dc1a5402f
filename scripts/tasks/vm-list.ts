// vm:list — a table of VMs, optionally filtered by owner and/or provider.
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { resolveAddress } from "../lib/accounts.ts";
import { openNovaCron, type VmRegistry } from "../lib/contracts.ts";
import { command, runTask } from "../lib/errors.ts";
import { formatTokens, renderTable, shortAddress, vmStateName, TOKEN_SYMBOL } from "../lib/format.ts";
import { formatUnits } from "ethers";

export interface VmListArgs {
  owner: string | undefined;
  provider: string | undefined;
}

export interface VmListRow {
  id: bigint;
  state: string;
  owner: string;
  provider: string;
  balance: bigint;
  paid: bigint;
  pricePerSecond: bigint;
}

/** getVm calls in flight at once. */
const BATCH = 25n;

/**
 * Reads VMs 1..vmCount with one getVm call each. That is O(number of VMs) RPC calls: fine for a
 * development tool and a local chain, not for a chain with millions of VMs, where a client would
 * index the VmRequested events (owner and provider are indexed topics) instead.
 */
export async function readVms(vmRegistry: VmRegistry, filter: { owner?: string; provider?: string } = {}): Promise<VmListRow[]> {
  const count = await vmRegistry.vmCount();
  const rows: VmListRow[] = [];
  for (let first = 1n; first <= count; first += BATCH) {
    const ids: bigint[] = [];
    for (let id = first; id <= count && id < first + BATCH; id++) ids.push(id);
    const vms = await Promise.all(ids.map((id) => vmRegistry.getVm(id)));
    vms.forEach((vm, i) => {
      if (filter.owner !== undefined && vm.owner !== filter.owner) return;
      if (filter.provider !== undefined && vm.provider !== filter.provider) return;
      rows.push({
        id: ids[i]!,
        state: vmStateName(vm.state),
        owner: vm.owner,
        provider: vm.provider,
        balance: vm.balance,
        paid: vm.paid,
        pricePerSecond: vm.pricePerSecond,
      });
    });
  }
  return rows;
}

export default async function vmList(args: VmListArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async () => {
    const s = await openNovaCron(hre);
    const owner = args.owner ? await resolveAddress(s.ethers, args.owner, "--owner") : undefined;
    const provider = args.provider ? await resolveAddress(s.ethers, args.provider, "--provider") : undefined;
    const rows = await readVms(s.vmRegistry, {
      ...(owner !== undefined && { owner }),
      ...(provider !== undefined && { provider }),
    });
    const filters = [owner && `owner ${owner}`, provider && `provider ${provider}`].filter(Boolean).join(", ");
    if (rows.length === 0) {
      console.log(
        filters
          ? `No VMs with ${filters}.`
          : `No VMs yet. Request one with \`${command({ network: hre.globalOptions.network }, "vm:request --manifest examples/hello.json")}\`.`,
      );
      return rows;
    }
    console.log(
      renderTable(
        ["ID", "STATE", "OWNER", "PROVIDER", `DEPOSIT LEFT`, `COST SO FAR`, `PRICE (${TOKEN_SYMBOL}/s)`],
        rows.map((r) => [
          String(r.id),
          r.state,
          shortAddress(r.owner),
          shortAddress(r.provider),
          formatTokens(r.balance),
          formatTokens(r.paid),
          formatUnits(r.pricePerSecond, 18),
        ]),
      ),
    );
    console.log(`\n${rows.length} VM${rows.length === 1 ? "" : "s"}${filters ? ` with ${filters}` : ""}. Details: vm:status --id N.`);
    return rows;
  });
}
