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
