// Gas benchmark of the marketplace (issue 3), on Hardhat's in-process network:
//
//   npm run bench:gas        (or: npx hardhat run bench/gas-marketplace.ts)
//
// Writes every key of bench/results/gas.json except `policy` (read-modify-write) and the
// "## Marketplace gas" section of docs/BENCHMARKS.md (other sections are kept).
//
// lifecycle: open order (one allowed region) -> one bid -> award (after the window) -> reportRunning
//   -> terminate after one hour (settlement + refund) -> provider withdraws. gasUsed summed.
// lifecycle.newSlots: storage slots (any contract) that were zero before the lifecycle and were written
//   non-zero during it, found by tracing every SSTORE. lowerBound = 21,000 per tx + 22,100 per new slot.
// scaling.ratio: the same lifecycle by a fresh tenant and provider with 10,000 VMs already in the registry,
//   divided by the first run (1 VM in the registry), per operation; the largest ratio is reported.
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { network } from "hardhat";
import { encodeBytes32String, type ContractTransactionResponse } from "ethers";
import NovaCronModule from "../ignition/modules/NovaCron.ts";
import { traceGas, type GasBreakdown } from "./gas-trace.ts";
import { writeDocsSection } from "./lib/docs-section.ts";
import type { CreditToken, ProviderRegistry, VmRegistry } from "../types/ethers-contracts/index.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const GAS_JSON = path.join(ROOT, "bench/results/gas.json");
const BENCHMARKS_MD = path.join(ROOT, "docs/BENCHMARKS.md");
const TOKEN = 10n ** 18n;
const FILLER_VMS = Number(process.env.NOVACRON_BENCH_VMS ?? 10_000);
const TARGETS = { lifecycleGas: 350_000, lowerBoundFactor: 1.5, scalingRatio: 1.02 };

const { ethers, ignition, provider: rpc } = await network.create();
const signers = await ethers.getSigners();
const [deployer, fillerProvider, fillerOperator, fillerTenant, providerA, operatorA, tenantA, providerB, operatorB, tenantB, stranger] =
  signers as [typeof signers[0], ...typeof signers];

const deployed = await ignition.deploy(NovaCronModule, { displayUi: false });
const token = deployed.creditToken as unknown as CreditToken;
const providers = deployed.providerRegistry as unknown as ProviderRegistry;
const vms = deployed.vmRegistry as unknown as VmRegistry;
const vmsAddress = await vms.getAddress();
const providersAddress = await providers.getAddress();
const tokenAddress = await token.getAddress();
const minimumStake = await providers.minimumStake();
const params = await vms.parameters();

const REGION = encodeBytes32String("eu-west-1");
const CAPACITY = { vcpu: 1_000_000, memoryMiB: 1_000_000_000, diskGiB: 1_000_000_000 };
const PRICES = { perVcpuSecond: 600_000_000_000_000n, perMemoryMiBSecond: 2_500_000_000_000n, perDiskGiBSecond: 80_000_000_000_000n };
const VM = { vcpu: 1, memoryMiB: 128, diskGiB: 1 };
const MANIFEST = "0x" + "ab".repeat(32);
const DEPOSIT = 100n * TOKEN;
/** The order's maximum price, and the most a direct request pays (twice the providers' quote for `VM`). */
const MAX_PRICE = 2n * TOKEN / 1000n;
const BID = TOKEN / 1000n;

