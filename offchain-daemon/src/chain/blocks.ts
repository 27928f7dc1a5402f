import { BlockNotFoundError, type Hex } from "viem";
import type { PublicClient } from "./clients.ts";

/** A block named by number and hash, e.g. the one a log came from. */
export type BlockRef = { blockNumber: bigint; blockHash: Hex };

/**
 * Where a block stands on the RPC's chain: `canonical` (same hash at that
 * height), `gone` (another block holds that height: it was reorged out) or
 * `unknown` (no block at that height yet: the chain is shorter, or the RPC lags).
 * An RPC failure is thrown, never taken for an answer.
 */
export type BlockStanding = "canonical" | "gone" | "unknown";

/** The hash of the chain's block at `blockNumber`, or `undefined` when there is none (yet). Throws when the RPC fails. */
export async function canonicalHash(client: PublicClient, blockNumber: bigint): Promise<Hex | undefined> {
  try {
    return (await client.getBlock({ blockNumber })).hash ?? undefined;
  } catch (error) {
    if (error instanceof BlockNotFoundError) return undefined;
    throw error;
  }
}

export async function blockStanding(client: PublicClient, block: BlockRef): Promise<BlockStanding> {
  const hash = await canonicalHash(client, block.blockNumber);
  if (hash === undefined) return "unknown";
  return hash.toLowerCase() === block.blockHash.toLowerCase() ? "canonical" : "gone";
}
