import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, it } from "node:test";
import { createMetrics } from "./metrics.ts";
import { startApiServer } from "./server.ts";
import type { ApiServer, ApiServerOptions } from "./server.ts";

let api: ApiServer | undefined;

afterEach(async () => {
  await api?.close();
  api = undefined;
});

async function start(overrides: Partial<ApiServerOptions> = {}): Promise<ApiServer> {
  api = await startApiServer({
    host: "127.0.0.1",
    port: 0,
    registry: createMetrics().registry,
    status: () => ({ vms: [] }),
    health: () => ({ ok: true }),
    ...overrides,
  });
  return api;
}

describe("API server", () => {
  it("answers /healthz with 200 or 503 as health() says", async () => {
    let healthy = true;
    const { url } = await start({ health: () => ({ ok: healthy, detail: { last_sync_ms_ago: 12 } }) });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);

    let response = await fetch(`${url}/healthz`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
    assert.deepEqual(await response.json(), { ok: true, detail: { last_sync_ms_ago: 12 } });

    healthy = false;
    response = await fetch(`${url}/healthz`);
    assert.equal(response.status, 503);
    assert.deepEqual(await response.json(), { ok: false, detail: { last_sync_ms_ago: 12 } });
  });

  it("answers 503 when the health check itself throws", async () => {
    const { url } = await start({
      health: () => {
        throw new Error("store is closed");
      },
    });
    const response = await fetch(`${url}/healthz`);
    assert.equal(response.status, 503);
    assert.deepEqual(await response.json(), { error: "store is closed" });
  });

  it("serves the daemon's metrics and the default process metrics as Prometheus text", async () => {
    const metrics = createMetrics();
    metrics.chainHead.set(120);
    metrics.checkpointBlock.set(118);
    metrics.vms.set({ state: "running" }, 3);
    metrics.reconcileTotal.inc({ result: "ok" });
    metrics.reconcileDuration.observe(0.2);
    metrics.txTotal.inc({ action: "reportRunning", outcome: "mined" });
    metrics.reorgsTotal.inc();
    const { url } = await start({ registry: metrics.registry });

    const response = await fetch(`${url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    for (const line of [
      "novacron_chain_head_block 120",
      "novacron_checkpoint_block 118",
      'novacron_vms{state="running"} 3',
      'novacron_reconcile_total{result="ok"} 1',
      'novacron_reconcile_duration_seconds_bucket{le="0.25"} 1',
      "novacron_reconcile_duration_seconds_count 1",
      'novacron_tx_total{action="reportRunning",outcome="mined"} 1',
      "novacron_reorgs_total 1",
    ]) {
      assert.ok(text.split("\n").includes(line), `missing line: ${line}`);
    }
    assert.match(text, /^process_cpu_user_seconds_total \d/m);
    assert.match(text, /^nodejs_eventloop_lag_seconds \d/m);
  });

  it("gives every createMetrics() call its own registry", () => {
    const first = createMetrics();
    const second = createMetrics();
    first.reorgsTotal.inc();
    assert.notEqual(first.registry, second.registry);
  });

  it("serves status() as JSON with bigints as decimal strings, awaiting a promise", async () => {
    const { url } = await start({
      status: async () => ({ vms: [{ vmId: 2n ** 200n, driver: { state: "running", pid: 42 } }], block: 7n }),
    });
    const response = await fetch(`${url}/vms`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      vms: [{ vmId: (2n ** 200n).toString(), driver: { state: "running", pid: 42 } }],
      block: "7",
    });
  });

  it("answers 500 with the reason when status() fails", async () => {
    const { url } = await start({
      status: () => Promise.reject(new Error("reconciler not ready")),
    });
    const response = await fetch(`${url}/vms?verbose=1`);
    assert.equal(response.status, 500);
    assert.deepEqual(await response.json(), { error: "reconciler not ready" });
  });

  it("answers 404 for unknown paths and 405 for other methods", async () => {
    const { url } = await start();
    let response = await fetch(`${url}/admin`);
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { error: "no such endpoint: /admin", endpoints: ["/healthz", "/metrics", "/vms"] });

    response = await fetch(`${url}/vms`, { method: "POST", body: "{}" });
    assert.equal(response.status, 405);
    assert.equal(response.headers.get("allow"), "GET, HEAD");
  });

  it("closes promptly while a request is still in flight", { timeout: 5000 }, async () => {
    const server = await startApiServer({
      host: "127.0.0.1",
      port: 0,
      registry: createMetrics().registry,
      status: () => new Promise(() => undefined),
      health: () => ({ ok: true }),
    });
    const hanging = fetch(`${server.url}/vms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const began = Date.now();
    await server.close();
    assert.ok(Date.now() - began < 1000, "close() waited for the hanging request");
    await assert.rejects(hanging);
    await assert.rejects(fetch(`${server.url}/healthz`));
  });

  it("names the port when it is already taken", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      await assert.rejects(start({ port }), {
        message: `cannot serve the API on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}; something else uses that port, so choose another api.port (NOVACRON_API_PORT)`,
      });
    } finally {
      blocker.close();
    }
  });
});
