// The daemon as its own process (`novacron-daemon --config FILE`): bad configuration, and a
// daemon killed with SIGKILL between a VM request and Running that must still end with the VM
// Running and exactly one workload process.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseUnits, type Hex } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { spawnChild, sleep, stopGroup, type StackChild } from "../../scripts/stack/processes.ts";
import { startTestStack, type TestStack } from "../../test/daemon-support/stack.ts";
import { destroyAllWorkloads } from "./drivers/process.ts";
import pino from "pino";

const BIN = new URL("../bin/novacron-daemon.js", import.meta.url).pathname;
const hello = JSON.parse(readFileSync(new URL("../../examples/hello.json", import.meta.url), "utf8"));

/** Processes whose working directory is inside this VM's directory: the workload and anything it spawned. */
function workloadProcesses(vmsDir: string, vmId: bigint): number[] {
  const prefix = join(vmsDir, String(vmId)) + "/";
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((readlinkSync(`/proc/${entry}/cwd`) + "/").startsWith(prefix)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

describe("novacron-daemon CLI", () => {
  test("a bad config prints one line naming the field and exits 2", async () => {
    const dir = join(process.env.TMPDIR ?? "/tmp", `novacron-cli-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "bad.json");
    const valid = {
      rpcUrl: "http://127.0.0.1:1",
      provider: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
      contracts: { vmRegistry: "0x12", providerRegistry: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" },
      dataDir: dir,
    };
    writeFileSync(file, JSON.stringify(valid));
    const env = { ...process.env, NOVACRON_OPERATOR_KEY: `0x${"11".repeat(32)}` };
    const result = await promisify(execFile)(process.execPath, [BIN, "--config", file], { env }).then(
      () => assert.fail("the daemon accepted a bad config"),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 2);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, /^config error: contracts\.vmRegistry: expected a 0x-prefixed 20-byte address/);
  });

  test("a missing config file is named in one line, exit 2", async () => {
    const result = await promisify(execFile)(process.execPath, [BIN, "--config", "/nonexistent/novacron.json"]).then(
      () => assert.fail("the daemon started without its config"),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 2);
    assert.match(result.stderr.trim(), /^config error: .*\/nonexistent\/novacron\.json/);
  });
});

describe("novacron-daemon keystore", () => {
  const dir = join(process.env.TMPDIR ?? "/tmp", `novacron-keystore-${process.pid}`);
  const passwordFile = join(dir, "password");
  const key = `0x${"5e".repeat(32)}`;
  const run = (args: string[], input?: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, [BIN, ...args], (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }));
      child.stdin!.end(input ?? "");
    });
  /** A config whose only problem, if any, is its keystore: the daemon must stop at the key, before any RPC. */
  const configWith = (keystore: string, password: string | null = passwordFile) => {
    const file = join(dir, `config-${Math.random().toString(16).slice(2)}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        rpcUrl: "http://127.0.0.1:1",
        operatorKeystore: { file: keystore, passwordFile: password ?? undefined },
        provider: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        contracts: { vmRegistry: "0x5FbDB2315678afecb367f032d93F642f64180aa3", providerRegistry: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" },
        dataDir: dir,
      }),
    );
    return file;
  };

  before(() => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(passwordFile, "a long enough password\n");
  });

  test("import reads the key from stdin, writes a keystore only its owner can read, never overwrites one, and never echoes a bad key", async () => {
    const out = join(dir, "imported.json");
    const imported = await run(["keystore", "import", "--out", out, "--password-file", passwordFile], `${key}\n`);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, new RegExp(`for operator ${privateKeyToAddress(key as Hex)}`));
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.ok(!readFileSync(out, "utf8").includes(key.slice(2)), "the keystore holds the key encrypted");
    const again = await run(["keystore", "import", "--out", out, "--password-file", passwordFile], `${key}\n`);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists; choose another --out \(a keystore is never overwritten\)/);
    const bad = await run(["keystore", "import", "--out", join(dir, "bad.json"), "--password-file", passwordFile], `0x${"5e".repeat(31)}zz\n`);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim(), "the key read from stdin is not usable: expected 0x followed by 64 hex digits");
  });

  test("new makes a key; a short password, no terminal and a bad command line are one line each, exit 2", async () => {
    const made = await run(["keystore", "new", "--out", join(dir, "new.json"), "--password-file", passwordFile]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^wrote .*new\.json for operator 0x[0-9a-fA-F]{40}$/m);
    writeFileSync(join(dir, "short"), "abc");
    const short = await run(["keystore", "new", "--out", join(dir, "short.json"), "--password-file", join(dir, "short")]);
    assert.deepEqual([short.code, short.stderr.trim()], [2, "the password has 3 characters; use at least 8"]);
    const noTerminal = await run(["keystore", "new", "--out", join(dir, "prompt.json")]);
    assert.deepEqual([noTerminal.code, noTerminal.stderr.trim()], [2, "no terminal to ask for the password on: pass --password-file FILE"]);
    const usage = await run(["keystore", "export", "--out", join(dir, "x.json")]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^usage: novacron-daemon keystore new/);
  });

  test("the daemon refuses a wrong password or a corrupt keystore in one line, exit 2, before touching the chain", async () => {
    const keystore = join(dir, "daemon.json");
    assert.equal((await run(["keystore", "import", "--out", keystore, "--password-file", passwordFile], key)).code, 0);
    writeFileSync(join(dir, "wrong"), "not the password");
    const wrong = await run(["--config", configWith(keystore, join(dir, "wrong"))]);
    assert.deepEqual([wrong.code, wrong.stderr.trim()], [2, `config error: operatorKeystore: wrong password for keystore ${keystore}`]);
    writeFileSync(join(dir, "corrupt.json"), "{ this is not a keystore");
    const corrupt = await run(["--config", configWith(join(dir, "corrupt.json"))]);
    assert.deepEqual([corrupt.code, corrupt.stderr.trim()], [2, `config error: operatorKeystore: keystore ${join(dir, "corrupt.json")} is not a usable version 3 keystore: it is not JSON`]);
    const noPassword = await run(["--config", configWith(keystore, null)]);
    assert.deepEqual([noPassword.code, noPassword.stderr.trim()], [2, `config error: operatorKeystore: ${keystore} needs a password: set operatorKeystore.passwordFile, or start the daemon on a terminal to type it`]);
  });
});

