import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import { Store, StoreError } from "./store.ts";

const hashA = `0x${"a".repeat(64)}` as const;
const hashB = `0x${"b".repeat(64)}` as const;
const maxUint256 = (1n << 256n) - 1n;
const at = (blockNumber: bigint) => ({ blockNumber, blockHash: hashA });
const operator = "0x00000000000000000000000000000000000000Aa" as const;
const signed = (txHash: `0x${string}`, rawTx: `0x${string}`, nonce = 0) => ({ txHash, rawTx, from: operator, nonce });

const root = mkdtempSync(join(tmpdir(), "novacron-store-"));
let file: string;
let store: Store;
let counter = 0;

beforeEach(() => {
  file = join(root, `case-${counter++}`, "daemon.sqlite");
  store = Store.open(file);
});
afterEach(() => store.close());
after(() => rmSync(root, { recursive: true, force: true }));

function reopen(): Store {
  store.close();
  store = Store.open(file);
  return store;
}

describe("Store.open", () => {
  it("creates the file in WAL mode with the current schema version", () => {
    assert.ok(existsSync(file));
    const db = new DatabaseSync(file);
    try {
      assert.equal(db.prepare("PRAGMA journal_mode").get()?.["journal_mode"], "wal");
      assert.equal(db.prepare("PRAGMA user_version").get()?.["user_version"], 6);
    } finally {
      db.close();
    }
  });

  it("refuses a file written by a newer daemon", () => {
    store.close();
    const db = new DatabaseSync(file);
    db.exec("PRAGMA user_version = 99");
    db.close();
    assert.throws(() => (store = Store.open(file)), {
      name: "StoreError",
      message: `the store at ${file} has schema version 99, this daemon knows up to 6; run a newer daemon or use another dataDir`,
    });
    store = Store.open(join(root, `case-${counter++}`, "daemon.sqlite"));
  });

  it("reports a file that is not a database", () => {
    const bad = join(root, "not-a-db.sqlite");
    writeFileSync(bad, "this is not sqlite, just text that is long enough to have a header ".repeat(10));
    assert.throws(() => Store.open(bad), (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.match(error.message, /^cannot open the store at .*not-a-db\.sqlite: file is not a database/);
      return true;
    });
  });
});

