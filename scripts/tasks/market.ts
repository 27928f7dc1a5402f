// Marketplace tasks (issue 3): open orders, bids, award, top-up, migration, expiry, close, provider exit,
// stake and fees. Each exported action is loaded only when its task runs (see ./index.ts).
import type { ContractTransactionResponse } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { digestFromCid } from "../../offchain-daemon/src/manifest/fetch.ts";
import { resolveAddress, resolveSigner, roleSigner, signerFor, type Role } from "../lib/accounts.ts";
import { eventsIn, mined, openNovaCron, type NovaCronSession } from "../lib/contracts.ts";
import { command, runTask, UserError } from "../lib/errors.ts";
import { formatPrice, formatTokens, parseInteger, parseTokens, parseVmId, regionToBytes32, required, vmStateName } from "../lib/format.ts";
import { publishRaw, resolveIpfsUrl } from "../lib/ipfs.ts";
import { loadManifestFile } from "../lib/manifest.ts";
import { ensureAllowance } from "../lib/token.ts";

export type Args = Record<string, string | undefined>;

/** What every marketplace task returns: the transaction and the decoded events it emitted. */
export interface MarketResult {
  txHash: string;
  events: { name: string; args: Record<string, unknown> }[];
  vmId?: bigint;
}

const VM_EVENTS = [
  "VmRequested", "VmOrderOpened", "VmBidPlaced", "VmAwarded", "VmStateChanged", "VmSettled", "VmLowBalance", "VmToppedUp",
  "VmRefunded", "VmReclaimAnnounced", "VmExpired", "VmMigrationRequested", "VmMigrated", "EarningsWithdrawn", "FeesWithdrawn",
];
const PROVIDER_EVENTS = ["ProviderStakeAdded", "ProviderUnstakeRequested", "ProviderStakeWithdrawn", "ProviderSlashed"];

/** Sends, waits, prints every NovaCron event of the receipt (one line each) and returns them. */
async function send(s: NovaCronSession, label: string, tx: ContractTransactionResponse): Promise<MarketResult> {
  const receipt = await mined(label, tx);
  const events: MarketResult["events"] = [];
  for (const [contract, names] of [[s.vmRegistry, VM_EVENTS], [s.providerRegistry, PROVIDER_EVENTS]] as const) {
    for (const name of names) {
      for (const e of eventsIn(receipt, contract, name)) {
        const args = e.args.toObject(true) as Record<string, unknown>;
        events.push({ name, args });
        const shown = Object.entries(args)
          .map(([k, v]) => `${k}=${k === "from" || k === "to" ? vmStateName(v as bigint) : showValue(v)}`)
          .join(" ");
        console.log(`  ${name} ${shown}`);
      }
    }
  }
  return { txHash: tx.hash, events };
}

/** Structs arrive as objects and arrays as objects with numeric keys; print both readably. */
function showValue(value: unknown): string {
  if (value === null || typeof value !== "object") return String(value);
  const entries = Object.entries(value);
  if (entries.every(([key]) => /^\d+$/.test(key))) return `[${entries.map(([, v]) => showValue(v)).join(",")}]`;
  return `{${entries.map(([key, v]) => `${key}:${showValue(v)}`).join(",")}}`;
}

function parseRegions(text: string | undefined): string[] {
  if (text === undefined || text.trim() === "") return [];
  return text.split(",").map((r) => regionToBytes32(r.trim()));
}

/** The VM's owner when the node holds its key (or `--from`). */
async function ownerSigner(s: NovaCronSession, vmId: bigint, from: string | undefined) {
  if (from !== undefined && from.trim() !== "") return resolveSigner(s.ethers, from, "tenant");
  const vm = await s.vmRegistry.getVm(vmId);
  return (await signerFor(s.ethers, vm.owner)) ?? (await roleSigner(s.ethers, "tenant"));
}

function tx<T>(hre: HardhatRuntimeEnvironment, body: (s: NovaCronSession) => Promise<T>) {
  return runTask(hre, async () => body(await openNovaCron(hre)));
}

// ------------------------------------------------------------------------------------------ orders

