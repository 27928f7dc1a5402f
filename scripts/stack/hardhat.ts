import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { rpcReady, spawnChild, stopGroup, waitUntil, type StackChild } from "./processes.ts";

const require = createRequire(import.meta.url);
/** Hardhat's CLI entry, run with this process's Node rather than through npx (which leaves a child behind). */
export const HARDHAT_CLI = join(dirname(require.resolve("hardhat/package.json")), "dist/src/cli.js");
export const PROJECT_ROOT = join(import.meta.dirname, "../..");

/** Starts `hardhat node` (network `devnode`: automine plus a block every second) on 127.0.0.1:`port`. */
export async function startHardhatNode(options: { port: number; logFile: string }): Promise<{ rpcUrl: string; child: StackChild; stop(): Promise<void> }> {
  const args = [HARDHAT_CLI, "node", "--network", "devnode", "--hostname", "127.0.0.1", "--port", String(options.port)];
  const child = spawnChild("chain", process.execPath, args, { logFile: options.logFile, cwd: PROJECT_ROOT });
  const rpcUrl = `http://127.0.0.1:${options.port}`;
  try {
    await waitUntil(`the Hardhat node at ${rpcUrl}`, () => rpcReady(rpcUrl), { timeoutMs: 60_000, child });
    await alignClock(rpcUrl);
  } catch (error) {
    await stopGroup(child.pid);
    throw error;
  }
  return { rpcUrl, child, stop: () => stopGroup(child.pid) };
}

/**
 * The node takes its genesis time while it starts and then counts from there, so its blocks run as many
 * seconds behind the wall clock as its start took (several on a busy machine). Setting the next block's
 * time to now moves every later block with it.
 */
async function alignClock(rpcUrl: string): Promise<void> {
  const now = Math.ceil(Date.now() / 1000);
  const response = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "evm_setNextBlockTimestamp", params: [now] }),
  });
  const body = (await response.json()) as { error?: { message: string } };
  if (body.error) throw new Error(`could not set the node's clock to the wall clock: ${body.error.message}`);
}

/** The JSON line scripts/deploy-local.ts prints. */
export type LocalDeployment = {
  chainId: number;
  rpcUrl: string;
  deployBlock: number;
  contracts: { creditToken: `0x${string}`; providerRegistry: `0x${string}`; vmRegistry: `0x${string}` };
  accounts: {
    deployer: `0x${string}`;
    providerOwner: `0x${string}`;
    providerOperator: `0x${string}`;
    providerOperatorKey: `0x${string}`;
    tenants: `0x${string}`[];
  };
};

/**
 * Deploys every contract with the Ignition module and sets up the demo accounts
 * on the node at `rpcUrl`, through the same script `npm start` uses.
 */
export async function deployLocal(rpcUrl: string, env: NodeJS.ProcessEnv = {}): Promise<LocalDeployment> {
  const { stdout } = await promisify(execFile)(process.execPath, [HARDHAT_CLI, "run", "--network", "localhost", "scripts/deploy-local.ts"], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env, NOVACRON_RPC_URL: rpcUrl },
    maxBuffer: 16 * 1024 * 1024,
  });
  const line = stdout.split("\n").find((l) => l.startsWith("{") && l.includes('"deployed"'));
  if (!line) throw new Error(`scripts/deploy-local.ts printed no deployment line:\n${stdout}`);
  return JSON.parse(line) as LocalDeployment;
}
