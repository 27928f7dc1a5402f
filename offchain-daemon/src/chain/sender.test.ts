// The report sender against a real Hardhat node, with a crash injected between broadcasting a
// report and learning that it was broadcast.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { parseUnits } from "viem";
import { createDaemonParts } from "../../testing/daemon-parts.ts";
import { faultyTransport } from "../../testing/faulty-transport.ts";
import { startTestStack, type TestStack } from "../../testing/stack.ts";
import { createChainClients } from "./clients.ts";
import { createReportSender } from "./sender.ts";

const hello = JSON.parse(readFileSync(new URL("../../../examples/hello.json", import.meta.url), "utf8"));

describe("report sender", () => {
  let stack: TestStack;
  const rpc = (method: string, params: unknown[] = []) => stack.publicClient.request({ method, params } as never) as Promise<unknown>;

  before(async () => {
    stack = await startTestStack("sender");
  });
  after(async () => {
    await stack?.stop();
  });

  test("issue 11 case 8: a crash between broadcasting a report and journalling it does not send the report twice", async (t) => {
    const rpcs = faultyTransport(stack.rpcUrl);
    const parts = await createDaemonParts(stack, mkdtempSync(join(stack.dir, "case8-")), { transport: rpcs.transport });
    t.after(() => parts.close());
    const vmId = await stack.requestVm(await stack.publish(hello), hello.resources, parseUnits("10", 18));
    const operator = stack.deployment.accounts.providerOperator;
    const nonceBefore = await stack.publicClient.getTransactionCount({ address: operator });

    // Transactions wait in the mempool, as on a real chain; the daemon dies right after the node took the report.
    await rpc("evm_setAutomine", [false]);
    t.after(() => rpc("evm_setAutomine", [true]));
    rpcs.setFault((request, forward) => {
      if (request.method !== "eth_sendRawTransaction") return undefined;
      return forward(request).then(() => Promise.reject(new Error("the daemon was killed")));
    });
    await assert.rejects(parts.sender.send(vmId, "reportProvisioning"), /killed/);

    // The restarted daemon: same store, new clients.
    const clients = createChainClients({
      rpcUrl: stack.rpcUrl,
      chainId: stack.deployment.chainId,
      operatorKey: stack.deployment.accounts.providerOperatorKey,
      pollingInterval: 100,
    });
    const restarted = createReportSender({ ...clients, store: parts.store, vmRegistry: stack.deployment.contracts.vmRegistry, logger: pino({ level: "silent" }) });
    await restarted.recover();
    const [outcome] = await Promise.all([restarted.send(vmId, "reportProvisioning"), sleep(500).then(() => rpc("evm_mine"))]);
    assert.equal(outcome, "mined");
    assert.equal((await stack.vm(vmId)).state, "Provisioning");
    assert.equal(await stack.publicClient.getTransactionCount({ address: operator }), nonceBefore + 1, "one transaction, not two");
  });
});
