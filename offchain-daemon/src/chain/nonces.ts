import type { Address } from "viem";
import type { Logger } from "pino";
import type { Store } from "../store/store.ts";
import type { PublicClient } from "./clients.ts";

export type NonceCounterParameters = {
  client: PublicClient;
  store: Store;
  address: Address;
  logger: Logger;
};

/**
 * Hands out one key's nonces locally, so that many transactions can be in flight at once. The
 * counter lives in the store and moves with each journalled transaction ({@link Store.setIntentTx});
 * it is re-synced from the chain at start and whenever a transaction turns out dropped or its
 * nonce taken. Callers serialize take-sign-journal, so two transactions never get one nonce.
 */
export function createNonceCounter({ client, store, address, logger }: NonceCounterParameters) {
  let next: number | undefined;

  /**
   * The next nonce is the chain's pending count, or past the highest nonce an open transaction of
   * ours holds (the node may have dropped it; it will be sent again with that nonce). A journalled
   * counter ahead of both would leave a gap no transaction fills, so the chain wins.
   */
  async function sync(held: Iterable<number>): Promise<void> {
    const pending = await client.getTransactionCount({ address, blockTag: "pending" });
    const synced = Math.max(pending, ...[...held].map((nonce) => nonce + 1));
    const journalled = store.nextNonce(address);
    if (journalled !== synced) logger.info({ msg: "nonce re-synced from the chain", journalled, chain_pending: pending, next: synced });
    store.setNextNonce(address, synced);
    next = synced;
  }

  /** The nonce for the next new transaction; `sync` must have run. */
  function peek(): number {
    if (next === undefined) throw new Error("the nonce counter is used before its first sync");
    return next;
  }

  /** `nonce` was journalled (the store moved its counter in the same write). */
  function used(nonce: number): void {
    next = Math.max(peek(), nonce + 1);
  }

  return { sync, peek, used, synced: () => next !== undefined };
}

export type NonceCounter = ReturnType<typeof createNonceCounter>;
