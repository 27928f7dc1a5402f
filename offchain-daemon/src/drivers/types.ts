import type { Manifest } from "../manifest/schema.ts";

/** What a driver observes about one VM's workload. */
export type DriverState =
  /** Nothing exists for this VM (never created, or destroyed). */
  | "absent"
  /** Created (work directory, spec) but not running: never started, stopped, or exited. */
  | "stopped"
  /** The workload is running. */
  | "running";

export interface DriverStatus {
  state: DriverState;
  /** OS process id (process driver) or hypervisor pid, when running. */
  pid?: number;
  /** Exit code of the last run, when it ended on its own. */
  exitCode?: number | null;
  /** Where the workload listens, e.g. "http://127.0.0.1:40123", when known. */
  endpoint?: string;
}

/**
 * One interface for every way of running a VM (local process, QEMU, libvirt,
 * Kubernetes). Every method is idempotent: the reconciler may call it again
 * after a crash without knowing whether the first call took effect, and a
 * second call must never create a second workload.
 */
export interface Driver {
  readonly name: string;
  /** Prepares the VM (work directory, spec) without starting it. */
  create(vmId: bigint, manifest: Manifest): Promise<void>;
  /** Starts a created VM; a no-op when it already runs. */
  start(vmId: bigint): Promise<void>;
  /** Stops the VM's workload and everything it spawned; keeps its data. */
  stop(vmId: bigint): Promise<void>;
  /** Stops the VM and deletes everything the driver holds for it. */
  destroy(vmId: bigint): Promise<void>;
  status(vmId: bigint): Promise<DriverStatus>;
  /** Every VM the driver holds anything for, so orphans can be found. */
  list(): Promise<bigint[]>;
  /** Releases driver resources; running workloads keep running. */
  close(): Promise<void>;
}

export class DriverError extends Error {
  override readonly name = "DriverError";
  readonly vmId: bigint;
  constructor(vmId: bigint, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.vmId = vmId;
  }
}