async function setupProvider(owner: typeof deployer, operator: typeof deployer) {
  // Funds beyond the stake so the owner's token balance slot stays non-zero (as for any real provider).
  await (await token.connect(deployer).transfer(owner.address, minimumStake * 2n)).wait();
  await (await token.connect(owner).approve(providersAddress, minimumStake)).wait();
  await (await providers.connect(owner).register(operator.address, REGION, CAPACITY, PRICES, "", minimumStake)).wait();
  // The nominated key takes the role: a provider without an accepted operator takes no lease.
  await (await providers.connect(operator).acceptOperator(owner.address)).wait();
}
async function setupTenant(tenant: typeof deployer) {
  await (await token.connect(deployer).transfer(tenant.address, 1_000_000n * TOKEN)).wait();
  await (await token.connect(tenant).approve(vmsAddress, ethers.MaxUint256)).wait();
}
for (const [p, o] of [[fillerProvider, fillerOperator], [providerA, operatorA], [providerB, operatorB]] as const) await setupProvider(p!, o!);
for (const t of [fillerTenant, tenantA, tenantB]) await setupTenant(t!);

type Step = { name: string; gas: bigint; hash: string; block: number };
async function step(name: string, send: Promise<ContractTransactionResponse>): Promise<Step> {
  const receipt = await (await send).wait();
  if (receipt === null || receipt.status !== 1) throw new Error(`${name} failed`);
  return { name, gas: receipt.gasUsed, hash: receipt.hash, block: receipt.blockNumber };
}
async function increase(seconds: bigint) {
  await rpc.request({ method: "evm_increaseTime", params: [Number(seconds)] });
  await rpc.request({ method: "evm_mine", params: [] });
}

/** The benchmark path, by `tenant` at `provider` (operated by `operator`). */
async function lifecycle(tenant: typeof deployer, provider: typeof deployer, operator: typeof deployer): Promise<Step[]> {
  const steps: Step[] = [];
  steps.push(await step("openOrder", vms.connect(tenant).openOrder(MANIFEST, VM, [REGION], MAX_PRICE, DEPOSIT)));
  const vmId = await vms.vmCount();
  steps.push(await step("bid", vms.connect(operator).bid(vmId, BID)));
  await increase(BigInt(params.bidWindow));
  steps.push(await step("award", vms.connect(stranger!).award(vmId)));
  steps.push(await step("reportRunning", vms.connect(operator).reportRunning(vmId)));
  await increase(3_600n);
  steps.push(await step("terminateVm", vms.connect(tenant).terminateVm(vmId)));
  steps.push(await step("withdrawEarnings", vms.connect(provider).withdrawEarnings()));
  return steps;
}

/** Where the steps' gas goes, and how many storage slots (any contract) were zero before them and written non-zero. */
async function analyse(steps: Step[]): Promise<{ breakdown: GasBreakdown; newSlots: number }> {
  const named = { [tokenAddress.toLowerCase()]: "CreditToken", [providersAddress.toLowerCase()]: "ProviderRegistry" };
  const { breakdown, written } = await traceGas(rpc, steps.map((s) => s.hash), named);
  const before = `0x${(steps[0]!.block - 1).toString(16)}`;
  let count = 0;
  for (const key of written) {
    const [address, slot] = key.split(":") as [string, string];
    const value = (await rpc.request({ method: "eth_getStorageAt", params: [address, slot, before] })) as string;
    if (BigInt(value) === 0n) {
      count++;
      if (process.env.NOVACRON_BENCH_DEBUG) console.error(`new slot ${address} ${slot}`);
    }
  }
  return { breakdown, newSlots: count };
}

