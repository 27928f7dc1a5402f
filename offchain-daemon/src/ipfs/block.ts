import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { equals } from "multiformats/bytes";
import { sha256 } from "multiformats/hashes/sha2";
import { ContentHashMismatchError, ContentTooLargeError, UnsupportedCidError } from "./types.ts";

/**
 * Largest content stored as one raw block. Kubo's default chunker cuts files
 * into 256 KiB chunks, so anything larger gets a dag-pb root instead of a raw
 * CID; both stores refuse it so content published to one works with the other.
 */
export const RAW_BLOCK_MAX_BYTES = 256 * 1024;

/** The CIDv1 (raw codec, sha2-256) that addresses `bytes` as one raw block. */
export async function rawCid(bytes: Uint8Array): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(bytes));
}

/** Throws {@link UnsupportedCidError} unless `cid` is CIDv1, raw codec, sha2-256 with a 32-byte digest. */
export function assertRawSha256(cid: CID): void {
  if (cid.version !== 1 || cid.code !== raw.code) {
    throw new UnsupportedCidError(cid.toString(), `is not a raw-codec CIDv1 (codec 0x${cid.code.toString(16)}, version ${cid.version})`);
  }
  if (cid.multihash.code !== sha256.code || cid.multihash.size !== 32) {
    throw new UnsupportedCidError(cid.toString(), `is not hashed with sha2-256 (multihash 0x${cid.multihash.code.toString(16)})`);
  }
}

/** Throws {@link ContentTooLargeError} when `bytes` cannot be one raw block. */
export async function assertFitsRawBlock(bytes: Uint8Array): Promise<void> {
  if (bytes.byteLength > RAW_BLOCK_MAX_BYTES) {
    throw new ContentTooLargeError((await rawCid(bytes)).toString(), RAW_BLOCK_MAX_BYTES);
  }
}

/**
 * Collects `chunks` into one block and checks it against `cid`. Stops reading
 * (which closes the source) as soon as more than `maxBytes` arrived, so an
 * oversized block is never buffered whole. Checks `signal` between chunks.
 */
export async function readVerified(
  cid: CID,
  chunks: AsyncIterable<Uint8Array>,
  options: { maxBytes: number; signal: AbortSignal },
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of chunks) {
    options.signal.throwIfAborted();
    total += chunk.byteLength;
    if (total > options.maxBytes) throw new ContentTooLargeError(cid.toString(), options.maxBytes);
    parts.push(chunk);
  }
  const bytes = concat(parts, total);
  const digest = await sha256.digest(bytes);
  if (!equals(digest.digest, cid.multihash.digest)) throw new ContentHashMismatchError(cid.toString());
  return bytes;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
