import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import { RAW_BLOCK_MAX_BYTES, rawCid } from "./block.ts";
import { createEmbeddedStore, type EmbeddedStore } from "./embedded.ts";
import { ContentHashMismatchError, ContentNotFoundError, ContentTooLargeError, UnsupportedCidError } from "./types.ts";

const HELLO = new TextEncoder().encode("hello world\n");
const HELLO_CID = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4";
const read = (store: EmbeddedStore, cid: CID, maxBytes = 1024) =>
  store.getRaw(cid, { signal: AbortSignal.timeout(5_000), maxBytes });

describe("embedded store", () => {
  let directory: string;
  let store: EmbeddedStore;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), "novacron-embedded-"));
    store = await createEmbeddedStore({ directory });
  });
  after(async () => {
    await store.close();
    await rm(directory, { recursive: true, force: true });
  });

  test("putRaw stores one raw block under the CID Kubo gives with --cid-version=1 --raw-leaves", async () => {
    const cid = await store.putRaw(HELLO);
    assert.equal(cid.toString(), HELLO_CID);
    assert.deepEqual(await read(store, cid), HELLO);
    assert.equal(await store.helia.pins.isPinned(cid), true);
  });

  test("putRaw of content already stored returns the same CID", async () => {
    assert.equal((await store.putRaw(HELLO)).toString(), HELLO_CID);
  });

  test("blocks persist in <directory>/blocks across a restart", async () => {
    const bytes = new TextEncoder().encode("survives a restart");
    const cid = await store.putRaw(bytes);
    await store.close();
    store = await createEmbeddedStore({ directory });
    assert.deepEqual(await read(store, cid), bytes);
    assert.ok((await readdir(join(directory, "blocks"), { recursive: true })).some((name) => name.endsWith(".data")));
  });

  test("getRaw of an absent block fails at once with ContentNotFoundError", async () => {
    const missing = await rawCid(new TextEncoder().encode("never stored"));
    const started = performance.now();
    await assert.rejects(read(store, missing), ContentNotFoundError);
    assert.ok(performance.now() - started < 1_000);
  });

  test("getRaw refuses a block larger than maxBytes", async () => {
    const cid = await store.putRaw(new Uint8Array(100 * 1024).fill(7));
    await assert.rejects(read(store, cid, 64 * 1024), (err: unknown) => {
      assert.ok(err instanceof ContentTooLargeError);
      assert.equal(err.maxBytes, 64 * 1024);
      return true;
    });
    assert.equal((await read(store, cid, 100 * 1024)).byteLength, 100 * 1024);
  });

  test("getRaw detects a stored block that does not hash to its CID", async () => {
    const cid = await rawCid(new TextEncoder().encode("the real content"));
    await store.helia.blockstore.put(cid, new TextEncoder().encode("tampered content"));
    await assert.rejects(read(store, cid), ContentHashMismatchError);
  });

  test("getRaw rejects with the signal's reason when the signal is aborted", async () => {
    const reason = new Error("shutting down");
    await assert.rejects(store.getRaw(CID.parse(HELLO_CID), { signal: AbortSignal.abort(reason), maxBytes: 1024 }), (err) => err === reason);
  });

  test("getRaw refuses CIDs that are not CIDv1 raw sha2-256", async () => {
    const cidV0 = CID.parse("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
    await assert.rejects(read(store, cidV0), UnsupportedCidError);
  });

  test("putRaw accepts 256 KiB and refuses anything that would not be one block", async () => {
    await store.putRaw(new Uint8Array(RAW_BLOCK_MAX_BYTES));
    await assert.rejects(store.putRaw(new Uint8Array(RAW_BLOCK_MAX_BYTES + 1)), ContentTooLargeError);
  });
});