// Other operations, each measured once on its own VM.
async function otherOps(): Promise<Record<string, bigint>> {
  const ops: Record<string, bigint> = {};
  const t = tenantA!;
  const op = vms.connect(operatorA!);
  const own = vms.connect(t);
  const record = async (name: string, send: Promise<ContractTransactionResponse>) => {
    ops[name] = (await step(name, send)).gas;
  };
  await record("requestVm", own.requestVm(providerA!.address, MANIFEST, VM, MAX_PRICE, DEPOSIT));
  let id = await vms.vmCount();
  await record("reportProvisioning", op.reportProvisioning(id));
  await op.reportRunning(id);
  await increase(600n);
  await record("settle", vms.connect(stranger!).settle(id));
  await record("topUp", own.topUp(id, DEPOSIT));
  await increase(600n);
  await record("stopVm", own.stopVm(id));
  await record("startVm", own.startVm(id));
  await op.reportRunning(id);
  await record("reclaimVm", op.reclaimVm(id));
  await increase(BigInt(params.exitNotice) + 1n);
  await record("closeVm", vms.connect(stranger!).closeVm(id));

  await own.requestVm(providerA!.address, MANIFEST, VM, MAX_PRICE, DEPOSIT);
  id = await vms.vmCount();
  await record("migrateVm", own.migrateVm(id, providerB!.address, [], MAX_PRICE, DEPOSIT));
  const newId = await vms.vmCount();
  await vms.connect(operatorB!).reportProvisioning(newId);
  await record("reportRunning (closes the migrated VM)", vms.connect(operatorB!).reportRunning(newId));
  await record("reportFailed", vms.connect(operatorB!).reportFailed(newId, 3));

  await own.openOrder(MANIFEST, VM, [], MAX_PRICE, DEPOSIT);
  id = await vms.vmCount();
  await op.bid(id, BID);
  await record("acceptBid", own.acceptBid(id, 0, providerA!.address));
  await increase(BigInt(params.provisioningTimeout) + 1n);
  await record("expireVm (slashes)", vms.connect(stranger!).expireVm(id));

  await own.openOrder(MANIFEST, VM, [], MAX_PRICE, DEPOSIT);
  await record("terminateVm (cancel order)", own.terminateVm(await vms.vmCount()));

  await record("withdrawFees", vms.connect(stranger!).withdrawFees());
  await token.connect(providerA!).approve(providersAddress, TOKEN);
  await record("addStake", providers.connect(providerA!).addStake(TOKEN));
  await record("requestUnstake", providers.connect(providerA!).requestUnstake(TOKEN));
  const thaw = (await providers.parameters()).thawPeriod;
  await increase(BigInt(thaw) + 1n);
  await record("withdrawStake", providers.connect(providerA!).withdrawStake());
  return ops;
}

const started = Date.now();
// Run 1: one VM in the registry.
await (await vms.connect(fillerTenant!).requestVm(fillerProvider!.address, MANIFEST, VM, MAX_PRICE, TOKEN)).wait();
const run1 = await lifecycle(tenantA!, providerA!, operatorA!);
const { breakdown, newSlots: slots } = await analyse(run1);
// Back to the same fee state for run 2 (the fee accumulator is zero again).
await (await vms.connect(stranger!).withdrawFees()).wait();

// Run 2: 10,000 VMs in the registry, a fresh tenant and provider in the same state as the first ones.
console.error(`creating ${FILLER_VMS - 1} more VMs...`);
const filler = vms.connect(fillerTenant!);
const nonceStart = await fillerTenant!.getNonce();
const pending: Promise<unknown>[] = [];
for (let i = 1; i < FILLER_VMS; i++) {
  pending.push(filler.requestVm(fillerProvider!.address, MANIFEST, VM, MAX_PRICE, 1n, { nonce: nonceStart + i - 1 }).then((tx) => tx.wait()));
  if (pending.length === 200) await Promise.all(pending.splice(0));
}
await Promise.all(pending);
const existing = Number(await vms.vmCount()) - 1;
const run2 = await lifecycle(tenantB!, providerB!, operatorB!);
const ops = await otherOps();

const lifecycleGas = run1.reduce((sum, s) => sum + s.gas, 0n);
const transactions = run1.length;
const lowerBound = 21_000 * transactions + 22_100 * slots;
const ratios = run1.map((s, i) => ({ name: s.name, one: s.gas, many: run2[i]!.gas, ratio: Number(run2[i]!.gas) / Number(s.gas) }));
const scalingRatio = Math.max(...ratios.map((r) => r.ratio));
// What any design with these transactions, transfers and new slots pays before its own logic.
const floor = ["intrinsic", "calldata", "calls:CreditToken", "sstoreNewSlot"].reduce((sum, k) => sum + (breakdown[k] ?? 0), 0);
for (const s of run1) ops[s.name] = s.gas;

