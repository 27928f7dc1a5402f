import { join } from "node:path";
import { FsBlockstore } from "blockstore-fs";
import { FsDatastore } from "datastore-fs";
import { createHeliaLight, type Helia } from "helia";
import type { CID } from "multiformats/cid";
import { assertFitsRawBlock, assertRawSha256, rawCid, readVerified } from "./block.ts";
import { ContentNotFoundError, type ContentStore } from "./types.ts";

export interface CreateEmbeddedStoreParameters {
  /** Where the node keeps its data: blocks in `<directory>/blocks`, pins and metadata in `<directory>/datastore`. Created when missing. */
  directory: string;
}

/**
 * A {@link ContentStore} backed by a Helia node living in this process. It
 * has no libp2p and no block brokers: it holds what was put into it, nothing
 * more, and answers "not found" at once instead of searching a network.
 */
export interface EmbeddedStore extends ContentStore {
  /** The Helia node, for callers that need blocks of any codec (the RPC server, tests). */
  readonly helia: Helia;
  /**
   * Streams the stored block for `cid`, of any codec, without verifying it.
   * Throws {@link ContentNotFoundError} when the block is absent, and the
   * signal's reason when `signal` aborts.
   */
  streamBlock(cid: CID, options: { signal: AbortSignal }): AsyncGenerator<Uint8Array>;
}

export async function createEmbeddedStore({ directory }: CreateEmbeddedStoreParameters): Promise<EmbeddedStore> {
  const blockstore = new FsBlockstore(join(directory, "blocks"));
  const datastore = new FsDatastore(join(directory, "datastore"));
  await blockstore.open();
  await datastore.open();
  // createHeliaLight, never createHelia: the full node dials the public network on start.
  const helia = createHeliaLight({ blockstore, datastore });
  await helia.start();

  async function* streamBlock(cid: CID, { signal }: { signal: AbortSignal }): AsyncGenerator<Uint8Array> {
    try {
      // offline: with no block brokers Helia would otherwise fail with a configuration error.
      yield* helia.blockstore.get(cid, { offline: true, signal });
    } catch (err) {
      signal.throwIfAborted();
      if (isNotFound(err)) throw new ContentNotFoundError(cid.toString(), { cause: err });
      throw err;
    }
  }

  return {
    helia,
    streamBlock,

    async putRaw(bytes, options = {}) {
      await assertFitsRawBlock(bytes);
      const cid = await rawCid(bytes);
      await helia.blockstore.put(cid, bytes, { signal: options.signal });
      // Pinned like Kubo's `add --pin` so a future garbage collection keeps it.
      try {
        for await (const _ of helia.pins.add(cid, { signal: options.signal }));
      } catch (err) {
        if (!(err instanceof Error && err.name === "AlreadyPinnedError")) throw err;
      }
      return cid;
    },

    // In this process, on a local directory: it answers whenever the daemon does.
    async responsive() {
      return true;
    },

    async getRaw(cid, { signal, maxBytes }) {
      assertRawSha256(cid);
      signal.throwIfAborted();
      try {
        return await readVerified(cid, streamBlock(cid, { signal }), { maxBytes, signal });
      } catch (err) {
        signal.throwIfAborted();
        throw err;
      }
    },

    async close() {
      await helia.stop();
      await blockstore.close();
      await datastore.close();
    },
  };
}

/** Helia's offline miss and blockstore-fs's missing file; both are ways of saying "absent". */
function isNotFound(err: unknown): boolean {
  return err instanceof Error && (err.name === "BlockNotFoundWhileOfflineError" || err.name === "NotFoundError");
}