test("NOVACRON_OPERATOR_KEY is refused on any chain but the local development chain (31337)", async () => {
  // An RPC that serves chain 1 and nothing else: the daemon must stop right after asking which chain it is.
  const rpc = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      const { id } = JSON.parse(body) as { id: number };
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ jsonrpc: "2.0", id, result: "0x1" }));
    });
  });
  await new Promise<void>((resolve) => rpc.listen(0, "127.0.0.1", resolve));
  const dir = join(process.env.TMPDIR ?? "/tmp", `novacron-envkey-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "config.json");
  writeFileSync(
    file,
    JSON.stringify({
      rpcUrl: `http://127.0.0.1:${(rpc.address() as { port: number }).port}`,
      provider: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
      contracts: { vmRegistry: "0x5FbDB2315678afecb367f032d93F642f64180aa3", providerRegistry: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" },
      dataDir: dir,
      ipfs: { mode: "kubo", url: "http://127.0.0.1:1" },
    }),
  );
  try {
    const env = { ...process.env, NOVACRON_OPERATOR_KEY: `0x${"11".repeat(32)}` };
    const result = await promisify(execFile)(process.execPath, [BIN, "--config", file], { env }).then(
      () => assert.fail("the daemon started with an environment key on chain 1"),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 2);
    assert.match(result.stderr.trim(), /^novacron-daemon: the operator key comes from NOVACRON_OPERATOR_KEY, which is for the local development chain \(31337\) only, and the RPC serves chain 1: write the key to a keystore/);
  } finally {
    rpc.close();
  }
});

describe("daemon killed between request and Running", () => {
  let stack: TestStack;
  let daemonDir: string;
  let configFile: string;
  let daemon: StackChild | undefined;
  const deposit = parseUnits("50", 18);

  function startDaemon(): StackChild {
    daemon = spawnChild("daemon", process.execPath, [BIN, "--config", configFile], { logFile: join(daemonDir, "daemon.log") });
    return daemon;
  }

  async function killDaemon(): Promise<void> {
    process.kill(daemon!.pid, "SIGKILL");
    await daemon!.exited;
  }

  before(async () => {
    stack = await startTestStack("restart");
    daemonDir = join(stack.dir, "daemon");
    mkdirSync(daemonDir);
    configFile = stack.writeDaemonConfig(daemonDir, { logLevel: "info" });
  });

  after(async () => {
    if (daemon) await stopGroup(daemon.pid);
    // Workloads outlive the daemon by design; the test owns them, so it ends them.
    if (daemonDir) await destroyAllWorkloads(join(daemonDir, "vms"), pino({ level: "silent" }));
    await stack?.stop();
  });

  test("requested while the daemon is down: Running after restart, one process", async () => {
    startDaemon();
    await sleep(1500);
    await killDaemon();
    const vmId = await stack.requestVm(await stack.publish(hello), hello.resources, deposit);
    startDaemon();
    await stack.waitForState(vmId, "Running");
    await sleep(1500); // a duplicate spawn would show up here
    assert.equal(workloadProcesses(join(daemonDir, "vms"), vmId).length, 1);
  });

  test("killed the moment Provisioning lands: Running after restart, one process", async () => {
    const vmId = await stack.requestVm(await stack.publish(hello), hello.resources, deposit);
    await stack.waitForState(vmId, ["Provisioning", "Running"], 30_000);
    await killDaemon();
    const seen = (await stack.vm(vmId)).state;
    startDaemon();
    await stack.waitForState(vmId, "Running");
    await sleep(1500);
    assert.equal(workloadProcesses(join(daemonDir, "vms"), vmId).length, 1, `state when killed: ${seen}`);
    await stack.tenantCall("terminateVm", vmId);
  });
});
