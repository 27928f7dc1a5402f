// Shared by the daemon's integration tests: a real Hardhat node with every contract deployed
// by the same script `npm start` uses, a real IPFS node over the Kubo RPC API, tenant actions
// through viem, and helpers to wait for chain state. Everything binds 127.0.0.1 on free ports
// and is stopped by PID when the test ends.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPublicClient, createWalletClient, http, parseEventLogs, type Address, type Hex } from "viem";
import { hardhat } from "viem/chains";
import { privateKeyToAccount } from "viem/accounts";
import { creditTokenAbi, providerRegistryAbi, vmRegistryAbi } from "../../offchain-daemon/src/chain/abi.generated.ts";
import { readVm, type ChainVm, type VmStateName } from "../../offchain-daemon/src/chain/vm-registry.ts";
import { createEmbeddedStore } from "../../offchain-daemon/src/ipfs/embedded.ts";
import { createKuboStore } from "../../offchain-daemon/src/ipfs/kubo.ts";
import { startKuboRpcServer } from "../../offchain-daemon/src/ipfs/kubo-rpc-server.ts";
import { digestFromCid } from "../../offchain-daemon/src/manifest/fetch.ts";
import { encryptKeystore } from "../../offchain-daemon/src/keystore.ts";
import { deployLocal, PROJECT_ROOT, startHardhatNode, type LocalDeployment } from "../../scripts/stack/hardhat.ts";
import { sleep } from "../../scripts/stack/processes.ts";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export type TestStack = Awaited<ReturnType<typeof startTestStack>>;

