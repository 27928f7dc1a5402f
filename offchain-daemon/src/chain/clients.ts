import { createPublicClient, createWalletClient, http, nonceManager, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

export type ChainClientsParameters = {
  /** JSON-RPC endpoint of the chain. */
  rpcUrl: string;
  /** The provider operator's private key: the daemon's hot key. */
  operatorKey: Hex;
  /** Poll interval for receipts and blocks, in ms. Default: 1000. */
  pollingInterval?: number;
};

/**
 * viem clients for the daemon. The account carries viem's nonce manager so that
 * reports sent back to back never reuse a nonce.
 */
export function createChainClients({ rpcUrl, operatorKey, pollingInterval = 1000 }: ChainClientsParameters) {
  const transport = http(rpcUrl, { retryCount: 3, timeout: 15_000 });
  const account = privateKeyToAccount(operatorKey, { nonceManager });
  const publicClient = createPublicClient({ transport, pollingInterval });
  const walletClient = createWalletClient({ account, transport, pollingInterval });
  return { account, publicClient, walletClient };
}

export type ChainClients = ReturnType<typeof createChainClients>;
export type PublicClient = ChainClients["publicClient"];
