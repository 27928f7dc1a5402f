import assert from "node:assert/strict";
import path from "node:path";
import { createHardhatRuntimeEnvironment } from "hardhat/hre";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import userConfig from "../../hardhat.config.ts";
import type { TaskResult } from "../../scripts/lib/errors.ts";

export type TaskRun<T> = { result: TaskResult<T>; out: string; err: string };

/** Runs a task the way the CLI does and captures what it prints. */
export async function runTask<T>(hre: HardhatRuntimeEnvironment, name: string, args: Record<string, unknown> = {}): Promise<TaskRun<T>> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...parts: unknown[]) => void out.push(parts.join(" "));
  console.error = (...parts: unknown[]) => void err.push(parts.join(" "));
  try {
    const result = (await hre.tasks.getTask(name).run(args)) as TaskResult<T>;
    return { result, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** The task's value; fails the test with what the task printed when it did not succeed. */
export function taskValue<T>(run: { result: TaskResult<T>; err: string }): T {
  if (!run.result.success) assert.fail(`task failed: ${run.err}`);
  return run.result.value;
}

/**
 * The project's own config with `localhost` pointing at a JSON-RPC server on `rpcPort` and
 * Ignition's files under `tmp`, run with `--network localhost`, as a user would.
 */
export function taskHreFor(rpcPort: number, tmp: string): Promise<HardhatRuntimeEnvironment> {
  return createHardhatRuntimeEnvironment(
    {
      ...userConfig,
      paths: { ...userConfig.paths, ignition: path.join(tmp, "ignition"), cache: path.join(tmp, "cache") },
      networks: { ...userConfig.networks, localhost: { type: "http", chainType: "l1", url: `http://127.0.0.1:${rpcPort}` } },
    },
    { network: "localhost" },
    path.resolve(import.meta.dirname, "../.."),
  );
}
