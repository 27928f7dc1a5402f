import type { CID } from "multiformats/cid";

/**
 * Where the daemon and the CLI read and write content-addressed blocks. Two
 * implementations: an embedded Helia node (blocks in a local directory) and a
 * Kubo node reached over its RPC API.
 */
export interface ContentStore {
  /**
   * Stores `bytes` as ONE raw block and returns its CID (CIDv1, codec raw 0x55,
   * sha2-256). Manifests are always single raw blocks so a contract can hold
   * just the 32-byte digest.
   */
  putRaw(bytes: Uint8Array, options?: { signal?: AbortSignal }): Promise<CID>;
  /**
   * Reads the block for `cid`, verifying its hash. Reads at most
   * `maxBytes + 1` bytes: when the content is larger it throws
   * {@link ContentTooLargeError} without buffering the rest. Aborting `signal`
   * (the caller's timeout) rejects with the signal's reason.
   */
  getRaw(cid: CID, options: { signal: AbortSignal; maxBytes: number }): Promise<Uint8Array>;
  /**
   * Whether the node answers at all (it tells its identity) before `signal` aborts. Tells the provider's own
   * hung node apart from content that is nowhere to be found.
   */
  responsive(options: { signal: AbortSignal }): Promise<boolean>;
  close(): Promise<void>;
}

export class ContentTooLargeError extends Error {
  override readonly name = "ContentTooLargeError";
  readonly cid: string;
  readonly maxBytes: number;
  constructor(cid: string, maxBytes: number) {
    super(`Content ${cid} is larger than the limit of ${maxBytes} bytes. Publish a smaller manifest.`);
    this.cid = cid;
    this.maxBytes = maxBytes;
  }
}

export class ContentHashMismatchError extends Error {
  override readonly name = "ContentHashMismatchError";
  readonly cid: string;
  constructor(cid: string) {
    super(`Content returned for ${cid} does not hash to that CID. The IPFS node is faulty or malicious.`);
    this.cid = cid;
  }
}

/** The provider's own IPFS node does not answer: its outage, never the tenant's missing manifest. */
export class ContentStoreUnresponsiveError extends Error {
  override readonly name = "ContentStoreUnresponsiveError";
  constructor(cid: string) {
    super(`The IPFS node did not answer while looking for ${cid}, nor a request for its identity. Check that it runs; the VM waits and the fetch is retried.`);
  }
}

export class ContentNotFoundError extends Error {
  override readonly name = "ContentNotFoundError";
  readonly cid: string;
  constructor(cid: string, options?: { cause?: unknown }) {
    super(
      `Content ${cid} is not on this IPFS node and the node could not fetch it. Publish it to this node (or one it can reach) and retry.`,
      options,
    );
    this.cid = cid;
  }
}

export class UnsupportedCidError extends Error {
  override readonly name = "UnsupportedCidError";
  readonly cid: string;
  constructor(cid: string, problem: string) {
    super(
      `CID ${cid} ${problem}. Manifests must be one raw block addressed by a CIDv1 with the raw codec and sha2-256, as made by \`ipfs add --cid-version=1 --raw-leaves\` for content up to 256 KiB.`,
    );
    this.cid = cid;
  }
}
