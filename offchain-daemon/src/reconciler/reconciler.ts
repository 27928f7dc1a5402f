import type { Address } from "viem";
import type { Logger } from "pino";
import { DriverError, type Driver, type DriverStatus } from "../drivers/types.ts";
import type { ContentStore } from "../ipfs/types.ts";
import type { Store } from "../store/store.ts";
import type { PublicClient } from "../chain/clients.ts";
import type { ReportSender } from "../chain/sender.ts";
import { blockStanding } from "../chain/blocks.ts";
import { errorMessage } from "../chain/errors.ts";
import { isTerminal, readVm, type ChainVm, type VmStateName } from "../chain/vm-registry.ts";
import { fetchManifest, manifestCidFromDigest } from "../manifest/fetch.ts";
import { FailureReason, failureReasonName } from "../failure-reasons.ts";
import { createLimiter } from "./limiter.ts";
import { planStep, type Step } from "./plan.ts";
import { waitForListening } from "./readiness.ts";

export type ReconcilerParameters = {
  client: PublicClient;
  vmRegistry: Address;
  provider: Address;
  store: Store;
  driver: Driver;
  content: ContentStore;
  sender: ReportSender;
  manifest: { maxBytes: number; fetchTimeoutMs: number };
  /** How long a workload with a declared port has to listen before it is reported Failed. */
  readyTimeoutMs: number;
  /** How many VMs are reconciled at once; the others wait their turn. */
  concurrency: number;
  /** Blocks a state must be buried under before the daemon destroys or forgets a workload on it. */
  confirmations: number;
  logger: Logger;
  onReconciled?: (result: "converged" | "error", durationSeconds: number) => void;
};

/** What the API shows for one VM: the last thing the reconciler saw. */
export type VmObservation = {
  vmId: bigint;
  chainState: VmStateName;
  driver: DriverStatus;
  lastStep: Step["kind"];
  lastError?: string;
  updatedAt: string;
};

/** Steps one pass may take before yielding; a healthy VM converges in at most four. */
const MAX_STEPS_PER_PASS = 8;

/**
 * Drives every VM of this provider towards what the chain says, one VM at a
 * time per VM id (concurrent triggers for the same VM coalesce into one more
 * pass), different VMs in parallel up to `concurrency` at once.
 */