const result = {
  lifecycle: {
    gas: Number(lifecycleGas),
    transactions,
    newSlots: slots,
    lowerBound,
    ratioToLowerBound: Number((Number(lifecycleGas) / lowerBound).toFixed(3)),
    steps: Object.fromEntries(run1.map((s) => [s.name, Number(s.gas)])),
    breakdown,
  },
  ops: Object.fromEntries(Object.entries(ops).map(([k, v]) => [k, Number(v)])),
  scaling: {
    existingVms: existing + 1,
    ratio: Number(scalingRatio.toFixed(4)),
    perOperation: Object.fromEntries(ratios.map((r) => [r.name, { with1: Number(r.one), with10000: Number(r.many), ratio: Number(r.ratio.toFixed(4)) }])),
  },
  targets: {
    lifecycleGas: TARGETS.lifecycleGas,
    lifecycleVsLowerBound: TARGETS.lowerBoundFactor,
    scalingRatio: TARGETS.scalingRatio,
    met: {
      lifecycleGas: Number(lifecycleGas) <= TARGETS.lifecycleGas,
      lifecycleVsLowerBound: Number(lifecycleGas) <= TARGETS.lowerBoundFactor * lowerBound,
      scalingRatio: scalingRatio <= TARGETS.scalingRatio,
    },
  },
  measuredAt: new Date().toISOString(),
};

// gas.json: read-modify-write; `policy` belongs to bench/gas-policy.ts.
await mkdir(path.dirname(GAS_JSON), { recursive: true });
const previous = existsSync(GAS_JSON) ? (JSON.parse(await readFile(GAS_JSON, "utf8")) as Record<string, unknown>) : {};
const merged: Record<string, unknown> = { ...result };
if ("policy" in previous) merged["policy"] = previous["policy"];
await writeFile(GAS_JSON, JSON.stringify(merged, null, 2) + "\n");

