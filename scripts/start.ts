// `npm start`: the whole local stack on 127.0.0.1 — a Hardhat node, every contract deployed with
// Ignition, demo accounts funded and a provider registered, an IPFS node, one provider daemon.
// Each start begins from a fresh chain and a fresh data directory; Ctrl-C stops everything,
// including the workloads the daemon started (they belong to a chain that is about to vanish).
// A daemon that crashes is restarted (with backoff) and keeps the chain, IPFS and its workloads, as a
// provider's service manager would; the chain or IPFS ending ends the stack, since their state is gone.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import pino from "pino";
import { destroyAllWorkloads } from "../offchain-daemon/src/drivers/process.ts";
import { encryptKeystore } from "../offchain-daemon/src/keystore.ts";
import { deployLocal, PROJECT_ROOT, startHardhatNode } from "./stack/hardhat.ts";
import { portInUse, spawnChild, stopGroup, waitUntil, type StackChild } from "./stack/processes.ts";
import { DAEMON_RESTART_POLICY, supervise } from "./stack/restart.ts";

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

/** The stack's long-running parts in start order; the daemon's current process changes when it restarts. */
const parts: { name: string; current: () => StackChild }[] = [];
let shuttingDown = false;

async function shutDown(code: number): Promise<never> {
  if (!shuttingDown) {
    shuttingDown = true;
    console.log("\nstopping…");
    // Daemon first so it does not react to the others going away, then its workloads, then IPFS and the chain.
    for (const part of [...parts].reverse()) {
      await stopGroup(part.current().pid);
      if (part.name === "daemon") {
        const destroyed = await destroyWorkloads();
        if (destroyed > 0) console.log(`stopped ${destroyed} VM workload(s)`);
      }
    }
    rmSync(pidsFile, { force: true });
    console.log("stopped");
  }
  process.exit(code);
}

/** What the next `npm start` reads to end a run that was killed instead of stopped. */
function writePids(): void {
  writeFileSync(pidsFile, JSON.stringify(parts.map((part) => part.current().pid)));
}

/** A part whose state a restart would lose: when it ends, the stack ends. */
function trackEssential(child: StackChild): StackChild {
  parts.push({ name: child.name, current: () => child });
  writePids();
  void child.exited.then((exit) => {
    if (shuttingDown) return;
    console.error(`${child.name} exited unexpectedly (${exit}); see ${child.logFile}. Stopping the stack: its state is gone.`);
    void shutDown(1);
  });
  return child;
}

/**
 * The demo operator's key as a provider keeps it: in an encrypted keystore, its password in a file only this
 * user can read (the key is Hardhat's public account #2, so the encryption protects nothing here, but the
 * daemon runs exactly as it would in production).
 */
function writeDemoKeystore(dir: string, key: `0x${string}`): { file: string; passwordFile: string } {
  const password = randomBytes(24).toString("base64url");
  const file = join(dir, "operator-keystore.json");
  const passwordFile = join(dir, "operator-keystore.password");
  writeFileSync(passwordFile, password, { mode: 0o600 });
  writeFileSync(file, JSON.stringify(encryptKeystore(key, password), null, 2), { mode: 0o600 });
  return { file, passwordFile };
}

/**
 * The daemon reads NOVACRON_* variables over its config file, and the launcher's own variables share those
 * names with other meanings (NOVACRON_DATA_DIR is the whole stack's directory, not the daemon's), so the
 * config file written above is all the daemon gets; only the log level passes through.
 */
function daemonEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("NOVACRON_") || name === "NOVACRON_LOG_LEVEL"));
}

const DEFAULT_RPC_URL = "http://127.0.0.1:8545";
const DEFAULT_IPFS_URL = "http://127.0.0.1:5001";

/** The banner's example, with the variables the tasks need when the stack runs on other ports. */
function tryCommand(rpcUrl: string, ipfsUrl: string): string {
  const env = [rpcUrl !== DEFAULT_RPC_URL ? `NOVACRON_RPC_URL=${rpcUrl} ` : "", ipfsUrl !== DEFAULT_IPFS_URL ? `NOVACRON_IPFS_URL=${ipfsUrl} ` : ""].join("");
  return `${env}npx hardhat vm:request --network localhost --manifest examples/hello.json`;
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
  trackEssential(chain.child);

  console.log("deploying contracts with Ignition and setting up demo accounts…");
  const deployment = await deployLocal(chain.rpcUrl);

  console.log("starting the IPFS node…");
  const ipfsUrl = `http://127.0.0.1:${ports.ipfs}`;
  const ipfs = trackEssential(
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
        operatorKeystore: writeDemoKeystore(daemonDir, deployment.accounts.providerOperatorKey),
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
  const daemon = supervise({
    start: () =>
      spawnChild("daemon", process.execPath, [join(PROJECT_ROOT, "offchain-daemon/bin/novacron-daemon.js"), "--config", configFile], {
        logFile: join(logsDir, "daemon.log"),
        env: daemonEnv(),
      }),
    policy: DAEMON_RESTART_POLICY,
    stopping: () => shuttingDown,
    onStart: writePids,
    onExit: ({ exit, attempt, delayMs, logFile }) =>
      console.error(
        `daemon exited (${exit}); restarting it in ${delayMs / 1000} s (crash ${attempt} in a row; see ${logFile}). The chain, IPFS and the VM workloads keep running.`,
      ),
  });
  parts.push({ name: "daemon", current: daemon.current });
  writePids();
  await waitUntil("the provider daemon's /healthz", async () => (await fetch(`${apiUrl}/healthz`)).ok, { timeoutMs: 60_000, child: daemon.current() });

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

  try:  ${tryCommand(chain.rpcUrl, ipfsUrl)}
ready`);
}

main().catch(async (error: unknown) => {
  console.error(`npm start failed: ${error instanceof Error ? error.message : String(error)}`);
  await shutDown(1);
});
