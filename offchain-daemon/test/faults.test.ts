// The daemon's own infrastructure failing in the middle of provisioning: an RPC that lags, the RPC
// gone for 30 s, the IPFS node gone for 30 s. The daemon is a real process that reaches the node and
// IPFS through proxies the test controls. None of it may crash the daemon or fail the tenant's VM,
// and each report still lands exactly once.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseUnits, type Hex } from "viem";
import { sleep } from "../../scripts/stack/processes.ts";
import { countReports, operatorReports, workloadGroups } from "../../test/daemon-support/census.ts";
import { createDaemonProcess, type DaemonProcess } from "../../test/daemon-support/daemon-process.ts";
import { startHttpProxy, type HttpProxy } from "../../test/daemon-support/http-proxy.ts";
import { startTestStack, type TestStack } from "../../test/daemon-support/stack.ts";

const OUTAGE_MS = 30_000;

// Listens 1.5 s after it starts, so provisioning lasts long enough for a fault to land inside it.
const SLOW_STARTER = {
  version: 1,
  name: "slow-starter",
  resources: { vcpu: 1, memoryMiB: 128, diskGiB: 1 },
  workload: {
    type: "process",
    command: "node",
    args: ["-e", "setTimeout(() => require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1'), 1500)"],
    env: {},
  },
  ports: [{ name: "http", protocol: "tcp" }],
};

describe("faults while provisioning", { timeout: 300_000 }, () => {
  let stack: TestStack;
  let rpc: HttpProxy;
  let ipfs: HttpProxy;
  let daemon: DaemonProcess;
  let digest: Hex;
  const deposit = parseUnits("10", 18);

  before(async () => {
    stack = await startTestStack("faults");
    rpc = await startHttpProxy(stack.rpcUrl);
    ipfs = await startHttpProxy(stack.ipfsUrl);
    daemon = await createDaemonProcess(stack, "daemon", {
      rpcUrl: rpc.url,
      ipfs: { mode: "kubo", url: ipfs.url },
      driver: { readyTimeoutMs: 20_000 },
    });
    await daemon.start();
    digest = await stack.publish(SLOW_STARTER);
  });

  after(async () => {
    await daemon?.dispose();
    await rpc?.close();
    await ipfs?.close();
    await stack?.stop();
  });

  async function waitHealthy() {
    await daemon.waitHealthy(30_000);
    assert.ok(daemon.running(), `the daemon exited:\n${daemon.logTail()}`);
  }

  /** The VM runs, was never failed, has one workload, and each report is on-chain exactly once. */
  async function assertConverged(vmId: bigint, sinceBlock: bigint) {
    const vm = await stack.waitForState(vmId, ["Running", "Failed"], 60_000);
    assert.equal(vm.state, "Running", `VM ${vmId} failed with reason ${vm.failureReason}:\n${daemon.logTail()}`);
    assert.ok(daemon.running(), `the daemon exited:\n${daemon.logTail()}`);
    const reports = (await operatorReports(stack.publicClient, stack.deployment.contracts.vmRegistry, stack.deployment.accounts.providerOperator, sinceBlock, await stack.publicClient.getBlockNumber())).filter((r) => r.vmId === vmId);
    assert.deepEqual(reports.filter((r) => r.status !== "success"), [], "no report reverted");
    assert.deepEqual(Object.fromEntries(countReports(reports)), { [`${vmId} reportProvisioning`]: 1, [`${vmId} reportRunning`]: 1 });
    assert.equal((await workloadGroups(daemon.vmsDir)).get(vmId)?.size, 1, "one workload");
    await stack.tenantCall("terminateVm", vmId);
  }

  /** Requests a VM and resolves once it is Provisioning on-chain (read from the node, not through the proxy). */
  async function requestUntilProvisioning(): Promise<{ vmId: bigint; sinceBlock: bigint }> {
    const sinceBlock = await stack.publicClient.getBlockNumber();
    const vmId = await stack.requestVm(digest, SLOW_STARTER.resources, deposit);
    await stack.waitForState(vmId, ["Provisioning", "Running", "Failed"], 30_000);
    return { vmId, sinceBlock };
  }

  test("a lagging RPC (reads 3 blocks behind the head) during provisioning: the VM runs, every report once, none reverted", async () => {
    rpc.lag(3);
    try {
      const sinceBlock = await stack.publicClient.getBlockNumber();
      const vmId = await stack.requestVm(digest, SLOW_STARTER.resources, deposit);
      await stack.waitForState(vmId, ["Running", "Failed"], 60_000);
      // Let the lagging reads catch up with the reports, where a second report would come from.
      await sleep(5000);
      await assertConverged(vmId, sinceBlock);
    } finally {
      rpc.lag(0);
    }
  });

  test("the RPC down for 30 s during provisioning: the daemon lives on, the VM is not failed, it runs after", async () => {
    const { vmId, sinceBlock } = await requestUntilProvisioning();
    await rpc.down();
    try {
      await sleep(OUTAGE_MS);
      assert.ok(daemon.running(), `the daemon exited during the outage:\n${daemon.logTail()}`);
      // Still Provisioning: the outage held the Running report back, so it did land mid-provisioning.
      assert.equal((await stack.vm(vmId)).state, "Provisioning");
    } finally {
      await rpc.up();
    }
    await waitHealthy();
    await assertConverged(vmId, sinceBlock);
  });

  test("the IPFS node down for 30 s during provisioning: the manifest fetch waits for it, the VM is not failed, it runs after", async () => {
    // Down before the request: the daemon's manifest fetch, right after it reports Provisioning, is what meets the outage.
    await ipfs.down();
    let vmId: bigint;
    let sinceBlock: bigint;
    try {
      ({ vmId, sinceBlock } = await requestUntilProvisioning());
      await sleep(OUTAGE_MS);
      assert.ok(daemon.running(), `the daemon exited during the outage:\n${daemon.logTail()}`);
      assert.equal((await stack.vm(vmId)).state, "Provisioning", "waits for the manifest");
    } finally {
      await ipfs.up();
    }
    await assertConverged(vmId, sinceBlock);
  });
});
