// A viem transport that forwards every request to a real node and lets a test change what
// some of them see: a lagging backend, a failing method, a reorg between two calls. The
// chain itself is never faked; only the path to it misbehaves.
import { custom, http, type EIP1193Parameters, type PublicRpcSchema } from "viem";

export type RpcRequest = { method: string; params?: unknown };
/** Answers a request instead of the node (return a value or throw), or `undefined` to pass it on. */
export type Fault = (request: RpcRequest, forward: (request: RpcRequest) => Promise<unknown>) => Promise<unknown> | undefined;

export function faultyTransport(rpcUrl: string) {
  const upstream = http(rpcUrl, { retryCount: 0 })({});
  const calls = new Map<string, number>();
  let fault: Fault | undefined;
  const forward = (request: RpcRequest) => upstream.request(request as EIP1193Parameters<PublicRpcSchema>);
  return {
    transport: custom(
      {
        async request(request: RpcRequest) {
          calls.set(request.method, (calls.get(request.method) ?? 0) + 1);
          const answer = fault?.(request, forward);
          return answer === undefined ? forward(request) : answer;
        },
      },
      { retryCount: 0 }, // the daemon's own handling of a failure is what a test looks at
    ),
    /** Installs `next` (or removes the fault with `undefined`). */
    setFault(next: Fault | undefined) {
      fault = next;
    },
    /** How many times `method` was requested so far. */
    calls: (method: string) => calls.get(method) ?? 0,
  };
}

/** A backend that lags: every `eth_call` at `latest` runs at `blockNumber` instead. */
export function lagCallsTo(blockNumber: bigint): Fault {
  return (request, forward) => {
    if (request.method !== "eth_call") return undefined;
    const [call, block] = request.params as [unknown, unknown];
    if (block !== "latest" && block !== undefined) return undefined;
    return forward({ method: "eth_call", params: [call, `0x${blockNumber.toString(16)}`] });
  };
}
