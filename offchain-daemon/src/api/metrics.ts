import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** The daemon's Prometheus metrics, in their own registry (never prom-client's global one). */
export interface Metrics {
  registry: Registry;
  /** Latest block number the RPC reported. */
  chainHead: Gauge;
  /** Block up to which logs are applied; chain head minus this is the daemon's lag. */
  checkpointBlock: Gauge;
  /** VMs by driver state ("running", "stopped", ...). */
  vms: Gauge<"state">;
  /** Reconcile passes by result ("ok", "error", ...). */
  reconcileTotal: Counter<"result">;
  reconcileDuration: Histogram;
  /** Transactions by action ("reportRunning", ...) and outcome ("mined", "reverted", ...). */
  txTotal: Counter<"action" | "outcome">;
  reorgsTotal: Counter;
}

/**
 * Builds a fresh registry with Node's default process metrics and the
 * daemon's own. A fresh registry per call lets tests and several daemons in
 * one process each have their own.
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    chainHead: new Gauge({ name: "novacron_chain_head_block", help: "Latest block number reported by the RPC node.", registers }),
    checkpointBlock: new Gauge({
      name: "novacron_checkpoint_block",
      help: "Block number up to which chain logs have been applied.",
      registers,
    }),
    vms: new Gauge({ name: "novacron_vms", help: "VMs this provider runs, by driver state.", labelNames: ["state"], registers }),
    reconcileTotal: new Counter({
      name: "novacron_reconcile_total",
      help: "Reconcile passes over one VM, by result.",
      labelNames: ["result"],
      registers,
    }),
    reconcileDuration: new Histogram({
      name: "novacron_reconcile_duration_seconds",
      help: "Time to reconcile one VM, including any manifest fetch and workload start.",
      // A pass is milliseconds when nothing changes and up to the manifest fetch timeout when it provisions.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    txTotal: new Counter({
      name: "novacron_tx_total",
      help: "Transactions sent by the daemon, by action and outcome.",
      labelNames: ["action", "outcome"],
      registers,
    }),
    reorgsTotal: new Counter({ name: "novacron_reorgs_total", help: "Chain reorganisations detected.", registers }),
  };
}
