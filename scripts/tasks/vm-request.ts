// vm:request — validate a manifest, publish it to IPFS, escrow a deposit and request a VM.
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { digestFromCid } from "../../offchain-daemon/src/manifest/fetch.ts";
import { resolveAddress, resolveSigner } from "../lib/accounts.ts";
import { eventsIn, mined, openNovaCron } from "../lib/contracts.ts";
import { command, runTask, UserError } from "../lib/errors.ts";
import { formatPrice, formatResources, formatRunway, formatTokens, parseTokens, required } from "../lib/format.ts";
import { publishRaw, resolveIpfsUrl } from "../lib/ipfs.ts";
import { loadManifestFile } from "../lib/manifest.ts";
import { requireBalance, signPermit } from "../lib/token.ts";

export interface VmRequestArgs {
  manifest: string | undefined;
  provider: string | undefined;
  deposit: string;
  maxPrice: string | undefined;
  from: string | undefined;
  ipfs: string | undefined;
}

export interface VmRequestResult {
  vmId: bigint;
  cid: string;
  manifestDigest: string;
  txHash: string;
  owner: string;
  provider: string;
  maxPricePerSecond: bigint;
}

export default async function vmRequest(args: VmRequestArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<VmRequestResult> => {
    // Everything the user typed is checked before any network traffic.
    const file = required(args.manifest, "--manifest", "examples/hello.json");
    const { bytes, manifest } = await loadManifestFile(file);
    const deposit = parseTokens(args.deposit, "--deposit");
    if (deposit === 0n) throw new UserError("--deposit must be more than 0.");
    const statedMax = args.maxPrice === undefined ? undefined : parseTokens(args.maxPrice, "--max-price");
    const ipfsUrl = resolveIpfsUrl(args.ipfs);

    const s = await openNovaCron(hre);
    const signer = await resolveSigner(s.ethers, args.from, "tenant");
    const provider = await resolveAddress(s.ethers, args.provider, "--provider", "providerOwner");
    const resources = manifest.resources;

    // The contract checks these too; checking first avoids publishing for a request that cannot succeed.
    const [registered, capacity, pricePerSecond] = await s.providerRegistry.quote(provider, resources);
    if (!registered) {
      throw new UserError(
        `${provider} is not a registered provider.`,
        `Pass --provider with a provider's owner address (the demo provider is account #1), or register one with \`${command({ network: hre.globalOptions.network }, "provider:register --help")}\`.`,
      );
    }
    if (resources.vcpu > capacity.vcpu || resources.memoryMiB > capacity.memoryMiB || resources.diskGiB > capacity.diskGiB) {
      throw new UserError(
        `The manifest asks for ${formatResources(resources)}, more than provider ${provider} offers (${formatResources(capacity)}).`,
        "Lower the manifest's resources or choose another provider with --provider.",
      );
    }
    // The request carries the most the tenant pays per second: the contract refuses a higher price, so a provider
    // raising its price before the transaction is mined cannot bill more. Without --max-price, the quote just read.
    const maxPricePerSecond = statedMax ?? pricePerSecond;
    if (pricePerSecond > maxPricePerSecond) {
      throw new UserError(
        `Provider ${provider} quotes ${formatPrice(pricePerSecond)}, above --max-price ${formatPrice(maxPricePerSecond)}.`,
        "Raise --max-price or choose another provider with --provider.",
      );
    }
    await requireBalance(s.creditToken, signer.address, deposit, "the deposit");

    console.log(`Manifest:  ${file} ("${manifest.name}", ${formatResources(resources)})`);
    console.log(`Tenant:    ${signer.address}`);
    console.log(`Provider:  ${provider}`);
    console.log(`Price:     ${formatPrice(pricePerSecond)}`);
    console.log(
      `Max price: ${formatPrice(maxPricePerSecond)}${statedMax === undefined ? " (the provider's current quote; --max-price to allow more)" : ""}`,
    );
    const runway = formatRunway(deposit, pricePerSecond);
    console.log(`Deposit:   ${formatTokens(deposit)}${runway !== undefined ? ` (covers ${runway} of running time)` : ""}`);

    const cid = await publishRaw(ipfsUrl, bytes);
    const manifestDigest = digestFromCid(cid);
    console.log(`CID:       ${cid} (published to ${ipfsUrl})`);

    // One transaction: an EIP-2612 permit signed off-chain replaces the approve transaction,
    // unless an earlier approval already covers the deposit.
    const vmRegistry = s.vmRegistry.connect(signer);
    const allowance = await s.creditToken.allowance(signer.address, s.addresses.vmRegistry);
    let tx;
    if (allowance >= deposit) {
      tx = await vmRegistry.requestVm(provider, manifestDigest, resources, maxPricePerSecond, deposit);
    } else {
      const permit = await signPermit(s.creditToken, signer, s.addresses.vmRegistry, deposit);
      tx = await vmRegistry.requestVmWithPermit(
        provider, manifestDigest, resources, maxPricePerSecond, deposit, permit.deadline, permit.v, permit.r, permit.s,
      );
    }
    const receipt = await mined("requestVm", tx);
    const requested = eventsIn(receipt, s.vmRegistry, "VmRequested")[0];
    if (requested === undefined) throw new Error(`Transaction ${tx.hash} emitted no VmRequested event.`);
    const vmId = requested.args["vmId"] as bigint;

    console.log(`VM id: ${vmId}`);
    console.log(`Follow it with \`${command({ network: hre.globalOptions.network }, `vm:status --id ${vmId}`)}\`.`);
    return { vmId, cid: cid.toString(), manifestDigest, txHash: tx.hash, owner: signer.address, provider, maxPricePerSecond };
  });
}