/** order:open — publish the manifest and open an order any provider in --regions may bid on. */
export async function orderOpen(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const file = required(args["manifest"], "--manifest", "examples/hello.json");
    const { bytes, manifest } = await loadManifestFile(file);
    const deposit = parseTokens(args["deposit"] ?? "100", "--deposit");
    const maxPrice = parseInteger(required(args["maxPrice"], "--max-price", "1000000000000000"), "--max-price");
    const regions = parseRegions(args["regions"]);
    const signer = await resolveSigner(s.ethers, args["from"], "tenant");
    const cid = await publishRaw(resolveIpfsUrl(args["ipfs"]), bytes);
    await ensureAllowance(s.creditToken, signer, s.addresses.vmRegistry, deposit);
    console.log(`Order for ${file} at most ${formatPrice(maxPrice)}, deposit ${formatTokens(deposit)}, regions ${args["regions"] ?? "any"}`);
    const r = await send(s, "openOrder", await s.vmRegistry.connect(signer).openOrder(digestFromCid(cid), manifest.resources, regions, maxPrice, deposit));
    const vmId = r.events.find((e) => e.name === "VmOrderOpened")?.args["vmId"] as bigint;
    console.log(`Order ${vmId} is open for bids; award it with \`${command({ network: hre.globalOptions.network }, `order:award --id ${vmId}`)}\` after the window.`);
    return { ...r, vmId };
  });
}

/** order:bid — the operator bids for its provider. */
export async function orderBid(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const vmId = parseVmId(args["id"]);
    const price = parseInteger(required(args["price"], "--price", "1000000000000000"), "--price");
    const signer = await resolveSigner(s.ethers, args["from"], "providerOperator");
    return send(s, `bid(${vmId}, ${price})`, await s.vmRegistry.connect(signer).bid(vmId, price));
  });
}

/** order:award — anyone, after the bid window: lease to the lowest bid (the losers get their capacity back). */
export async function orderAward(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const vmId = parseVmId(args["id"]);
    const signer = await resolveSigner(s.ethers, args["from"], "tenant");
    return send(s, `award(${vmId})`, await s.vmRegistry.connect(signer).award(vmId));
  });
}

/** order:accept — the owner leases bid --index now. */
export async function orderAccept(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const vmId = parseVmId(args["id"]);
    const index = parseInteger(args["index"] ?? "0", "--index");
    const signer = await ownerSigner(s, vmId, args["from"]);
    // The bid is bound by its provider, read now: if the list changes before this is mined, it reverts.
    const bids = await s.vmRegistry.getBids(vmId);
    const provider = bids[Number(index)]?.provider;
    if (provider === undefined) throw new UserError(`order ${vmId} has ${bids.length} bid(s); --index must be below that (see vm:status).`);
    return send(s, `acceptBid(${vmId}, ${index}, ${provider})`, await s.vmRegistry.connect(signer).acceptBid(vmId, index, provider));
  });
}

/** order:cancel — the owner cancels an order that was not awarded (full refund). */
export async function orderCancel(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const vmId = parseVmId(args["id"]);
    const vm = await s.vmRegistry.getVm(vmId);
    if (vmStateName(vm.state) !== "Bidding") throw new UserError(`VM ${vmId} is ${vmStateName(vm.state)}, not an open order.`, "Use vm:terminate for leased VMs.");
    const signer = await ownerSigner(s, vmId, args["from"]);
    return send(s, `terminateVm(${vmId})`, await s.vmRegistry.connect(signer).terminateVm(vmId));
  });
}

// --------------------------------------------------------------------------------------------- VMs

/** vm:topup — the owner adds to the deposit (revives a Suspended VM within its grace period). */
export async function vmTopUp(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const vmId = parseVmId(args["id"]);
    const amount = parseTokens(required(args["amount"], "--amount", "10"), "--amount");
    const signer = await ownerSigner(s, vmId, args["from"]);
    await ensureAllowance(s.creditToken, signer, s.addresses.vmRegistry, amount);
    return send(s, `topUp(${vmId}, ${formatTokens(amount)})`, await s.vmRegistry.connect(signer).topUp(vmId, amount));
  });
}

