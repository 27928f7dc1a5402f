// provider:register — stake and register as a provider (approve, then register), nominating the operator key;
// the key accepts here when this network can sign for it, else the task prints the step to run where it is.
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { resolveAddress, resolveSigner } from "../lib/accounts.ts";
import { eventsIn, mined, openNovaCron } from "../lib/contracts.ts";
import { command, runTask, UserError } from "../lib/errors.ts";
import {
  formatResources,
  formatTokens,
  parseInteger,
  parseTokens,
  regionToBytes32,
  renderFields,
  required,
  UINT32_MAX,
  UINT64_MAX,
} from "../lib/format.ts";
import { ensureAllowance, requireBalance } from "../lib/token.ts";
import { acceptIfLocal } from "./provider-operator.ts";
import { formatUnits, ZeroAddress } from "ethers";

export interface ProviderRegisterArgs {
  operator: string | undefined;
  region: string | undefined;
  vcpu: string | undefined;
  memory: string | undefined;
  disk: string | undefined;
  priceVcpu: string | undefined;
  priceMemory: string | undefined;
  priceDisk: string | undefined;
  stake: string | undefined;
  metadata: string | undefined;
  from: string | undefined;
}

export interface ProviderRegisterResult {
  provider: string;
  /** The nominated operator key. */
  operator: string;
  /** Whether the operator accepted in this task (it can take VMs only then). */
  accepted: boolean;
  txHash: string;
  /** The acceptOperator transaction, when this network held the operator key. */
  acceptTxHash: string | undefined;
  stake: bigint;
}

export default async function providerRegister(args: ProviderRegisterArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<ProviderRegisterResult> => {
    const region = required(args.region, "--region", "eu-west-1");
    const regionCode = regionToBytes32(region);
    const capacity = {
      vcpu: parseInteger(required(args.vcpu, "--vcpu", "16"), "--vcpu", { min: 1n, max: UINT32_MAX }),
      memoryMiB: parseInteger(required(args.memory, "--memory", "32768"), "--memory", { min: 1n, max: UINT32_MAX }),
      diskGiB: parseInteger(required(args.disk, "--disk", "500"), "--disk", { min: 1n, max: UINT32_MAX }),
    };
    const prices = {
      perVcpuSecond: parseInteger(required(args.priceVcpu, "--price-vcpu", "600000000000000"), "--price-vcpu", { max: UINT64_MAX }),
      perMemoryMiBSecond: parseInteger(required(args.priceMemory, "--price-memory", "2500000000000"), "--price-memory", { max: UINT64_MAX }),
      perDiskGiBSecond: parseInteger(required(args.priceDisk, "--price-disk", "80000000000000"), "--price-disk", { max: UINT64_MAX }),
    };

    const s = await openNovaCron(hre);
    const signer = await resolveSigner(s.ethers, args.from, "providerOwner");
    const operator = await resolveAddress(s.ethers, required(args.operator, "--operator", "0xOPERATOR (the daemon's key)"), "--operator");
    const minimumStake = await s.providerRegistry.minimumStake();
    const stake = args.stake !== undefined && args.stake.trim() !== "" ? parseTokens(args.stake, "--stake") : minimumStake;
    if (stake < minimumStake) {
      throw new UserError(
        `--stake ${formatTokens(stake)} is below the minimum stake of ${formatTokens(minimumStake)}.`,
        `Pass --stake ${formatUnits(minimumStake, 18)} or more.`,
      );
    }
    if (await s.providerRegistry.isRegistered(signer.address)) {
      throw new UserError(
        `${signer.address} is already a registered provider.`,
        "Register another provider from another account with --from (e.g. --from 5 on the local node).",
      );
    }
    // The contract enforces these too; checked here so no approval is spent on a doomed registration.
    if (operator === signer.address) {
      throw new UserError(
        "--operator must differ from the provider's own (owner) address.",
        "The operator is the daemon's hot key; keep the owner key, which holds stake and earnings, off the server.",
      );
    }
    const operatorOf = await s.providerRegistry.providerOfOperator(operator);
    if (operatorOf !== ZeroAddress) {
      throw new UserError(`${operator} already operates provider ${operatorOf}.`, "Each provider needs its own operator key.");
    }
    await requireBalance(s.creditToken, signer.address, stake, "the stake");

    await ensureAllowance(s.creditToken, signer, s.addresses.providerRegistry, stake);
    const metadata = args.metadata?.trim() ?? "";
    const tx = await s.providerRegistry.connect(signer).register(operator, regionCode, capacity, prices, metadata, stake);
    const receipt = await mined("register", tx);
    if (eventsIn(receipt, s.providerRegistry, "ProviderRegistered").length === 0) {
      throw new Error(`Transaction ${tx.hash} emitted no ProviderRegistered event.`);
    }
    console.log(`Registered provider ${signer.address}`);
    console.log(
      renderFields([
        ["operator", `${operator} (nominated)`],
        ["region", region],
        ["capacity", formatResources(capacity)],
        ["prices (wei/s)", `${prices.perVcpuSecond} per vCPU, ${prices.perMemoryMiBSecond} per MiB, ${prices.perDiskGiBSecond} per GiB disk`],
        ["stake", formatTokens(stake)],
        ["metadata", metadata || "(none)"],
      ]),
    );
    const acceptTxHash = await acceptIfLocal(s, signer.address, operator, hre.globalOptions.network);
    console.log(
      `Tenants request VMs from it with \`${command({ network: hre.globalOptions.network }, `vm:request --manifest FILE --provider ${signer.address}`)}\`; ` +
        `run a daemon with the operator's key to serve them.`,
    );
    return { provider: signer.address, operator, accepted: acceptTxHash !== undefined, txHash: tx.hash, acceptTxHash, stake };
  });
}
