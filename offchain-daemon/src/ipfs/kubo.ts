import { create } from "kubo-rpc-client";
import { assertFitsRawBlock, assertRawSha256, rawCid, readVerified } from "./block.ts";
import {
  ContentHashMismatchError,
  ContentNotFoundError,
  ContentTooLargeError,
  type ContentStore,
  UnsupportedCidError,
} from "./types.ts";

export interface CreateKuboStoreParameters {
  /** Base URL of the Kubo RPC API, e.g. "http://127.0.0.1:5001" (the path defaults to /api/v0). */
  url: string;
}

export class KuboUnexpectedCidError extends Error {
  override readonly name = "KuboUnexpectedCidError";
  readonly expected: string;
  readonly actual: string;
  constructor(url: string, expected: string, actual: string) {
    super(
      `The IPFS node at ${url} stored the content as ${actual}, not as the raw block ${expected}. It ignored cid-version=1/raw-leaves; use a Kubo version that honors them.`,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

export class KuboRequestError extends Error {
  override readonly name = "KuboRequestError";
  readonly url: string;
  constructor(url: string, command: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const hint = isUnreachable(cause) ? " Start the IPFS node (`npm start` runs one) or fix the configured URL." : "";
    super(`IPFS RPC "${command}" at ${url} failed: ${reason}.${hint}`, { cause });
    this.url = url;
  }
}

/**
 * A {@link ContentStore} over a Kubo node's RPC API: a real Kubo, or the
 * embedded node's RPC server (kubo-rpc-server.ts), which speaks the subset used here.
 */
export function createKuboStore({ url }: CreateKuboStoreParameters): ContentStore {
  const client = create({ url });

  return {
    async putRaw(bytes, options = {}) {
      // Checked here because for larger content Kubo silently builds a dag-pb root.
      await assertFitsRawBlock(bytes);
      const expected = await rawCid(bytes);
      const { cid } = await client
        .add(bytes, { cidVersion: 1, rawLeaves: true, pin: true, signal: options.signal })
        .catch((err: unknown) => {
          options.signal?.throwIfAborted();
          throw new KuboRequestError(url, "add", err);
        });
      if (cid.toString() !== expected.toString()) throw new KuboUnexpectedCidError(url, expected.toString(), cid.toString());
      return expected;
    },

    async getRaw(cid, { signal, maxBytes }) {
      assertRawSha256(cid);
      signal.throwIfAborted();
      // Aborted once we have read enough, so an oversized response stops streaming.
      const done = new AbortController();
      try {
        const chunks = client.cat(cid, { signal: AbortSignal.any([signal, done.signal]), length: maxBytes + 1 });
        return await readVerified(cid, chunks, { maxBytes, signal });
      } catch (err) {
        signal.throwIfAborted();
        if (isOurs(err)) throw err;
        if (isNotFoundReply(err)) throw new ContentNotFoundError(cid.toString(), { cause: err });
        throw new KuboRequestError(url, "cat", err);
      } finally {
        done.abort();
      }
    },

    async responsive({ signal }) {
      return client.id({ signal }).then(
        () => true,
        () => false,
      );
    },

    async close() {
      // The client holds no resources beyond fetch's shared connection pool.
    },
  };
}

function isOurs(err: unknown): boolean {
  return (
    err instanceof ContentTooLargeError || err instanceof ContentHashMismatchError || err instanceof UnsupportedCidError
  );
}

/** Kubo answers a miss with a message such as "block was not found locally (offline)" or "ipld: could not find <cid>". */
function isNotFoundReply(err: unknown): boolean {
  return err instanceof Error && err.name === "HTTPError" && /not found|could not find/i.test(err.message);
}

/** fetch reports a refused or reset connection as TypeError("fetch failed") with the socket error as cause. */
function isUnreachable(err: unknown): boolean {
  return err instanceof TypeError && err.message === "fetch failed";
}
