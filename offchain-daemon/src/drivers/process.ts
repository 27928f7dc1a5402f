/**
 * The process driver runs a VM's workload as a local process. This is
 * process ISOLATION FOR DEVELOPMENT, not a security sandbox: the workload gets
 * its own process group (so stop reaches everything it spawned), a clean
 * environment (never the daemon's, which holds the operator key), its own
 * working directory and only commands the provider allowed. It still runs as
 * the daemon's user, sees the host's file system and network, has no CPU,
 * memory or disk limits, and a child that calls setsid() escapes the group.
 * Tenants who need isolation need the qemu driver.
 *
 * Each VM lives in `<rootDir>/<vmId>/`: spec.json (the manifest), state.json
 * (what was started: pid, start time, port), stdout.log and stderr.log
 * (appended), and work/ (the workload's cwd and HOME). state.json is what lets
 * a restarted daemon adopt workloads its previous run started instead of
 * starting them twice.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { z } from "zod";
import { ManifestSchema } from "../manifest/schema.ts";
import type { Manifest } from "../manifest/schema.ts";
import { listProcesses, readBootId, readEnviron, readStat } from "./procfs.ts";
import { DriverError } from "./types.ts";
import type { Driver, DriverStatus } from "./types.ts";

export interface ProcessDriverOptions {
  /** Directory holding one subdirectory per VM; created when missing. */
  rootDir: string;
  /** Manifest command name -> absolute executable; nothing else can be run. */
  allowedCommands: Record<string, string>;
  /** Grace period between SIGTERM and SIGKILL when stopping. */
  stopTimeoutMs: number;
  logger: Logger;
}

/** What state.json holds. Fields are optional so each write can say only what is true now. */
const StateSchema = z.object({
  /** Boot the pid belongs to; after a reboot every recorded pid is stale. */
  bootId: z.string(),
  /** Written just before spawning: a crash before the pid is recorded leaves this mark. */
  spawning: z.literal(true).optional(),
  pid: z.number().int().min(2).optional(),
  /** From /proc/<pid>/stat; null when the process was already reaped when read. */
  startTime: z.string().regex(/^\d+$/).nullable().optional(),
  /** The TCP port given as PORT; kept across restarts so the endpoint stays put. */
  port: z.number().int().min(1).max(65_535).optional(),
  startedAt: z.string().optional(),
  /** Set when the workload ended on its own: the code, or null when a signal killed it. */
  exitCode: z.number().int().nullable().optional(),
  exitSignal: z.string().nullable().optional(),
  endedAt: z.string().optional(),
});
type State = z.infer<typeof StateSchema>;

/** How long to wait for a group to vanish after SIGKILL before calling it stuck. */
const KILL_WAIT_MS = 5000;
const POLL_MS = 25;
const vmDirName = /^(0|[1-9]\d*)$/;

