// The IPFS node tasks publish manifests to: any node speaking the Kubo RPC API (a real Kubo, or the
// embedded node `npm start` runs via scripts/ipfs-node.ts).
import type { CID } from "multiformats/cid";
import { createKuboStore, KuboRequestError, KuboUnexpectedCidError } from "../../offchain-daemon/src/ipfs/kubo.ts";
import { UserError } from "./errors.ts";

export const DEFAULT_IPFS_URL = "http://127.0.0.1:5001";

/** `--ipfs URL`, else env NOVACRON_IPFS_URL, else the local node on port 5001. */
export function resolveIpfsUrl(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const url = option?.trim() || env["NOVACRON_IPFS_URL"]?.trim() || DEFAULT_IPFS_URL;
  try {
    new URL(url);
  } catch {
    throw new UserError(`The IPFS RPC URL "${url}" is not a URL.`, `Pass e.g. --ipfs ${DEFAULT_IPFS_URL}.`);
  }
  return url;
}

/** Stores `bytes` as one raw block on the node at `url` and returns its CID (CIDv1, raw, sha2-256). */
export async function publishRaw(url: string, bytes: Uint8Array): Promise<CID> {
  const store = createKuboStore({ url });
  try {
    return await store.putRaw(bytes, { signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    if (error instanceof KuboRequestError || error instanceof KuboUnexpectedCidError || isTimeout(error)) {
      throw new UserError(
        `Could not publish the manifest to the IPFS node at ${url}: ${reasonOf(error)}.`,
        "Start the local stack with `npm start` (it runs an IPFS node on port 5001), or run one with " +
          "`node scripts/ipfs-node.ts --dir data/ipfs --port 5001`, or point --ipfs / NOVACRON_IPFS_URL at a Kubo node's RPC API.",
      );
    }
    throw error;
  } finally {
    await store.close();
  }
}

/** The root cause, e.g. "fetch failed (ECONNREFUSED)", without the wrapper's own advice. */
function reasonOf(error: unknown): string {
  if (isTimeout(error)) return "no answer within 30 s";
  if (error instanceof KuboRequestError) {
    const cause = error.cause;
    const code = (cause as { cause?: { code?: unknown } } | undefined)?.cause?.code;
    const message = cause instanceof Error ? cause.message : String(cause);
    return typeof code === "string" ? `${message} (${code})` : message;
  }
  return (error as Error).message;
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
}
