import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import { FailureReason } from "../failure-reasons.ts";
import { rawCid } from "../ipfs/block.ts";
import { createEmbeddedStore, type EmbeddedStore } from "../ipfs/embedded.ts";
import { createKuboStore } from "../ipfs/kubo.ts";
import { type KuboRpcServer, startKuboRpcServer } from "../ipfs/kubo-rpc-server.ts";
import { ContentHashMismatchError, ContentStoreUnresponsiveError, UnsupportedCidError } from "../ipfs/types.ts";
import { createServer, type Socket } from "node:net";
import {
  digestFromCid,
  fetchManifest,
  type FetchManifestResult,
  InvalidManifestDigestError,
  manifestCidFromDigest,
} from "./fetch.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const valid = {
  version: 1,
  name: "hello",
  resources: { vcpu: 1, memoryMiB: 128, diskGiB: 1 },
  workload: { type: "process", command: "node", args: ["-e", "1"], env: { GREETING: "hi" } },
  ports: [{ name: "http", protocol: "tcp" }],
};

function assertFailure(result: FetchManifestResult, reason: number, detail: RegExp): void {
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.equal(result.reason, reason);
  assert.match(result.detail, detail);
  assert.ok(result.detail.length <= 200);
}

describe("fetchManifest", () => {
  let directory: string;
  let store: EmbeddedStore;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), "novacron-fetch-"));
    store = await createEmbeddedStore({ directory });
  });
  after(async () => {
    await store.close();
    await rm(directory, { recursive: true, force: true });
  });

  test("returns a valid manifest and its exact bytes", async () => {
    const bytes = encode(JSON.stringify(valid));
    const result = await fetchManifest(store, await store.putRaw(bytes), { timeoutMs: 2_000 });
    assert.ok(result.ok);
    assert.deepEqual(result.manifest, valid);
    assert.deepEqual(result.bytes, bytes);
  });

  test("gives ManifestNotFound when the block does not appear within the timeout", async () => {
    const missing = await rawCid(encode(JSON.stringify({ ...valid, name: "never-published" })));
    const started = performance.now();
    const result = await fetchManifest(store, missing, { timeoutMs: 300 });
    const elapsed = performance.now() - started;
    assertFailure(result, FailureReason.ManifestNotFound, /not found within 300 ms/);
    assert.ok(elapsed >= 250 && elapsed < 2_000, `took ${elapsed} ms`);
  });

  test("finds a block published while it is still looking", async () => {
    const bytes = encode(JSON.stringify({ ...valid, name: "late" }));
    const cid = await rawCid(bytes);
    const publish = new Promise((resolve) => setTimeout(resolve, 150)).then(() => store.putRaw(bytes));
    const result = await fetchManifest(store, cid, { timeoutMs: 3_000 });
    await publish;
    assert.ok(result.ok);
    assert.equal(result.manifest.name, "late");
  });

  test("gives ManifestTooLarge for a 100 KiB block against the 64 KiB default", async () => {
    const bytes = encode(JSON.stringify({ ...valid, workload: { ...valid.workload, args: ["x".repeat(100 * 1024)] } }));
    assert.ok(bytes.byteLength > 100 * 1024);
    const result = await fetchManifest(store, await store.putRaw(bytes), { timeoutMs: 2_000 });
    assertFailure(result, FailureReason.ManifestTooLarge, /larger than 65536 bytes/);
  });

  test("honors a caller's maxBytes", async () => {
    const cid = await store.putRaw(encode(JSON.stringify(valid)));
    assertFailure(await fetchManifest(store, cid, { timeoutMs: 2_000, maxBytes: 16 }), FailureReason.ManifestTooLarge, /16 bytes/);
  });

  test("gives ManifestNotJson for text that is not JSON", async () => {
    const result = await fetchManifest(store, await store.putRaw(encode("hello world\n")), { timeoutMs: 2_000 });
    assertFailure(result, FailureReason.ManifestNotJson, /not UTF-8 JSON/);
  });

  test("gives ManifestNotJson for bytes that are not UTF-8", async () => {
    const result = await fetchManifest(store, await store.putRaw(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), { timeoutMs: 2_000 });
    assertFailure(result, FailureReason.ManifestNotJson, /not UTF-8 JSON/);
  });

  test("gives ManifestInvalid naming the first field at fault", async () => {
    const bytes = encode(JSON.stringify({ ...valid, resources: { ...valid.resources, vcpu: 0 } }));
    const result = await fetchManifest(store, await store.putRaw(bytes), { timeoutMs: 2_000 });
    assertFailure(result, FailureReason.ManifestInvalid, /^resources\.vcpu: /);
  });

  test("gives ManifestInvalid for JSON that is not an object", async () => {
    const result = await fetchManifest(store, await store.putRaw(encode("[1,2,3]")), { timeoutMs: 2_000 });
    assertFailure(result, FailureReason.ManifestInvalid, /^manifest: /);
  });

  test("throws, rather than blaming the tenant, when the node returns bytes that do not match the CID", async () => {
    const cid = await rawCid(encode(JSON.stringify({ ...valid, name: "original" })));
    await store.helia.blockstore.put(cid, encode(JSON.stringify({ ...valid, name: "forged" })));
    await assert.rejects(fetchManifest(store, cid, { timeoutMs: 2_000 }), ContentHashMismatchError);
  });

  test("rejects with the caller's reason when the caller aborts, and reports nothing", async () => {
    const reason = new Error("daemon stopping");
    const controller = new AbortController();
    setTimeout(() => controller.abort(reason), 100);
    const missing = await rawCid(encode("aborted while looking"));
    await assert.rejects(fetchManifest(store, missing, { timeoutMs: 5_000, signal: controller.signal }), (err) => err === reason);
  });

  describe("over the Kubo RPC API", () => {
    let rpc: KuboRpcServer;
    before(async () => {
      rpc = await startKuboRpcServer({ store, port: 0 });
    });
    after(async () => {
      await rpc.close();
    });

    test("issue 11 case 9: the provider's own hung IPFS node is its outage (thrown, retried), not the tenant's ManifestNotFound", async () => {
      // Accepts connections and never answers, like a wedged node.
      const sockets: Socket[] = [];
      const hung = createServer((socket) => void sockets.push(socket));
      await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
      try {
        const kubo = createKuboStore({ url: `http://127.0.0.1:${(hung.address() as { port: number }).port}` });
        const missing = await rawCid(encode("asked of a hung node"));
        await assert.rejects(fetchManifest(kubo, missing, { timeoutMs: 300 }), ContentStoreUnresponsiveError);
      } finally {
        for (const socket of sockets) socket.destroy();
        hung.close();
      }
    });

    test("gives the same answers as the embedded store", async () => {
      const kubo = createKuboStore({ url: rpc.url });
      const cid = await kubo.putRaw(encode(JSON.stringify(valid)));
      const found = await fetchManifest(kubo, cid, { timeoutMs: 2_000 });
      assert.ok(found.ok);
      assert.deepEqual(found.manifest, valid);
      const missing = await rawCid(encode("not on the node"));
      assertFailure(await fetchManifest(kubo, missing, { timeoutMs: 300 }), FailureReason.ManifestNotFound, /not found/);
    });
  });
});

describe("manifest digests", () => {
  const helloCid = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4";
  const helloDigest = "0xa948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447";

  test("the contract's sha2-256 digest and the CIDv1 raw CID convert both ways", () => {
    assert.equal(digestFromCid(CID.parse(helloCid)), helloDigest);
    assert.equal(manifestCidFromDigest(helloDigest).toString(), helloCid);
  });

  test("refuses CIDs the contract cannot hold and malformed digests", () => {
    assert.throws(() => digestFromCid(CID.parse("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")), UnsupportedCidError);
    assert.throws(() => manifestCidFromDigest("0x1234"), InvalidManifestDigestError);
    assert.throws(() => manifestCidFromDigest(`0x${"zz".repeat(32)}`), InvalidManifestDigestError);
  });
});