export function createProcessDriver(options: ProcessDriverOptions): Driver {
  const rootDir = resolve(options.rootDir);
  const { allowedCommands, stopTimeoutMs, logger } = options;
  const locks = new Map<string, Promise<unknown>>();
  let closed = false;
  let ownPgid: Promise<number> | undefined;

  const paths = (vmId: bigint) => {
    const dir = join(rootDir, vmId.toString());
    return {
      dir,
      spec: join(dir, "spec.json"),
      state: join(dir, "state.json"),
      stdout: join(dir, "stdout.log"),
      stderr: join(dir, "stderr.log"),
      work: join(dir, "work"),
    };
  };

  /** Runs `fn` after every earlier operation on the same VM has settled. */
  function serialized<T>(vmId: bigint, fn: () => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new DriverError(vmId, "the process driver is closed"));
    if (vmId < 0n) return Promise.reject(new DriverError(vmId, `VM id ${vmId} is negative`));
    const key = vmId.toString();
    const run = (locks.get(key) ?? Promise.resolve()).then(fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    locks.set(key, settled);
    void settled.then(() => {
      if (locks.get(key) === settled) locks.delete(key);
    });
    return run;
  }

  function resolveCommand(vmId: bigint, command: string): string {
    if (!Object.hasOwn(allowedCommands, command)) {
      const allowed = Object.keys(allowedCommands).sort().join(", ") || "(none)";
      throw new DriverError(vmId, `command ${command} is not allowed on this provider; allowed: ${allowed}`);
    }
    return allowedCommands[command]!;
  }

  async function readSpec(vmId: bigint): Promise<Manifest | undefined> {
    const file = paths(vmId).spec;
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    try {
      return ManifestSchema.parse(JSON.parse(text));
    } catch (error) {
      throw new DriverError(vmId, `${file} is not a valid manifest (edited by hand?); destroy and re-create the VM: ${(error as Error).message.split("\n")[0]}`, { cause: error });
    }
  }

  async function writeState(vmId: bigint, state: State): Promise<void> {
    const file = paths(vmId).state;
    // Rename is atomic: a crash leaves the old state or the new, never half of one.
    await writeFile(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
    await rename(`${file}.tmp`, file);
  }

  /**
   * Reads state.json. A spawning mark (or an unreadable file) means a previous
   * run may have started a process without recording it; such a process is
   * found by the markers in its environment and adopted, so it is never
   * started twice.
   */
  async function readState(vmId: bigint): Promise<State | undefined> {
    let text: string;
    try {
      text = await readFile(paths(vmId).state, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    const bootId = await readBootId();
    let parsed: State | undefined;
    try {
      parsed = StateSchema.parse(JSON.parse(text));
    } catch (error) {
      logger.warn({ msg: "state.json is unreadable; looking for the workload by its environment", vm_id: vmId, error: (error as Error).message });
    }
    if (parsed !== undefined && !(parsed.spawning && parsed.bootId === bootId)) return parsed;

    const found = await findByEnvironment(vmId);
    const recovered: State = { bootId, ...(parsed?.port === undefined ? {} : { port: parsed.port }) };
    if (found !== undefined) Object.assign(recovered, { pid: found.pgid, startTime: found.startTime });
    await writeState(vmId, recovered);
    logger.warn({
      msg: found ? "adopted a workload whose start was interrupted" : "cleared an interrupted start; no workload was running",
      vm_id: vmId,
      pid: found?.pgid,
    });
    return recovered;
  }

  async function findByEnvironment(vmId: bigint): Promise<{ pgid: number; startTime: string | null } | undefined> {
    const { work } = paths(vmId);
    const all = await listProcesses();
    for (const candidate of all.filter((entry) => entry.state !== "Z")) {
      const env = await readEnviron(candidate.pid);
      if (env?.get("NOVACRON_VM_ID") !== vmId.toString() || env.get("HOME") !== work) continue;
      // The leader may have exited (or be a zombie) while its children live on.
      const leader = all.find((entry) => entry.pid === candidate.pgid);
      return { pgid: candidate.pgid, startTime: leader?.startTime ?? null };
    }
    return undefined;
  }

  /**
   * True while the group started for `state` has a live member. The leader's
   * start time must match: a different process under the same pid means the
   * kernel reused it, which it does only after our whole group is gone.
   */
  async function groupAlive(state: State | undefined): Promise<boolean> {
    if (state?.pid === undefined || state.bootId !== (await readBootId())) return false;
    const pgid = state.pid;
    const leader = await readStat(pgid);
    if (leader !== undefined && leader.startTime !== state.startTime) return false;
    if (leader !== undefined && leader.state !== "Z") return true;
    // The leader exited; children it left in the group keep the workload alive.
    try {
      process.kill(-pgid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    }
    return (await listProcesses()).some((member) => member.pgid === pgid && member.state !== "Z");
  }

  async function signalGroup(vmId: bigint, pgid: number, signal: NodeJS.Signals): Promise<void> {
    // A corrupted state file must never make us signal init or our own group.
    ownPgid ??= readStat(process.pid).then((self) => self!.pgid);
    if (pgid <= 1 || pgid === process.pid || pgid === (await ownPgid)) {
      throw new DriverError(vmId, `refusing to signal process group ${pgid}: it is not a workload's group; check ${paths(vmId).state}`);
    }
    try {
      process.kill(-pgid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }

  async function waitUntilGone(state: State, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (await groupAlive(state)) {
      if (Date.now() >= deadline) return false;
      await sleep(POLL_MS);
    }
    return true;
  }

  async function stopLocked(vmId: bigint): Promise<void> {
    const state = await readState(vmId);
    if (state?.pid === undefined) return;
    const pgid = state.pid;
    if (await groupAlive(state)) {
      await signalGroup(vmId, pgid, "SIGTERM");
      if (!(await waitUntilGone(state, stopTimeoutMs))) {
        logger.warn({ msg: "workload outlived SIGTERM; sending SIGKILL", vm_id: vmId, pid: pgid, timeout_ms: stopTimeoutMs });
        await signalGroup(vmId, pgid, "SIGKILL");
        if (!(await waitUntilGone(state, KILL_WAIT_MS))) {
          throw new DriverError(vmId, `process group ${pgid} survived SIGKILL for ${KILL_WAIT_MS} ms; a process may be stuck in the kernel (see ps -g ${pgid})`);
        }
      }
      logger.info({ msg: "workload stopped", vm_id: vmId, pid: pgid });
    }
    // Forget the pid so it can never be signalled after the kernel reuses it;
    // keep the port for the next start and how the last run ended, if it ended on its own.
    const kept: State = { bootId: state.bootId };
    if (state.port !== undefined) kept.port = state.port;
    if (state.exitCode !== undefined) Object.assign(kept, { exitCode: state.exitCode, exitSignal: state.exitSignal, endedAt: state.endedAt });
    await writeState(vmId, kept);
  }

  async function freePort(preferred: number | undefined): Promise<number> {
    const listen = (port: number) =>
      new Promise<number>((resolvePort, reject) => {
        const server = createServer();
        server.once("error", reject);
        server.listen({ host: "127.0.0.1", port }, () => {
          const { port: bound } = server.address() as AddressInfo;
          server.close(() => resolvePort(bound));
        });
      });
    if (preferred !== undefined) {
      try {
        return await listen(preferred);
      } catch {
        // Taken by someone else since the last run: pick a new one.
      }
    }
    return listen(0);
  }

  async function startLocked(vmId: bigint): Promise<void> {
    const spec = await readSpec(vmId);
    if (spec === undefined) throw new DriverError(vmId, `VM ${vmId} has not been created; call create() first`);
    const previous = await readState(vmId);
    if (await groupAlive(previous)) return;

    const file = resolveCommand(vmId, spec.workload.command);
    const bootId = await readBootId();
    const port = spec.ports.length > 0 ? await freePort(previous?.port) : undefined;
    const portField = port === undefined ? {} : { port };
    const { stdout, stderr, work } = paths(vmId);
    const env: Record<string, string> = {
      ...spec.workload.env,
      // Set last so a manifest cannot move HOME: it is how a restarted driver recognises its workloads.
      ...(port === undefined ? {} : { PORT: String(port) }),
      NOVACRON_VM_ID: vmId.toString(),
      HOME: work,
      PATH: "/usr/bin:/bin",
    };

    await writeState(vmId, { bootId, spawning: true, ...portField });
    const out = await open(stdout, "a", 0o600);
    const err = await open(stderr, "a", 0o600);
    let pid: number;
    try {
      // detached: the workload leads its own process group, which stop() signals as a whole.
      const child = spawn(file, spec.workload.args, { cwd: work, env, detached: true, stdio: ["ignore", out.fd, err.fd] });
      await once(child, "spawn");
      pid = child.pid!;
      child.on("exit", (code, signal) => void recordExit(vmId, pid, code, signal));
      // Unreferenced: the daemon can exit while the workload keeps running.
      child.unref();
    } catch (error) {
      await writeState(vmId, { bootId, ...portField });
      throw new DriverError(vmId, `cannot start ${spec.workload.command} (${file}): ${(error as Error).message}`, { cause: error });
    } finally {
      await out.close();
      await err.close();
    }
    const started = await readStat(pid);
    await writeState(vmId, { bootId, pid, startTime: started?.startTime ?? null, startedAt: new Date().toISOString(), ...portField });
    logger.info({ msg: "workload started", vm_id: vmId, pid, command: spec.workload.command, port });
  }

  /** Records how a workload this driver spawned ended, unless a stop or a newer start already replaced its state. */
  function recordExit(vmId: bigint, pid: number, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (closed) return Promise.resolve();
    return serialized(vmId, async () => {
      const state = await readState(vmId).catch(() => undefined);
      if (state?.pid !== pid) return;
      await writeState(vmId, { ...state, exitCode: code, exitSignal: signal, endedAt: new Date().toISOString() });
      logger.info({ msg: "workload exited", vm_id: vmId, pid, exit_code: code, signal });
    }).catch((error: unknown) => {
      logger.warn({ msg: "could not record a workload's exit", vm_id: vmId, pid, error: (error as Error).message });
    });
  }

  async function exists(file: string): Promise<boolean> {
    try {
      await stat(file);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw error;
    }
  }

  return {
    name: "process",

    create: (vmId, manifest) =>
      serialized(vmId, async () => {
        if (manifest.workload.type !== "process") {
          throw new DriverError(vmId, `the process driver cannot run a "${(manifest.workload as { type: string }).type}" workload`);
        }
        resolveCommand(vmId, manifest.workload.command);
        if (manifest.ports.length > 1) {
          throw new DriverError(vmId, `the process driver gives a workload one port (PORT); this manifest declares ${manifest.ports.length}`);
        }
        const { spec, work } = paths(vmId);
        await mkdir(work, { recursive: true, mode: 0o700 });
        await writeFile(`${spec}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
        await rename(`${spec}.tmp`, spec);
      }),

    start: (vmId) => serialized(vmId, () => startLocked(vmId)),

    stop: (vmId) => serialized(vmId, () => stopLocked(vmId)),

    destroy: (vmId) =>
      serialized(vmId, async () => {
        const { dir } = paths(vmId);
        if (!(await exists(dir))) return;
        await stopLocked(vmId);
        await rm(dir, { recursive: true, force: true });
        logger.info({ msg: "workload destroyed", vm_id: vmId });
      }),

    status: (vmId) =>
      serialized(vmId, async (): Promise<DriverStatus> => {
        // Without spec.json, create() never finished: nothing usable exists yet.
        if (!(await exists(paths(vmId).spec))) return { state: "absent" };
        const state = await readState(vmId);
        if (state?.pid !== undefined && (await groupAlive(state))) {
          return { state: "running", pid: state.pid, ...(state.port === undefined ? {} : { endpoint: `http://127.0.0.1:${state.port}` }) };
        }
        return { state: "stopped", ...(state?.exitCode === undefined ? {} : { exitCode: state.exitCode }) };
      }),

    async list() {
      if (closed) throw new Error("the process driver is closed");
      let names: string[];
      try {
        names = await readdir(rootDir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
        throw error;
      }
      const ids: bigint[] = [];
      for (const name of names) {
        if (vmDirName.test(name) && (await stat(join(rootDir, name)).catch(() => undefined))?.isDirectory()) ids.push(BigInt(name));
      }
      return ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    },

    async close() {
      closed = true;
      await Promise.all(locks.values());
    },
  };
}
