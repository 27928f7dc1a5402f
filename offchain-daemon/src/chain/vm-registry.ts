import { BaseError, ContractFunctionRevertedError, type Address, type Hex } from "viem";
import { vmRegistryAbi } from "./abi.generated.ts";
import type { PublicClient } from "./clients.ts";

/** The names of `VmState` in IVmRegistry.sol, in declaration order. */
export const VM_STATES = [
  "None",
  "Requested",
  "Provisioning",
  "Running",
  "Stopped",
  "Starting",
  "Failed",
  "Terminated",
  // An open order still taking bids: no provider yet, so no daemon has anything to do.
  "Bidding",
  // The deposit ran out: billing stopped; a top-up within the grace period sends it back to Starting.
  "Suspended",
] as const;

export type VmStateName = (typeof VM_STATES)[number];

/** A VM as `VmRegistry.getVm` returns it, with the state decoded to its name. */
export type ChainVm = {
  vmId: bigint;
  owner: Address;
  provider: Address;
  state: VmStateName;
  resources: { vcpu: number; memoryMiB: number; diskGiB: number };
  manifestDigest: Hex;
  pricePerSecond: bigint;
  deposit: bigint;
  balance: bigint;
  /** Paid to the provider (after the platform fee). */
  paid: bigint;
  refunded: bigint;
  /** Platform fee taken from the billing: deposit = balance + paid + fee + refunded. */
  fee: bigint;
  failureReason: number;
};

export function isTerminal(state: VmStateName): boolean {
  return state === "Failed" || state === "Terminated";
}

/**
 * Reads one VM at `blockNumber` (default: the latest block); `undefined` when
 * the RPC does not know it there: a reorg dropped the request that created it,
 * or the node answering lags the one that served the log.
 */
export async function readVm(client: PublicClient, vmRegistry: Address, vmId: bigint, blockNumber?: bigint): Promise<ChainVm | undefined> {
  let vm;
  try {
    vm = await client.readContract({ address: vmRegistry, abi: vmRegistryAbi, functionName: "getVm", args: [vmId], blockNumber });
  } catch (error) {
    const revert = error instanceof BaseError ? error.walk((e) => e instanceof ContractFunctionRevertedError) : null;
    if (revert instanceof ContractFunctionRevertedError && revert.data?.errorName === "VmRegistryUnknownVm") return undefined;
    throw error;
  }
  const state = VM_STATES[vm.state];
  if (state === undefined) throw new Error(`VmRegistry returned unknown state ${vm.state} for VM ${vmId}; update the daemon.`);
  return {
    vmId,
    owner: vm.owner,
    provider: vm.provider,
    state,
    resources: vm.resources,
    manifestDigest: vm.manifestDigest,
    pricePerSecond: vm.pricePerSecond,
    deposit: vm.deposit,
    balance: vm.balance,
    paid: vm.paid,
    refunded: vm.refunded,
    fee: vm.fee,
    failureReason: vm.failureReason,
  };
}
