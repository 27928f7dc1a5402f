// vm:status — everything the chain knows about one VM.
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { failureReasonName } from "../../offchain-daemon/src/failure-reasons.ts";
import { manifestCidFromDigest } from "../../offchain-daemon/src/manifest/fetch.ts";
import { openNovaCron } from "../lib/contracts.ts";
import { runTask } from "../lib/errors.ts";
import {
  bytes32ToRegion,
  formatPrice,
  formatResources,
  formatRunway,
  formatTokens,
  parseVmId,
  renderFields,
  vmStateName,
} from "../lib/format.ts";

export interface VmStatusArgs {
  id: string | undefined;
}

export interface VmStatus {
  id: bigint;
  state: string;
  owner: string;
  provider: string;
  operator: string;
  region: string | undefined;
  manifestCid: string;
  manifestDigest: string;
  resources: { vcpu: bigint; memoryMiB: bigint; diskGiB: bigint };
  pricePerSecond: bigint;
  deposit: bigint;
  balance: bigint;
  paid: bigint;
  refunded: bigint;
  /** Platform fee taken from the billing (deposit = balance + paid + fee + refunded). */
  fee: bigint;
  lastSettledAt: bigint;
  failureReason: number;
  failureReasonName: string | undefined;
}

export default async function vmStatus(args: VmStatusArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<VmStatus> => {
    const id = parseVmId(args.id);
    const s = await openNovaCron(hre);
    const vm = await s.vmRegistry.getVm(id);
    const operator = await s.providerRegistry.operatorOf(vm.provider);
    const region = (await s.providerRegistry.isRegistered(vm.provider))
      ? bytes32ToRegion((await s.providerRegistry.getProvider(vm.provider)).region)
      : undefined;
    const failureReason = Number(vm.failureReason);
    const status: VmStatus = {
      id,
      state: vmStateName(vm.state),
      owner: vm.owner,
      provider: vm.provider,
      operator,
      region,
      manifestCid: manifestCidFromDigest(vm.manifestDigest as `0x${string}`).toString(),
      manifestDigest: vm.manifestDigest,
      resources: { vcpu: vm.resources.vcpu, memoryMiB: vm.resources.memoryMiB, diskGiB: vm.resources.diskGiB },
      pricePerSecond: vm.pricePerSecond,
      deposit: vm.deposit,
      balance: vm.balance,
      paid: vm.paid,
      refunded: vm.refunded,
      fee: vm.fee,
      lastSettledAt: vm.lastSettledAt,
      failureReason,
      failureReasonName: failureReason !== 0 ? failureReasonName(failureReason) : undefined,
    };

    const runway = status.state === "Running" ? formatRunway(status.balance, status.pricePerSecond) : undefined;
    console.log(`VM ${id}`);
    console.log(
      renderFields([
        ["state", status.state],
        ["owner", status.owner],
        ["provider", `${status.provider}${region !== undefined ? ` (region ${region})` : ""}`],
        ["operator", operator],
        ["manifest CID", status.manifestCid],
        ["manifest digest", status.manifestDigest],
        ["resources", formatResources(status.resources)],
        ["price", formatPrice(status.pricePerSecond)],
        ["deposit", formatTokens(status.deposit)],
        ["balance left", `${formatTokens(status.balance)}${runway !== undefined ? ` (runs out in ${runway})` : ""}`],
        ["paid (cost so far)", formatTokens(status.paid)],
        ["platform fee", formatTokens(status.fee)],
        ["refunded", formatTokens(status.refunded)],
        ["last settled", status.lastSettledAt === 0n ? "never (billing starts when the VM runs)" : new Date(Number(status.lastSettledAt) * 1000).toISOString()],
        ["failure reason", failureReason === 0 ? "none" : `${failureReason} (${status.failureReasonName})`],
      ]),
    );
    return status;
  });
}