const yes = (ok: boolean) => (ok ? "met" : "**missed**");
const section = [
  "## Marketplace gas",
  "",
  "Written by `bench/gas-marketplace.ts` (`npm run bench:gas`) on Hardhat's in-process network (solc 0.8.30, optimizer 10,000 runs, cancun).",
  "The lifecycle is: open order with one allowed region, one bid, award after the bid window (by a third party), reportRunning",
  "(Requested -> Running; the daemon also reports Provisioning first, see ops.reportProvisioning), terminate after one hour (settlement with a 1% fee + refund), provider withdraws. Every transaction's gasUsed is summed.",
  "",
  "| lifecycle step | gas |",
  "| --- | ---: |",
  ...run1.map((s) => `| ${s.name} | ${s.gas.toLocaleString("en-US")} |`),
  `| **total** (${transactions} transactions) | **${lifecycleGas.toLocaleString("en-US")}** |`,
  "",
  "| metric | value | target | |",
  "| --- | ---: | ---: | --- |",
  `| lifecycle.gas | ${lifecycleGas.toLocaleString("en-US")} | <= ${TARGETS.lifecycleGas.toLocaleString("en-US")} | ${yes(result.targets.met.lifecycleGas)} |`,
  `| lifecycle.newSlots | ${slots} | | |`,
  `| lifecycle.lowerBound (21,000/tx + 22,100/new slot) | ${lowerBound.toLocaleString("en-US")} | | |`,
  `| lifecycle.gas / lowerBound | ${result.lifecycle.ratioToLowerBound} | <= ${TARGETS.lowerBoundFactor} | ${yes(result.targets.met.lifecycleVsLowerBound)} |`,
  `| scaling.ratio (${(existing + 1).toLocaleString("en-US")} VMs vs 1, worst operation) | ${result.scaling.ratio} | <= ${TARGETS.scalingRatio} | ${yes(result.targets.met.scalingRatio)} |`,
  "",
  "Where the lifecycle's gas goes, measured by tracing its transactions (`bench/gas-trace.ts`: calls are everything spent in",
  "the called contract including the cold account; the other rows are VmRegistry's own opcodes; the rows add up to the total):",
  "",
  "| category | gas | share |",
  "| --- | ---: | ---: |",
  ...Object.entries(breakdown)
    .sort((x, y) => y[1] - x[1])
    .map(([k, v]) => `| ${k} | ${v.toLocaleString("en-US")} | ${((100 * v) / Number(lifecycleGas)).toFixed(1)}% |`),
  "",
  `The ${slots} new slots are the VM record's five slots at openOrder (owner | resources; provider | deposit; price | balance |`,
  "settled-at | state | fee bps | flags; manifest digest; max price | bid window end | provisioning deadline | reclaim time |",
  "failure reason), the one allowed region and the bid (both in the OrderBook) and the provider's earnings going from zero.",
  "`calls:other` is the OrderBook (regions at openOrder, the bid, the lowest bid at award). Nothing scales with the number of VMs.",
  "",
  "Issue 9 (the marketplace audit fixes and the VmRegistry split) took this lifecycle from 483,510 to the total above; its",
  "budget was +5 % (507,685). The fixes themselves cost little (the bid reserves the capacity that award used to reserve;",
  "award no longer re-checks bids). The difference is the layout: a record whose every field means one thing needs a fifth",
  "slot (max price, bid window and provisioning deadline no longer share `stamp`/`aux`), and a bid needs a slot of its own",
  "(it no longer borrows the record's provider slot): 2 x 22,100 gas. The calls into the OrderBook (`calls:other`: its two new slots,",
  "the regions and the bid, plus about 15,000 for three cold calls, reads and ABI coding) make up most of the rest.",
  "Two ways to win some of it back were measured and not taken: writing slot 1 (provider | deposit) only at the lease",
  "saves 4,685 gas but makes `deposit` read zero until the lease; storing `billed` instead of `deposit` saves 1,753 here",
  "but adds about 2,900 to every settlement. docs/gas-floor.md (\"Issue 9's budget\") shows that the two new slots alone",
  "exceed the +5 % and lists what would reach it. VmRegistry is compiled with 1,000 optimizer runs to stay 10 % under",
  "EIP-170 (see \"Contract sizes\"); that costs 543 gas here against 10,000 runs.",
  "",
  `Why the targets are missed: intrinsic gas, calldata, the three CreditToken transfers (deposit in, refund out,`,
  `earnings out; ERC20Votes reads both delegates on every transfer) and the new slots alone come to ${floor.toLocaleString("en-US")} gas,`,
  `which leaves ${(TARGETS.lifecycleGas - floor).toLocaleString("en-US")} for everything else over six transactions: reading and updating the VM record, the provider checks`,
  "(stake, operator, region, capacity), the fee and escrow arithmetic and one event per state change with vmId, owner and",
  `provider indexed; they take ${(Number(lifecycleGas) - floor).toLocaleString("en-US")} here. docs/gas-floor.md shows that no implementation can meet both targets:`,
  "they leave at most 113,500 gas beyond intrinsic gas and new slots (with exactly five new slots), and the accesses, writes,",
  "events and token transfers the issue's behaviour forces already come to 121,099 in an idealized design that computes nothing.",
  "For scale: Akash's own estimate for the same path on an EVM chain is about 2,160,000 gas.",
  "",
  "| operation | gas |",
  "| --- | ---: |",
  ...Object.entries(ops).map(([k, v]) => `| ${k} | ${v.toLocaleString("en-US")} |`),
  "",
];
writeDocsSection(BENCHMARKS_MD, section.join("\n"));

console.log(JSON.stringify({ lifecycle: result.lifecycle, scaling: { ratio: result.scaling.ratio }, met: result.targets.met }, null, 2));
console.error(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
