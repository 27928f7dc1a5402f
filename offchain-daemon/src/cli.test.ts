// The daemon as its own process (`novacron-daemon --config FILE`): bad configuration, and a
// daemon killed with SIGKILL between a VM request and Running that must still end with the VM
// Running and exactly one workload process.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseUnits } from "viem";
import { spawnChild, sleep, stopGroup, type StackChild } from "../../scripts/stack/processes.ts";
import { startTestStack, type TestStack } from "../testing/stack.ts";
import { destroyAllWorkloads } from "./drivers/process.ts";
import pino from "pino";

const BIN = new URL("../bin/novacron-daemon.js", import.meta.url).pathname;
const hello = JSON.parse(readFileSync(new URL("../../examples/hello.json", import.meta.url), "utf8"));

/** Processes whose working directory is inside this VM's directory: the workload and anything it spawned. */
function workloadProcesses(vmsDir: string, vmId: bigint): number[] {
  const prefix = join(vmsDir, String(vmId)) + "/";
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((readlinkSync(`/proc/${entry}/cwd`) + "/").startsWith(prefix)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

describe("novacron-daemon CLI", () => {
  test("a bad config prints one line naming the field and exits 2", async () => {
    const dir = join(process.env.TMPDIR ?? "/tmp", `novacron-cli-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "bad.json");
    const valid = {
      rpcUrl: "http://127.0.0.1:1",
      operatorKey: `0x${"11".repeat(32)}`,
      provider: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
      contracts: { vmRegistry: "0x12", providerRegistry: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" },
      dataDir: dir,
    };
    writeFileSync(file, JSON.stringify(valid));
    const result = await promisify(execFile)(process.execPath, [BIN, "--config", file]).then(
      () => assert.fail("the daemon accepted a bad config"),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 2);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, /^config error: contracts\.vmRegistry: expected a 0x-prefixed 20-byte address/);
  });

  test("a missing config file is named in one line, exit 2", async () => {
    const result = await promisify(execFile)(process.execPath, [BIN, "--config", "/nonexistent/novacron.json"]).then(
      () => assert.fail("the daemon started without its config"),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 2);
    assert.match(result.stderr.trim(), /^config error: .*\/nonexistent\/novacron\.json/);
  });
});

describe("daemon killed between request and Running", () => {
  let stack: TestStack;
  let daemonDir: string;
  let configFile: string;
  let daemon: StackChild | undefined;
  const deposit = parseUnits("50", 18);

  function startDaemon(): StackChild {
    daemon = spawnChild("daemon", process.execPath, [BIN, "--config", configFile], { logFile: join(daemonDir, "daemon.log") });
    return daemon;
  }

  async function killDaemon(): Promise<void> {
    process.kill(daemon!.pid, "SIGKILL");
    await daemon!.exited;
  }

  before(async () => {
    stack = await startTestStack("restart");
    daemonDir = join(stack.dir, "daemon");
    mkdirSync(daemonDir);
    configFile = stack.writeDaemonConfig(daemonDir, { logLevel: "info" });
  });

  after(async () => {
    if (daemon) await stopGroup(daemon.pid);
    // Workloads outlive the daemon by design; the test owns them, so it ends them.
    if (daemonDir) await destroyAllWorkloads(join(daemonDir, "vms"), pino({ level: "silent" }));
    await stack?.stop();
  });

  test("requested while the daemon is down: Running after restart, one process", async () => {
    startDaemon();
    await sleep(1500);
    await killDaemon();
    const vmId = await stack.requestVm(await stack.publish(hello), hello.resources, deposit);
    startDaemon();
    await stack.waitForState(vmId, "Running");
    await sleep(1500); // a duplicate spawn would show up here
    assert.equal(workloadProcesses(join(daemonDir, "vms"), vmId).length, 1);
  });

  test("killed the moment Provisioning lands: Running after restart, one process", async () => {
    const vmId = await stack.requestVm(await stack.publish(hello), hello.resources, deposit);
    await stack.waitForState(vmId, ["Provisioning", "Running"], 30_000);
    await killDaemon();
    const seen = (await stack.vm(vmId)).state;
    startDaemon();
    await stack.waitForState(vmId, "Running");
    await sleep(1500);
    assert.equal(workloadProcesses(join(daemonDir, "vms"), vmId).length, 1, `state when killed: ${seen}`);
    await stack.tenantCall("terminateVm", vmId);
  });
});
