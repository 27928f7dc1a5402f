// `npm run bench:latency`: time from a VM request being mined to the provider's Running report
// being mined, through the real stack (Hardhat node with 1 s interval mining, IPFS over the Kubo
// RPC API, the daemon with confirmations = 1, a real workload process). Prints a JSON summary
// and writes bench/results/latency.json.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { parseUnits } from "viem";
import { loadConfig } from "../offchain-daemon/src/config.ts";
import { destroyAllWorkloads } from "../offchain-daemon/src/drivers/process.ts";
import { startService } from "../offchain-daemon/src/service.ts";
import { startTestStack } from "../test/daemon-support/stack.ts";

const RUNS = Number(process.env.RUNS ?? 10);
const hello = JSON.parse(readFileSync(new URL("../examples/hello.json", import.meta.url), "utf8"));

const stack = await startTestStack("bench-latency");
const daemonDir = join(stack.dir, "daemon");
mkdirSync(daemonDir);
const confirmations = Number(process.env.CONFIRMATIONS ?? 1);
const service = await startService(loadConfig(stack.writeDaemonConfig(daemonDir, { confirmations, pollIntervalMs: 250 }), {}), pino({ level: "warn" }));
const samples: number[] = [];
try {
  const digest = await stack.publish(hello);
  for (let i = 0; i < RUNS; i++) {
    const vmId = await stack.requestVm(digest, hello.resources, parseUnits("10", 18));
    const minedAt = Date.now(); // requestVm returns once the request's receipt is in
    await stack.waitForState(vmId, "Running", 60_000);
    samples.push(Date.now() - minedAt);
    await stack.tenantCall("terminateVm", vmId);
  }
} finally {
  await service.stop();
  await destroyAllWorkloads(join(daemonDir, "vms"), pino({ level: "silent" }));
  await stack.stop();
}
samples.sort((a, b) => a - b);
const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
const result = { runs: RUNS, confirmations, pollIntervalMs: 250, blockIntervalMs: 1000, medianMs: at(0.5), p95Ms: at(0.95), minMs: samples[0], maxMs: samples.at(-1) };
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/latency.json", import.meta.url), JSON.stringify(result, null, 2) + "\n");
console.log(JSON.stringify(result));
