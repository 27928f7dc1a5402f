// The log sync against a real Hardhat node, through a transport that refuses, fails or races
// the way real RPC providers do.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { createDaemonParts } from "../testing/daemon-parts.ts";
import { faultyTransport } from "../testing/faulty-transport.ts";
import { startTestStack, type TestStack } from "../testing/stack.ts";

describe("log sync", () => {
  let stack: TestStack;
  const rpc = (method: string, params: unknown[] = []) => stack.publicClient.request({ method, params } as never) as Promise<unknown>;

  before(async () => {
    stack = await startTestStack("log-sync");
  });
  after(async () => {
    await stack?.stop();
  });

  test("issue 11 case 6: after an outage the eth_getLogs range grows back, so catching up takes few calls", async (t) => {
    const transport = faultyTransport(stack.rpcUrl);
    const parts = await createDaemonParts(stack, mkdtempSync(join(stack.dir, "case6-")), { transport: transport.transport, chunkBlocks: 64 });
    t.after(() => parts.close());
    await parts.sync.syncOnce();

    // An outage: every eth_getLogs fails while 600 blocks go by.
    await rpc("hardhat_mine", ["0x258"]);
    transport.setFault((request) => (request.method === "eth_getLogs" ? Promise.reject(new Error("503 Service Unavailable")) : undefined));
    await assert.rejects(parts.sync.syncOnce(), /503/);

    transport.setFault(undefined);
    const before = transport.calls("eth_getLogs");
    await parts.sync.syncOnce();
    const calls = transport.calls("eth_getLogs") - before;
    // 600 blocks in ranges of at most 64 need 10 calls; growing back from 1 block costs a few more.
    assert.ok(calls <= 20, `catching up 600 blocks took ${calls} eth_getLogs calls`);
  });
});
