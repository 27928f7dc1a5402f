// `npm run bench:daemon`: the provider daemon's catch-up speed against raw eth_getLogs and its kill -9
// trials, on one local Hardhat node with the contracts deployed. Writes bench/results/daemon.json and
// the "## Daemon" section of docs/BENCHMARKS.md. TRIALS and EVENTS shrink a run for a quick look.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createDaemonProcess } from "../offchain-daemon/testing/daemon-process.ts";
import { runKillTrials } from "../offchain-daemon/testing/kill-trials.ts";
import { startTestStack, type TestStack } from "../offchain-daemon/testing/stack.ts";
import { PROJECT_ROOT } from "../scripts/stack/hardhat.ts";
import { measureCatchUp } from "./daemon/catch-up.ts";
import { generateEventHistory } from "./daemon/event-history.ts";
import { writeDocsSection } from "./lib/docs-section.ts";
import { docsSection, type DaemonBenchResult } from "./daemon/report.ts";

const TRIALS = Number(process.env.TRIALS ?? 100);
const EVENTS = Number(process.env.EVENTS ?? 100_000);
const EVENTS_PER_VM = 5;
const log = (line: string) => console.error(line);

/**
 * txPerSecond is measured by bench/daemon-tx.ts, written with the sender's rewrite (issue 11, "Transactions at
 * speed"): it exports `measureTxPerSecond(stack)` resolving to `{ txPerSecond }`. Until that file exists the
 * result says so instead of measuring a sender that is about to change.
 */
async function txPerSecond(stack: TestStack): Promise<Pick<DaemonBenchResult, "txPerSecond" | "txPerSecondNote">> {
  const file = new URL("./daemon-tx.ts", import.meta.url);
  if (!existsSync(file)) return { txPerSecond: null, txPerSecondNote: "bench/daemon-tx.ts (the sender's benchmark) does not exist yet" };
  const { measureTxPerSecond } = (await import(file.href)) as { measureTxPerSecond: (stack: TestStack) => Promise<{ txPerSecond: number }> };
  return { txPerSecond: (await measureTxPerSecond(stack)).txPerSecond };
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

  const tx = await txPerSecond(stack);

  // Last: the history replaces VmRegistry's code.
  await stack.publicClient.request({ method: "evm_setIntervalMining", params: [0] } as never);
  const history = await generateEventHistory(stack, { vms: EVENTS / EVENTS_PER_VM, perVm: EVENTS_PER_VM, vmsPerTx: 100, burialBlocks: 600 });
  log(`generated ${history.events} events in blocks ${history.fromBlock}-${history.toBlock} in ${history.generationMs} ms`);
  const catchUp = await measureCatchUp(stack, history);

  const result: DaemonBenchResult = {
    measuredAt: new Date().toISOString(),
    command: "npm run bench:daemon",
    catchUp: { ...catchUp, vms: history.vms, generationMs: history.generationMs },
    catchUpRatio: catchUp.catchUpRatio,
    killTrials: kill,
    ...tx,
  };
  mkdirSync(join(PROJECT_ROOT, "bench/results"), { recursive: true });
  writeFileSync(join(PROJECT_ROOT, "bench/results/daemon.json"), JSON.stringify(result, null, 2) + "\n");
  if (TRIALS === 100 && EVENTS === 100_000) writeDocsSection(join(PROJECT_ROOT, "docs/BENCHMARKS.md"), docsSection(result));
  console.log(JSON.stringify({ catchUpRatio: result.catchUpRatio, catchUp, killTrials: { trials: kill.trials, converged: kill.converged, duplicates: kill.duplicates, orphans: kill.orphans }, txPerSecond: result.txPerSecond }, null, 2));
} finally {
  await stack.stop();
}