describe("binding", () => {
  const binding = { chainId: 31337, vmRegistry: "0x5FbDB2315678afecb367f032d93F642f64180aa3", provider: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" } as const;

  it("issue 11 case 7: binds a store to its chain id, registry and provider, and refuses others", () => {
    store.bind(binding);
    reopen().bind(binding);
    assert.throws(() => store.bind({ ...binding, chainId: 1 }), {
      name: "StoreError",
      message: "this store belongs to chain_id 31337, not 1; use another dataDir for another chain, registry or provider",
    });
    assert.throws(() => store.bind({ ...binding, vmRegistry: "0x0000000000000000000000000000000000000001" }), /belongs to vm_registry 0x5fbdb2315678afecb367f032d93f642f64180aa3/);
    assert.throws(() => store.bind({ ...binding, provider: "0x0000000000000000000000000000000000000002" }), /belongs to provider 0x70997970c51812dc3a010c7d01b50e0d17dc79c8/);
  });
});

describe("checkpoint", () => {
  it("is absent on a new store and persists across reopen", () => {
    assert.equal(store.getCheckpoint(), undefined);
    store.setCheckpoint({ blockNumber: 10n, blockHash: hashA });
    store.setCheckpoint({ blockNumber: 2n ** 40n, blockHash: hashB });
    assert.deepEqual(reopen().getCheckpoint(), { blockNumber: 2n ** 40n, blockHash: hashB });
  });

  it("rejects a malformed hash", () => {
    assert.throws(() => store.setCheckpoint({ blockNumber: 1n, blockHash: "0x12" }), {
      name: "StoreError",
      message: 'block hash "0x12" is not 0x followed by 64 hex digits',
    });
  });
});

describe("block hashes", () => {
  it("stores, deletes from a height upward, and prunes below a height", () => {
    for (let n = 1n; n <= 6n; n++) store.putBlockHash(n, n % 2n === 0n ? hashA : hashB);
    assert.equal(store.getBlockHash(2n), hashA);
    assert.equal(store.getBlockHash(7n), undefined);

    store.deleteBlocksFrom(5n);
    assert.equal(store.getBlockHash(4n), hashA);
    assert.equal(store.getBlockHash(5n), undefined);
    assert.equal(store.getBlockHash(6n), undefined);

    store.pruneFinal(3n);
    assert.equal(store.getBlockHash(2n), undefined);
    assert.equal(store.getBlockHash(3n), hashB);

    store.putBlockHash(3n, hashA);
    assert.equal(reopen().getBlockHash(3n), hashA);
  });
});

describe("VMs", () => {
  it("lists active VMs in numeric order, uint256 ids included", () => {
    for (const id of [100n, 2n, maxUint256, 10n]) store.upsertVm(id, at(5n));
    assert.deepEqual(reopen().listActiveVms(), [2n, 10n, 100n, maxUint256]);
    assert.ok(store.hasVm(maxUint256));
    assert.ok(!store.hasVm(3n));
  });

  it("drops a done VM from the active list but still knows it", () => {
    store.upsertVm(1n, at(5n));
    store.upsertVm(2n, at(6n));
    store.markVmDone(1n, 5n);
    assert.deepEqual(store.listActiveVms(), [2n]);
    assert.ok(store.hasVm(1n));
    store.markVmDone(1n, 5n);
    store.markVmDone(7n, 5n);
    assert.ok(store.hasVm(7n));
    assert.deepEqual(reopen().listActiveVms(), [2n]);
  });

  it("reactivates a done VM seen again (a reorg can undo its termination)", () => {
    store.upsertVm(1n, at(5n));
    store.markVmDone(1n, 5n);
    store.upsertVm(1n, at(4n));
    assert.deepEqual(store.listActiveVms(), [1n]);
  });

  it("keeps the earliest block that named a VM as its sighting", () => {
    assert.equal(store.getVmSighting(1n), undefined);
    store.upsertVm(1n, { blockNumber: 7n, blockHash: hashB });
    store.upsertVm(1n, { blockNumber: 9n, blockHash: hashA });
    assert.deepEqual(store.getVmSighting(1n), { blockNumber: 7n, blockHash: hashB });
    store.upsertVm(1n, { blockNumber: 5n, blockHash: hashA });
    assert.deepEqual(reopen().getVmSighting(1n), { blockNumber: 5n, blockHash: hashA });
  });

  it("issue 11 case 2: re-activates VMs marked done on a block after a reorg's common ancestor", () => {
    for (const id of [1n, 2n, 3n]) store.upsertVm(id, at(3n));
    store.markVmDone(1n, 8n);
    store.markVmDone(2n, 10n);
    store.markVmDone(3n, 12n);
    store.reactivateVmsDoneAfter(10n);
    assert.deepEqual(store.listActiveVms(), [3n]);
  });

  it("issue 11 case 11: prunes VMs done on a final block, never active ones or ones a reorg could re-activate", () => {
    for (const id of [1n, 2n, 3n]) store.upsertVm(id, at(3n));
    store.markVmDone(1n, 8n);
    store.markVmDone(2n, 12n);
    store.pruneFinal(10n);
    assert.ok(!store.hasVm(1n));
    assert.ok(store.hasVm(2n));
    assert.deepEqual(store.listActiveVms(), [3n]);
  });

  it("rejects ids outside uint256", () => {
    assert.throws(() => store.upsertVm(-1n, at(0n)), { name: "StoreError", message: "VM id -1 is not a uint256" });
    assert.throws(() => store.hasVm(maxUint256 + 1n), { name: "StoreError" });
  });
});

describe("transaction", () => {
  it("commits every write together", () => {
    store.transaction(() => {
      store.upsertVm(1n, at(9n));
      store.setCheckpoint({ blockNumber: 9n, blockHash: hashA });
    });
    reopen();
    assert.deepEqual(store.listActiveVms(), [1n]);
    assert.equal(store.getCheckpoint()?.blockNumber, 9n);
  });

  it("rolls back every write when the function throws", () => {
    store.setCheckpoint({ blockNumber: 1n, blockHash: hashA });
    assert.throws(
      () =>
        store.transaction(() => {
          store.upsertVm(1n, at(9n));
          store.setCheckpoint({ blockNumber: 9n, blockHash: hashB });
          throw new Error("crash before the block is done");
        }),
      /crash before the block is done/,
    );
    reopen();
    assert.deepEqual(store.listActiveVms(), []);
    assert.deepEqual(store.getCheckpoint(), { blockNumber: 1n, blockHash: hashA });
  });

  it("rolls back only a nested part that failed", () => {
    store.transaction(() => {
      store.upsertVm(1n, at(1n));
      assert.throws(() =>
        store.transaction(() => {
          store.upsertVm(2n, at(1n));
          throw new Error("inner");
        }),
      );
      store.upsertVm(3n, at(1n));
    });
    assert.deepEqual(reopen().listActiveVms(), [1n, 3n]);
  });

  it("refuses an async function and keeps none of its writes", async () => {
    assert.throws(
      () =>
        store.transaction(async () => {
          store.upsertVm(1n, at(1n));
          await Promise.resolve();
        }),
      { name: "StoreError", message: "Store.transaction takes a synchronous function; move the await outside the transaction" },
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(store.listActiveVms(), []);
  });
});

describe("intents", () => {
  it("survives a restart between recording, signing and finishing", () => {
    const id = store.addIntent({ vmId: 5n, action: "reportRunning", args: '{"vmId":"5"}' });
    assert.equal(typeof id, "number");

    // Crash after recording, before signing: the intent is open without a transaction.
    let [open] = reopen().openIntents();
    assert.ok(open);
    assert.equal(open.id, id);
    assert.equal(open.vmId, 5n);
    assert.equal(open.action, "reportRunning");
    assert.equal(open.args, '{"vmId":"5"}');
    assert.equal(open.txHash, undefined);
    assert.ok(Math.abs(open.createdAt - Date.now()) < 60_000);

    // Crash after signing, before or after broadcasting: the hash is there to look up, the bytes to send again.
    store.setIntentTx(id, signed(hashA, "0x02f86c"));
    [open] = reopen().openIntents();
    assert.equal(open?.txHash, hashA);
    assert.equal(open?.rawTx, "0x02f86c");
    assert.deepEqual(store.openIntentFor(5n, "reportRunning"), open);

    store.finishIntent(id, "mined");
    assert.deepEqual(reopen().openIntents(), []);
    assert.equal(store.openIntentFor(5n, "reportRunning"), undefined);
  });

  it("allows one open intent per VM and action", () => {
    const first = store.addIntent({ vmId: 5n, action: "reportRunning", args: "{}" });
    assert.throws(() => store.addIntent({ vmId: 5n, action: "reportRunning", args: "{}" }), {
      name: "StoreError",
      message: `VM 5 already has an open "reportRunning" intent (id ${first}); finish it before adding another`,
    });
    const other = store.addIntent({ vmId: 5n, action: "reportFailed", args: "{}" });
    const otherVm = store.addIntent({ vmId: 6n, action: "reportRunning", args: "{}" });
    store.finishIntent(first, "superseded");
    const again = store.addIntent({ vmId: 5n, action: "reportRunning", args: "{}" });
    assert.deepEqual(
      store.openIntents().map((intent) => intent.id),
      [other, otherVm, again],
    );
    assert.ok(again > first);
  });

  it("finishes idempotently and refuses contradictions", () => {
    const id = store.addIntent({ vmId: 1n, action: "bid", args: "[]" });
    store.finishIntent(id, "reverted");
    store.finishIntent(id, "reverted");
    assert.throws(() => store.finishIntent(id, "mined"), {
      name: "StoreError",
      message: `intent ${id} is already finished as reverted, not mined`,
    });
    assert.throws(() => store.setIntentTx(id, signed(hashB, "0x02")), {
      name: "StoreError",
      message: `intent ${id} is already finished (reverted); it cannot take another transaction`,
    });
    assert.throws(() => store.finishIntent(999, "dropped"), { name: "StoreError", message: "intent 999 does not exist" });
    assert.throws(() => store.setIntentTx(999, signed(hashA, "0x02")), { name: "StoreError", message: "intent 999 does not exist" });
  });

  it("issue 11 case 3: journals every transaction of an intent and moves the key's next nonce with each", () => {
    const id = store.addIntent({ vmId: 7n, action: "reportRunning", args: "{}" });
    assert.equal(store.nextNonce(operator), undefined);
    store.setIntentTx(id, signed(hashA, "0x01", 4));
    // A fee replacement: same nonce, another hash; the newest is the intent's, both stay in the journal.
    store.setIntentTx(id, signed(hashB, "0x02", 4));
    const [open] = reopen().openIntents();
    assert.equal(open?.txHash, hashB);
    assert.deepEqual(store.intentTxs(id), [
      { txHash: hashA, rawTx: "0x01" },
      { txHash: hashB, rawTx: "0x02" },
    ]);
    assert.equal(store.nextNonce(operator.toLowerCase() as typeof operator), 5);
    // A re-sync may move the counter back (to fill a gap), a journalled transaction only forward.
    store.setNextNonce(operator, 3);
    assert.equal(reopen().nextNonce(operator), 3);
    const other = store.addIntent({ vmId: 8n, action: "reportRunning", args: "{}" });
    store.setIntentTx(other, signed(`0x${"c".repeat(64)}`, "0x03", 2));
    assert.equal(store.nextNonce(operator), 3);
    assert.throws(() => store.setIntentTx(other, signed(hashA, "0x03", -1)), { name: "StoreError", message: `nonce -1 for intent ${other} is not a non-negative integer` });

    store.finishIntent(id, "mined");
    store.pruneIntentsFinishedBefore(Date.now() + 1);
    assert.deepEqual(store.intentTxs(id), []);
    assert.equal(store.intentTxs(other).length, 1);
  });

  it("issue 11 case 3: an open intent journalled by a version 5 store keeps its transaction after the upgrade", () => {
    const id = store.addIntent({ vmId: 9n, action: "reportRunning", args: "{}" });
    store.setIntentTx(id, signed(hashA, "0x01", 0));
    store.close();
    // Back to version 5: one transaction per intent, in the intents row only.
    const db = new DatabaseSync(file);
    db.exec("DROP TABLE intent_txs; DROP TABLE nonces; PRAGMA user_version = 5");
    db.close();
    store = Store.open(file);
    assert.deepEqual(store.intentTxs(id), [{ txHash: hashA, rawTx: "0x01" }]);
  });

  it("issue 11 case 11: prunes intents finished before a time, never open ones", () => {
    const old = store.addIntent({ vmId: 1n, action: "reportRunning", args: "{}" });
    store.finishIntent(old, "mined");
    const open = store.addIntent({ vmId: 2n, action: "reportRunning", args: "{}" });
    store.pruneIntentsFinishedBefore(Date.now() + 1);
    assert.throws(() => store.finishIntent(old, "mined"), { message: `intent ${old} does not exist` });
    assert.deepEqual(store.openIntents().map((intent) => intent.id), [open]);
  });

  it("rejects args that are not JSON", () => {
    assert.throws(() => store.addIntent({ vmId: 1n, action: "bid", args: "price=5" }), {
      name: "StoreError",
      message: "intent args for VM 1 bid are not JSON: price=5",
    });
    assert.deepEqual(store.openIntents(), []);
  });
});
