import type { HardhatEthers, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { NetworkConnection } from "hardhat/types/network";
import { encodeBytes32String, type ContractTransactionResponse, type Signature } from "ethers";
import type { CreditToken, ProviderRegistry, VmRegistry } from "../../types/ethers-contracts/index.ts";
import { permitTypedData } from "../../scripts/lib/token.ts";

/** Mirrors `VmState` in contracts/interfaces/IVmRegistry.sol. */
export const VmState = {
  None: 0n,
  Requested: 1n,
  Provisioning: 2n,
  Running: 3n,
  Stopped: 4n,
  Starting: 5n,
  Failed: 6n,
  Terminated: 7n,
  Bidding: 8n,
  Suspended: 9n,
} as const;

/** A `Resources` or `Prices` value as the ABI encodes it (tuple order). */
export type Resources = { vcpu: bigint; memoryMiB: bigint; diskGiB: bigint };
export type Prices = { perVcpuSecond: bigint; perMemoryMiBSecond: bigint; perDiskGiBSecond: bigint };

export const SUPPLY = 10n ** 9n * 10n ** 18n; // 1e9 NCC
export const MIN_STAKE = 1_000n * 10n ** 18n;
export const TENANT_FUNDS = 1_000_000n * 10n ** 18n;
export const PROVIDER_FUNDS = 100_000n * 10n ** 18n;
export const MAX_UINT96 = 2n ** 96n - 1n;
export const MAX_UINT88 = 2n ** 88n - 1n;

/** Governance parameters of the fixture (the deployer plays governance; no fee unless a test sets one). */
export const THAW_PERIOD = 7n * 86_400n;
export const SLASH_BPS = 1_000n;
export const BID_WINDOW = 300n;
export const PROVISIONING_TIMEOUT = 3_600n;
export const GRACE_PERIOD = 86_400n;
export const LOW_BALANCE_HORIZON = 600n;
export const EXIT_NOTICE = 86_400n;
export function marketParameters(treasury: string, feeBps = 0n) {
  return {
    treasury,
    feeBps,
    bidWindow: BID_WINDOW,
    provisioningTimeout: PROVISIONING_TIMEOUT,
    gracePeriod: GRACE_PERIOD,
    lowBalanceHorizon: LOW_BALANCE_HORIZON,
    exitNotice: EXIT_NOTICE,
  };
}

export const REGION = encodeBytes32String("eu-west-1");
export const CAPACITY: Resources = { vcpu: 16n, memoryMiB: 65_536n, diskGiB: 1_000n };
export const PRICES: Prices = { perVcpuSecond: 1_000n, perMemoryMiBSecond: 2n, perDiskGiBSecond: 3n };
export const METADATA_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

/** A small VM: 2 vCPU, 4 GiB RAM, 50 GiB disk. */
export const SMALL_VM: Resources = { vcpu: 2n, memoryMiB: 4_096n, diskGiB: 50n };
/** `SMALL_VM` at `PRICES`: 2*1000 + 4096*2 + 50*3 wei per second. */
export const SMALL_VM_PRICE = 2n * 1_000n + 4_096n * 2n + 50n * 3n;
export const MANIFEST = "0x" + "ab".repeat(32);
/** One hour of `SMALL_VM`. */
export const DEPOSIT = SMALL_VM_PRICE * 3_600n;

export function priceOf(prices: Prices, r: Resources): bigint {
  return prices.perVcpuSecond * r.vcpu + prices.perMemoryMiBSecond * r.memoryMiB + prices.perDiskGiBSecond * r.diskGiB;
}

export interface Fixture {
  ethers: HardhatEthers;
  token: CreditToken;
  providers: ProviderRegistry;
  vms: VmRegistry;
  deployer: HardhatEthersSigner;
  /** Owner (cold key) of the registered provider; it is also the provider's id. */
  provider: HardhatEthersSigner;
  /** The registered provider's operator (hot key). */
  operator: HardhatEthersSigner;
  tenant: HardhatEthersSigner;
  tenant2: HardhatEthersSigner;
  stranger: HardhatEthersSigner;
  /** Funded and approved for the ProviderRegistry, not registered. */
  provider2: HardhatEthersSigner;
  operator2: HardhatEthersSigner;
  /** Receives platform fees and the treasury's share of slashes. */
  treasury: HardhatEthersSigner;
}

/**
 * Token with the whole supply minted to the deployer; ProviderRegistry with `MIN_STAKE`; VmRegistry;
 * one provider registered with a distinct operator, which accepted the role; two tenants funded and approved for VmRegistry;
 * a second, unregistered provider funded and approved for ProviderRegistry.
 */
export async function deployFixture({ ethers }: NetworkConnection): Promise<Fixture> {
  const signers = await ethers.getSigners();
  const signer = (i: number): HardhatEthersSigner => {
    const s = signers[i];
    if (s === undefined) throw new Error(`the fixture needs ${i + 1} accounts, the network has ${signers.length}`);
    return s;
  };
  const [deployer, provider, operator, tenant, tenant2, stranger, provider2, operator2, treasury] = [0, 1, 2, 3, 4, 5, 6, 7, 8].map(signer) as [
    HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner,
    HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner,
  ];

  // TypeChain types come from `hardhat compile` (types/ethers-contracts); deployContract returns the base type.
  const token = (await ethers.deployContract("CreditToken", [deployer.address, SUPPLY])) as unknown as CreditToken;
  const providers = (await ethers.deployContract("ProviderRegistry", [
    await token.getAddress(),
    deployer.address,
    { minimumStake: MIN_STAKE, thawPeriod: THAW_PERIOD, slashBps: SLASH_BPS },
  ])) as unknown as ProviderRegistry;
  const vms = (await ethers.deployContract("VmRegistry", [
    await token.getAddress(),
    await providers.getAddress(),
    deployer.address,
    marketParameters(treasury.address),
  ])) as unknown as VmRegistry;
  await providers.bindVmRegistry(await vms.getAddress());

  for (const t of [tenant, tenant2]) {
    await token.transfer(t.address, TENANT_FUNDS);
    await token.connect(t).approve(await vms.getAddress(), ethers.MaxUint256);
  }
  for (const p of [provider, provider2]) {
    await token.transfer(p.address, PROVIDER_FUNDS);
    await token.connect(p).approve(await providers.getAddress(), ethers.MaxUint256);
  }
  await providers.connect(provider).register(operator.address, REGION, CAPACITY, PRICES, METADATA_CID, MIN_STAKE);
  await providers.connect(operator).acceptOperator(provider.address);

  return { ethers, token, providers, vms, deployer, provider, operator, tenant, tenant2, stranger, provider2, operator2, treasury };
}

/** Block timestamp of the block that mined `tx`. */
export async function minedAt(tx: ContractTransactionResponse): Promise<bigint> {
  const receipt = await tx.wait();
  if (receipt === null) throw new Error("transaction was not mined");
  const block = await receipt.getBlock();
  return BigInt(block.timestamp);
}

/** Requests `SMALL_VM` (or `resources`) from the fixture's provider and returns the new id. */
export async function requestVm(
  f: Fixture,
  opts: { tenant?: HardhatEthersSigner; deposit?: bigint; resources?: Resources; maxPrice?: bigint } = {},
): Promise<bigint> {
  const tenant = opts.tenant ?? f.tenant;
  const resources = opts.resources ?? SMALL_VM;
  // The tenant states the most it pays: by default the provider's quote at the fixture's prices.
  await f.vms
    .connect(tenant)
    .requestVm(f.provider.address, MANIFEST, resources, opts.maxPrice ?? priceOf(PRICES, resources), opts.deposit ?? DEPOSIT);
  return f.vms.vmCount();
}

/** Requests a VM and drives it to Running; returns its id and the second billing started at. */
export async function runningVm(
  f: Fixture,
  opts: { tenant?: HardhatEthersSigner; deposit?: bigint; resources?: Resources; maxPrice?: bigint } = {},
): Promise<{ vmId: bigint; startedAt: bigint }> {
  const vmId = await requestVm(f, opts);
  await f.vms.connect(f.operator).reportProvisioning(vmId);
  const startedAt = await minedAt(await f.vms.connect(f.operator).reportRunning(vmId));
  return { vmId, startedAt };
}

/** An EIP-2612 permit signature by `owner` for `spender`. */
export async function signPermit(
  f: Fixture,
  owner: HardhatEthersSigner,
  spender: string,
  value: bigint,
  deadline: bigint,
): Promise<Signature> {
  const { domain, types, message } = await permitTypedData(f.token, owner.address, spender, value, deadline);
  return f.ethers.Signature.from(await owner.signTypedData(domain, types, message));
}

/** `[vcpu, memoryMiB, diskGiB]`, the form events and errors carry a `Resources` in. */
export function tuple(r: Resources): [bigint, bigint, bigint] {
  return [r.vcpu, r.memoryMiB, r.diskGiB];
}
