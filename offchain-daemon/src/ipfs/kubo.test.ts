// Runs against our own Kubo RPC subset (kubo-rpc-server.ts): no Kubo binary can be installed here.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RAW_BLOCK_MAX_BYTES, rawCid } from "./block.ts";
import { createEmbeddedStore, type EmbeddedStore } from "./embedded.ts";
import { createKuboStore, KuboRequestError, KuboUnexpectedCidError } from "./kubo.ts";
import { type KuboRpcServer, startKuboRpcServer } from "./kubo-rpc-server.ts";
import { ContentHashMismatchError, ContentNotFoundError, ContentTooLargeError, type ContentStore } from "./types.ts";

const HELLO = new TextEncoder().encode("hello world\n");
const HELLO_CID = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4";
const timeout = () => AbortSignal.timeout(5_000);

/** An HTTP server on a free loopback port answering every request with `handler`. */
async function fakeKubo(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe("Kubo store", () => {
  let directory: string;
  let node: EmbeddedStore;
  let rpc: KuboRpcServer;
  let kubo: ContentStore;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), "novacron-kubo-"));
    node = await createEmbeddedStore({ directory });
    rpc = await startKuboRpcServer({ store: node, port: 0 });
    kubo = createKuboStore({ url: rpc.url });
  });
  after(async () => {
    await kubo.close();
    await rpc.close();
    await node.close();
    await rm(directory, { recursive: true, force: true });
  });

  test("putRaw adds one raw block and getRaw reads it back", async () => {
    const cid = await kubo.putRaw(HELLO);
    assert.equal(cid.toString(), HELLO_CID);
    assert.deepEqual(await kubo.getRaw(cid, { signal: timeout(), maxBytes: 1024 }), HELLO);
    // It went to the node behind the API, not somewhere local to the client.
    assert.deepEqual(await node.getRaw(cid, { signal: timeout(), maxBytes: 1024 }), HELLO);
  });

  test("getRaw of a block the node does not have fails with ContentNotFoundError", async () => {
    const missing = await rawCid(new TextEncoder().encode("never added"));
    await assert.rejects(kubo.getRaw(missing, { signal: timeout(), maxBytes: 1024 }), ContentNotFoundError);
  });

  test("getRaw refuses content larger than maxBytes", async () => {
    const cid = await node.putRaw(new Uint8Array(100 * 1024).fill(1));
    await assert.rejects(kubo.getRaw(cid, { signal: timeout(), maxBytes: 64 * 1024 }), ContentTooLargeError);
    assert.equal((await kubo.getRaw(cid, { signal: timeout(), maxBytes: 100 * 1024 })).byteLength, 100 * 1024);
  });

  test("getRaw detects a node that returns bytes not matching the CID", async () => {
    const cid = await rawCid(new TextEncoder().encode("what was published"));
    await node.helia.blockstore.put(cid, new TextEncoder().encode("what a faulty node returns"));
    await assert.rejects(kubo.getRaw(cid, { signal: timeout(), maxBytes: 1024 }), ContentHashMismatchError);
  });

  test("putRaw refuses content over 256 KiB before sending it", async () => {
    await assert.rejects(kubo.putRaw(new Uint8Array(RAW_BLOCK_MAX_BYTES + 1)), ContentTooLargeError);
  });

  test("getRaw rejects with the signal's reason when a node keeps searching", async () => {
    // A networked Kubo holds the request open while it looks for providers.
    const { url, server } = await fakeKubo(() => {});
    try {
      const started = performance.now();
      const signal = AbortSignal.timeout(200);
      await assert.rejects(createKuboStore({ url }).getRaw(await rawCid(HELLO), { signal, maxBytes: 1024 }), (err) => {
        assert.equal(err, signal.reason);
        return true;
      });
      assert.ok(performance.now() - started < 2_000);
    } finally {
      await closeServer(server);
    }
  });

  test("putRaw refuses a node that answers add with a CID other than the raw block's", async () => {
    const { url, server } = await fakeKubo((_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ Name: "x", Hash: "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", Size: "20" }) + "\n");
    });
    try {
      await assert.rejects(createKuboStore({ url }).putRaw(HELLO), KuboUnexpectedCidError);
    } finally {
      await closeServer(server);
    }
  });

  test("an unreachable node gives KuboRequestError saying to start it", async () => {
    const { url, server } = await fakeKubo(() => {});
    await closeServer(server);
    const store = createKuboStore({ url });
    await assert.rejects(store.getRaw(await rawCid(HELLO), { signal: timeout(), maxBytes: 1024 }), (err: unknown) => {
      assert.ok(err instanceof KuboRequestError);
      assert.match(err.message, /Start the IPFS node/);
      return true;
    });
    await assert.rejects(store.putRaw(HELLO), KuboRequestError);
  });
});