export async function startTestStack(name: string) {
  const dir = mkdtempSync(join(tmpdir(), `novacron-${name}-`));
  const chain = await startHardhatNode({ port: await freePort(), logFile: join(dir, "chain.log") });
  const deploymentId = `test-${name}-${process.pid}`;
  const forgetDeployment = async () => rmSync(join(PROJECT_ROOT, "ignition", "deployments", deploymentId), { recursive: true, force: true });
  const stops: Array<() => Promise<void>> = [chain.stop, forgetDeployment];
  try {
    const deployment = await deployLocal(chain.rpcUrl, { NOVACRON_DEPLOYMENT_ID: deploymentId });
    const blocks = await createEmbeddedStore({ directory: join(dir, "ipfs") });
    stops.push(() => blocks.close());
    const ipfsServer = await startKuboRpcServer({ store: blocks, port: 0 });
    stops.push(() => ipfsServer.close());
    const ipfs = createKuboStore({ url: ipfsServer.url });
    stops.push(() => ipfs.close());

    const transport = http(chain.rpcUrl);
    const viemChain = { ...hardhat, rpcUrls: { default: { http: [chain.rpcUrl] } } };
    const publicClient = createPublicClient({ chain: viemChain, transport, pollingInterval: 100 });
    const tenant = deployment.accounts.tenants[0]!;
    // Hardhat's node holds the dev accounts' keys: transactions from these addresses are signed by the node.
    const tenantWallet = createWalletClient({ account: tenant, transport, chain: viemChain });
    const providerWallet = createWalletClient({ account: deployment.accounts.providerOwner, transport, chain: viemChain });
    const operatorWallet = createWalletClient({ account: deployment.accounts.providerOperator, transport, chain: viemChain });
    const { vmRegistry, creditToken, providerRegistry } = deployment.contracts;

    // A fixed gas limit: the node's own estimate runs against a state the daemon's reports may change before the
    // transaction is mined (a kill trial's terminateVm ran out of gas that way).
    async function send(wallet: typeof tenantWallet, request: Parameters<typeof tenantWallet.writeContract>[0]) {
      const hash = await wallet.writeContract({ gas: TEST_TX_GAS, ...request } as typeof request);
      const receipt = await publicClient.waitForTransactionReceipt({ hash });
      if (receipt.status !== "success") throw new Error(`transaction ${hash} reverted`);
      return receipt;
    }

    const stack = {
      dir,
      rpcUrl: chain.rpcUrl,
      deployment,
      ipfsUrl: ipfsServer.url,
      ipfs,
      publicClient,
      tenant,

      /** Publishes `content` (an object is JSON-encoded) as one raw block and returns its digest. */
      async publish(content: unknown): Promise<Hex> {
        const bytes = content instanceof Uint8Array ? content : new TextEncoder().encode(JSON.stringify(content));
        return digestFromCid(await ipfs.putRaw(bytes));
      },

      async tokenBalance(owner: Address): Promise<bigint> {
        return publicClient.readContract({ address: creditToken, abi: creditTokenAbi, functionName: "balanceOf", args: [owner] });
      },

      /**
       * Approves and requests a VM from the demo provider as tenant #1; returns its id. `maxPricePerSecond` is the
       * most the tenant pays (default: far above the demo provider's prices).
       */
      async requestVm(
        digest: Hex,
        resources: { vcpu: number; memoryMiB: number; diskGiB: number },
        deposit: bigint,
        maxPricePerSecond: bigint = 10n ** 18n,
      ): Promise<bigint> {
        await stack.approveDeposit(deposit);
        return stack.submitRequestVm(digest, resources, deposit, maxPricePerSecond);
      },

      /** Tenant #1 lets VmRegistry take `deposit`. */
      async approveDeposit(deposit: bigint) {
        return send(tenantWallet, { address: creditToken, abi: creditTokenAbi, functionName: "approve", args: [vmRegistry, deposit] } as never);
      },

      /** Requests a VM from the demo provider as tenant #1, in one transaction (the deposit approved before); returns its id. */
      async submitRequestVm(
        digest: Hex,
        resources: { vcpu: number; memoryMiB: number; diskGiB: number },
        deposit: bigint,
        maxPricePerSecond: bigint = 10n ** 18n,
      ): Promise<bigint> {
        const receipt = await send(tenantWallet, {
          address: vmRegistry,
          abi: vmRegistryAbi,
          functionName: "requestVm",
          args: [deployment.accounts.providerOwner, digest, resources, maxPricePerSecond, deposit],
        } as never);
        // From the receipt, not vmCount: requests sent side by side would read each other's id.
        return parseEventLogs({ abi: vmRegistryAbi, logs: receipt.logs, eventName: "VmRequested" })[0]!.args.vmId;
      },

      /** Approves and opens an order (any region) as tenant #1; returns its id. */
      async openOrder(digest: Hex, resources: { vcpu: number; memoryMiB: number; diskGiB: number }, deposit: bigint, maxPricePerSecond: bigint): Promise<bigint> {
        await send(tenantWallet, { address: creditToken, abi: creditTokenAbi, functionName: "approve", args: [vmRegistry, deposit] } as never);
        await send(tenantWallet, {
          address: vmRegistry,
          abi: vmRegistryAbi,
          functionName: "openOrder",
          args: [digest, resources, [], maxPricePerSecond, deposit],
        } as never);
        return publicClient.readContract({ address: vmRegistry, abi: vmRegistryAbi, functionName: "vmCount" });
      },

      /** The demo provider's operator bids on an order (the daemon's bid engine comes with the daemon issue). */
      async operatorBid(vmId: bigint, pricePerSecond: bigint) {
        return send(operatorWallet, { address: vmRegistry, abi: vmRegistryAbi, functionName: "bid", args: [vmId, pricePerSecond] } as never);
      },

      /** Tenant #1 accepts bid `index` of its order now. */
      async tenantAcceptBid(vmId: bigint, index: bigint) {
        const bids = await publicClient.readContract({ address: vmRegistry, abi: vmRegistryAbi, functionName: "getBids", args: [vmId] });
        return send(tenantWallet, { address: vmRegistry, abi: vmRegistryAbi, functionName: "acceptBid", args: [vmId, index, bids[Number(index)]!.provider] } as never);
      },

      /** Tenant #1 approves and tops up `amount`. */
      async tenantTopUp(vmId: bigint, amount: bigint) {
        await send(tenantWallet, { address: creditToken, abi: creditTokenAbi, functionName: "approve", args: [vmRegistry, amount] } as never);
        return send(tenantWallet, { address: vmRegistry, abi: vmRegistryAbi, functionName: "topUp", args: [vmId, amount] } as never);
      },

      async tenantCall(functionName: "stopVm" | "startVm" | "terminateVm", vmId: bigint) {
        return send(tenantWallet, { address: vmRegistry, abi: vmRegistryAbi, functionName, args: [vmId] } as never);
      },

      /**
       * Funds `owner` (an account the node holds) from the deployer and registers it as a second provider that
       * nominates `operator`; the operator has not accepted yet.
       */
      async registerProvider(owner: Address, operator: Address, stake = 1_000n * 10n ** 18n) {
        const ownerWallet = createWalletClient({ account: owner, transport, chain: viemChain });
        const deployerWallet = createWalletClient({ account: deployment.accounts.deployer, transport, chain: viemChain });
        await send(deployerWallet, { address: creditToken, abi: creditTokenAbi, functionName: "transfer", args: [owner, stake] } as never);
        await send(ownerWallet, { address: creditToken, abi: creditTokenAbi, functionName: "approve", args: [providerRegistry, stake] } as never);
        const region = "0x" + Buffer.from("local-dev-2").toString("hex").padEnd(64, "0");
        const capacity = { vcpu: 4, memoryMiB: 8_192, diskGiB: 100 };
        const prices = { perVcpuSecond: 1n, perMemoryMiBSecond: 1n, perDiskGiBSecond: 1n };
        return send(ownerWallet, {
          address: providerRegistry,
          abi: providerRegistryAbi,
          functionName: "register",
          args: [operator, region, capacity, prices, "", stake],
        } as never);
      },

      /** The demo provider's owner declares `capacity`, keeping its region, prices and metadata: room for many VMs at once. */
      async setCapacity(capacity: { vcpu: number; memoryMiB: number; diskGiB: number }) {
        const offer = await publicClient.readContract({
          address: providerRegistry,
          abi: providerRegistryAbi,
          functionName: "getProvider",
          args: [deployment.accounts.providerOwner],
        });
        return send(providerWallet, {
          address: providerRegistry,
          abi: providerRegistryAbi,
          functionName: "updateOffer",
          args: [offer.region, capacity, offer.prices, offer.metadataCid],
        } as never);
      },

      /** The operator and the pending nominee of `provider`. */
      async operatorsOf(provider: Address): Promise<{ operator: Address; pending: Address }> {
        const read = (functionName: "operatorOf" | "pendingOperatorOf") =>
          publicClient.readContract({ address: providerRegistry, abi: providerRegistryAbi, functionName, args: [provider] });
        return { operator: await read("operatorOf"), pending: await read("pendingOperatorOf") };
      },

      /** The demo provider's owner hands the operator role to `operatorKey` (a key the node holds), which accepts it. */
      async rotateOperator(operatorKey: Hex) {
        const operator = privateKeyToAccount(operatorKey);
        await send(providerWallet, { address: providerRegistry, abi: providerRegistryAbi, functionName: "setOperator", args: [operator.address] } as never);
        const newOperatorWallet = createWalletClient({ account: operator.address, transport, chain: viemChain });
        return send(newOperatorWallet, { address: providerRegistry, abi: providerRegistryAbi, functionName: "acceptOperator", args: [deployment.accounts.providerOwner] } as never);
      },

      async providerWithdraw() {
        return send(providerWallet, { address: vmRegistry, abi: vmRegistryAbi, functionName: "withdrawEarnings", args: [] } as never);
      },

      /**
       * Mines `blocks` empty blocks, one evm_mine each: hardhat_mine's bulk blocks report a zero parentHash, which the
       * daemon's range reads rightly take for a chain that changed under them.
       */
      async mine(blocks: number) {
        for (let i = 0; i < blocks; i++) await publicClient.request({ method: "evm_mine", params: [] } as never);
      },

      async vm(vmId: bigint): Promise<ChainVm> {
        const vm = await readVm(publicClient, vmRegistry, vmId);
        if (!vm) throw new Error(`VM ${vmId} does not exist`);
        return vm;
      },

      /** Polls until the VM is in one of `states`; fails with the state it was last seen in. */
      async waitForState(vmId: bigint, states: VmStateName | VmStateName[], timeoutMs = 30_000): Promise<ChainVm> {
        const wanted = Array.isArray(states) ? states : [states];
        const deadline = Date.now() + timeoutMs;
        let last: ChainVm | undefined;
        while (Date.now() < deadline) {
          last = await stack.vm(vmId);
          if (wanted.includes(last.state)) return last;
          await sleep(100);
        }
        throw new Error(`VM ${vmId} did not reach ${wanted.join("/")} within ${timeoutMs} ms; last state ${last?.state}`);
      },

      /** Writes a daemon config file for the demo provider; `overrides` are merged at the top level. */
      writeDaemonConfig(daemonDir: string, overrides: Record<string, unknown> = {}): string {
        const file = join(daemonDir, "config.json");
        writeFileSync(file, JSON.stringify(daemonConfig(deployment, chain.rpcUrl, ipfsServer.url, daemonDir, overrides), null, 2));
        return file;
      },

      async stop(): Promise<void> {
        for (const stop of stops.reverse()) await stop().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return stack;
  } catch (error) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    throw error;
  }
}

/** Gas limit of the test stack's own transactions: above any single marketplace call, far below the block's. */
const TEST_TX_GAS = 3_000_000n;

/** scrypt work factor of the tests' keystores: 1,000 times cheaper than a real one, the same format. */
const TEST_KEYSTORE_SCRYPT_N = 2 ** 8;

/** Writes `key`'s keystore and its password file into `dir`, as a provider would, and returns the config field. */
export function writeOperatorKeystore(dir: string, key: Hex) {
  mkdirSync(dir, { recursive: true });
  const password = `test password for ${dir}`;
  const file = join(dir, "operator-keystore.json");
  const passwordFile = join(dir, "operator-keystore.password");
  writeFileSync(file, JSON.stringify(encryptKeystore(key, password, { scryptN: TEST_KEYSTORE_SCRYPT_N })));
  writeFileSync(passwordFile, password, { mode: 0o600 });
  return { file, passwordFile };
}

/**
 * A daemon config for the test stack; the operator key (the demo operator's, or `overrides.operatorKey`) goes
 * into a keystore in `dataDir`, since the daemon never reads a key from its config file.
 */
export function daemonConfig(deployment: LocalDeployment, rpcUrl: string, ipfsUrl: string, dataDir: string, overrides: Record<string, unknown>) {
  const { operatorKey = deployment.accounts.providerOperatorKey, ...rest } = overrides as { operatorKey?: Hex };
  return {
    rpcUrl,
    chainId: deployment.chainId,
    operatorKeystore: writeOperatorKeystore(dataDir, operatorKey),
    provider: deployment.accounts.providerOwner,
    contracts: { vmRegistry: deployment.contracts.vmRegistry, providerRegistry: deployment.contracts.providerRegistry },
    startBlock: deployment.deployBlock,
    dataDir,
    confirmations: 1,
    pollIntervalMs: 200,
    ipfs: { mode: "kubo", url: ipfsUrl },
    manifest: { fetchTimeoutMs: 3000 },
    driver: { readyTimeoutMs: 3000 },
    api: { host: "127.0.0.1", port: 0 },
    logLevel: "warn",
    ...rest,
  };
}
