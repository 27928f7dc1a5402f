// kill -9 of the real daemon process at seeded random points of VM lifecycles: after each restart
// every lease converges, no VM ever has two workloads, none is left behind, and every report is
// on-chain exactly once. The seed is logged; NOVACRON_KILL_SEED=<seed> replays the same kill points.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createDaemonProcess, type DaemonProcess } from "../../test/daemon-support/daemon-process.ts";
import { runKillTrials } from "../../test/daemon-support/kill-trials.ts";
import { startTestStack, type TestStack } from "../../test/daemon-support/stack.ts";

const TRIALS = 20;

let stack: TestStack;
let daemon: DaemonProcess;

before(async () => {
  stack = await startTestStack("kill");
  daemon = await createDaemonProcess(stack, "daemon");
  await daemon.start();
});

after(async () => {
  await daemon?.dispose();
  await stack?.stop();
});

test(`kill -9 at ${TRIALS} random points of request, provision, run, stop and terminate: every lease converges, no duplicate, no orphan, no lost or doubled report`, { timeout: 240_000 }, async (t) => {
  const seed = Number(process.env.NOVACRON_KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.diagnostic(`seed ${seed} (NOVACRON_KILL_SEED=${seed} replays it)`);
  const result = await runKillTrials(stack, daemon, { trials: TRIALS, seed, lanes: 4, log: (line) => t.diagnostic(line) });
  t.diagnostic(JSON.stringify({ ...result, failures: undefined }));
  assert.deepEqual(result.failures, [], `seed ${seed}; daemon log tail:\n${daemon.logTail()}`);
  assert.equal(result.converged, TRIALS);
  assert.equal(result.duplicates, 0);
  assert.equal(result.orphans, 0);
});
