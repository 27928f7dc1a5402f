import type { Address, Hex, Log } from "viem";
import { pad } from "viem";
import type { Logger } from "pino";
import type { Store } from "../store/store.ts";
import type { BlockRef } from "./blocks.ts";
import type { PublicClient } from "./clients.ts";

export type LogSyncParameters = {
  client: PublicClient;
  store: Store;
  /** The VmRegistry contract to follow. */
  vmRegistry: Address;
  /** Only logs whose third indexed topic is this provider are read. */
  provider: Address;
  /** First block to read when there is no checkpoint yet (the deployment block). */
  startBlock: bigint;
  /** Blocks a log must be buried under before it is processed. 0 = the head itself. */
  confirmations: number;
  /** Largest block range asked of `eth_getLogs` at once; halved when the RPC refuses, doubled again when it answers. */
  chunkBlocks: number;
  logger: Logger;
  /** Called with the VMs that newly confirmed logs touched, and after a reorg with every active VM. */
  onVms: (vmIds: bigint[], cause: "logs" | "reorg") => Promise<void>;
  onHead?: (head: bigint, checkpoint: bigint) => void;
  onReorg?: (from: bigint, to: bigint) => void;
};

/** How many stored block hashes to keep for finding a reorg's common ancestor. */
const HASH_HISTORY = 512n;

/**
 * Follows VmRegistry logs for one provider from a persisted checkpoint:
 * historical backfill in chunks, then the same step at the head. A reorg is
 * found when the checkpoint block's hash no longer matches the chain; the sync
 * rewinds to the newest stored block that still matches and re-reads from
 * there. Logs only say *which* VMs to look at: the reconciler always reads
 * current state, so re-reading a range is harmless.
 */
export function createLogSync(parameters: LogSyncParameters) {
  const { client, store, vmRegistry, provider, startBlock, confirmations, logger, onVms } = parameters;
  const providerTopic = pad(provider.toLowerCase() as Hex, { size: 32 });
  const maxChunk = BigInt(parameters.chunkBlocks);
  let chunk = maxChunk;

  async function blockHash(blockNumber: bigint): Promise<Hex | undefined> {
    try {
      return (await client.getBlock({ blockNumber })).hash ?? undefined;
    } catch {
      return undefined; // the block is gone: the chain is now shorter than our checkpoint
    }
  }

  /** Returns the block to resume after: the newest stored block still on the canonical chain. */
  async function rewind(from: bigint): Promise<bigint | undefined> {
    const floor = from > HASH_HISTORY ? from - HASH_HISTORY : 0n;
    for (let n = from - 1n; n >= floor && n >= startBlock; n--) {
      const stored = store.getBlockHash(n);
      if (stored === undefined) continue;
      if ((await blockHash(n)) === stored) return n;
    }
    logger.error({ msg: "reorg deeper than the stored hash history; rescanning from the start block", from: String(from) });
    return undefined;
  }

  async function getLogs(fromBlock: bigint, toBlock: bigint): Promise<Log[]> {
    let logs: Log[];
    try {
      logs = (await client.request({
        method: "eth_getLogs",
        params: [
          {
            address: vmRegistry,
            fromBlock: `0x${fromBlock.toString(16)}`,
            toBlock: `0x${toBlock.toString(16)}`,
            topics: [null, null, null, providerTopic],
          },
        ],
      })) as Log[];
    } catch (error) {
      // RPCs cap ranges or result counts in different ways; shrinking is the one answer that works for all.
      if (toBlock === fromBlock) throw error;
      chunk = chunk > 1n ? chunk / 2n : 1n;
      logger.warn({ msg: "eth_getLogs refused a range; shrinking", from: String(fromBlock), to: String(toBlock), chunk: String(chunk) });
      const middle = fromBlock + (toBlock - fromBlock) / 2n;
      return [...(await getLogs(fromBlock, middle)), ...(await getLogs(middle + 1n, toBlock))];
    }
    // A refusal may have been an outage rather than a limit: every success doubles the range again, up to the configured one.
    chunk = chunk * 2n < maxChunk ? chunk * 2n : maxChunk;
    return logs;
  }

  /** Reads everything confirmed since the checkpoint. Returns the new checkpoint block. */
  async function syncOnce(): Promise<bigint> {
    const head = await client.getBlockNumber({ cacheTime: 0 });
    const safe = head - BigInt(confirmations);
    let checkpoint = store.getCheckpoint();

    if (checkpoint && (await blockHash(checkpoint.blockNumber)) !== checkpoint.blockHash) {
      const ancestor = await rewind(checkpoint.blockNumber);
      const resumeAfter = ancestor ?? startBlock - 1n;
      parameters.onReorg?.(checkpoint.blockNumber, resumeAfter);
      logger.warn({ msg: "reorg detected", checkpoint: String(checkpoint.blockNumber), resume_after: String(resumeAfter) });
      store.deleteBlocksFrom(resumeAfter + 1n);
      const hash = ancestor === undefined ? undefined : store.getBlockHash(ancestor);
      checkpoint = hash ? { blockNumber: ancestor!, blockHash: hash } : undefined;
      if (checkpoint) store.setCheckpoint(checkpoint);
      await onVms(store.listActiveVms(), "reorg");
    }

    let from = checkpoint ? checkpoint.blockNumber + 1n : startBlock;
    while (from <= safe) {
      const to = from + chunk - 1n < safe ? from + chunk - 1n : safe;
      const logs = await getLogs(from, to);
      const hash = await blockHash(to);
      if (hash === undefined) break; // the head moved back under us; the next round finds the reorg
      const sightings = firstSightings(logs);
      for (const [vmId, seenAt] of sightings) store.upsertVm(vmId, seenAt);
      const vmIds = [...sightings.keys()];
      // The checkpoint moves only after the VMs are recorded: a crash here re-reads the range, never skips it.
      store.putBlockHash(to, hash);
      store.setCheckpoint({ blockNumber: to, blockHash: hash });
      if (to > HASH_HISTORY) store.pruneBlocksBelow(to - HASH_HISTORY);
      if (vmIds.length > 0) await onVms(vmIds, "logs");
      from = to + 1n;
    }
    const current = store.getCheckpoint()?.blockNumber ?? startBlock - 1n;
    parameters.onHead?.(head, current);
    return current;
  }

  return { syncOnce };
}

export type LogSync = ReturnType<typeof createLogSync>;

/** For each VM the logs name, the first block (logs come in chain order) that named it. */
function firstSightings(logs: Log[]): Map<bigint, BlockRef> {
  const sightings = new Map<bigint, BlockRef>();
  for (const log of logs) {
    const vmId = BigInt(log.topics[1]!);
    if (log.removed || sightings.has(vmId)) continue;
    sightings.set(vmId, { blockNumber: BigInt(log.blockNumber!), blockHash: log.blockHash! });
  }
  return sightings;
}
