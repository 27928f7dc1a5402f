import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { connect } from "node:net";

/** A long-running child in its own process group, its output going to a log file. */
export type StackChild = {
  name: string;
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or signal name) when the child ends. */
  exited: Promise<number | string>;
  child: ChildProcess;
};

/**
 * Starts `command` detached (its own process group, so stopping it also stops
 * what it spawned, e.g. npx's inner node) with stdout and stderr appended to
 * `logFile`. Output goes straight to the file, not through this process, so the
 * child survives and keeps logging even if the launcher dies.
 */
export function spawnChild(name: string, command: string, args: string[], options: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string }): StackChild {
  const fd = openSync(options.logFile, "a");
  const child = spawn(command, args, { detached: true, stdio: ["ignore", fd, fd], env: options.env ?? process.env, cwd: options.cwd });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
  return { name, pid: child.pid, logFile: options.logFile, exited, child };
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to the child's whole process group, then SIGKILL after `timeoutMs`. */
export async function stopGroup(pgid: number, timeoutMs = 10_000): Promise<void> {
  if (!groupAlive(pgid)) return;
  try {
    process.kill(-pgid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(50);
  if (groupAlive(pgid)) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // already gone
    }
    while (groupAlive(pgid)) await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `probe` until it resolves true. Rejects after `timeoutMs`, or as soon as
 * `child` exits, naming its log file so the user knows where to look.
 */
export async function waitUntil(what: string, probe: () => Promise<boolean>, options: { timeoutMs: number; child?: StackChild }): Promise<void> {
  let childEnded: number | string | undefined;
  void options.child?.exited.then((code) => (childEnded = code));
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    if (childEnded !== undefined) throw new Error(`${options.child!.name} exited (${childEnded}) before ${what}; see ${options.child!.logFile}`);
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${options.child ? `; see ${options.child.logFile}` : ""}`);
}

/** True when something accepts TCP connections on host:port. */
export function portInUse(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/** True when a JSON-RPC node answers `eth_chainId` at `url`. */
export async function rpcReady(url: string): Promise<boolean> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
  });
  return response.ok && typeof ((await response.json()) as { result?: unknown }).result === "string";
}
