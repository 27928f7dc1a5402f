import type { ReportSender } from "../chain/sender.ts";

export type DaemonHealthParameters = {
  /** When the log sync last reached the chain head (ms since the epoch). */
  lastSyncAt: () => number;
  pollIntervalMs: number;
  sender: Pick<ReportSender, "fault">;
};

/**
 * What GET /healthz answers: healthy while the chain is followed and reports
 * go through. `detail` names each reason it is not.
 */
export function daemonHealth({ lastSyncAt, pollIntervalMs, sender }: DaemonHealthParameters) {
  return () => {
    const lagMs = Date.now() - lastSyncAt();
    const halted = sender.fault();
    const ok = lagMs < Math.max(10 * pollIntervalMs, 15_000) && halted === undefined;
    return { ok, detail: { last_sync_ms_ago: lagMs, reporting_halted: halted } };
  };
}
