import { join } from "node:path";
import { setTimeout } from "node:timers/promises";
import type { Logger } from "pino";
import { createPublicClient, http, parseGwei } from "viem";
import { getChainId } from "viem/actions";
import { providerRegistryAbi } from "./chain/abi.generated.ts";
import { createChainClients } from "./chain/clients.ts";
import { errorMessage, redactUrls } from "./chain/errors.ts";
import { createLogSync } from "./chain/log-sync.ts";
import { createReportSender } from "./chain/sender.ts";
import type { Config } from "./config.ts";
import { createProcessDriver } from "./drivers/process.ts";
import { createEmbeddedStore } from "./ipfs/embedded.ts";
import { createKuboStore } from "./ipfs/kubo.ts";
import type { ContentStore } from "./ipfs/types.ts";
import { daemonHealth } from "./api/health.ts";
import { createMetrics } from "./api/metrics.ts";
import { startApiServer } from "./api/server.ts";
import { createReconciler } from "./reconciler/reconciler.ts";
import { Store, StoreError, type StoreBinding } from "./store/store.ts";

/** The daemon cannot serve with this configuration; the message says what to change. */
export class ServiceStartError extends Error {
  override readonly name = "ServiceStartError";
}

export type Service = {
  /** Where the HTTP API listens. */
  apiUrl: string;
  /** Stops following the chain, lets reconcile passes finish and closes everything. Workloads keep running. */
  stop(): Promise<void>;
};

/** Hardhat's and anvil's development chain: the one chain where an operator key may come from the environment. */
export const LOCAL_CHAIN_ID = 31337;

/** An operator key in an environment variable can be read by every process of the user; a real chain gets a keystore. */
function checkKeySource(config: Config, chainId: number, logger: Logger): void {
  if (config.operatorKeySource !== "environment") return;
  if (chainId !== LOCAL_CHAIN_ID) {
    throw new ServiceStartError(
      `the operator key comes from NOVACRON_OPERATOR_KEY, which is for the local development chain (${LOCAL_CHAIN_ID}) only, and the RPC serves chain ${chainId}: write the key to a keystore with \`novacron-daemon keystore import --out FILE\` and set operatorKeystore`,
    );
  }
  logger.warn({ msg: "operator key read from NOVACRON_OPERATOR_KEY: acceptable on the local development chain only; use operatorKeystore anywhere else" });
}

/** Every how many polls all active VMs are reconciled even without events (workload exits, funds running out). */
const RESYNC_EVERY_POLLS = 5;

/**
 * The composition root: builds the modules in dependency order, catches up
 * with the chain, reconciles every VM once, then follows the chain. If any step
 * fails, what was already started is stopped in reverse order.
 */
