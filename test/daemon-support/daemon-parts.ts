// The daemon's chain-facing modules wired as service.ts wires them, but over a transport the test
// controls and without the poll loop: the test calls syncOnce and reconcile itself.
import { join } from "node:path";
import pino, { type Logger } from "pino";
import type { Transport } from "viem";
import { createChainClients } from "../../offchain-daemon/src/chain/clients.ts";
import { createLogSync } from "../../offchain-daemon/src/chain/log-sync.ts";
import { createReportSender } from "../../offchain-daemon/src/chain/sender.ts";
import { createProcessDriver, destroyAllWorkloads } from "../../offchain-daemon/src/drivers/process.ts";
import { createReconciler } from "../../offchain-daemon/src/reconciler/reconciler.ts";
import { Store } from "../../offchain-daemon/src/store/store.ts";
import type { TestStack } from "./stack.ts";

export type DaemonParts = Awaited<ReturnType<typeof createDaemonParts>>;

export async function createDaemonParts(
  stack: TestStack,
  dataDir: string,
  options: { transport: Transport; confirmations?: number; chunkBlocks?: number; reconcileConcurrency?: number; logger?: Logger },
) {
  const logger = options.logger ?? pino({ level: process.env.NOVACRON_TEST_LOG_LEVEL ?? "silent" });
  const { deployment } = stack;
  const store = Store.open(join(dataDir, "daemon.sqlite"));
  const clients = createChainClients({
    rpcUrl: stack.rpcUrl,
    chainId: deployment.chainId,
    operatorKey: deployment.accounts.providerOperatorKey,
    pollingInterval: 100,
    transport: options.transport,
  });
  const driver = createProcessDriver({ rootDir: join(dataDir, "vms"), allowedCommands: { node: process.execPath }, stopTimeoutMs: 2000, logger });
  const sender = createReportSender({ ...clients, store, vmRegistry: deployment.contracts.vmRegistry, logger, receiptTimeoutMs: 20_000 });
  const reconciler = createReconciler({
    client: clients.publicClient,
    vmRegistry: deployment.contracts.vmRegistry,
    provider: deployment.accounts.providerOwner,
    store,
    driver,
    content: stack.ipfs,
    sender,
    manifest: { maxBytes: 65_536, fetchTimeoutMs: 3000 },
    readyTimeoutMs: 5000,
    concurrency: options.reconcileConcurrency ?? 8,
    confirmations: options.confirmations ?? 0,
    logger,
  });
  const touched: bigint[] = [];
  const reorgs: Array<{ from: bigint; to: bigint }> = [];
  const sync = createLogSync({
    client: clients.publicClient,
    store,
    vmRegistry: deployment.contracts.vmRegistry,
    provider: deployment.accounts.providerOwner,
    startBlock: BigInt(deployment.deployBlock),
    confirmations: options.confirmations ?? 0,
    chunkBlocks: options.chunkBlocks ?? 2000,
    logger,
    onVms: async (vmIds) => void touched.push(...vmIds),
    onReorg: (from, to) => void reorgs.push({ from, to }),
  });
  return {
    store,
    clients,
    driver,
    sender,
    reconciler,
    sync,
    /** VM ids the log sync handed on, in order. */
    touched,
    /** Each reorg the log sync found: the checkpoint it left and the block it resumed after. */
    reorgs,
    async close() {
      sender.close();
      await reconciler.drain();
      await driver.close();
      await destroyAllWorkloads(join(dataDir, "vms"), logger);
      store.close();
    },
  };
}