/** vm:migrate — the owner moves a VM to --provider, or to a new open order when --provider is omitted. */
export async function vmMigrate(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const vmId = parseVmId(args["id"]);
    const deposit = parseTokens(args["deposit"] ?? "100", "--deposit");
    const provider = args["provider"] === undefined ? "0x0000000000000000000000000000000000000000" : await resolveAddress(s.ethers, args["provider"], "--provider");
    const signer = await ownerSigner(s, vmId, args["from"]);
    let maxPrice: bigint;
    if (args["maxPrice"] !== undefined) {
      maxPrice = parseInteger(args["maxPrice"], "--max-price");
    } else if (args["provider"] !== undefined) {
      // A named provider's price is bounded too: without --max-price, its quote read just before sending.
      const { vcpu, memoryMiB, diskGiB } = (await s.vmRegistry.getVm(vmId)).resources;
      const quote = await s.providerRegistry.quote(provider, { vcpu, memoryMiB, diskGiB });
      maxPrice = quote.pricePerSecond;
      console.log(`Max price: ${maxPrice} wei/s (the provider's current quote; --max-price to allow more)`);
    } else {
      maxPrice = 0n;
    }
    await ensureAllowance(s.creditToken, signer, s.addresses.vmRegistry, deposit);
    const r = await send(s, `migrateVm(${vmId})`, await s.vmRegistry.connect(signer).migrateVm(vmId, provider, parseRegions(args["regions"]), maxPrice, deposit));
    const newVmId = r.events.find((e) => e.name === "VmMigrationRequested")?.args["newVmId"] as bigint;
    console.log(`VM ${vmId} closes when VM ${newVmId} is reported Running.`);
    return { ...r, vmId: newVmId };
  });
}

/** vm:expire — anyone: a leased VM past its provisioning deadline is refunded and its provider slashed. */
export async function vmExpire(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const vmId = parseVmId(args["id"]);
    const signer = await resolveSigner(s.ethers, args["from"], "tenant");
    return send(s, `expireVm(${vmId})`, await s.vmRegistry.connect(signer).expireVm(vmId));
  });
}

/** vm:close — anyone: close a Suspended VM after its grace period, or a reclaimed one after its notice. */
export async function vmClose(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const vmId = parseVmId(args["id"]);
    const signer = await resolveSigner(s.ethers, args["from"], "tenant");
    return send(s, `closeVm(${vmId})`, await s.vmRegistry.connect(signer).closeVm(vmId));
  });
}

/** provider:exit — the operator announces reclaiming a lease; billing stops after the exit notice. */
export async function providerExit(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const vmId = parseVmId(args["id"]);
    const signer = await resolveSigner(s.ethers, args["from"], "providerOperator");
    return send(s, `reclaimVm(${vmId})`, await s.vmRegistry.connect(signer).reclaimVm(vmId));
  });
}

// ----------------------------------------------------------------------------------- stake and fees

async function providerSigner(s: NovaCronSession, from: string | undefined) {
  return resolveSigner(s.ethers, from, "providerOwner" satisfies Role);
}

/** provider:stake — add stake. */
export async function providerStake(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const amount = parseTokens(required(args["amount"], "--amount", "100"), "--amount");
    const signer = await providerSigner(s, args["from"]);
    await ensureAllowance(s.creditToken, signer, s.addresses.providerRegistry, amount);
    return send(s, `addStake(${formatTokens(amount)})`, await s.providerRegistry.connect(signer).addStake(amount));
  });
}

/** provider:unstake — start thawing stake (still slashable until withdrawn). */
export async function providerUnstake(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const amount = parseTokens(required(args["amount"], "--amount", "100"), "--amount");
    const signer = await providerSigner(s, args["from"]);
    return send(s, `requestUnstake(${formatTokens(amount)})`, await s.providerRegistry.connect(signer).requestUnstake(amount));
  });
}

/** provider:withdraw-stake — take back thawed stake. */
export async function providerWithdrawStake(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const signer = await providerSigner(s, args["from"]);
    return send(s, "withdrawStake", await s.providerRegistry.connect(signer).withdrawStake());
  });
}

/** fees:withdraw — anyone: send accrued platform fees to the treasury. */
export async function feesWithdraw(args: Args, hre: HardhatRuntimeEnvironment) {
  return tx(hre, async (s) => {
    const signer = await resolveSigner(s.ethers, args["from"], "deployer");
    return send(s, "withdrawFees", await s.vmRegistry.connect(signer).withdrawFees());
  });
}
