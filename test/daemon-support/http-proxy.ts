// A forwarding HTTP proxy between the daemon (a real process) and a real node, for fault tests: it can
// go down (refuse connections) and come back on the same port, and it can make a JSON-RPC node lag,
// answering reads as of a block some blocks behind the head, as a load-balanced RPC with a slow
// backend does. The chain and the IPFS node themselves are never faked.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { once } from "node:events";
import { freePort } from "./stack.ts";

type RpcCall = { jsonrpc: string; id: unknown; method: string; params?: unknown[] };
type RpcReply = { jsonrpc: string; id: unknown; result?: unknown; error?: unknown };

/** Methods that read state at a block, and where their block parameter is; a lagging backend runs them at its own head. */
const BLOCK_PARAMETER: Record<string, number> = { eth_call: 1, eth_getBalance: 1, eth_getCode: 1, eth_getTransactionCount: 1, eth_getStorageAt: 2 };

const hex = (n: bigint) => `0x${n.toString(16)}`;

export type HttpProxy = Awaited<ReturnType<typeof startHttpProxy>>;

export async function startHttpProxy(target: string) {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let lagBlocks = 0n;

  async function forward(request: IncomingMessage, body: Buffer): Promise<{ status: number; type: string; body: Buffer }> {
    const headers: Record<string, string> = {};
    for (const name of ["content-type", "accept"]) if (request.headers[name]) headers[name] = String(request.headers[name]);
    const response = await fetch(new URL(request.url ?? "/", target), { method: request.method, headers, body: request.method === "GET" ? undefined : body });
    return { status: response.status, type: response.headers.get("content-type") ?? "application/octet-stream", body: Buffer.from(await response.arrayBuffer()) };
  }

  async function rpc(call: RpcCall): Promise<RpcReply> {
    const response = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(call) });
    return (await response.json()) as RpcReply;
  }

  /** One call as a node `lagBlocks` behind the head would answer it. */
  async function lagging(call: RpcCall): Promise<RpcReply> {
    const head = BigInt((await rpc({ jsonrpc: "2.0", id: 0, method: "eth_blockNumber" })).result as string);
    const behind = head - lagBlocks;
    const params = [...(call.params ?? [])];
    const reply = (result: unknown): RpcReply => ({ jsonrpc: "2.0", id: call.id, result });
    const later = (tag: unknown) => typeof tag === "string" && tag.startsWith("0x") && BigInt(tag) > behind;
    switch (call.method) {
      case "eth_blockNumber":
        return reply(hex(behind));
      case "eth_getBlockByNumber":
        if (params[0] === "latest") params[0] = hex(behind);
        if (later(params[0])) return reply(null);
        break;
      case "eth_getLogs": {
        const filter = { ...(params[0] as Record<string, unknown>) };
        if (filter.toBlock === undefined || filter.toBlock === "latest" || later(filter.toBlock)) filter.toBlock = hex(behind);
        if (later(filter.fromBlock)) return reply([]);
        params[0] = filter;
        break;
      }
      case "eth_getTransactionReceipt": {
        const receipt = await rpc(call);
        const block = (receipt.result as { blockNumber?: string } | null)?.blockNumber;
        return block !== undefined && BigInt(block) > behind ? reply(null) : receipt;
      }
      default: {
        // `pending` and explicit blocks pass: the backend lags, it does not lie.
        const at = BLOCK_PARAMETER[call.method];
        if (at !== undefined && (params[at] === undefined || params[at] === "latest")) params[at] = hex(behind);
      }
    }
    return rpc({ ...call, params });
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    if (lagBlocks > 0n && request.method === "POST") {
      const parsed = JSON.parse(body.toString()) as RpcCall | RpcCall[];
      const replies = Array.isArray(parsed) ? await Promise.all(parsed.map(lagging)) : await lagging(parsed);
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(replies));
      return;
    }
    const forwarded = await forward(request, body);
    response.writeHead(forwarded.status, { "content-type": forwarded.type }).end(forwarded.body);
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      // The node behind is down or refused: the client sees a broken gateway, as behind a real proxy.
      if (!response.headersSent) response.writeHead(502, { "content-type": "text/plain" });
      response.end(String(error));
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.listen(port, "127.0.0.1");
  await once(server, "listening");

  return {
    url: `http://127.0.0.1:${port}`,
    /** Answer reads `blocks` behind the head from now on (0: no lag). */
    lag(blocks: number) {
      lagBlocks = BigInt(blocks);
    },
    /** Refuses connections from now on, and cuts the open ones. */
    async down(): Promise<void> {
      const closed = once(server, "close");
      server.close();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    /** Accepts connections again on the same port. */
    async up(): Promise<void> {
      server.listen(port, "127.0.0.1");
      await once(server, "listening");
    },
    async close(): Promise<void> {
      if (!server.listening) return;
      await this.down();
    },
  };
}
