// Reorgs shallower and deeper than the daemon's confirmation depth that drop a request, a
// termination and reports, made with Hardhat's evm_snapshot / evm_revert against the real daemon
// process. Interval mining is off: the test mines every block itself, so each reorg's depth is exact.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseUnits, type Hex } from "viem";
import { sleep } from "../../scripts/stack/processes.ts";
import { countReports, operatorReports, workloadGroups } from "../../test/daemon-support/census.ts";
import { createDaemonProcess, type DaemonProcess } from "../../test/daemon-support/daemon-process.ts";
import { SLEEPER_MANIFEST } from "../../test/daemon-support/kill-trials.ts";
import { startTestStack, type TestStack } from "../../test/daemon-support/stack.ts";

const CONFIRMATIONS = 3;

describe("reorgs around the confirmation depth", { timeout: 240_000 }, () => {
  let stack: TestStack;
  let daemon: DaemonProcess;
  let digest: Hex;
  const deposit = parseUnits("10", 18);
  const rpc = (method: string, params: unknown[] = []) => stack.publicClient.request({ method, params } as never) as Promise<unknown>;
  const head = () => stack.publicClient.getBlockNumber({ cacheTime: 0 });
  const mine = (blocks: number) => stack.mine(blocks);
  const workloads = async (vmId: bigint) => [...((await workloadGroups(daemon.vmsDir)).get(vmId) ?? [])];

  /** Polls `probe` until it holds; with `mining`, a block is mined every 200 ms meanwhile, as on a live chain. */
  async function waitFor(what: string, probe: () => Promise<boolean>, { mining = false, timeoutMs = 30_000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await probe().catch(() => false)) return;
      if (mining) await mine(1);
      await sleep(200);
    }
    throw new Error(`timed out waiting for ${what}:\n${daemon.logTail()}`);
  }
  const mineUntil = (what: string, probe: () => Promise<boolean>) => waitFor(what, probe, { mining: true });

  /** Reverts to `snapshot`, asserting the reorg undoes more (or fewer) blocks than the confirmation depth. */
  async function reorg(snapshot: unknown, snapshotBlock: bigint, deeper: boolean) {
    const depth = (await head()) - snapshotBlock;
    if (deeper) assert.ok(depth > CONFIRMATIONS, `reorg depth ${depth} should exceed ${CONFIRMATIONS}`);
    else assert.ok(depth < CONFIRMATIONS, `reorg depth ${depth} should be under ${CONFIRMATIONS}`);
    assert.equal(await rpc("evm_revert", [snapshot]), true);
  }

  async function runningVm(): Promise<{ vmId: bigint; pgid: number }> {
    const vmId = await stack.requestVm(digest, SLEEPER_MANIFEST.resources, deposit);
    await mineUntil(`VM ${vmId} to run`, async () => (await stack.vm(vmId)).state === "Running" && (await workloads(vmId)).length === 1);
    return { vmId, pgid: (await workloads(vmId))[0]! };
  }

  /** Exactly one mined Provisioning and one mined Running report for `vmId` on the canonical chain, none reverted. */
  async function assertReportedOnce(vmId: bigint, sinceBlock: bigint) {
    const reports = (await operatorReports(stack.publicClient, stack.deployment.contracts.vmRegistry, stack.deployment.accounts.providerOperator, sinceBlock, await head())).filter((r) => r.vmId === vmId);
    assert.deepEqual(reports.filter((r) => r.status !== "success"), []);
    // Running lands exactly once. Provisioning at most once: a daemon whose workload already runs when it sees
    // the VM Requested again may report Running straight away (Requested -> Running is a valid step).
    const counts = Object.fromEntries(countReports(reports));
    assert.equal(counts[`${vmId} reportRunning`], 1, JSON.stringify(counts));
    assert.ok((counts[`${vmId} reportProvisioning`] ?? 0) <= 1, JSON.stringify(counts));
    assert.deepEqual(Object.keys(counts).sort(), Object.keys(counts).filter((key) => /report(Provisioning|Running)$/.test(key)).sort(), "no other report");
  }

  before(async () => {
    stack = await startTestStack("reorg");
    await rpc("evm_setIntervalMining", [0]);
    daemon = await createDaemonProcess(stack, "daemon", { confirmations: CONFIRMATIONS });
    await daemon.start();
    digest = await stack.publish(SLEEPER_MANIFEST);
  });

  after(async () => {
    await daemon?.dispose();
    await stack?.stop();
  });

  test("a request dropped by a reorg shallower than the confirmation depth is never acted on", async () => {
    await stack.approveDeposit(deposit);
    const snapshot = await rpc("evm_snapshot");
    const snapshotBlock = await head();
    const vmId = await stack.submitRequestVm(digest, SLEEPER_MANIFEST.resources, deposit);
    await mine(CONFIRMATIONS - 2);
    await sleep(1500); // several polls: an unconfirmed request must not be acted on
    assert.equal((await stack.vm(vmId)).state, "Requested", "no report for an unconfirmed request");
    assert.deepEqual(await workloads(vmId), []);
    await reorg(snapshot, snapshotBlock, false);
    await mine(CONFIRMATIONS + 2);
    await sleep(1500);
    assert.deepEqual(await workloads(vmId), [], "never started");
    assert.ok(daemon.running());
  });

  test("a request dropped by a reorg deeper than the confirmation depth: the workload the daemon started is destroyed", async () => {
    const snapshot = await rpc("evm_snapshot");
    const snapshotBlock = await head();
    const { vmId } = await runningVm();
    await mine(CONFIRMATIONS);
    await reorg(snapshot, snapshotBlock, true);
    await assert.rejects(stack.vm(vmId), /does not exist/);
    await mineUntil("the orphaned workload to be destroyed", async () => (await workloads(vmId)).length === 0);
  });

  test("a termination dropped by a shallower reorg: the workload is never touched", async () => {
    const { vmId, pgid } = await runningVm();
    const snapshot = await rpc("evm_snapshot");
    const snapshotBlock = await head();
    await stack.tenantCall("terminateVm", vmId);
    await mine(CONFIRMATIONS - 2);
    await sleep(1500); // several polls: an unconfirmed termination must not destroy anything
    assert.deepEqual(await workloads(vmId), [pgid]);
    await reorg(snapshot, snapshotBlock, false);
    assert.equal((await stack.vm(vmId)).state, "Running");
    await mine(CONFIRMATIONS + 2);
    await sleep(1500);
    assert.deepEqual(await workloads(vmId), [pgid], "the same workload, never destroyed");
    await stack.tenantCall("terminateVm", vmId);
    await mineUntil("the workload to be destroyed", async () => (await workloads(vmId)).length === 0);
  });

  test("a termination dropped by a deeper reorg: the destroyed workload comes back", async () => {
    const { vmId, pgid } = await runningVm();
    const snapshot = await rpc("evm_snapshot");
    const snapshotBlock = await head();
    await stack.tenantCall("terminateVm", vmId);
    await mineUntil("the workload to be destroyed", async () => (await workloads(vmId)).length === 0);
    await mine(CONFIRMATIONS);
    await reorg(snapshot, snapshotBlock, true);
    assert.equal((await stack.vm(vmId)).state, "Running", "on-chain the VM runs and is billed again");
    await mineUntil("the workload to run again", async () => {
      const now = await workloads(vmId);
      return now.length === 1 && now[0] !== pgid;
    });
    await stack.tenantCall("terminateVm", vmId);
    await mineUntil("the workload to be destroyed", async () => (await workloads(vmId)).length === 0);
  });

  for (const deeper of [false, true]) {
    test(`reports dropped by a ${deeper ? "deeper" : "shallower"} reorg are sent again, and land once`, async () => {
      const sinceBlock = await head();
      const vmId = await stack.requestVm(digest, SLEEPER_MANIFEST.resources, deposit);
      // Held still while the request is confirmed, so the snapshot falls right before the daemon's reports.
      daemon.pause();
      let snapshot: unknown;
      let snapshotBlock: bigint;
      try {
        await mine(CONFIRMATIONS);
        snapshot = await rpc("evm_snapshot");
        snapshotBlock = await head();
      } finally {
        daemon.resume();
      }
      // No block mined but the two reports' own: the shallower reorg undoes exactly those two.
      await waitFor(`VM ${vmId} to run`, async () => (await stack.vm(vmId)).state === "Running" && (await workloads(vmId)).length === 1);
      if (deeper) await mine(CONFIRMATIONS);
      await reorg(snapshot, snapshotBlock, deeper);
      assert.equal((await stack.vm(vmId)).state, "Requested", "both reports are gone");
      await mineUntil(`VM ${vmId} to run again`, async () => (await stack.vm(vmId)).state === "Running");
      await mine(2);
      await sleep(1000);
      await assertReportedOnce(vmId, sinceBlock);
      assert.equal((await workloads(vmId)).length, 1, "the workload ran on, one of it");
      await stack.tenantCall("terminateVm", vmId);
    });
  }
});
