// `npm start` as a user runs it, on ports and a data directory of its own: the banner's example works as
// printed, a killed daemon comes back without taking the chain, IPFS or the running VM with it, the
// chain's clock stays on the wall clock, and Ctrl-C stops everything it started.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { HARDHAT_CLI, PROJECT_ROOT } from "./stack/hardhat.ts";
import { sleep } from "./stack/processes.ts";
import { freePort } from "../test/daemon-support/stack.ts";
import { readStat } from "../offchain-daemon/src/drivers/procfs.ts";

type ApiVm = { vmId: string; chainState: string; driver: { state: string; pid?: number } };

/** How far the chain's newest block may be from the wall clock: the block interval plus rounding. */
const CLOCK_TOLERANCE_S = 2;

/** Running, not just present: an orphan that exited stays a zombie until its new parent reaps it, and on
 * machines whose init does not reap (some containers and VMs) that is never. */
async function alive(pid: number): Promise<boolean> {
  const stat = await readStat(pid);
  return stat !== undefined && stat.state !== "Z";
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function rpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  return ((await response.json()) as { result: T }).result;
}

test("npm start: the banner's example works on other ports, a killed daemon is restarted and the chain, IPFS and the VM survive it, blocks carry wall-clock time, Ctrl-C stops everything", { timeout: 420_000 }, async (t) => {
  const [rpcPort, ipfsPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), "novacron-start-"));
  const env = { ...process.env, NOVACRON_RPC_PORT: String(rpcPort), NOVACRON_IPFS_PORT: String(ipfsPort), NOVACRON_API_PORT: String(apiPort), NOVACRON_DATA_DIR: dataDir };
  const launcher = spawn(process.execPath, ["scripts/start.ts"], { cwd: PROJECT_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  launcher.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  launcher.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const launcherExit = new Promise<number | null>((resolve) => launcher.once("exit", (code) => resolve(code)));
  const stackPids = () => JSON.parse(readFileSync(join(dataDir, "stack-pids.json"), "utf8")) as number[];
  let pids: number[] = [];
  t.after(async () => {
    if (launcher.exitCode === null) launcher.kill("SIGINT");
    await Promise.race([launcherExit, sleep(20_000)]);
    for (const pid of pids) if (await alive(pid)) process.kill(-pid, "SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  await until("the stack's `ready` line", () => (/^ready$/m.test(output) ? true : launcher.exitCode !== null ? Promise.reject() : undefined), 300_000).catch(() => {
    throw new Error(`npm start did not get ready:\n${output}`);
  });
  const rpcUrl = `http://127.0.0.1:${rpcPort}`;
  const ipfsUrl = `http://127.0.0.1:${ipfsPort}`;
  const apiUrl = `http://127.0.0.1:${apiPort}`;

  // The example in the banner carries the ports this stack runs on; run it exactly as printed.
  const tryLine = /^\s*try:\s+(.+)$/m.exec(output)?.[1];
  assert.equal(tryLine, `NOVACRON_RPC_URL=${rpcUrl} NOVACRON_IPFS_URL=${ipfsUrl} npx hardhat vm:request --network localhost --manifest examples/hello.json`);
  const requested = await promisify(execFile)(process.execPath, [HARDHAT_CLI, "vm:request", "--network", "localhost", "--manifest", "examples/hello.json"], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, NOVACRON_RPC_URL: rpcUrl, NOVACRON_IPFS_URL: ipfsUrl },
  });
  const vmId = /VM id: (\d+)/.exec(requested.stdout)?.[1];
  assert.ok(vmId, `vm:request printed no VM id:\n${requested.stdout}`);
  const vms = async () => ((await (await fetch(`${apiUrl}/vms`)).json()) as { vms: ApiVm[] }).vms;
  const running = await until("the VM Running with a workload", async () => (await vms()).find((vm) => vm.vmId === vmId && vm.chainState === "Running" && vm.driver.pid), 60_000);
  const workloadPid = running.driver.pid!;

  pids = stackPids();
  const [chainPid, ipfsPid, daemonPid] = pids as [number, number, number];
  const blockBefore = BigInt(await rpc<string>(rpcUrl, "eth_blockNumber"));
  process.kill(daemonPid, "SIGKILL");
  await until("the launcher announcing the restart", () => (/daemon exited \(SIGKILL\); restarting it in 1 s/.test(output) ? true : undefined), 10_000);
  const restartedPid = await until("a new daemon pid", () => (stackPids()[2] !== daemonPid ? stackPids()[2] : undefined), 20_000);
  pids = stackPids();
  await until("the restarted daemon's /healthz", async () => ((await fetch(`${apiUrl}/healthz`)).ok ? true : undefined), 60_000);
  const adopted = await until("the restarted daemon serving the VM", async () => (await vms()).find((vm) => vm.vmId === vmId && vm.driver.pid), 30_000);

  assert.ok(await alive(restartedPid), "the restarted daemon runs");
  assert.ok((await alive(chainPid)) && (await alive(ipfsPid)), "the chain and IPFS kept running");
  assert.equal(adopted.driver.pid, workloadPid, "the workload was adopted, not started a second time");
  assert.ok(await alive(workloadPid), "the workload kept running through the daemon's crash");
  assert.ok(BigInt(await rpc<string>(rpcUrl, "eth_blockNumber")) > blockBefore, "the same chain, still mining");
  assert.equal(launcher.exitCode, null, "the stack is still up");

  // Deploying and requesting sent dozens of transactions in a few seconds; the chain's clock did not run ahead.
  const latest = await rpc<{ timestamp: string }>(rpcUrl, "eth_getBlockByNumber", ["latest", false]);
  const aheadSeconds = Number(BigInt(latest.timestamp)) - Date.now() / 1000;
  assert.ok(Math.abs(aheadSeconds) <= CLOCK_TOLERANCE_S, `the chain's clock is ${aheadSeconds.toFixed(1)} s off the wall clock`);

  launcher.kill("SIGINT");
  assert.equal(await launcherExit, 0, output);
  for (const pid of [...pids, workloadPid]) await until(`process ${pid} to stop with the stack`, async () => ((await alive(pid)) ? undefined : true), 5_000).catch((error: Error) => {
      throw new Error(`${error.message}; the launcher said:\n${output.slice(-2_000)}`);
    });
});
