import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import { createLogger } from "../log.ts";
import { ManifestSchema } from "../manifest/schema.ts";
import type { Manifest } from "../manifest/schema.ts";
import { createProcessDriver } from "./process.ts";
import { listProcesses, readBootId, readEnviron, readStat } from "./procfs.ts";
import { DriverError } from "./types.ts";
import type { Driver } from "./types.ts";

const logger = createLogger("silent");
const allowedCommands = { node: process.execPath, sh: "/bin/sh" };
const roots: string[] = [];
const strayPids: number[] = [];
let rootDir: string;
let driver: Driver;

function newDriver(stopTimeoutMs = 2000): Driver {
  return createProcessDriver({ rootDir, allowedCommands, stopTimeoutMs, logger });
}

function manifest(command: string, args: string[], options: { env?: Record<string, string>; port?: boolean } = {}): Manifest {
  return ManifestSchema.parse({
    version: 1,
    name: "test",
    resources: { vcpu: 1, memoryMiB: 64, diskGiB: 1 },
    workload: { type: "process", command, args, env: options.env ?? {} },
    ports: options.port ? [{ name: "http", protocol: "tcp" }] : [],
  });
}

const httpServer = `
const http = require("node:http");
http.createServer((req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ env: process.env, cwd: process.cwd(), pid: process.pid }));
}).listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening on " + process.env.PORT));
`;

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Live (non-zombie) members of a process group. */
async function groupMembers(pgid: number): Promise<number[]> {
  return (await listProcesses()).filter((p) => p.pgid === pgid && p.state !== "Z").map((p) => p.pid);
}

/** Process groups with a live process carrying this VM's markers: one per copy of the workload. */
async function workloadGroups(vmId: bigint): Promise<number[]> {
  const home = join(rootDir, vmId.toString(), "work");
  const groups = new Set<number>();
  for (const p of await listProcesses()) {
    if (p.state === "Z") continue;
    const env = await readEnviron(p.pid);
    if (env?.get("NOVACRON_VM_ID") === vmId.toString() && env.get("HOME") === home) groups.add(p.pgid);
  }
  return [...groups];
}

async function fetchJson(url: string): Promise<{ env: Record<string, string>; cwd: string; pid: number }> {
  return until(`a reply from ${url}`, async () => {
    try {
      const response = await fetch(url);
      return (await response.json()) as { env: Record<string, string>; cwd: string; pid: number };
    } catch {
      return undefined;
    }
  });
}

function readState(vmId: bigint): Record<string, unknown> {
  return JSON.parse(readFileSync(join(rootDir, vmId.toString(), "state.json"), "utf8")) as Record<string, unknown>;
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // already gone
  }
}

beforeEach(() => {
  rootDir = mkdtempSync(join(tmpdir(), "novacron-driver-"));
  roots.push(rootDir);
  driver = newDriver();
});

afterEach(async () => {
  await driver.close();
  // Whatever a failed test left running, recorded or not: every group with a
  // process whose HOME is under this test's root.
  const ownGroup = (await readStat(process.pid))?.pgid;
  for (const p of await listProcesses()) {
    if (p.pgid <= 1 || p.pgid === ownGroup) continue;
    if ((await readEnviron(p.pid))?.get("HOME")?.startsWith(`${rootDir}/`)) killGroup(p.pgid);
  }
  for (const pid of strayPids.splice(0)) killGroup(pid);
});

after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

