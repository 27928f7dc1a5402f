// kill -9 of the real daemon process at seeded random points of VM lifecycles (request, provision,
// run, stop, terminate), restarted at once on the same data directory, like a supervisor would.
// Shared by offchain-daemon/test/kill.test.ts (20 trials) and `npm run bench:daemon` (100).
//
// A trial is one VM's whole lifecycle with one kill in it. Several lanes run trials side by side on
// one chain and one daemon, so each kill also lands at some other point of the other lanes' VMs.
// Two witnesses the daemon cannot influence judge the outcome: the processes alive on this machine
// (sampled all along) and the operator's report transactions in the blocks.
import { seededRandom } from "../../bench/lib/random.ts";
import { parseUnits, type Hex } from "viem";
import { sleep } from "../../scripts/stack/processes.ts";
import { countReports, operatorReports, workloadGroups } from "./census.ts";
import type { DaemonProcess } from "./daemon-process.ts";
import type { TestStack } from "./stack.ts";

export const LIFECYCLE_PHASES = ["request", "provision", "run", "stop", "terminate"] as const;
export type Phase = (typeof LIFECYCLE_PHASES)[number];

/** Where, after which tenant step, and how long after it a trial's kill lands (ms). */
const KILL_WINDOWS: Record<Phase, [number, number]> = {
  // before the daemon has seen the request (it waits one confirmation)
  request: [0, 300],
  // while it reports Provisioning, creates and starts the workload and reports Running
  provision: [300, 2000],
  run: [0, 1000],
  stop: [0, 1500],
  terminate: [0, 1500],
};

/** The one report sequence a lifecycle needs: Provisioning once, Running at the start and after the restart. */
const EXPECTED_REPORTS = { reportProvisioning: 1, reportRunning: 2, reportFailed: 0 } as const;

export type KillTrialsResult = {
  seed: number;
  trials: number;
  converged: number;
  /** VMs seen with more than one workload process group at once. */
  duplicates: number;
  /** Workloads alive after their VM was terminated and the daemon converged. */
  orphans: number;
  /** (VM, action) pairs with fewer report transactions than the lifecycle needs, and with more (or reverted ones). */
  lostReports: number;
  doubledReports: number;
  daemonStarts: number;
  durationMs: number;
  failures: string[];
};

/** A workload that costs nothing to run: one `sleep` process, no port to wait for. */
export const SLEEPER_MANIFEST = {
  version: 1,
  name: "sleeper",
  resources: { vcpu: 1, memoryMiB: 128, diskGiB: 1 },
  workload: { type: "process", command: "sh", args: ["-c", "exec sleep 3600"], env: {} },
};

