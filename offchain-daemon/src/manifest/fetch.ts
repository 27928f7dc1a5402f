import { setTimeout as sleep } from "node:timers/promises";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import * as Digest from "multiformats/hashes/digest";
import { sha256 } from "multiformats/hashes/sha2";
import { FailureReason, type FailureReasonCode } from "../failure-reasons.ts";
import { assertRawSha256 } from "../ipfs/block.ts";
import { ContentNotFoundError, type ContentStore, ContentStoreUnresponsiveError, ContentTooLargeError } from "../ipfs/types.ts";
import { type Manifest, MANIFEST_MAX_BYTES, ManifestSchema } from "./schema.ts";

export interface FetchManifestOptions {
  /** How long to look for the manifest before giving up with ManifestNotFound, in milliseconds. */
  timeoutMs: number;
  /** Largest manifest accepted, in bytes. Default {@link MANIFEST_MAX_BYTES}. */
  maxBytes?: number;
  /** Cancels the fetch (e.g. on shutdown): rejects with the signal's reason and reports nothing. */
  signal?: AbortSignal;
}

/**
 * A manifest, or the reason code to report on-chain. Only outcomes that are
 * the tenant's to fix become a reason; the provider's own trouble (IPFS node
 * down or hung, a block that fails its hash) is thrown, so it is retried rather
 * than blamed on the tenant.
 */
export type FetchManifestResult =
  | { ok: true; manifest: Manifest; bytes: Uint8Array }
  | { ok: false; reason: FailureReasonCode; detail: string };

export class InvalidManifestDigestError extends Error {
  override readonly name = "InvalidManifestDigestError";
  constructor(digest: string) {
    super(`Manifest digest ${JSON.stringify(digest)} is not 0x followed by 64 hex digits (a sha2-256 digest).`);
  }
}

/** Keeps details short: they go into logs and events, and the first problem is the one to fix. */
const DETAIL_MAX_CHARS = 200;
/** How long the node has to tell its identity before a miss counts as its outage rather than the tenant's. */
const RESPONSIVE_PROBE_MS = 2_000;
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 1_000;

/** Fetches, verifies and validates the manifest at `cid`. */
export async function fetchManifest(
  store: ContentStore,
  cid: CID,
  { timeoutMs, maxBytes = MANIFEST_MAX_BYTES, signal }: FetchManifestOptions,
): Promise<FetchManifestResult> {
  assertRawSha256(cid);
  const deadline = AbortSignal.timeout(timeoutMs);
  const combined = signal === undefined ? deadline : AbortSignal.any([signal, deadline]);
  let bytes: Uint8Array;
  try {
    bytes = await getUntilFound(store, cid, { signal: combined, maxBytes });
  } catch (err) {
    signal?.throwIfAborted();
    if (err instanceof ContentTooLargeError) {
      return failure(FailureReason.ManifestTooLarge, `manifest ${cid} is larger than ${maxBytes} bytes`);
    }
    if (err instanceof ContentNotFoundError || deadline.aborted) {
      // A node that hung is the provider's outage: the VM waits for it instead of failing for the tenant.
      if (!(await store.responsive({ signal: AbortSignal.timeout(RESPONSIVE_PROBE_MS) }))) throw new ContentStoreUnresponsiveError(cid.toString());
      return failure(FailureReason.ManifestNotFound, `manifest ${cid} not found within ${timeoutMs} ms`);
    }
    throw err;
  }
  return decodeManifest(bytes);
}

/** Decodes and validates manifest bytes (UTF-8 JSON, then the schema); the size limit is the caller's. */
export function decodeManifest(bytes: Uint8Array): FetchManifestResult {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    return failure(FailureReason.ManifestNotJson, `manifest is not UTF-8 JSON: ${(err as Error).message}`);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? "manifest" : issue.path.join(".");
    return failure(FailureReason.ManifestInvalid, `${where}: ${issue?.message ?? "invalid"}`);
  }
  return { ok: true, manifest: parsed.data, bytes };
}

/** The CID of the manifest whose sha2-256 digest a contract stores (CIDv1, raw codec). */
export function manifestCidFromDigest(digest: `0x${string}`): CID {
  if (!/^0x[0-9a-fA-F]{64}$/.test(digest)) throw new InvalidManifestDigestError(digest);
  return CID.createV1(raw.code, Digest.create(sha256.code, Uint8Array.from(Buffer.from(digest.slice(2), "hex"))));
}

/** The 32-byte digest a contract stores for `cid`; throws UnsupportedCidError unless it is CIDv1 raw sha2-256. */
export function digestFromCid(cid: CID): `0x${string}` {
  assertRawSha256(cid);
  return `0x${Buffer.from(cid.multihash.digest).toString("hex")}`;
}

/**
 * The embedded node answers "not found" at once, while a networked node keeps
 * searching until the signal aborts. Retrying misses until the deadline gives
 * both the same meaning: not found within the timeout.
 */
async function getUntilFound(
  store: ContentStore,
  cid: CID,
  options: { signal: AbortSignal; maxBytes: number },
): Promise<Uint8Array> {
  for (let delay = RETRY_FIRST_MS; ; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
    try {
      return await store.getRaw(cid, options);
    } catch (err) {
      if (!(err instanceof ContentNotFoundError)) throw err;
      try {
        await sleep(delay, undefined, { signal: options.signal });
      } catch {
        throw err;
      }
    }
  }
}

function failure(reason: FailureReasonCode, detail: string): FetchManifestResult {
  return { ok: false, reason, detail: detail.length > DETAIL_MAX_CHARS ? `${detail.slice(0, DETAIL_MAX_CHARS - 1)}…` : detail };
}
