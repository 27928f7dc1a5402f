import type { Address, Hex, Log } from "viem";
import { pad } from "viem";
import type { Logger } from "pino";
import type { Store } from "../store/store.ts";
import { canonicalHash, type BlockRef } from "./blocks.ts";
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

/**
 * Blocks deeper than this under the head are final: their hashes are no longer
 * kept, and a reorg deeper than this is an error (logged, then a rescan from
 * the start block).
 */
const FINALITY_DEPTH = 512n;

/**
 * Follows VmRegistry logs for one provider from a persisted checkpoint:
 * historical backfill in chunks, then the same step at the head. The hash of
 * every block that can still be reorged is kept; a reorg is found when the
 * checkpoint's hash no longer matches the chain, and the sync rewinds to the
 * newest stored block that still matches and re-reads from there. A read
 * whose logs or end block changed under it (a reorg during the read) is
 * dropped and repeated. An RPC failure is never taken for a reorg. Logs only
 * say *which* VMs to look at: the reconciler always reads current state, so
 * re-reading a range is harmless.
 */
export function createLogSync(parameters: LogSyncParameters) {
  const { client, store, vmRegistry, provider, startBlock, confirmations, logger, onVms } = parameters;
  const providerTopic = pad(provider.toLowerCase() as Hex, { size: 32 });
  const maxChunk = BigInt(parameters.chunkBlocks);
  let chunk = maxChunk;

  /** Returns the block to resume after: the newest stored block still on the canonical chain. */
  async function rewind(from: bigint): Promise<bigint | undefined> {
    const floor = from > FINALITY_DEPTH ? from - FINALITY_DEPTH : 0n;
    for (let n = from - 1n; n >= floor && n >= startBlock; n--) {
      const stored = store.getBlockHash(n);
      if (stored === undefined) continue;
      if ((await canonicalHash(client, n)) === stored) return n;
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
        // A refused range is retried smaller below, never the same again: the transport's retries would ask the
        // node for the whole range three more times (a response over viem's 10 MiB cap is refused after it was built).
      }, { retryCount: 0 })) as Log[];
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

  /**
   * Reads the logs of [from, to] together with the hashes of its blocks that
   * can still be reorged (and always `to`'s). Returns `undefined` when the
   * chain changed during the read: a header that does not follow its parent,
   * a log from another block than the header at its height, or a different
   * `to` afterwards.
   */
  async function readRange(from: bigint, to: bigint, head: bigint): Promise<{ logs: Log[]; blocks: BlockRef[] } | undefined> {
    const unfinal = head - FINALITY_DEPTH + 1n > from ? head - FINALITY_DEPTH + 1n : from;
    const headers = new Map<bigint, { hash: Hex; parentHash: Hex }>();
    for (let n = unfinal < to ? unfinal : to; n <= to; n++) {
      const block = await client.getBlock({ blockNumber: n });
      const parent = headers.get(n - 1n)?.hash ?? store.getBlockHash(n - 1n);
      if (parent !== undefined && block.parentHash !== parent) return undefined;
      headers.set(n, { hash: block.hash, parentHash: block.parentHash });
    }
    const logs = await getLogs(from, to);
    for (const log of logs) {
      const header = headers.get(BigInt(log.blockNumber!));
      if (header !== undefined && header.hash !== log.blockHash) return undefined;
    }
    if ((await canonicalHash(client, to)) !== headers.get(to)!.hash) return undefined;
    return { logs, blocks: [...headers].map(([blockNumber, { hash }]) => ({ blockNumber, blockHash: hash })) };
  }

  /** Reads everything confirmed since the checkpoint. Returns the new checkpoint block. */
  async function syncOnce(): Promise<bigint> {
    const head = await client.getBlockNumber({ cacheTime: 0 });
    const safe = head - BigInt(confirmations);
    let checkpoint = store.getCheckpoint();

    // `undefined`: the chain (or this backend) is shorter than the checkpoint for now; nothing to read yet.
    const current = checkpoint && (await canonicalHash(client, checkpoint.blockNumber));
    if (checkpoint && current !== undefined && current !== checkpoint.blockHash) {
      const ancestor = await rewind(checkpoint.blockNumber);
      const resumeAfter = ancestor ?? startBlock - 1n;
      parameters.onReorg?.(checkpoint.blockNumber, resumeAfter);
      logger.warn({ msg: "reorg detected", checkpoint: String(checkpoint.blockNumber), resume_after: String(resumeAfter) });
      const hash = ancestor === undefined ? undefined : store.getBlockHash(ancestor);
      checkpoint = hash ? { blockNumber: ancestor!, blockHash: hash } : undefined;
      store.transaction(() => {
        store.deleteBlocksFrom(resumeAfter + 1n);
        // What the daemon finished on the undone blocks' state may be undone too: look at those VMs again.
        store.reactivateVmsDoneAfter(resumeAfter);
        if (checkpoint) store.setCheckpoint(checkpoint);
      });
      await onVms(store.listActiveVms(), "reorg");
    }

    let from = checkpoint ? checkpoint.blockNumber + 1n : startBlock;
    while (from <= safe) {
      const to = from + chunk - 1n < safe ? from + chunk - 1n : safe;
      const read = await readRange(from, to, head);
      if (read === undefined) {
        logger.warn({ msg: "the chain changed while reading a range; reading it again next round", from: String(from), to: String(to) });
        break;
      }
      const sightings = firstSightings(read.logs);
      const end = read.blocks.at(-1)!;
      store.transaction(() => {
        for (const [vmId, seenAt] of sightings) store.upsertVm(vmId, seenAt);
        for (const block of read.blocks) store.putBlockHash(block.blockNumber, block.blockHash);
        // The checkpoint moves with the VMs it covers: a crash re-reads the range, never skips it.
        store.setCheckpoint(end);
        if (head > FINALITY_DEPTH) store.pruneFinal(head - FINALITY_DEPTH);
      });
      if (sightings.size > 0) await onVms([...sightings.keys()], "logs");
      from = to + 1n;
    }
    const currentCheckpoint = store.getCheckpoint()?.blockNumber ?? startBlock - 1n;
    parameters.onHead?.(head, currentCheckpoint);
    return currentCheckpoint;
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
