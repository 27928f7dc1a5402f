// How fast the daemon replays history from a cold store, against how fast the node hands out the
// same logs to a bare eth_getLogs loop: same node, same range, same filter, same chunk size.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { pad, type Hex } from "viem";
import { createChainClients } from "../../offchain-daemon/src/chain/clients.ts";
import { createLogSync } from "../../offchain-daemon/src/chain/log-sync.ts";
import { Store } from "../../offchain-daemon/src/store/store.ts";
import type { TestStack } from "../../test/daemon-support/stack.ts";
import type { EventHistory } from "./event-history.ts";

const CHUNK_BLOCKS = 2000; // the daemon's default logChunkBlocks

/** The bare loop: eth_getLogs over the range in chunks, JSON parsed, nothing else. Returns the number of logs. */
async function rawGetLogs(stack: TestStack, fromBlock: bigint, toBlock: bigint): Promise<number> {
  const topic = pad(stack.deployment.accounts.providerOwner.toLowerCase() as Hex, { size: 32 });
  let logs = 0;
  for (let from = fromBlock; from <= toBlock; from += BigInt(CHUNK_BLOCKS)) {
    const to = from + BigInt(CHUNK_BLOCKS) - 1n < toBlock ? from + BigInt(CHUNK_BLOCKS) - 1n : toBlock;
    const filter = { address: stack.deployment.contracts.vmRegistry, fromBlock: `0x${from.toString(16)}`, toBlock: `0x${to.toString(16)}`, topics: [null, null, null, topic] };
    const response = await fetch(stack.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_getLogs", params: [filter] }) });
    logs += ((await response.json()) as { result: unknown[] }).result.length;
  }
  return logs;
}

/** The daemon's log sync from an empty store up to the head: every VM recorded, every unfinalized hash kept. Returns the VMs recorded. */
async function daemonReplay(stack: TestStack, fromBlock: bigint): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "novacron-catch-up-"));
  const store = Store.open(join(dir, "daemon.sqlite"));
  try {
    const { publicClient } = createChainClients({ rpcUrl: stack.rpcUrl, chainId: stack.deployment.chainId, operatorKey: stack.deployment.accounts.providerOperatorKey });
    const sync = createLogSync({
      client: publicClient,
      store,
      vmRegistry: stack.deployment.contracts.vmRegistry,
      provider: stack.deployment.accounts.providerOwner,
      startBlock: fromBlock,
      confirmations: 0,
      chunkBlocks: CHUNK_BLOCKS,
      logger: pino({ level: process.env.NOVACRON_BENCH_LOG_LEVEL ?? "silent" }),
      // The reconciler is not timed: what a replay costs is reading and recording the history.
      onVms: async () => undefined,
    });
    await sync.syncOnce();
    return store.listActiveVms().length;
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export type CatchUpResult = {
  events: number;
  blocks: number;
  rawGetLogsMs: number;
  daemonReplayMs: number;
  rawEventsPerSecond: number;
  daemonEventsPerSecond: number;
  catchUpRatio: number;
};

/** Alternates the two `repeats` times and keeps each one's best time, so a noisy neighbour hurts neither more. */
export async function measureCatchUp(stack: TestStack, history: EventHistory, repeats = 3): Promise<CatchUpResult> {
  const head = await stack.publicClient.getBlockNumber();
  let raw = Infinity;
  let replay = Infinity;
  for (let i = 0; i < repeats; i++) {
    let started = performance.now();
    const logs = await rawGetLogs(stack, history.fromBlock, head);
    raw = Math.min(raw, performance.now() - started);
    if (logs !== history.events) throw new Error(`eth_getLogs returned ${logs} logs, ${history.events} were emitted`);
    started = performance.now();
    const vms = await daemonReplay(stack, history.fromBlock);
    replay = Math.min(replay, performance.now() - started);
    if (vms !== history.vms) throw new Error(`the daemon recorded ${vms} VMs, ${history.vms} were in the history`);
  }
  const perSecond = (ms: number) => Math.round((history.events * 1000) / ms);
  return {
    events: history.events,
    blocks: Number(head - history.fromBlock + 1n),
    rawGetLogsMs: Math.round(raw),
    daemonReplayMs: Math.round(replay),
    rawEventsPerSecond: perSecond(raw),
    daemonEventsPerSecond: perSecond(replay),
    catchUpRatio: Number((raw / replay).toFixed(3)),
  };
}