export async function runKillTrials(
  stack: TestStack,
  daemon: DaemonProcess,
  options: { trials: number; seed: number; lanes: number; stepTimeoutMs?: number; log: (line: string) => void },
): Promise<KillTrialsResult> {
  const { trials, seed, lanes, log } = options;
  const stepTimeoutMs = options.stepTimeoutMs ?? 60_000;
  const random = seededRandom(seed);
  const started = Date.now();
  const failures: string[] = [];
  const deposit = parseUnits("10", 18);
  const digest = await stack.publish(SLEEPER_MANIFEST);
  const { vmRegistry } = stack.deployment.contracts;
  const firstBlock = (await stack.publicClient.getBlockNumber()) + 1n;
  await stack.approveDeposit(deposit * BigInt(trials));

  // The kill points are drawn up front, so a seed names the same points whatever the timing.
  const plan = Array.from({ length: trials }, (_, trial) => {
    const phase = LIFECYCLE_PHASES[Math.floor(random() * LIFECYCLE_PHASES.length)]!;
    const [low, high] = KILL_WINDOWS[phase];
    return { trial, phase, delayMs: Math.round(low + random() * (high - low)) };
  });

  // Restarts are serialized: a kill during the previous restart's start-up is one more kill point.
  let restarts = Promise.resolve();
  const killAndRestart = () =>
    (restarts = restarts.then(async () => {
      await daemon.kill();
      daemon.spawn();
    }));

  const duplicated = new Set<bigint>();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const [vmId, groups] of await workloadGroups(daemon.vmsDir)) if (groups.size > 1) duplicated.add(vmId);
      await sleep(200);
    }
  })();

  async function until(what: string, vmId: bigint, probe: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + stepTimeoutMs;
    while (Date.now() < deadline) {
      if (await probe().catch(() => false)) return;
      await sleep(100);
    }
    throw new Error(`VM ${vmId}: ${what} not within ${stepTimeoutMs} ms`);
  }
  const workloads = async (vmId: bigint) => (await workloadGroups(daemon.vmsDir)).get(vmId)?.size ?? 0;
  const runningWithWorkload = (vmId: bigint) => async () => (await stack.vm(vmId)).state === "Running" && (await workloads(vmId)) === 1;

  async function trial({ trial, phase, delayMs }: (typeof plan)[number]): Promise<{ vmId?: bigint; ok: boolean }> {
    const killAfter = (at: Phase) => (at === phase ? sleep(delayMs).then(killAndRestart) : Promise.resolve());
    let vmId: bigint | undefined;
    try {
      vmId = await stack.submitRequestVm(digest as Hex, SLEEPER_MANIFEST.resources, deposit);
      const id = vmId;
      log(`trial ${trial}: VM ${id}, kill -9 ${delayMs} ms after ${phase}`);
      await killAfter("request");
      await killAfter("provision");
      await until("Running with one workload", id, runningWithWorkload(id));
      await killAfter("run");
      await stack.tenantCall("stopVm", id);
      await killAfter("stop");
      await until("the workload to end after stopVm", id, async () => (await workloads(id)) === 0);
      await stack.tenantCall("startVm", id);
      await until("Running again with one workload", id, runningWithWorkload(id));
      await stack.tenantCall("terminateVm", id);
      await killAfter("terminate");
      await until("the workload to be destroyed after terminateVm", id, async () => (await workloads(id)) === 0);
      return { vmId: id, ok: true };
    } catch (error) {
      failures.push(`trial ${trial} (${phase} +${delayMs} ms): ${error instanceof Error ? error.message : String(error)}`);
      return { vmId, ok: false };
    }
  }

  const outcomes: Array<{ vmId?: bigint; ok: boolean }> = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < plan.length) outcomes.push(await trial(plan[next++]!));
    }),
  );
  await restarts;
  await daemon.waitHealthy(stepTimeoutMs);
  sampling = false;
  await sampler;

  // Give the converged daemon a moment to clean up after a failed trial before counting what is left.
  await sleep(2000);
  const left = await workloadGroups(daemon.vmsDir);
  for (const [vmId] of left) failures.push(`VM ${vmId}: a workload is alive after its trial ended`);

  const operator = stack.deployment.accounts.providerOperator;
  const reports = await operatorReports(stack.publicClient, vmRegistry, operator, firstBlock, await stack.publicClient.getBlockNumber());
  const counts = countReports(reports);
  const reverted = reports.filter((report) => report.status !== "success");
  let lostReports = 0;
  let doubledReports = reverted.length;
  for (const { vmId, ok } of outcomes) {
    if (vmId === undefined || !ok) continue;
    for (const [action, expected] of Object.entries(EXPECTED_REPORTS)) {
      const got = counts.get(`${vmId} ${action}`) ?? 0;
      if (got < expected) lostReports++;
      if (got > expected) doubledReports++;
      if (got !== expected) failures.push(`VM ${vmId}: ${got} ${action} transactions, expected ${expected}`);
    }
  }
  for (const report of reverted) failures.push(`VM ${report.vmId}: a ${report.action} transaction reverted in block ${report.block}`);

  const badVms = new Set([...duplicated, ...left.keys(), ...reverted.map((r) => r.vmId)]);
  for (const vmId of duplicated) failures.push(`VM ${vmId}: two workload process groups at once`);
  const converged = outcomes.filter(({ vmId, ok }) => ok && vmId !== undefined && !badVms.has(vmId) && Object.entries(EXPECTED_REPORTS).every(([action, n]) => (counts.get(`${vmId} ${action}`) ?? 0) === n)).length;
  return {
    seed,
    trials,
    converged,
    duplicates: duplicated.size,
    orphans: left.size,
    lostReports,
    doubledReports,
    daemonStarts: daemon.starts,
    durationMs: Date.now() - started,
    failures,
  };
}
