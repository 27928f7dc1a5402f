import type { DriverStatus } from "../drivers/types.ts";
import type { ChainVm } from "../chain/vm-registry.ts";
import { FailureReason } from "../failure-reasons.ts";

/** The one next thing to do for a VM, decided from what the chain wants and what the driver has. */
export type Step =
  | { kind: "none" }
  | { kind: "report"; action: "reportProvisioning" | "reportRunning" }
  | { kind: "fail"; reason: number; detail: string }
  /** Fetch and validate the manifest, create the workload and start it. */
  | { kind: "provision" }
  | { kind: "start" }
  | { kind: "stop"; why: string }
  | { kind: "destroy" }
  /** The VM is over on-chain and nothing is left locally: stop tracking it. */
  | { kind: "forget" };

/** How many times a workload that stopped on its own is started again before the VM is reported Failed. */
export const MAX_RESTARTS = 3;

/**
 * Level-triggered: the step depends only on the current chain state, the
 * current driver state and how often the workload has been restarted — never on
 * which event arrived — so running it again after a crash, a missed event or a
 * reorg converges to the same place.
 */
export function planStep(chain: ChainVm, driver: DriverStatus, restarts: number): Step {
  switch (chain.state) {
    case "Requested":
      return { kind: "report", action: "reportProvisioning" };
    case "Provisioning":
    case "Starting":
    case "Running":
      // Out of funds: billing has stopped on-chain, so the provider stops serving too.
      if (chain.state === "Running" && chain.balance === 0n) {
        return driver.state === "running" ? { kind: "stop", why: "deposit exhausted" } : { kind: "none" };
      }
      if (driver.state === "absent") return { kind: "provision" };
      if (driver.state === "stopped") {
        if (restarts < MAX_RESTARTS) return { kind: "start" };
        const detail = `workload exited ${restarts + 1} times (last exit code ${driver.exitCode ?? "unknown"})`;
        return { kind: "fail", reason: FailureReason.WorkloadExited, detail };
      }
      return chain.state === "Running" ? { kind: "none" } : { kind: "report", action: "reportRunning" };
    case "Stopped":
      return driver.state === "running" ? { kind: "stop", why: "stopped by owner" } : { kind: "none" };
    case "Suspended":
      // Out of funds: stop serving but keep the workload's data; a top-up moves the VM to Starting,
      // which provisions or starts it again like any other start.
      return driver.state === "running" ? { kind: "stop", why: "deposit exhausted (suspended)" } : { kind: "none" };
    case "Bidding":
      // An open order not leased to anyone yet: once awarded to us it arrives as Requested.
      return { kind: "none" };
    case "None":
    case "Failed":
    case "Terminated":
      return driver.state === "absent" ? { kind: "forget" } : { kind: "destroy" };
  }
}
