import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { decodeManifest } from "./fetch.ts";
import type { Manifest } from "./schema.ts";
import { MANIFEST_MAX_BYTES } from "./schema.ts";

async function loadExample(name: string): Promise<Manifest> {
  const bytes = await readFile(new URL(`../../../examples/${name}`, import.meta.url));
  assert.ok(bytes.byteLength <= MANIFEST_MAX_BYTES);
  const result = decodeManifest(bytes);
  assert.ok(result.ok, result.ok ? "" : result.detail);
  return result.manifest;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  assert.ok(address !== null && typeof address === "object");
  return address.port;
}

/**
 * Runs the example's workload the way the process driver does (env PORT and
 * NOVACRON_VM_ID), with this Node binary standing in for `node` on PATH.
 */
function run(manifest: Manifest, env: Record<string, string>) {
  assert.equal(manifest.workload.command, "node");
  const child = spawn(process.execPath, manifest.workload.args, {
    env: { ...manifest.workload.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return { child, nextLine: async () => String((await lines.next()).value) };
}

describe("examples", () => {
  test("hello.json is a valid manifest whose server answers with the VM id", async () => {
    const manifest = await loadExample("hello.json");
    assert.deepEqual(manifest.resources, { vcpu: 1, memoryMiB: 128, diskGiB: 1 });
    assert.deepEqual(manifest.ports, [{ name: "http", protocol: "tcp" }]);
    const port = await freePort();
    const { child, nextLine } = run(manifest, { PORT: String(port), NOVACRON_VM_ID: "42" });
    try {
      assert.match(await nextLine(), /^listening on 127\.0\.0\.1:\d+$/);
      const response = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(await response.text(), "hello from NovaCron VM 42\n");
    } finally {
      child.kill();
    }
  });

  test("ticker.json is a valid manifest that prints a line every second", async () => {
    const manifest = await loadExample("ticker.json");
    assert.deepEqual(manifest.resources, { vcpu: 1, memoryMiB: 128, diskGiB: 1 });
    const { child, nextLine } = run(manifest, { NOVACRON_VM_ID: "7" });
    try {
      assert.match(await nextLine(), /^tick 1 \d{4}-\d\d-\d\dT/);
      assert.match(await nextLine(), /^tick 2 /);
    } finally {
      child.kill();
    }
  });
});
