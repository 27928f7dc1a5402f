import type { ReportSender } from "../chain/sender.ts";

export type DaemonHealthParameters = {
  /** When the log sync last reached the chain head (ms since the epoch). */
  lastSyncAt: () => number;
  pollIntervalMs: number;
  sender: Pick<ReportSender, "fault" | "degraded">;
};

/**
 * What GET /healthz answers: healthy while the chain is followed and reports
 * go through. `detail` names each reason it is not: `reporting_halted` (no
 * report is sent until a restart with the right key or RPC) or
 * `reporting_degraded` (a report is stuck, dropped or cannot be broadcast; the
 * daemon keeps at it, and health comes back once it mines).
 */
export function daemonHealth({ lastSyncAt, pollIntervalMs, sender }: DaemonHealthParameters) {
  return () => {
    const lagMs = Date.now() - lastSyncAt();
    const halted = sender.fault();
    const degraded = sender.degraded();
    const ok = lagMs < Math.max(10 * pollIntervalMs, 15_000) && halted === undefined && degraded === undefined;
    return { ok, detail: { last_sync_ms_ago: lagMs, reporting_halted: halted, reporting_degraded: degraded } };
  };
}