export async function startService(config: Config, logger: Logger): Promise<Service> {
  const closers: Array<() => Promise<void> | void> = [];
  // Once: a second stop() (a second signal) waits for the first instead of closing everything again.
  let stopping: Promise<void> | undefined;
  const closeAll = () =>
    (stopping ??= (async () => {
      for (const close of [...closers].reverse()) {
        try {
          await close();
        } catch (error) {
          logger.warn({ msg: "error while stopping", error: errorMessage(error) });
        }
      }
    })());

  try {
    const metrics = createMetrics();
    const store = Store.open(join(config.dataDir, "daemon.sqlite"));
    closers.push(() => store.close());

    const content: ContentStore =
      config.ipfs.mode === "kubo" ? createKuboStore({ url: config.ipfs.url }) : await createEmbeddedStore({ directory: config.ipfs.directory });
    closers.push(() => content.close());

    const driver = createProcessDriver({
      rootDir: join(config.dataDir, "vms"),
      allowedCommands: config.driver.allowedCommands,
      stopTimeoutMs: config.driver.stopTimeoutMs,
      logger: logger.child({ module: "driver" }),
    });
    closers.push(() => driver.close());

    const chainId = await rpcChainId(config);
    checkKeySource(config, chainId, logger);
    bindStore(store, { chainId, vmRegistry: config.contracts.vmRegistry, provider: config.provider });
    const clients = createChainClients({ rpcUrl: config.rpcUrl, chainId, operatorKey: config.operatorKey, pollingInterval: config.pollIntervalMs });
    await ensureOperator(config, clients, logger);

    const sender = createReportSender({
      ...clients,
      store,
      vmRegistry: config.contracts.vmRegistry,
      logger: logger.child({ module: "sender" }),
      replaceAfterBlocks: config.tx.replaceAfterBlocks,
      maxFeePerGas: parseGwei(config.tx.maxFeePerGasGwei.toFixed(9)),
      onOutcome: (action, outcome) => metrics.txTotal.inc({ action, outcome }),
    });
    const reconciler = createReconciler({
      client: clients.publicClient,
      vmRegistry: config.contracts.vmRegistry,
      provider: config.provider,
      store,
      driver,
      content,
      sender,
      manifest: config.manifest,
      readyTimeoutMs: config.driver.readyTimeoutMs,
      concurrency: config.reconcileConcurrency,
      confirmations: config.confirmations,
      logger: logger.child({ module: "reconciler" }),
      onReconciled: (result, seconds) => {
        metrics.reconcileTotal.inc({ result });
        metrics.reconcileDuration.observe(seconds);
      },
    });
    closers.push(() => reconciler.drain());
    // Closed before the drain: passes waiting for a receipt end at once, their reports stay journalled for the next start.
    closers.push(() => sender.close());

    let lastSyncAt = 0;
    const sync = createLogSync({
      client: clients.publicClient,
      store,
      vmRegistry: config.contracts.vmRegistry,
      provider: config.provider,
      startBlock: config.startBlock,
      confirmations: config.confirmations,
      chunkBlocks: config.logChunkBlocks,
      logger: logger.child({ module: "chain" }),
      // Not awaited: a slow manifest fetch for one VM must not hold back reading the chain.
      onVms: async (vmIds) => void reconciler.reconcileMany(vmIds),
      onHead: (head, checkpoint) => {
        lastSyncAt = Date.now();
        metrics.chainHead.set(Number(head));
        metrics.checkpointBlock.set(Number(checkpoint));
      },
      onReorg: () => metrics.reorgsTotal.inc(),
    });

    await sender.recover();
    const checkpoint = await sync.syncOnce();
    await reconciler.reconcileMany(store.listActiveVms());
    await reconciler.collectOrphans();
    logger.info({ msg: "caught up", checkpoint: String(checkpoint), active_vms: store.listActiveVms().length });

    const api = await startApiServer({
      host: config.api.host,
      port: config.api.port,
      registry: metrics.registry,
      status: () => ({ provider: config.provider, operator: clients.account.address, vms: reconciler.snapshot() }),
      health: daemonHealth({ lastSyncAt: () => lastSyncAt, pollIntervalMs: config.pollIntervalMs, sender }),
    });
    closers.push(() => api.close());

    const stopSignal = new AbortController();
    let polls = 0;
    const loop = (async () => {
      while (!stopSignal.signal.aborted) {
        try {
          await sync.syncOnce();
          if (++polls % RESYNC_EVERY_POLLS === 0) void reconciler.reconcileMany(store.listActiveVms());
        } catch (error) {
          // An RPC outage is expected weather: keep the last checkpoint and try again on the next tick.
          logger.warn({ msg: "chain sync failed; retrying", error: errorMessage(error) });
        }
        await setTimeout(config.pollIntervalMs, undefined, { signal: stopSignal.signal }).catch(() => undefined);
      }
    })();
    closers.push(async () => {
      stopSignal.abort();
      await loop;
    });

    logger.info({ msg: "daemon started", api: api.url, provider: config.provider, operator: clients.account.address });
    return { apiUrl: api.url, stop: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function rpcChainId(config: Config): Promise<number> {
  const chainId = await getChainId(createPublicClient({ transport: http(config.rpcUrl, { retryCount: 2 }) })).catch((error: unknown) => {
    throw new ServiceStartError(`cannot reach the chain at ${redactUrls(config.rpcUrl)}: ${errorMessage(error).split("\n")[0]}. Is the node running?`);
  });
  if (config.chainId !== undefined && chainId !== config.chainId) {
    throw new ServiceStartError(`the RPC at ${redactUrls(config.rpcUrl)} serves chain ${chainId}, but the config says chainId ${config.chainId}.`);
  }
  return chainId;
}

function bindStore(store: Store, binding: StoreBinding): void {
  try {
    store.bind(binding);
  } catch (error) {
    if (error instanceof StoreError) throw new ServiceStartError(error.message);
    throw error;
  }
}

/**
 * The daemon's key must operate the configured provider. A key the provider nominated (provider:register or
 * provider:set-operator) takes the role here: the daemon sends acceptOperator(provider) once, at startup, so that
 * starting the daemon with the new key is all a provider does to rotate keys or finish registering. Any other
 * key is refused with the step that fixes it.
 */
async function ensureOperator(config: Config, { publicClient, walletClient, account }: ReturnType<typeof createChainClients>, logger: Logger): Promise<void> {
  const registry = config.contracts.providerRegistry;
  const read = (functionName: "isRegistered" | "operatorOf" | "pendingOperatorOf") =>
    publicClient.readContract({ address: registry, abi: providerRegistryAbi, functionName, args: [config.provider] });
  const [registered, operator, pending] = await Promise.all([read("isRegistered"), read("operatorOf"), read("pendingOperatorOf")]);
  const me = account.address.toLowerCase();
  if (registered !== true) {
    throw new ServiceStartError(
      `provider ${config.provider} is not registered in the ProviderRegistry at ${registry}. ` +
        `Check "provider" (the owner's address) and "contracts" in the config, or register it with \`npx hardhat provider:register --operator ${account.address} ...\`.`,
    );
  }
  if (String(operator).toLowerCase() === me) return;
  if (String(pending).toLowerCase() === me) {
    logger.info({ msg: "accepting the operator role the provider nominated this key for", provider: config.provider, previous_operator: operator });
    let hash: `0x${string}`;
    try {
      const { request } = await publicClient.simulateContract({
        account,
        address: registry,
        abi: providerRegistryAbi,
        functionName: "acceptOperator",
        args: [config.provider],
      });
      hash = await walletClient.writeContract(request);
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      const fix = /ProviderRegistryOperatorTaken/.test(text)
        ? "This key already operates another provider: that provider nominates another key, which accepts, to release it."
        : /insufficient funds|exceeds the balance/i.test(text)
          ? "The key needs gas for one transaction; fund it and start the daemon again."
          : "Fix the cause and start the daemon again.";
      throw new ServiceStartError(`could not accept the operator role of provider ${config.provider} with ${account.address}: ${text.split("\n")[0]}. ${fix}`);
    }
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new ServiceStartError(`acceptOperator(${config.provider}) reverted in transaction ${hash}.`);
    logger.info({ msg: "accepted the operator role", provider: config.provider, previous_operator: operator, tx: hash });
    return;
  }
  const ZERO = "0x0000000000000000000000000000000000000000";
  throw new ServiceStartError(
    `the operator key's address ${account.address} is neither the operator of provider ${config.provider} ` +
      `(operator: ${operator === ZERO ? "none yet" : operator}) nor nominated by it (pending: ${pending === ZERO ? "none" : pending}). ` +
      `Have the provider's owner nominate this key with \`npx hardhat provider:set-operator --operator ${account.address}\` ` +
      "(setOperator), then start the daemon again: it accepts the nomination at startup. Or start it with the operator key the provider has.",
  );
}