describe("process driver", () => {
  it("runs a node HTTP server on the port it assigns, with only the manifest's environment", async () => {
    const secret = process.env["NOVACRON_OPERATOR_KEY"];
    process.env["NOVACRON_OPERATOR_KEY"] = `0x${"ab".repeat(32)}`;
    try {
      const spec = manifest("node", ["-e", httpServer], { env: { GREETING: "hello", HOME: "/root" }, port: true });
      await driver.create(7n, spec);
      assert.deepEqual(await driver.status(7n), { state: "stopped" });
      await driver.start(7n);
    } finally {
      if (secret === undefined) delete process.env["NOVACRON_OPERATOR_KEY"];
      else process.env["NOVACRON_OPERATOR_KEY"] = secret;
    }

    const status = await driver.status(7n);
    assert.equal(status.state, "running");
    assert.match(status.endpoint ?? "", /^http:\/\/127\.0\.0\.1:\d+$/);
    const reply = await fetchJson(status.endpoint!);
    const work = join(rootDir, "7", "work");
    assert.equal(reply.pid, status.pid);
    assert.equal(reply.cwd, work);
    assert.deepEqual(reply.env, {
      GREETING: "hello",
      HOME: work,
      NOVACRON_VM_ID: "7",
      PATH: "/usr/bin:/bin",
      PORT: new URL(status.endpoint!).port,
    });

    const dir = join(rootDir, "7");
    assert.deepEqual(JSON.parse(readFileSync(join(dir, "spec.json"), "utf8")), manifest("node", ["-e", httpServer], { env: { GREETING: "hello", HOME: "/root" }, port: true }));
    const state = readState(7n);
    assert.equal(state["pid"], status.pid);
    assert.equal(state["port"], Number(new URL(status.endpoint!).port));
    assert.match(String(state["startTime"]), /^\d+$/);
    assert.equal(state["bootId"], await readBootId());
    assert.ok(!Number.isNaN(Date.parse(String(state["startedAt"]))));
    await until("the workload's stdout in stdout.log", () =>
      readFileSync(join(dir, "stdout.log"), "utf8").includes(`listening on ${state["port"]}`) || undefined,
    );
    assert.ok(existsSync(join(dir, "stderr.log")));
  });

  it("keeps the endpoint's port across a stop and start", async () => {
    await driver.create(1n, manifest("node", ["-e", httpServer], { port: true }));
    await driver.start(1n);
    const first = await driver.status(1n);
    await fetchJson(first.endpoint!);
    await driver.stop(1n);
    assert.deepEqual(await driver.status(1n), { state: "stopped" });
    await driver.start(1n);
    const second = await driver.status(1n);
    assert.equal(second.endpoint, first.endpoint);
    assert.notEqual(second.pid, first.pid);
    assert.equal((await fetchJson(second.endpoint!)).pid, second.pid);
  });

  it("stop kills the whole process group, grandchildren included", async () => {
    await driver.create(2n, manifest("sh", ["-c", "sleep 1000 & sleep 1000"]));
    await driver.start(2n);
    const { pid } = await driver.status(2n);
    assert.ok(pid);
    const members = await until("sh and both sleeps", async () => {
      const live = await groupMembers(pid);
      return live.length >= 3 ? live : undefined;
    });
    assert.ok(members.includes(pid));

    await driver.stop(2n);
    assert.deepEqual(await groupMembers(pid), []);
    assert.deepEqual(await driver.status(2n), { state: "stopped" });
    assert.equal(readState(2n)["pid"], undefined);
    await driver.stop(2n);
  });

  it("sends SIGKILL when the workload ignores SIGTERM", async () => {
    await driver.close();
    driver = newDriver(300);
    // SIG_IGN survives exec, so the sleeps ignore SIGTERM too.
    await driver.create(3n, manifest("sh", ["-c", "trap '' TERM; sleep 1000 & sleep 1000"]));
    await driver.start(3n);
    const { pid } = await driver.status(3n);
    await until("the group to form", async () => ((await groupMembers(pid!)).length >= 3 ? true : undefined));
    const began = Date.now();
    await driver.stop(3n);
    assert.ok(Date.now() - began >= 300, "stop returned before the grace period");
    assert.deepEqual(await groupMembers(pid!), []);
  });

  it("a restarted driver adopts the running workload instead of starting another", async () => {
    await driver.create(4n, manifest("node", ["-e", httpServer], { port: true }));
    await driver.start(4n);
    const before = await driver.status(4n);
    // A restart means the old daemon is gone: close it, or its exit handler races the new driver's stop
    // (two writers of state.json in one process made this test fail about one run in three).
    await driver.close();

    const restarted = newDriver();
    try {
      assert.deepEqual(await restarted.status(4n), before);
      await restarted.create(4n, manifest("node", ["-e", httpServer], { port: true }));
      await restarted.start(4n);
      assert.deepEqual(await restarted.status(4n), before);
      assert.deepEqual(await workloadGroups(4n), [before.pid]);

      await restarted.stop(4n);
      assert.deepEqual(await groupMembers(before.pid!), []);
      assert.deepEqual(await restarted.status(4n), { state: "stopped" });
    } finally {
      await restarted.close();
    }
  });

  it("adopts a workload whose start was interrupted before its pid was recorded", async () => {
    await driver.create(5n, manifest("sh", ["-c", "sleep 1000"]));
    await driver.start(5n);
    const { pid } = await driver.status(5n);
    // What a crash between spawn() and recording the pid leaves on disk.
    const state = readState(5n);
    writeFileSync(join(rootDir, "5", "state.json"), JSON.stringify({ bootId: state["bootId"], spawning: true }));

    const restarted = newDriver();
    try {
      await restarted.start(5n);
      assert.equal((await restarted.status(5n)).pid, pid);
      assert.deepEqual(await workloadGroups(5n), [pid]);
      assert.equal(readState(5n)["pid"], pid);
      assert.equal(readState(5n)["startTime"], state["startTime"]);
    } finally {
      await restarted.close();
    }
  });

  it("runs exactly one workload after a daemon is SIGKILLed during a start", async () => {
    // A separate daemon process starts the VM and is SIGKILLed: right after the
    // workload is spawned and before its pid is recorded (the narrowest window,
    // hit on purpose by wrapping spawn), or a few ms into start() (before the
    // spawn, or after the state write). Wherever the kill lands, a restarted
    // driver must end up with exactly one workload.
    const crasher = join(rootDir, "crasher.ts");
    writeFileSync(
      crasher,
      `import childProcess from "node:child_process";
       import { syncBuiltinESMExports } from "node:module";
       const [rootDir, vmId, when, manifest] = process.argv.slice(2);
       if (when === "after-spawn") {
         const spawn = childProcess.spawn;
         childProcess.spawn = (...args) => {
           const child = spawn(...args);
           process.kill(process.pid, "SIGKILL");
           return child;
         };
         syncBuiltinESMExports();
       }
       const { createProcessDriver } = await import(${JSON.stringify(new URL("./process.ts", import.meta.url).pathname)});
       const { createLogger } = await import(${JSON.stringify(new URL("../log.ts", import.meta.url).pathname)});
       const driver = createProcessDriver({ rootDir, allowedCommands: { sh: "/bin/sh" }, stopTimeoutMs: 1000, logger: createLogger("silent") });
       await driver.create(BigInt(vmId), JSON.parse(manifest));
       void driver.start(BigInt(vmId));
       if (when !== "after-spawn") setTimeout(() => process.kill(process.pid, "SIGKILL"), Number(when));`,
    );
    const spec = manifest("sh", ["-c", "sleep 1000"]);
    for (const [index, when] of ["after-spawn", "0", "2", "5", "10", "50"].entries()) {
      const vmId = BigInt(100 + index);
      const child = spawn(process.execPath, ["--no-warnings", crasher, rootDir, vmId.toString(), when, JSON.stringify(spec)], {
        stdio: ["ignore", "ignore", "inherit"],
      });
      const [, signal] = (await once(child, "exit")) as [number | null, string | null];
      assert.equal(signal, "SIGKILL");
      if (when === "after-spawn") {
        assert.equal(readState(vmId)["spawning"], true, "the crash did not land between spawn and the state write");
        assert.equal((await workloadGroups(vmId)).length, 1);
      }

      await driver.start(vmId);
      const status = await driver.status(vmId);
      assert.equal(status.state, "running");
      assert.deepEqual(await workloadGroups(vmId), [status.pid], `killed at ${when}`);
    }
  });

  it("clears an interrupted start when nothing was spawned, then starts normally", async () => {
    await driver.create(6n, manifest("sh", ["-c", "sleep 1000"]));
    mkdirSync(join(rootDir, "6"), { recursive: true });
    writeFileSync(join(rootDir, "6", "state.json"), JSON.stringify({ bootId: await readBootId(), spawning: true }));
    assert.deepEqual(await driver.status(6n), { state: "stopped" });
    await driver.start(6n);
    assert.equal((await workloadGroups(6n)).length, 1);
  });

  it("does not mistake another process that reuses the recorded pid for the workload", async () => {
    const stranger = spawn("sleep", ["1000"], { detached: true, stdio: "ignore" });
    await new Promise((resolve) => stranger.once("spawn", resolve));
    strayPids.push(stranger.pid!);
    await driver.create(8n, manifest("sh", ["-c", "sleep 1000"]));
    writeFileSync(
      join(rootDir, "8", "state.json"),
      JSON.stringify({ bootId: await readBootId(), pid: stranger.pid, startTime: "1", startedAt: new Date().toISOString() }),
    );

    assert.deepEqual(await driver.status(8n), { state: "stopped" });
    await driver.stop(8n);
    assert.deepEqual(await groupMembers(stranger.pid!), [stranger.pid]);
    await driver.start(8n);
    const { pid } = await driver.status(8n);
    assert.notEqual(pid, stranger.pid);
  });

  it("starts one process however often start is called, concurrently or not", async () => {
    await driver.create(9n, manifest("sh", ["-c", "sleep 1000"]));
    await Promise.all([driver.start(9n), driver.start(9n), driver.start(9n)]);
    await driver.start(9n);
    const { pid } = await driver.status(9n);
    assert.deepEqual(await workloadGroups(9n), [pid]);
  });

  it("reports the exit code of a workload that ended on its own, also after a restart", async () => {
    await driver.create(10n, manifest("sh", ["-c", "exit 3"]));
    await driver.start(10n);
    await until("the exit to be recorded", async () => ((await driver.status(10n)).exitCode === 3 ? true : undefined));
    assert.deepEqual(await driver.status(10n), { state: "stopped", exitCode: 3 });
    const restarted = newDriver();
    try {
      assert.deepEqual(await restarted.status(10n), { state: "stopped", exitCode: 3 });
    } finally {
      await restarted.close();
    }
  });

  it("destroy stops the workload and deletes its directory, idempotently", async () => {
    await driver.create(11n, manifest("sh", ["-c", "sleep 1000 & sleep 1000"]));
    await driver.start(11n);
    const { pid } = await driver.status(11n);
    await driver.destroy(11n);
    assert.deepEqual(await groupMembers(pid!), []);
    assert.ok(!existsSync(join(rootDir, "11")));
    assert.deepEqual(await driver.status(11n), { state: "absent" });
    assert.deepEqual(await driver.list(), []);
    await driver.destroy(11n);
    await driver.stop(11n);
  });

  it("refuses commands the provider did not allow", async () => {
    for (const command of ["python3", "constructor"]) {
      await assert.rejects(driver.create(12n, manifest(command, [])), (error: unknown) => {
        assert.ok(error instanceof DriverError);
        assert.equal(error.vmId, 12n);
        assert.equal(error.message, `command ${command} is not allowed on this provider; allowed: node, sh`);
        return true;
      });
    }
    assert.deepEqual(await driver.status(12n), { state: "absent" });
  });

  it("refuses a manifest with more than one port", async () => {
    const spec = { ...manifest("sh", []), ports: [{ name: "a", protocol: "tcp" as const }, { name: "b", protocol: "tcp" as const }] };
    await assert.rejects(driver.create(13n, spec), {
      name: "DriverError",
      message: "the process driver gives a workload one port (PORT); this manifest declares 2",
    });
  });

  it("refuses to start a VM that was never created", async () => {
    await assert.rejects(driver.start(14n), { name: "DriverError", message: "VM 14 has not been created; call create() first" });
  });

  it("reports an executable that cannot be spawned and records no pid", async () => {
    await driver.close();
    driver = createProcessDriver({ rootDir, allowedCommands: { ghost: join(rootDir, "no-such-binary") }, stopTimeoutMs: 100, logger });
    await driver.create(15n, manifest("ghost", []));
    await assert.rejects(driver.start(15n), (error: unknown) => {
      assert.ok(error instanceof DriverError);
      assert.match(error.message, /^cannot start ghost \(.*no-such-binary\): spawn .*no-such-binary ENOENT$/);
      return true;
    });
    assert.deepEqual(await driver.status(15n), { state: "stopped" });
    assert.equal(readState(15n)["pid"], undefined);
  });

  it("lists VM directories in id order and ignores other entries", async () => {
    for (const id of [10n, 2n, 1n]) await driver.create(id, manifest("sh", []));
    mkdirSync(join(rootDir, "tmp"));
    writeFileSync(join(rootDir, "3"), "a file, not a VM");
    assert.deepEqual(await driver.list(), [1n, 2n, 10n]);
    assert.deepEqual(await driver.status(99n), { state: "absent" });
  });
});
