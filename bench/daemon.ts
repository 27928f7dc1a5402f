// `npm run bench:daemon`: the provider daemon's catch-up speed against raw eth_getLogs, its kill -9
// trials and its report sender's sustained rate (bench/daemon-tx.ts), on one local Hardhat node with the contracts deployed. Writes bench/results/daemon.json and
// the "## Daemon" section of docs/BENCHMARKS.md. TRIALS and EVENTS shrink a run for a quick look.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createDaemonProcess } from "../test/daemon-support/daemon-process.ts";
import { runKillTrials } from "../test/daemon-support/kill-trials.ts";
import { startTestStack } from "../test/daemon-support/stack.ts";
import { PROJECT_ROOT } from "../scripts/stack/hardhat.ts";
import { measureCatchUp } from "./daemon/catch-up.ts";
import { measureTxPerSecond } from "./daemon-tx.ts";
import { generateEventHistory } from "./daemon/event-history.ts";
import { writeDocsSection } from "./lib/docs-section.ts";
import { docsSection, type DaemonBenchResult } from "./daemon/report.ts";

const TRIALS = Number(process.env.TRIALS ?? 100);
const EVENTS = Number(process.env.EVENTS ?? 100_000);
const EVENTS_PER_VM = 5;
const log = (line: string) => console.error(line);

const RESULTS = join(PROJECT_ROOT, "bench/results/daemon.json");
const command = `npm run bench:daemon${process.argv.includes("--tx-only") ? " -- --tx-only" : ""}`;

/** The docs section shows full runs only; a TRIALS or EVENTS override is a quick look. */
function save(result: DaemonBenchResult): void {
  mkdirSync(join(PROJECT_ROOT, "bench/results"), { recursive: true });
  writeFileSync(RESULTS, JSON.stringify(result, null, 2) + "\n");
  if (TRIALS === 100 && EVENTS === 100_000) writeDocsSection(join(PROJECT_ROOT, "docs/BENCHMARKS.md"), docsSection(result));
}

// `--tx-only`: measure the report sender again (its own chain) and keep the last full run's other numbers.
if (process.argv.includes("--tx-only")) {
  const previous = JSON.parse(readFileSync(RESULTS, "utf8")) as DaemonBenchResult;
  const txPerSecond = { ...(await measureTxPerSecond()), measuredAt: new Date().toISOString(), command };
  save({ ...previous, txPerSecond });
  console.log(JSON.stringify(txPerSecond));
  process.exit(0);
}

const stack = await startTestStack("bench-daemon");
try {
  const seed = Number(process.env.NOVACRON_KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));
  log(`kill trials: ${TRIALS}, seed ${seed}`);
  const daemon = await createDaemonProcess(stack, "daemon");
  let kill;
  try {
    await daemon.start();
    kill = await runKillTrials(stack, daemon, { trials: TRIALS, seed, lanes: 4, log });
  } finally {
    await daemon.dispose();
  }
  log(JSON.stringify({ ...kill, failures: kill.failures.length }));

  // On the same chain, after the trials: VMs requested from the demo provider, one report each.
  const tx = { ...(await measureTxPerSecond({ stack })), measuredAt: new Date().toISOString(), command };

  // Last: the history replaces VmRegistry's code.
  await stack.publicClient.request({ method: "evm_setIntervalMining", params: [0] } as never);
  const history = await generateEventHistory(stack, { vms: EVENTS / EVENTS_PER_VM, perVm: EVENTS_PER_VM, vmsPerTx: 100, burialBlocks: 600 });
  log(`generated ${history.events} events in blocks ${history.fromBlock}-${history.toBlock} in ${history.generationMs} ms`);
  const catchUp = await measureCatchUp(stack, history);

  const result: DaemonBenchResult = {
    measuredAt: new Date().toISOString(),
    command,
    catchUp: { ...catchUp, vms: history.vms, generationMs: history.generationMs },
    catchUpRatio: catchUp.catchUpRatio,
    killTrials: kill,
    txPerSecond: tx,
  };
  save(result);
  console.log(JSON.stringify({ catchUpRatio: result.catchUpRatio, catchUp, killTrials: { trials: kill.trials, converged: kill.converged, duplicates: kill.duplicates, orphans: kill.orphans }, txPerSecond: result.txPerSecond.txPerSecond }, null, 2));
} finally {
  await stack.stop();
}
