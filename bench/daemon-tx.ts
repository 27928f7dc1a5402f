// txPerSecond: status reports from one operator key through the daemon's real report sender
// (simulate against pending, sign, journal, broadcast, await the receipt) on a local Hardhat node
// with automine, many in flight at once. Imported by bench/daemon.ts; run alone it prints the result:
//   node bench/daemon-tx.ts            (REPORTS=500 IN_FLIGHT=64 by default)
import { mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { http, parseUnits } from "viem";
import { createChainClients } from "../offchain-daemon/src/chain/clients.ts";
import { createReportSender } from "../offchain-daemon/src/chain/sender.ts";
import { Store } from "../offchain-daemon/src/store/store.ts";
import { startTestStack, type TestStack } from "../test/daemon-support/stack.ts";

export type TxPerSecondResult = { reports: number; seconds: number; txPerSecond: number };

export type TxPerSecondOptions = {
  /** How many reports (one VM each, Requested -> Provisioning). Default 500. */
  reports?: number;
  /** How many reports are in flight at once, as a reconciler with that concurrency would send them. Default 64. */
  inFlight?: number;
  /** A running stack to use (its chain gains the VMs); default: one started and stopped here. */
  stack?: TestStack;
};

const hello = JSON.parse(readFileSync(new URL("../examples/hello.json", import.meta.url), "utf8"));

/**
 * Requests `reports` VMs from the demo provider, then times sending a Provisioning report for
 * each through one sender, `inFlight` at a time, from the first simulation to the last receipt.
 */
export async function measureTxPerSecond(options: TxPerSecondOptions = {}): Promise<TxPerSecondResult> {
  const reports = options.reports ?? 500;
  const inFlight = options.inFlight ?? 64;
  const stack = options.stack ?? (await startTestStack("bench-tx"));
  const store = Store.open(join(mkdtempSync(join(stack.dir, "bench-tx-")), "daemon.sqlite"));
  const clients = createChainClients({
    rpcUrl: stack.rpcUrl,
    chainId: stack.deployment.chainId,
    operatorKey: stack.deployment.accounts.providerOperatorKey,
    pollingInterval: 50,
    transport: http(stack.rpcUrl, { retryCount: 3, timeout: 15_000 }),
  });
  const sender = createReportSender({ ...clients, store, vmRegistry: stack.deployment.contracts.vmRegistry, logger: pino({ level: "warn" }) });
  try {
    await stack.setCapacity({ vcpu: 1_000_000, memoryMiB: 1_000_000_000, diskGiB: 1_000_000 });
    const digest = await stack.publish(hello);
    const deposit = parseUnits("1", 18);
    await stack.approveDeposit(deposit * BigInt(reports));
    const vmIds: bigint[] = [];
    for (let i = 0; i < reports; i++) vmIds.push(await stack.submitRequestVm(digest, hello.resources, deposit));
    await sender.recover();

    const started = performance.now();
    let next = 0;
    const outcomes: string[] = [];
    await Promise.all(
      Array.from({ length: Math.min(inFlight, reports) }, async () => {
        while (next < vmIds.length) outcomes.push(await sender.send(vmIds[next++]!, "reportProvisioning"));
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const mined = outcomes.filter((outcome) => outcome === "mined").length;
    if (mined !== reports) throw new Error(`${reports - mined} of ${reports} reports did not mine: ${[...new Set(outcomes)].join(", ")}`);
    return { reports, seconds: Number(seconds.toFixed(3)), txPerSecond: Number((reports / seconds).toFixed(1)) };
  } finally {
    sender.close();
    store.close();
    if (options.stack === undefined) await stack.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await measureTxPerSecond({
    reports: Number(process.env.REPORTS ?? 500),
    inFlight: Number(process.env.IN_FLIGHT ?? 64),
  });
  console.log(JSON.stringify(result));
}
