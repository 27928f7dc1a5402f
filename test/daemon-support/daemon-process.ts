// The daemon as a provider runs it: bin/novacron-daemon.js in a process of its own, pointed at a test
// stack, so a test can kill -9 it at any instant and start it again on the same data directory.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { destroyAllWorkloads } from "../../offchain-daemon/src/drivers/process.ts";
import { PROJECT_ROOT } from "../../scripts/stack/hardhat.ts";
import { sleep, spawnChild, stopGroup, type StackChild } from "../../scripts/stack/processes.ts";
import { freePort, type TestStack } from "./stack.ts";

const DAEMON_BIN = join(PROJECT_ROOT, "offchain-daemon/bin/novacron-daemon.js");

export type DaemonProcess = Awaited<ReturnType<typeof createDaemonProcess>>;

/**
 * One daemon data directory and config; `start()` runs a process on them and
 * resolves once its /healthz answers 200. `overrides` are merged into the stack's
 * daemon config (e.g. another `rpcUrl` to go through a proxy).
 */
export async function createDaemonProcess(stack: TestStack, name: string, overrides: Record<string, unknown> = {}) {
  const dir = join(stack.dir, name);
  mkdirSync(dir, { recursive: true });
  const apiUrl = `http://127.0.0.1:${await freePort()}`;
  const configFile = stack.writeDaemonConfig(dir, { api: { host: "127.0.0.1", port: Number(new URL(apiUrl).port) }, ...overrides });
  const logFile = join(dir, "daemon.log");
  let child: StackChild | undefined;
  let starts = 0;

  const healthy = async () => (await fetch(`${apiUrl}/healthz`, { signal: AbortSignal.timeout(1000) })).status === 200;

  const daemon = {
    dir,
    apiUrl,
    logFile,
    /** The workloads' root: one directory per VM. */
    vmsDir: join(dir, "vms"),
    get pid() {
      return child?.pid;
    },
    /** How many processes were started so far. */
    get starts() {
      return starts;
    },

    /** Starts a process without waiting for it to serve (a kill may come at any point of its start). */
    spawn(): StackChild {
      if (child) throw new Error(`daemon ${name} is already running (pid ${child.pid})`);
      starts++;
      child = spawnChild(`daemon ${name}`, process.execPath, [DAEMON_BIN, "--config", configFile], { logFile, cwd: PROJECT_ROOT });
      return child;
    },

    /** Starts a process and waits until its /healthz answers 200; fails with the log's tail if it exits first. */
    async start(timeoutMs = 60_000): Promise<void> {
      const started = daemon.spawn();
      await daemon.waitHealthy(timeoutMs, started);
    },

    async waitHealthy(timeoutMs: number, started = child): Promise<void> {
      let exited: number | string | undefined;
      void started?.exited.then((code) => (exited = code));
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (exited !== undefined) throw new Error(`daemon ${name} exited (${exited}) before serving:\n${daemon.logTail()}`);
        if (await healthy().catch(() => false)) return;
        await sleep(100);
      }
      throw new Error(`daemon ${name} did not answer /healthz with 200 within ${timeoutMs} ms:\n${daemon.logTail()}`);
    },

    /** True while the current process has not exited. */
    running(): boolean {
      return child !== undefined && child.child.exitCode === null && child.child.signalCode === null;
    },

    /** kill -9 of the daemon's own pid (its workloads lead their own process groups and live on). */
    async kill(): Promise<void> {
      const victim = child;
      if (!victim) return;
      child = undefined;
      try {
        process.kill(victim.pid, "SIGKILL");
      } catch {
        // it had already exited; `exited` settles either way
      }
      await victim.exited;
    },

    /** SIGSTOP / SIGCONT: freezes the daemon where it is, to hold it still while a test moves the chain. */
    pause(): void {
      if (child) process.kill(child.pid, "SIGSTOP");
    },
    resume(): void {
      if (child) process.kill(child.pid, "SIGCONT");
    },

    /** SIGTERM and wait (SIGKILL after 10 s): a clean shutdown. */
    async stop(): Promise<void> {
      const victim = child;
      child = undefined;
      if (victim) await stopGroup(victim.pid);
    },

    /** Stops the daemon and ends every workload it left, as the test owns them. */
    async dispose(): Promise<void> {
      await daemon.stop();
      await destroyAllWorkloads(daemon.vmsDir, pino({ level: "silent" }));
    },

    logTail(lines = 40): string {
      try {
        return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
      } catch {
        return "(no log)";
      }
    },
  };
  return daemon;
}
