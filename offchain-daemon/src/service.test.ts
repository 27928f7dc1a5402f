// The daemon end to end, in-process: a real Hardhat node, real IPFS blocks over the Kubo RPC API,
// real workload processes. Each test drives the chain as a tenant would and checks what the
// daemon made of it, on-chain and on this machine.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { parseUnits, zeroAddress, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { loadConfig } from "./config.ts";
import { FailureReason } from "./failure-reasons.ts";
import { destroyAllWorkloads } from "./drivers/process.ts";
import { ServiceStartError, startService, type Service } from "./service.ts";
import { startTestStack, type TestStack } from "../../test/daemon-support/stack.ts";
import { sleep } from "../../scripts/stack/processes.ts";
import { devPrivateKey } from "../../scripts/lib/accounts.ts";

const hello = JSON.parse(readFileSync(new URL("../../examples/hello.json", import.meta.url), "utf8"));

type ApiVm = { vmId: string; chainState: string; driver: { state: string; pid?: number; endpoint?: string } };

async function apiVm(service: Service, vmId: bigint): Promise<ApiVm | undefined> {
  const body = (await (await fetch(`${service.apiUrl}/vms`)).json()) as { vms: ApiVm[] };
  return body.vms.find((vm) => vm.vmId === String(vmId));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("provider daemon", () => {
  let stack: TestStack;
  let service: Service;
  let daemonDir: string;
  const deposit = parseUnits("100", 18);

  before(async () => {
    stack = await startTestStack("service");
    daemonDir = join(stack.dir, "daemon");
    mkdirSync(daemonDir);
    const config = loadConfig(stack.writeDaemonConfig(daemonDir), {});
    service = await startService(config, pino({ level: "warn" }));
  });

  after(async () => {
    await service?.stop();
    // Workloads outlive the daemon by design; the test owns them, so it ends them.
    if (daemonDir) await destroyAllWorkloads(join(daemonDir, "vms"), pino({ level: "silent" }));
    await stack?.stop();
  });

  // First, while no VM exists that a second daemon could touch.
  test("issue 11 case 11: stopping twice stops each module once, in reverse order", async () => {
    const dir = join(stack.dir, "stop-twice");
    mkdirSync(dir);
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(line) });
    const second = await startService(loadConfig(stack.writeDaemonConfig(dir), {}), logger);
    await Promise.all([second.stop(), second.stop()]);
    await second.stop();
    assert.deepEqual(lines.filter((line) => line.includes("error while stopping")), []);
  });

  test("runs a requested VM as a real process, stops, starts and terminates it, and the money adds up", async () => {
    const tenantBefore = await stack.tokenBalance(stack.tenant);
    const digest = await stack.publish(hello);
    const requestedAt = Date.now();
    const vmId = await stack.requestVm(digest, hello.resources, deposit);

    const running = await stack.waitForState(vmId, "Running");
    assert.equal(running.failureReason, 0);
    const secondsToRunning = (Date.now() - requestedAt) / 1000;
    assert.ok(secondsToRunning < 30, `took ${secondsToRunning} s`);

    const first = await until("the workload endpoint", async () => {
      const vm = await apiVm(service, vmId);
      return vm?.driver.state === "running" && vm.driver.endpoint ? vm : undefined;
    });
    // The workload process runs; give its HTTP server a moment to bind.
    const reply = await until("the hello server to answer", async () => (await fetch(first.driver.endpoint!)).text());
    assert.match(reply, new RegExp(`hello from NovaCron VM ${vmId}`));

    await stack.tenantCall("stopVm", vmId);
    await until("the process group to end", async () => !alive(first.driver.pid!) || undefined);

    await stack.tenantCall("startVm", vmId);
    await stack.waitForState(vmId, "Running");
    const second = await until("the restarted workload", async () => {
      const vm = await apiVm(service, vmId);
      return vm?.driver.state === "running" && vm.driver.pid !== first.driver.pid ? vm : undefined;
    });
    assert.match(await until("the restarted server to answer", async () => (await fetch(second.driver.endpoint!)).text()), /hello from NovaCron VM/);

    await sleep(1500); // let some billable seconds pass
    await stack.tenantCall("terminateVm", vmId);
    await until("the workload to be destroyed", async () => !alive(second.driver.pid!) || undefined);
    const ended = await stack.vm(vmId);
    assert.equal(ended.state, "Terminated");
    assert.ok(ended.paid > 0n, "the provider earned something while the VM ran");
    assert.equal(ended.refunded + ended.paid + ended.fee, deposit, "deposit = refunded + paid + fee");
    assert.equal(ended.fee, ((ended.paid + ended.fee) * 100n) / 10_000n, "the deployment's 1% platform fee");
    assert.equal(await stack.tokenBalance(stack.tenant), tenantBefore - ended.paid - ended.fee, "the tenant paid exactly what the provider earned plus the fee");

    const providerBefore = await stack.tokenBalance(stack.deployment.accounts.providerOwner);
    await stack.providerWithdraw();
    assert.equal(await stack.tokenBalance(stack.deployment.accounts.providerOwner), providerBefore + ended.paid);
  });

  test("an open order awarded to this provider runs like a direct request; out of funds it is suspended, a top-up revives it", async () => {
    const digest = await stack.publish(hello);
    const price = parseUnits("0.001", 18); // what examples/hello.json costs at the demo provider
    // Four seconds of running time: the VM runs out of money soon after it starts.
    const vmId = await stack.openOrder(digest, hello.resources, 4n * price, 2n * price);
    assert.equal((await stack.vm(vmId)).state, "Bidding");
    await stack.operatorBid(vmId, price);
    await stack.tenantAcceptBid(vmId, 0n);
    const running = await stack.waitForState(vmId, "Running");
    assert.equal(running.provider.toLowerCase(), stack.deployment.accounts.providerOwner.toLowerCase());
    const first = await until("the workload", async () => {
      const vm = await apiVm(service, vmId);
      return vm?.driver.state === "running" ? vm : undefined;
    });

    await stack.waitForState(vmId, "Suspended", 30_000);
    await until("the suspended workload to be stopped, not destroyed", async () => {
      const vm = await apiVm(service, vmId);
      return vm?.driver.state === "stopped" ? vm : undefined;
    }, 30_000);
    // The driver may see the process exit (a zombie) a moment before this process reaps it.
    await until("the workload process to end", async () => !alive(first.driver.pid!) || undefined);

    await stack.tenantTopUp(vmId, parseUnits("10", 18));
    await stack.waitForState(vmId, "Running", 30_000);
    await until("the revived workload", async () => {
      const vm = await apiVm(service, vmId);
      return vm?.driver.state === "running" && vm.driver.pid !== first.driver.pid ? vm : undefined;
    });
    await stack.tenantCall("terminateVm", vmId);
    const ended = await stack.waitForState(vmId, "Terminated");
    assert.equal(ended.deposit, ended.refunded + ended.paid + ended.fee, "deposit = refunded + paid + fee");
  });

  test("bad manifests are reported Failed with a reason and fully refunded, while a good VM still runs", async () => {
    const tenantBefore = await stack.tokenBalance(stack.tenant);
    const neverPublished = `0x${"ab".repeat(32)}` as const;
    const cases = [
      { name: "not found on IPFS", digest: neverPublished, reason: FailureReason.ManifestNotFound },
      { name: "larger than the limit", digest: await stack.publish(new Uint8Array(100 * 1024).fill(32)), reason: FailureReason.ManifestTooLarge },
      { name: "not JSON", digest: await stack.publish(new TextEncoder().encode("this is not json {")), reason: FailureReason.ManifestNotJson },
      { name: "not valid against the schema", digest: await stack.publish({ ...hello, version: 7 }), reason: FailureReason.ManifestInvalid },
      { name: "resources differ from the escrow", digest: await stack.publish({ ...hello, resources: { ...hello.resources, vcpu: 2 } }), reason: FailureReason.ManifestResourceMismatch },
      { name: "command not allowed", digest: await stack.publish({ ...hello, workload: { ...hello.workload, command: "python3" } }), reason: FailureReason.WorkloadStartFailed },
      {
        name: "never listens on its declared port",
        digest: await stack.publish({ ...hello, workload: { ...hello.workload, args: ["-e", "setInterval(() => {}, 1000)"] } }),
        reason: FailureReason.WorkloadStartFailed,
      },
    ];
    const bad = [];
    for (const c of cases) bad.push({ ...c, vmId: await stack.requestVm(c.digest, hello.resources, deposit) });
    const goodId = await stack.requestVm(await stack.publish(hello), hello.resources, deposit);

    for (const c of bad) {
      const vm = await stack.waitForState(c.vmId, ["Failed", "Running"]);
      assert.equal(vm.state, "Failed", c.name);
      assert.equal(vm.failureReason, c.reason, c.name);
      assert.equal(vm.refunded, deposit, `${c.name}: whole deposit refunded`);
      assert.equal(vm.paid, 0n, c.name);
    }
    await stack.waitForState(goodId, "Running");
    // Every bad deposit came back; only the good VM's deposit is still escrowed.
    assert.equal(await stack.tokenBalance(stack.tenant), tenantBefore - deposit);
    await stack.tenantCall("terminateVm", goodId);
  });

  test("a reorg that undoes a VM request makes the daemon destroy the workload it started", async () => {
    const rpc = (method: string, params: unknown[] = []) => stack.publicClient.request({ method, params } as never) as Promise<unknown>;
    const snapshot = await rpc("evm_snapshot");
    const vmId = await stack.requestVm(await stack.publish(hello), hello.resources, deposit);
    await stack.waitForState(vmId, "Running");
    const running = await until("the workload", async () => {
      const vm = await apiVm(service, vmId);
      return vm?.driver.state === "running" ? vm : undefined;
    });

    assert.equal(await rpc("evm_revert", [snapshot]), true);
    await assert.rejects(stack.vm(vmId), /does not exist/);
    await until("the orphaned workload to be destroyed", async () => !alive(running.driver.pid!) || undefined);
    await until("the daemon to forget the VM", async () => ((await apiVm(service, vmId)) === undefined ? true : undefined));
  });

  test("a daemon started with the key its provider nominated accepts the operator role; any other key is refused with the fix", async () => {
    // A second provider (account #6) nominates a fresh key (#7); #8 is a key nobody nominated.
    const owner = privateKeyToAccount(devPrivateKey(6) as Hex).address;
    const nomineeKey = devPrivateKey(7) as Hex;
    const nominee = privateKeyToAccount(nomineeKey).address;
    const strangerKey = devPrivateKey(8) as Hex;
    await stack.registerProvider(owner, nominee);
    assert.deepEqual(await stack.operatorsOf(owner), { operator: zeroAddress, pending: nominee });

    const dir = join(stack.dir, "daemon-nominated");
    mkdirSync(dir);
    const strangerConfig = loadConfig(stack.writeDaemonConfig(dir, { provider: owner, operatorKey: strangerKey }), {});
    await assert.rejects(startService(strangerConfig, pino({ level: "silent" })), (error: unknown) => {
      assert.ok(error instanceof ServiceStartError);
      assert.match(error.message, /is neither the operator of provider .* \(operator: none yet\) nor nominated by it \(pending: 0x/);
      assert.match(error.message, /provider:set-operator --operator 0x[0-9a-fA-F]{40}/);
      return true;
    });
    assert.deepEqual(await stack.operatorsOf(owner), { operator: zeroAddress, pending: nominee });

    const config = loadConfig(stack.writeDaemonConfig(dir, { provider: owner, operatorKey: nomineeKey }), {});
    const daemon = await startService(config, pino({ level: "silent" }));
    try {
      assert.deepEqual(await stack.operatorsOf(owner), { operator: nominee, pending: zeroAddress });
    } finally {
      await daemon.stop();
    }
    // A restart finds the key in place and sends nothing (counted by the key's nonce: the node also mines
    // a block every second, so the block number may move on its own).
    const nonceBefore = await stack.publicClient.getTransactionCount({ address: nominee });
    const again = await startService(config, pino({ level: "silent" }));
    await again.stop();
    assert.equal(await stack.publicClient.getTransactionCount({ address: nominee }), nonceBefore);
  });

  test("issue 11 case 2: a reorg that undoes a termination the daemon acted on brings the workload back", async () => {
    const rpc = (method: string, params: unknown[] = []) => stack.publicClient.request({ method, params } as never) as Promise<unknown>;
    const vmId = await stack.requestVm(await stack.publish(hello), hello.resources, deposit);
    await stack.waitForState(vmId, "Running");
    const first = await until("the workload", async () => {
      const vm = await apiVm(service, vmId);
      return vm?.driver.state === "running" ? vm : undefined;
    });

    const snapshot = await rpc("evm_snapshot");
    await stack.tenantCall("terminateVm", vmId);
    await until("the workload to be destroyed", async () => !alive(first.driver.pid!) || undefined);
    await until("the daemon to forget the VM", async () => ((await apiVm(service, vmId)) === undefined ? true : undefined));
    assert.equal(await rpc("evm_revert", [snapshot]), true);
    assert.equal((await stack.vm(vmId)).state, "Running", "on-chain the VM runs and is billed again");

    const healed = await until("the workload to run again", async () => {
      const vm = await apiVm(service, vmId);
      return vm?.driver.state === "running" && vm.driver.pid !== first.driver.pid ? vm : undefined;
    }, 40_000);
    assert.ok(alive(healed.driver.pid!));
    await stack.tenantCall("terminateVm", vmId);
  });

  // Last: it takes the operator role away from the daemon's key.
  test("issue 11 case 7: a report reverted because the operator key was rotated halts reporting and fails /healthz", async () => {
    await stack.rotateOperator(devPrivateKey(9) as Hex);
    const vmId = await stack.requestVm(await stack.publish(hello), hello.resources, deposit);
    const health = await until("/healthz to fail", async () => {
      const response = await fetch(`${service.apiUrl}/healthz`);
      return response.status === 503 ? ((await response.json()) as { detail: { reporting_halted?: string } }) : undefined;
    });
    assert.match(health.detail.reporting_halted ?? "", /is no longer the operator of VM \d+'s provider/);
    assert.equal((await stack.vm(vmId)).state, "Requested");
  });
});
