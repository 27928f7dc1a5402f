// The reconciler against a real Hardhat node, reached through a transport that can lag or fail
// the way real RPC backends do.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { http, parseUnits } from "viem";
import { createDaemonParts } from "../../../test/daemon-support/daemon-parts.ts";
import { faultyTransport, lagCallsTo } from "../../../test/daemon-support/faulty-transport.ts";
import { startTestStack, type TestStack } from "../../../test/daemon-support/stack.ts";

const hello = JSON.parse(readFileSync(new URL("../../../examples/hello.json", import.meta.url), "utf8"));
const deposit = parseUnits("100", 18);

describe("reconciler", () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack("reconciler");
  });
  after(async () => {
    await stack?.stop();
  });

  test("issue 11 case 1: a VM the RPC's getVm does not know yet (a lagging backend) is kept, not destroyed and forgotten", async (t) => {
    const rpc = faultyTransport(stack.rpcUrl);
    const parts = await createDaemonParts(stack, mkdtempSync(join(stack.dir, "case1-")), { transport: rpc.transport });
    t.after(() => parts.close());
    const before = await stack.publicClient.getBlockNumber();
    const vmId = await stack.requestVm(await stack.publish(hello), hello.resources, deposit);
    await parts.sync.syncOnce();
    assert.deepEqual(parts.store.listActiveVms(), [vmId]);

    // The backend answering eth_call is still at the block before the request.
    rpc.setFault(lagCallsTo(before));
    await parts.reconciler.reconcile(vmId);
    assert.deepEqual(parts.store.listActiveVms(), [vmId], "the VM is still tracked");
    assert.match(parts.reconciler.snapshot().find((vm) => vm.vmId === vmId)?.lastError ?? "", /may lag/);

    // Once the backend catches up, the VM is served as usual.
    rpc.setFault(undefined);
    await parts.reconciler.reconcile(vmId);
    assert.equal((await stack.vm(vmId)).state, "Running");
    assert.equal((await parts.driver.status(vmId)).state, "running");
    await stack.tenantCall("terminateVm", vmId);
  });

  test("issue 11 case 10: a reconcile pass over many VMs runs at most reconcileConcurrency of them at once", async (t) => {
    const rpc = faultyTransport(stack.rpcUrl);
    const parts = await createDaemonParts(stack, mkdtempSync(join(stack.dir, "case10-")), { transport: rpc.transport, reconcileConcurrency: 3 });
    t.after(() => parts.close());
    const head = await stack.publicClient.getBlock();
    const vmIds = Array.from({ length: 12 }, (_, i) => 1000n + BigInt(i));
    for (const vmId of vmIds) parts.store.upsertVm(vmId, { blockNumber: head.number, blockHash: head.hash });

    let reading = 0;
    let most = 0;
    rpc.setFault((request, forward) => {
      if (request.method !== "eth_call") return undefined;
      return (async () => {
        most = Math.max(most, ++reading);
        await sleep(50);
        reading--;
        return forward(request);
      })();
    });
    await parts.reconciler.reconcileMany(vmIds);
    assert.ok(most > 0 && most <= 3, `${most} getVm reads ran at once`);
  });

  test("issue 11 case 11: orphan cleanup keeps a workload when the RPC fails, and destroys it once the chain says it is over", async (t) => {
    const rpc = faultyTransport(stack.rpcUrl);
    const parts = await createDaemonParts(stack, mkdtempSync(join(stack.dir, "case11-orphans-")), { transport: rpc.transport });
    t.after(() => parts.close());
    const vmId = await stack.requestVm(await stack.publish(hello), hello.resources, deposit);
    await parts.driver.create(vmId, hello); // a workload the store does not track, as after a crash

    rpc.setFault((request) => (request.method === "eth_call" ? Promise.reject(new Error("502 Bad Gateway")) : undefined));
    await parts.reconciler.collectOrphans().catch(() => undefined);
    assert.equal((await parts.driver.status(vmId)).state, "stopped", "kept while the chain cannot be asked");

    rpc.setFault(undefined);
    await stack.tenantCall("terminateVm", vmId);
    await parts.reconciler.collectOrphans();
    assert.equal((await parts.driver.status(vmId)).state, "absent");
  });

  test("issue 11 case 11: an RPC URL's path (its API key) reaches neither /vms nor the logs", async (t) => {
    const lines: string[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
    const transport = http("http://127.0.0.1:1/v3/secret-api-key", { retryCount: 0 });
    const parts = await createDaemonParts(stack, mkdtempSync(join(stack.dir, "case11-url-")), { transport, logger });
    t.after(() => parts.close());
    const head = await stack.publicClient.getBlock();
    parts.store.upsertVm(7n, { blockNumber: head.number, blockHash: head.hash });

    await parts.reconciler.reconcile(7n);
    const shown = JSON.stringify(parts.reconciler.snapshot(), (_key, value: unknown) => (typeof value === "bigint" ? String(value) : value)); // what /vms serves
    assert.match(shown, /127\.0\.0\.1:1\/<redacted>/);
    assert.ok(lines.length > 0);
    assert.doesNotMatch(`${shown}\n${lines.join("")}`, /secret-api-key/);
  });
});
