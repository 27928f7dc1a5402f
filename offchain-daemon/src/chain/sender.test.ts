// The report sender against a real Hardhat node: crashes between journalling and broadcasting,
// transactions dropped from the mempool or stuck on too low a fee, an RPC that refuses broadcasts,
// and many reports in flight from one key.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { Registry } from "prom-client";
import { http, keccak256, parseTransaction, parseUnits, type Transport } from "viem";
import { startApiServer } from "../api/server.ts";
import { daemonHealth } from "../api/health.ts";
import { Store } from "../store/store.ts";
import { createDaemonParts } from "../../../test/daemon-support/daemon-parts.ts";
import { faultyTransport } from "../../../test/daemon-support/faulty-transport.ts";
import { startTestStack, type TestStack } from "../../../test/daemon-support/stack.ts";
import { createChainClients } from "./clients.ts";
import { createReportSender, type ReportSenderParameters } from "./sender.ts";

const hello = JSON.parse(readFileSync(new URL("../../../examples/hello.json", import.meta.url), "utf8"));

describe("report sender", () => {
  let stack: TestStack;
  const rpc = (method: string, params: unknown[] = []) => stack.publicClient.request({ method, params } as never) as Promise<unknown>;
  const silent = pino({ level: process.env.NOVACRON_TEST_LOG_LEVEL ?? "silent" });

  before(async () => {
    stack = await startTestStack("sender");
    // Room for the many VMs these tests request.
    await stack.setCapacity({ vcpu: 10_000, memoryMiB: 10_000_000, diskGiB: 100_000 });
  });
  after(async () => {
    await stack?.stop();
  });

  /** A sender over `transport` on its own store, as a (re)started daemon builds it. */
  function newSender(store: Store, transport: Transport, options: Partial<ReportSenderParameters> = {}) {
    const clients = createChainClients({
      rpcUrl: stack.rpcUrl,
      chainId: stack.deployment.chainId,
      operatorKey: stack.deployment.accounts.providerOperatorKey,
      pollingInterval: 100,
      transport,
    });
    const sender = createReportSender({ ...clients, store, vmRegistry: stack.deployment.contracts.vmRegistry, logger: silent, receiptTimeoutMs: 20_000, ...options });
    return sender;
  }

  /** `count` VMs in Requested, in one approval and `count` requests. */
  async function requestVms(count: number): Promise<bigint[]> {
    const digest = await stack.publish(hello);
    const deposit = parseUnits("10", 18);
    await stack.approveDeposit(deposit * BigInt(count));
    const ids: bigint[] = [];
    for (let i = 0; i < count; i++) ids.push(await stack.submitRequestVm(digest, hello.resources, deposit));
    return ids;
  }

  /** Blocks come only when the test mines them; transactions wait in the mempool, as on a busy chain. */
  async function manualMining(t: { after: (fn: () => Promise<unknown>) => void }) {
    await rpc("evm_setAutomine", [false]);
    await rpc("evm_setIntervalMining", [0]);
    t.after(async () => {
      await rpc("evm_setAutomine", [true]);
      await rpc("evm_setIntervalMining", [1000]);
    });
  }

  /** Mines a block every `everyMs` (with `beforeEach` run first) until `done` settles. */
  async function mineUntil<T>(done: Promise<T>, everyMs = 200, beforeEach?: () => Promise<unknown>): Promise<T> {
    let settled = false;
    const mining = (async () => {
      while (!settled) {
        await sleep(everyMs);
        if (settled) break;
        await beforeEach?.();
        await rpc("evm_mine");
      }
    })();
    try {
      return await done;
    } finally {
      settled = true;
      await mining;
    }
  }

  async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await probe())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  }

  const operatorNonce = () => stack.publicClient.getTransactionCount({ address: stack.deployment.accounts.providerOperator });
  const openStore = () => Store.open(join(mkdtempSync(join(stack.dir, "store-")), "daemon.sqlite"));

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
    void parts.sender.send(vmId, "reportProvisioning").catch(() => undefined);
    await until("the report to reach the node", () => rpcs.calls("eth_sendRawTransaction") > 0);
    parts.sender.close();

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

  test("issue 11 case 3: a report dropped from the mempool does not block later reports; it is sent again, once", async (t) => {
    const [first, second] = await requestVms(2);
    const store = openStore();
    const sender = newSender(store, http(stack.rpcUrl), { replaceAfterBlocks: 3 });
    t.after(() => (sender.close(), store.close()));
    await manualMining(t);
    const nonceBefore = await operatorNonce();

    const firstSent = sender.send(first!, "reportProvisioning");
    await until("the first report to be journalled", () => store.openIntents().some((intent) => intent.txHash !== undefined));
    const [dropped] = store.openIntents();
    await until("the node to hold the first report", async () => (await stack.publicClient.getTransaction({ hash: dropped!.txHash! }).catch(() => undefined)) !== undefined);
    assert.equal(await rpc("hardhat_dropTransaction", [dropped!.txHash]), true);
    // The second report takes the next nonce and waits behind the gap the dropped one left.
    const secondSent = sender.send(second!, "reportProvisioning");

    const outcomes = await mineUntil(Promise.all([firstSent, secondSent]));
    assert.deepEqual(outcomes, ["mined", "mined"]);
    assert.equal((await stack.vm(first!)).state, "Provisioning");
    assert.equal((await stack.vm(second!)).state, "Provisioning");
    assert.equal(await operatorNonce(), nonceBefore + 2, "one transaction per report");
    assert.equal(store.openIntents().length, 0);
  });

  test("issue 11 case 3: a report stuck on too low a fee is replaced after N blocks with the same nonce and higher fees; a crash after the replacement resolves from the journal", async (t) => {
    const [vmId] = await requestVms(1);
    const rpcs = faultyTransport(stack.rpcUrl);
    const store = openStore();
    const sender = newSender(store, rpcs.transport, { replaceAfterBlocks: 2 });
    t.after(() => (sender.close(), store.close()));
    await manualMining(t);
    const nonceBefore = await operatorNonce();

    // The first broadcast reaches the node; the daemon dies before it broadcasts the replacement.
    let broadcasts = 0;
    rpcs.setFault((request) => (request.method === "eth_sendRawTransaction" && ++broadcasts > 1 ? Promise.reject(new Error("the daemon was killed")) : undefined));
    void sender.send(vmId!, "reportProvisioning").catch(() => undefined);
    await until("the report to be broadcast", () => broadcasts === 1);
    const [intent] = store.openIntents();
    const original = parseTransaction(intent!.rawTx!);

    // Blocks whose base fee is far above what the report offers: it stays in the mempool, unmined.
    const highBaseFee = `0x${(original.maxFeePerGas! * 3n).toString(16)}`;
    await mineUntil(
      until("a replacement to be journalled", () => store.intentTxs(intent!.id).length >= 2),
      100,
      () => rpc("hardhat_setNextBlockBaseFeePerGas", [highBaseFee]),
    );
    const txs = store.intentTxs(intent!.id);
    assert.equal(txs[0]!.txHash, intent!.txHash);
    const replacement = parseTransaction(txs[1]!.rawTx);
    assert.equal(keccak256(txs[1]!.rawTx), txs[1]!.txHash);
    assert.equal(replacement.nonce, original.nonce, "a replacement takes the same nonce");
    assert.ok(replacement.maxFeePerGas! * 8n >= original.maxFeePerGas! * 9n, "maxFeePerGas at least 12.5 % higher");
    assert.ok(replacement.maxPriorityFeePerGas! * 8n >= original.maxPriorityFeePerGas! * 9n, "maxPriorityFeePerGas at least 12.5 % higher");

    // Crash: this daemon is gone. The original, still in the mempool, mines once the fees come down,
    // while the journal's newest hash is the replacement that never left the daemon.
    sender.close();
    rpcs.setFault(() => Promise.reject(new Error("the daemon was killed")));
    await rpc("hardhat_setNextBlockBaseFeePerGas", ["0x1"]);
    await rpc("evm_mine");
    assert.equal((await stack.publicClient.getTransactionReceipt({ hash: txs[0]!.txHash })).status, "success");
    const restarted = newSender(store, http(stack.rpcUrl));
    t.after(() => restarted.close());
    await restarted.recover();
    assert.deepEqual(store.openIntents(), [], "the intent is settled from the original's receipt");
    assert.equal(await restarted.send(vmId!, "reportProvisioning"), "skipped", "and the report is not sent again");
    assert.equal((await stack.vm(vmId!)).state, "Provisioning");
    assert.equal(await operatorNonce(), nonceBefore + 1, "one transaction, not two");
    assert.equal(store.openIntents().length, 0);
  });

  test("issue 11 case 3: /healthz answers 503 with the reason while a report is stuck, and 200 once it mines", async (t) => {
    const [vmId] = await requestVms(1);
    const store = openStore();
    // A fee cap well below the base fee the test sets: replacements cannot catch up, the report stays stuck.
    const market = await stack.publicClient.estimateFeesPerGas();
    const sender = newSender(store, http(stack.rpcUrl), { replaceAfterBlocks: 2, maxFeePerGas: market.maxFeePerGas * 4n });
    t.after(() => (sender.close(), store.close()));
    const api = await startApiServer({
      host: "127.0.0.1",
      port: 0,
      registry: new Registry(),
      status: () => ({}),
      health: daemonHealth({ sender, lastSyncAt: () => Date.now(), pollIntervalMs: 100 }),
    });
    t.after(() => api.close());
    const health = async () => {
      const response = await fetch(`${api.url}/healthz`);
      return { status: response.status, body: (await response.json()) as { ok: boolean; detail?: { reporting_degraded?: string } } };
    };
    assert.equal((await health()).status, 200);
    await manualMining(t);

    const sent = sender.send(vmId!, "reportProvisioning");
    await until("the report to be journalled", () => store.openIntents().some((intent) => intent.rawTx !== undefined));
    const highBaseFee = `0x${(market.maxFeePerGas * 100n).toString(16)}`;
    // The fee stays far below the base fee for a while: the daemon replaces it, and says it is stuck.
    let stuck: Awaited<ReturnType<typeof health>> | undefined;
    for (let i = 0; i < 6 && stuck === undefined; i++) {
      await rpc("hardhat_setNextBlockBaseFeePerGas", [highBaseFee]);
      await rpc("evm_mine");
      await sleep(300);
      const answer = await health();
      if (answer.status === 503) stuck = answer;
    }
    assert.ok(stuck, "/healthz failed while the report was stuck");
    assert.equal(stuck.body.ok, false);
    assert.match(stuck.body.detail?.reporting_degraded ?? "", /not mined after \d+ blocks/);

    assert.equal(await mineUntil(sent, 200, () => rpc("hardhat_setNextBlockBaseFeePerGas", ["0x1"])), "mined");
    const healthy = await health();
    assert.equal(healthy.status, 200);
    assert.equal(healthy.body.detail?.reporting_degraded, undefined);
  });

  test("issue 11 case 3: broadcast errors back off with a bound and are retried; the daemon does not crash", async (t) => {
    const [vmId] = await requestVms(1);
    const rpcs = faultyTransport(stack.rpcUrl);
    const store = openStore();
    const sender = newSender(store, rpcs.transport);
    t.after(() => (sender.close(), store.close()));
    const attempts: number[] = [];
    let degradedWhileFailing: string | undefined;
    rpcs.setFault((request) => {
      if (request.method !== "eth_sendRawTransaction") return undefined;
      attempts.push(Date.now());
      if (attempts.length === 3) degradedWhileFailing = sender.degraded();
      if (attempts.length === 1) return Promise.reject(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
      if (attempts.length <= 4) return Promise.reject(new Error("HTTP request failed. Status: 503 Service Unavailable"));
      return undefined;
    });

    assert.equal(await sender.send(vmId!, "reportProvisioning"), "mined");
    assert.equal(attempts.length, 5);
    const gaps = attempts.slice(1).map((at, i) => at - attempts[i]!);
    for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i]! >= gaps[i - 1]! * 1.5, `backoff grows: ${gaps.join(", ")} ms`);
    assert.ok(gaps.every((gap) => gap < 10_000), `backoff is bounded: ${gaps.join(", ")} ms`);
    assert.match(degradedWhileFailing ?? "", /broadcast failed/);
    assert.equal(sender.degraded(), undefined);
    assert.equal((await stack.vm(vmId!)).state, "Provisioning");
  });

  test("issue 11 case 3: many reports in flight from one key take consecutive nonces and wait for receipts in parallel", async (t) => {
    const vmIds = await requestVms(12);
    const rpcs = faultyTransport(stack.rpcUrl);
    const store = openStore();
    const sender = newSender(store, rpcs.transport);
    t.after(() => (sender.close(), store.close()));
    await manualMining(t);
    const nonceBefore = await operatorNonce();

    const sent = vmIds.map((vmId) => sender.send(vmId, "reportProvisioning"));
    // No head-of-line blocking: every report reaches the mempool before any of them is mined.
    await until("every report to be broadcast", () => rpcs.calls("eth_sendRawTransaction") === vmIds.length, 10_000);
    const nonces = store.openIntents().map((intent) => parseTransaction(intent.rawTx!).nonce!);
    assert.deepEqual([...nonces].sort((a, b) => a - b), vmIds.map((_, i) => nonceBefore + i));

    assert.deepEqual(await mineUntil(Promise.all(sent)), vmIds.map(() => "mined"));
    assert.equal(await operatorNonce(), nonceBefore + vmIds.length);
  });

  test("issue 11 case 3: a crash with several signed reports never broadcast recovers each one from the journal, once", async (t) => {
    const vmIds = await requestVms(4);
    const rpcs = faultyTransport(stack.rpcUrl);
    const store = openStore();
    const sender = newSender(store, rpcs.transport);
    t.after(() => (sender.close(), store.close()));
    const nonceBefore = await operatorNonce();

    // The daemon dies after journalling each signed report, before any broadcast reaches the node.
    rpcs.setFault((request) => (request.method === "eth_sendRawTransaction" ? Promise.reject(new Error("the daemon was killed")) : undefined));
    for (const vmId of vmIds) void sender.send(vmId, "reportProvisioning").catch(() => undefined);
    await until("every report to be journalled", () => store.openIntents().filter((intent) => intent.rawTx !== undefined).length === vmIds.length);
    sender.close();

    const restarted = newSender(store, http(stack.rpcUrl));
    t.after(() => restarted.close());
    await restarted.recover();
    const outcomes = await Promise.all(vmIds.map((vmId) => restarted.send(vmId, "reportProvisioning")));
    assert.deepEqual(outcomes, vmIds.map(() => "mined"));
    assert.equal(await operatorNonce(), nonceBefore + vmIds.length, "one transaction per report");
    for (const vmId of vmIds) assert.equal((await stack.vm(vmId)).state, "Provisioning");
  });

  test("issue 11 case 3: a reorg that undoes a mined report leaves a nonce gap; it is filled and later reports mine", async (t) => {
    const [undone, later] = await requestVms(2);
    const store = openStore();
    const sender = newSender(store, http(stack.rpcUrl));
    t.after(() => (sender.close(), store.close()));
    const snapshot = await rpc("evm_snapshot");
    const nonceBefore = await operatorNonce();
    assert.equal(await sender.send(undone!, "reportProvisioning"), "mined");

    // The block with the report leaves the chain, and the report with it: the key's next nonce on-chain is the report's again.
    assert.equal(await rpc("evm_revert", [snapshot]), true);
    assert.equal(await operatorNonce(), nonceBefore);
    assert.equal(await sender.send(later!, "reportProvisioning"), "mined");
    assert.equal((await stack.vm(later!)).state, "Provisioning");
    assert.equal((await stack.vm(undone!)).state, "Requested", "the reconciler, not the sender, sends the undone report again");
    assert.equal(await operatorNonce(), nonceBefore + 2, "the gap filler and the later report");
  });
});
