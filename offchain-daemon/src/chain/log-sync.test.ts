// The log sync against a real Hardhat node, through a transport that refuses, fails or races
// the way real RPC providers do.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { parseUnits } from "viem";
import { createDaemonParts } from "../../../test/daemon-support/daemon-parts.ts";
import { faultyTransport } from "../../../test/daemon-support/faulty-transport.ts";
import { startTestStack, type TestStack } from "../../../test/daemon-support/stack.ts";

const deposit = parseUnits("10", 18);
const resources = { vcpu: 1, memoryMiB: 256, diskGiB: 1 };

describe("log sync", () => {
  let stack: TestStack;
  const rpc = (method: string, params: unknown[] = []) => stack.publicClient.request({ method, params } as never) as Promise<unknown>;
  /** Mines `count` empty blocks one by one: hardhat_mine reserves long runs whose parent hashes do not chain. */
  async function mine(count: number) {
    for (let i = 0; i < count; i++) await rpc("evm_mine");
  }

  before(async () => {
    stack = await startTestStack("log-sync");
    // Blocks come only when a test sends or mines them, so each test knows which block holds what.
    await rpc("evm_setIntervalMining", [0]);
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
    await mine(600);
    transport.setFault((request) => (request.method === "eth_getLogs" ? Promise.reject(new Error("503 Service Unavailable")) : undefined));
    await assert.rejects(parts.sync.syncOnce(), /503/);

    transport.setFault(undefined);
    const before = transport.calls("eth_getLogs");
    await parts.sync.syncOnce();
    const calls = transport.calls("eth_getLogs") - before;
    // 600 blocks in ranges of at most 64 need 10 calls; growing back from 1 block costs a few more.
    assert.ok(calls <= 20, `catching up 600 blocks took ${calls} eth_getLogs calls`);
  });

  test("issue 11 case 5: a failed getBlock (a 429) is RPC trouble, not a reorg", async (t) => {
    const transport = faultyTransport(stack.rpcUrl);
    const parts = await createDaemonParts(stack, mkdtempSync(join(stack.dir, "case5a-")), { transport: transport.transport });
    t.after(() => parts.close());
    await parts.sync.syncOnce();
    const checkpoint = parts.store.getCheckpoint();
    await mine(2);

    transport.setFault((request) => (request.method === "eth_getBlockByNumber" ? Promise.reject(new Error("429 Too Many Requests")) : undefined));
    await parts.sync.syncOnce().catch(() => undefined);
    assert.deepEqual(parts.reorgs, [], "no reorg was taken");
    assert.deepEqual(parts.store.getCheckpoint(), checkpoint);
    assert.equal(parts.store.getBlockHash(checkpoint!.blockNumber), checkpoint!.blockHash, "the stored hashes are kept");

    transport.setFault(undefined);
    assert.equal(await parts.sync.syncOnce(), checkpoint!.blockNumber + 2n);
    assert.deepEqual(parts.reorgs, []);
  });

  test("issue 11 case 5: a one-block reorg after a long catch-up rewinds one block, not to the start block", async (t) => {
    const transport = faultyTransport(stack.rpcUrl);
    const parts = await createDaemonParts(stack, mkdtempSync(join(stack.dir, "case5b-")), { transport: transport.transport });
    t.after(() => parts.close());
    await mine(300);
    const ancestor = await stack.publicClient.getBlockNumber();
    const snapshot = await rpc("evm_snapshot");
    await mine(1);
    // One catch-up read ends at the block the reorg will replace.
    assert.equal(await parts.sync.syncOnce(), ancestor + 1n);

    await rpc("evm_revert", [snapshot]);
    await stack.approveDeposit(1n); // any transaction: the new block differs from the one it replaces
    await mine(1);
    await parts.sync.syncOnce();
    assert.deepEqual(parts.reorgs, [{ from: ancestor + 1n, to: ancestor }]);
  });

  test("issue 11 case 4: a reorg between eth_getLogs and reading the range's end block does not lose the new fork's logs", async (t) => {
    const transport = faultyTransport(stack.rpcUrl);
    const parts = await createDaemonParts(stack, mkdtempSync(join(stack.dir, "case4-")), { transport: transport.transport });
    t.after(() => parts.close());
    await stack.approveDeposit(deposit);
    await parts.sync.syncOnce();
    const digest = await stack.publish({ name: "case 4" });
    const snapshot = await rpc("evm_snapshot");
    await mine(3); // the old fork: three empty blocks

    let vmId: bigint | undefined;
    transport.setFault((request, forward) => {
      if (request.method !== "eth_getLogs" || vmId !== undefined) return undefined;
      return (async () => {
        const logs = await forward(request); // read from the old fork
        await rpc("evm_revert", [snapshot]);
        vmId = await stack.submitRequestVm(digest, resources, deposit); // the new fork requests a VM at the same heights
        await mine(3);
        return logs;
      })();
    });
    await parts.sync.syncOnce().catch(() => undefined);
    transport.setFault(undefined);
    await parts.sync.syncOnce();
    assert.ok(vmId !== undefined);
    assert.deepEqual(parts.store.listActiveVms(), [vmId]);
  });
});
