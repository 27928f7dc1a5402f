import { readdir, readFile } from "node:fs/promises";

/** What the process driver needs from `/proc/<pid>/stat` (proc(5)). */
export interface ProcStat {
  pid: number;
  /** One letter: R, S, D, Z (zombie: exited, not yet reaped), T, ... */
  state: string;
  /** Process group id. */
  pgid: number;
  /**
   * Clock ticks after boot when the process started (field 22). With the boot
   * id, it tells a process apart from a later one that reuses its pid.
   */
  startTime: string;
}

function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  // ESRCH: the process exited between readdir and read.
  return code === "ENOENT" || code === "ESRCH";
}

/** Reads one process's stat line; undefined when no such process exists. */
export async function readStat(pid: number): Promise<ProcStat | undefined> {
  let line: string;
  try {
    line = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces
  // and parentheses, so the fixed fields start after the LAST ')'.
  const fields = line.slice(line.lastIndexOf(")") + 2).split(" ");
  const [state, , pgid] = fields;
  const startTime = fields[22 - 3];
  if (state === undefined || pgid === undefined || startTime === undefined) {
    throw new Error(`unexpected format of /proc/${pid}/stat: ${line.slice(0, 200)}`);
  }
  return { pid, state, pgid: Number(pgid), startTime };
}

/** Every process visible in /proc, skipping those that exit while being read. */
export async function listProcesses(): Promise<ProcStat[]> {
  const names = await readdir("/proc");
  const stats = await Promise.all(names.filter((name) => /^\d+$/.test(name)).map((name) => readStat(Number(name))));
  return stats.filter((stat) => stat !== undefined);
}

/**
 * A process's initial environment; undefined when the process is gone or
 * belongs to another user.
 */
export async function readEnviron(pid: number): Promise<Map<string, string> | undefined> {
  let raw: string;
  try {
    raw = await readFile(`/proc/${pid}/environ`, "utf8");
  } catch (error) {
    if (isGone(error) || (error as NodeJS.ErrnoException).code === "EACCES") return undefined;
    throw error;
  }
  const env = new Map<string, string>();
  for (const entry of raw.split("\0")) {
    const equals = entry.indexOf("=");
    if (equals > 0) env.set(entry.slice(0, equals), entry.slice(equals + 1));
  }
  return env;
}

let bootId: Promise<string> | undefined;

/** Changes on every boot: pids and start times from another boot mean nothing. */
export function readBootId(): Promise<string> {
  bootId ??= readFile("/proc/sys/kernel/random/boot_id", "utf8").then((id) => id.trim());
  return bootId;
}
