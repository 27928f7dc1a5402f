import { createPublicClient, createWalletClient, defineChain, http, type Chain, type Hex, type PublicClient as ViemPublicClient, type Transport } from "viem";
import { privateKeyToAccount } from "viem/accounts";

export type ChainClientsParameters = {
  /** JSON-RPC endpoint of the chain. */
  rpcUrl: string;
  /** Chain id the transactions are signed for (EIP-155). */
  chainId: number;
  /** The provider operator's private key: the daemon's hot key. */
  operatorKey: Hex;
  /** Poll interval for receipts and blocks, in ms. Default: 1000. */
  pollingInterval?: number;
  /** How requests reach the chain. Default: `http(rpcUrl)` with 3 retries and a 15 s timeout. */
  transport?: Transport;
};

/**
 * viem clients for the daemon. Reports take their nonces from the sender's
 * journalled counter (nonces.ts), not from the account.
 */
export function createChainClients(parameters: ChainClientsParameters) {
  const { rpcUrl, chainId, operatorKey, pollingInterval = 1000 } = parameters;
  const transport = parameters.transport ?? http(rpcUrl, { retryCount: 3, timeout: 15_000 });
  const chain = defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  const account = privateKeyToAccount(operatorKey);
  const publicClient = createPublicClient({ chain, transport, pollingInterval });
  const walletClient = createWalletClient({ account, chain, transport, pollingInterval });
  return { account, publicClient, walletClient };
}

export type ChainClients = ReturnType<typeof createChainClients>;
export type PublicClient = ViemPublicClient<Transport, Chain>;