export function createReconciler(parameters: ReconcilerParameters) {
  const { client, vmRegistry, provider, store, driver, content, sender, logger } = parameters;
  const inFlight = new Map<bigint, { again: boolean; done: Promise<void> }>();
  const restarts = new Map<bigint, number>();
  const observations = new Map<bigint, VmObservation>();
  const limit = createLimiter(parameters.concurrency);

  /** Takes one step for `vm`; forgetting is pass()'s, since it needs the confirmed block. */
  async function execute(vm: ChainVm, step: Exclude<Step, { kind: "forget" }>, status: DriverStatus): Promise<void> {
    const log = logger.child({ vm_id: String(vm.vmId) });
    switch (step.kind) {
      case "none":
        return;
      case "report":
        if (step.action === "reportRunning" && status.endpoint) {
          const readiness = await waitForListening(status.endpoint, {
            timeoutMs: parameters.readyTimeoutMs,
            stillRunning: async () => (await driver.status(vm.vmId)).state === "running",
          });
          if (readiness === "gone") return; // the next step sees the exit and restarts or fails it
          if (readiness === "timeout") {
            const detail = `the workload did not accept connections on ${status.endpoint} within ${parameters.readyTimeoutMs} ms`;
            return execute(vm, { kind: "fail", reason: FailureReason.WorkloadStartFailed, detail }, status);
          }
        }
        await sender.send(vm.vmId, step.action);
        return;
      case "fail":
        log.warn({ msg: "reporting VM failed", reason: failureReasonName(step.reason), detail: step.detail });
        await sender.send(vm.vmId, "reportFailed", step.reason);
        return;
      case "provision": {
        const cid = manifestCidFromDigest(vm.manifestDigest);
        const fetched = await fetchManifest(content, cid, { timeoutMs: parameters.manifest.fetchTimeoutMs, maxBytes: parameters.manifest.maxBytes });
        if (!fetched.ok) return execute(vm, { kind: "fail", reason: fetched.reason, detail: fetched.detail }, status);
        const wanted = vm.resources;
        const got = fetched.manifest.resources;
        if (got.vcpu !== wanted.vcpu || got.memoryMiB !== wanted.memoryMiB || got.diskGiB !== wanted.diskGiB) {
          const detail = `manifest asks for ${JSON.stringify(got)} but ${JSON.stringify(wanted)} was escrowed`;
          return execute(vm, { kind: "fail", reason: FailureReason.ManifestResourceMismatch, detail }, status);
        }
        log.info({ msg: "manifest verified", cid: cid.toString(), name: fetched.manifest.name });
        return runWorkload(vm, async () => {
          await driver.create(vm.vmId, fetched.manifest);
          await driver.start(vm.vmId);
        });
      }
      case "start":
        restarts.set(vm.vmId, (restarts.get(vm.vmId) ?? 0) + 1);
        return runWorkload(vm, () => driver.start(vm.vmId));
      case "stop":
        log.info({ msg: "stopping workload", why: step.why });
        await driver.stop(vm.vmId);
        return;
      case "destroy":
        log.info({ msg: "destroying workload", chain_state: vm.state });
        await driver.destroy(vm.vmId);
        return;
    }
  }

  function forget(vmId: bigint, atBlock: bigint): void {
    store.markVmDone(vmId, atBlock);
    restarts.delete(vmId);
    observations.delete(vmId);
  }

  /**
   * Destroying a workload and forgetting a VM cannot be undone, so they wait
   * until the confirmed block (head - confirmations) calls for them too.
   * Returns that block, or `undefined` while it does not.
   */
  async function confirmedFor(vmId: bigint, step: Step, status: DriverStatus): Promise<bigint | undefined> {
    const head = await client.getBlockNumber({ cacheTime: 0 });
    const atBlock = head - BigInt(parameters.confirmations);
    const confirmed = await readVm(client, vmRegistry, vmId, atBlock);
    if (confirmed === undefined || planStep(confirmed, status, restarts.get(vmId) ?? 0).kind !== step.kind) return undefined;
    return atBlock;
  }

  /**
   * A DriverError is the driver saying this workload cannot run here (a command
   * not allowed, a spawn failure): the tenant gets a Failed report and a refund.
   * Anything else (a full disk, a bug) is retried on the next pass instead.
   */
  async function runWorkload(vm: ChainVm, action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      if (!(error instanceof DriverError)) throw error;
      await execute(vm, { kind: "fail", reason: FailureReason.WorkloadStartFailed, detail: error.message }, { state: "absent" });
    }
  }

  /**
   * The RPC does not show `vmId` as ours. Only our own logs name a VM here, so
   * either a reorg undid the block that named it, or the node answering lags
   * the one that served the log. The VM is destroyed and forgotten only once
   * that block is known to have left the chain; otherwise the pass fails and
   * is retried.
   */
  async function forgetIfReorgedAway(vmId: bigint): Promise<void> {
    const sighting = store.getVmSighting(vmId);
    const standing = sighting === undefined ? "unrecorded" : await blockStanding(client, sighting);
    if (standing !== "gone") {
      const where = sighting === undefined ? "no block is recorded for it" : `block ${sighting.blockNumber} that named it is ${standing}`;
      throw new Error(`VM ${vmId} is not this provider's at the RPC's latest block, but ${where}; the RPC may lag, retrying`);
    }
    logger.warn({ msg: "the block that named this VM was reorged out; removing it", vm_id: String(vmId), block: String(sighting!.blockNumber) });
    await driver.destroy(vmId);
    forget(vmId, sighting!.blockNumber);
  }

  async function pass(vmId: bigint): Promise<void> {
    const started = performance.now();
    let lastStep: Step["kind"] = "none";
    let vm: ChainVm | undefined;
    let status: DriverStatus = { state: "absent" };
    try {
      for (let i = 0; i < MAX_STEPS_PER_PASS; i++) {
        vm = await readVm(client, vmRegistry, vmId);
        if (vm === undefined || vm.provider.toLowerCase() !== provider.toLowerCase()) {
          await forgetIfReorgedAway(vmId);
          return;
        }
        status = await driver.status(vmId);
        // A workload counts as healthy again only once it is seen running under a Running VM.
        if (vm.state === "Running" && status.state === "running") restarts.delete(vmId);
        const step = planStep(vm, status, restarts.get(vmId) ?? 0);
        if (step.kind === "none") break;
        if (step.kind === "destroy" || step.kind === "forget") {
          const confirmedAt = await confirmedFor(vmId, step, status);
          if (confirmedAt === undefined) {
            logger.debug({ msg: "waiting for the state to be confirmed", vm_id: String(vmId), chain_state: vm.state, step: step.kind });
            break;
          }
          if (step.kind === "forget") return forget(vmId, confirmedAt);
        }
        lastStep = step.kind;
        logger.debug({ msg: "step", vm_id: String(vmId), chain_state: vm.state, driver_state: status.state, step: step.kind });
        await execute(vm, step, status);
      }
      observations.set(vmId, { vmId, chainState: vm!.state, driver: status, lastStep, updatedAt: new Date().toISOString() });
      parameters.onReconciled?.("converged", (performance.now() - started) / 1000);
    } catch (error) {
      const message = errorMessage(error);
      logger.error({ msg: "reconcile failed; will retry on the next pass", vm_id: String(vmId), error: message });
      observations.set(vmId, {
        vmId,
        chainState: vm?.state ?? "None",
        driver: status,
        lastStep,
        lastError: message,
        updatedAt: new Date().toISOString(),
      });
      parameters.onReconciled?.("error", (performance.now() - started) / 1000);
    }
  }

  /** Reconciles `vmId`; resolves when the VM has had at least one full pass after this call. */
  function reconcile(vmId: bigint): Promise<void> {
    const current = inFlight.get(vmId);
    if (current) {
      current.again = true;
      return current.done;
    }
    const entry = { again: false, done: Promise.resolve() };
    entry.done = (async () => {
      do {
        entry.again = false;
        await limit(() => pass(vmId));
      } while (entry.again);
      inFlight.delete(vmId);
    })();
    inFlight.set(vmId, entry);
    return entry.done;
  }

  async function reconcileMany(vmIds: bigint[]): Promise<void> {
    await Promise.all(vmIds.map((vmId) => reconcile(vmId)));
  }

  /** Waits for every pass in flight, for a clean shutdown. */
  async function drain(): Promise<void> {
    while (inFlight.size > 0) await Promise.all([...inFlight.values()].map((entry) => entry.done));
  }

  /**
   * Destroys workloads the driver holds for VMs the store no longer tracks
   * (left behind by a crash between destroy and forget, or by a reorg) when
   * the confirmed block says they are over or not ours; adopts the others.
   */
  async function collectOrphans(): Promise<void> {
    const active = new Set(store.listActiveVms());
    for (const vmId of await driver.list()) {
      if (active.has(vmId)) continue;
      let block;
      let vm;
      try {
        const head = await client.getBlockNumber({ cacheTime: 0 });
        block = await client.getBlock({ blockNumber: head - BigInt(parameters.confirmations) });
        vm = await readVm(client, vmRegistry, vmId, block.number);
      } catch (error) {
        // Only the chain's answer can condemn a workload; RPC trouble is not an answer.
        logger.warn({ msg: "cannot read an orphaned workload's VM; keeping it for now", vm_id: String(vmId), error: errorMessage(error) });
        continue;
      }
      if (vm && vm.provider.toLowerCase() === provider.toLowerCase() && !isTerminal(vm.state)) {
        store.upsertVm(vmId, { blockNumber: block.number, blockHash: block.hash });
        continue;
      }
      logger.warn({ msg: "destroying orphaned workload", vm_id: String(vmId) });
      await driver.destroy(vmId);
    }
  }

  function snapshot(): VmObservation[] {
    return [...observations.values()].sort((a, b) => (a.vmId < b.vmId ? -1 : 1));
  }

  return { reconcile, reconcileMany, drain, collectOrphans, snapshot };
}

export type Reconciler = ReturnType<typeof createReconciler>;
