// `npm start`: the whole local stack on 127.0.0.1 — a Hardhat node, every contract deployed with
// Ignition, demo accounts funded and a provider registered, an IPFS node, one provider daemon.
// Each start begins from a fresh chain and a fresh data directory; Ctrl-C stops everything,
// including the workloads the daemon started (they belong to a chain that is about to vanish).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import pino from "pino";
import { destroyAllWorkloads } from "../offchain-daemon/src/drivers/process.ts";
import { deployLocal, PROJECT_ROOT, startHardhatNode } from "./stack/hardhat.ts";
import { portInUse, spawnChild, stopGroup, waitUntil, type StackChild } from "./stack/processes.ts";

const ports = {
  rpc: Number(process.env.NOVACRON_RPC_PORT ?? 8545),
  ipfs: Number(process.env.NOVACRON_IPFS_PORT ?? 5001),
  api: Number(process.env.NOVACRON_API_PORT ?? 9464),
};
const dataDir = resolve(process.env.NOVACRON_DATA_DIR ?? join(PROJECT_ROOT, "data"));
const logsDir = join(dataDir, "logs");
const pidsFile = join(dataDir, "stack-pids.json");
const vmsDir = join(dataDir, "daemon", "vms");
const quiet = pino({ level: "silent" });

const destroyWorkloads = async () => (existsSync(vmsDir) ? destroyAllWorkloads(vmsDir, quiet) : 0);

/** A previous start that was killed (not Ctrl-C'd) leaves children and workloads behind: end them first. */
async function cleanUpPreviousRun(): Promise<void> {
  if (existsSync(pidsFile)) {
    const pids = JSON.parse(readFileSync(pidsFile, "utf8")) as number[];
    for (const pid of pids.reverse()) await stopGroup(pid, 5000);
  }
  await destroyWorkloads();
}

const children: StackChild[] = [];
let shuttingDown = false;

async function shutDown(code: number): Promise<never> {
  if (!shuttingDown) {
    shuttingDown = true;
    console.log("\nstopping…");
    // Daemon first so it does not react to the others going away, then its workloads, then IPFS and the chain.
    for (const child of [...children].reverse()) {
      await stopGroup(child.pid);
      if (child.name === "daemon") {
        const destroyed = await destroyWorkloads();
        if (destroyed > 0) console.log(`stopped ${destroyed} VM workload(s)`);
      }
    }
    rmSync(pidsFile, { force: true });
    console.log("stopped");
  }
  process.exit(code);
}

function track(child: StackChild): StackChild {
  children.push(child);
  writeFileSync(pidsFile, JSON.stringify(children.map((c) => c.pid)));
  void child.exited.then((exit) => {
    if (shuttingDown) return;
    console.error(`${child.name} exited unexpectedly (${exit}); see ${child.logFile}`);
    void shutDown(1);
  });
  return child;
}

async function main(): Promise<void> {
  // Ctrl-C also ends whatever reads our output (a pipe, `tee`); a failed write must not cut the shutdown short.
  process.stdout.on("error", () => undefined);
  process.stderr.on("error", () => undefined);
  process.on("SIGINT", () => void shutDown(0));
  process.on("SIGTERM", () => void shutDown(0));

  await cleanUpPreviousRun();
  for (const [name, port] of Object.entries(ports)) {
    if (await portInUse(port)) {
      throw new Error(`port ${port} (${name}) on 127.0.0.1 is already in use. Is another \`npm start\` running? Stop it, or set NOVACRON_${name.toUpperCase()}_PORT.`);
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(logsDir, { recursive: true });

  console.log("starting the Hardhat node…");
  const chain = await startHardhatNode({ port: ports.rpc, logFile: join(logsDir, "chain.log") });
  track(chain.child);

  console.log("deploying contracts with Ignition and setting up demo accounts…");
  const deployment = await deployLocal(chain.rpcUrl);

  console.log("starting the IPFS node…");
  const ipfsUrl = `http://127.0.0.1:${ports.ipfs}`;
  const ipfs = track(
    spawnChild("ipfs", process.execPath, [join(PROJECT_ROOT, "scripts/ipfs-node.ts"), "--dir", join(dataDir, "ipfs"), "--port", String(ports.ipfs)], {
      logFile: join(logsDir, "ipfs.log"),
    }),
  );
  await waitUntil("the IPFS node", async () => (await fetch(`${ipfsUrl}/api/v0/id`, { method: "POST" })).ok, { timeoutMs: 30_000, child: ipfs });

  console.log("starting the provider daemon…");
  const daemonDir = join(dataDir, "daemon");
  mkdirSync(daemonDir, { recursive: true });
  const configFile = join(daemonDir, "config.json");
  writeFileSync(
    configFile,
    JSON.stringify(
      {
        rpcUrl: chain.rpcUrl,
        chainId: deployment.chainId,
        operatorKey: deployment.accounts.providerOperatorKey,
        provider: deployment.accounts.providerOwner,
        contracts: { vmRegistry: deployment.contracts.vmRegistry, providerRegistry: deployment.contracts.providerRegistry },
        startBlock: deployment.deployBlock,
        dataDir: daemonDir,
        confirmations: 1,
        pollIntervalMs: 500,
        ipfs: { mode: "kubo", url: ipfsUrl },
        api: { host: "127.0.0.1", port: ports.api },
      },
      null,
      2,
    ),
  );
  const apiUrl = `http://127.0.0.1:${ports.api}`;
  const daemon = track(
    spawnChild("daemon", process.execPath, [join(PROJECT_ROOT, "offchain-daemon/bin/novacron-daemon.js"), "--config", configFile], {
      logFile: join(logsDir, "daemon.log"),
    }),
  );
  await waitUntil("the provider daemon's /healthz", async () => (await fetch(`${apiUrl}/healthz`)).ok, { timeoutMs: 60_000, child: daemon });

  const [tenant1, tenant2] = deployment.accounts.tenants;
  console.log(`
NovaCron DCP local stack
  chain RPC        ${chain.rpcUrl}   (chain id ${deployment.chainId})
  CreditToken      ${deployment.contracts.creditToken}
  ProviderRegistry ${deployment.contracts.providerRegistry}
  VmRegistry       ${deployment.contracts.vmRegistry}
  IPFS (Kubo RPC)  ${ipfsUrl}
  daemon API       ${apiUrl}/vms   ${apiUrl}/metrics   ${apiUrl}/healthz
  demo provider    ${deployment.accounts.providerOwner}  (operator ${deployment.accounts.providerOperator})
  demo tenants     ${tenant1}  ${tenant2 ?? ""}  (Hardhat's public dev accounts #3 and #4)
  data directory   ${dataDir}   (logs in ${logsDir})

  try:  npx hardhat vm:request --network localhost --manifest examples/hello.json
ready`);
}

main().catch(async (error: unknown) => {
  console.error(`npm start failed: ${error instanceof Error ? error.message : String(error)}`);
  await shutDown(1);
});
