import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { planStep, MAX_RESTARTS } from "./plan.ts";
import type { ChainVm, VmStateName } from "../chain/vm-registry.ts";
import type { DriverState } from "../drivers/types.ts";
import { FailureReason } from "../failure-reasons.ts";

function vm(state: VmStateName, balance = 10n): ChainVm {
  return {
    vmId: 1n,
    owner: "0x0000000000000000000000000000000000000001",
    provider: "0x0000000000000000000000000000000000000002",
    state,
    resources: { vcpu: 1, memoryMiB: 128, diskGiB: 1 },
    manifestDigest: `0x${"11".repeat(32)}`,
    pricePerSecond: 1n,
    deposit: 10n,
    balance,
    paid: 0n,
    refunded: 0n,
    fee: 0n,
    failureReason: 0,
  };
}

describe("planStep", () => {
  const table: Array<[VmStateName, DriverState, string]> = [
    ["Requested", "absent", "report:reportProvisioning"],
    ["Provisioning", "absent", "provision"],
    ["Provisioning", "stopped", "start"],
    ["Provisioning", "running", "report:reportRunning"],
    ["Starting", "absent", "provision"],
    ["Starting", "stopped", "start"],
    ["Starting", "running", "report:reportRunning"],
    ["Running", "running", "none"],
    ["Running", "absent", "provision"],
    ["Running", "stopped", "start"],
    ["Stopped", "running", "stop"],
    ["Stopped", "stopped", "none"],
    ["Stopped", "absent", "none"],
    ["Terminated", "running", "destroy"],
    ["Terminated", "stopped", "destroy"],
    ["Terminated", "absent", "forget"],
    ["Failed", "running", "destroy"],
    ["Failed", "absent", "forget"],
    ["None", "running", "destroy"],
    ["Suspended", "running", "stop"],
    ["Suspended", "stopped", "none"],
    ["Suspended", "absent", "none"],
    ["Bidding", "absent", "none"],
    ["Bidding", "running", "none"],
  ];
  for (const [chainState, driverState, expected] of table) {
    test(`chain ${chainState} + driver ${driverState} -> ${expected}`, () => {
      const step = planStep(vm(chainState), { state: driverState }, 0);
      const label = step.kind === "report" ? `report:${step.action}` : step.kind;
      assert.equal(label, expected);
    });
  }

  test("a Running VM whose deposit is exhausted has its workload stopped, not restarted", () => {
    assert.equal(planStep(vm("Running", 0n), { state: "running" }, 0).kind, "stop");
    assert.equal(planStep(vm("Running", 0n), { state: "stopped" }, 0).kind, "none");
  });

  test("a suspended VM keeps its workload's data: stopped, never destroyed; a top-up (Starting) starts it again", () => {
    assert.equal(planStep(vm("Suspended", 0n), { state: "running" }, 0).kind, "stop");
    assert.equal(planStep(vm("Suspended", 0n), { state: "stopped" }, 0).kind, "none");
    assert.equal(planStep(vm("Starting", 5n), { state: "stopped" }, 0).kind, "start");
  });

  test("an open order awarded to us is a plain request: Requested -> reportProvisioning", () => {
    const step = planStep(vm("Requested"), { state: "absent" }, 0);
    assert.deepEqual(step, { kind: "report", action: "reportProvisioning" });
  });

  test("a workload that keeps exiting is reported Failed after the restart budget", () => {
    assert.equal(planStep(vm("Running"), { state: "stopped", exitCode: 1 }, MAX_RESTARTS - 1).kind, "start");
    const step = planStep(vm("Running"), { state: "stopped", exitCode: 1 }, MAX_RESTARTS);
    assert.deepEqual(step.kind === "fail" && step.reason, FailureReason.WorkloadExited);
  });
});
