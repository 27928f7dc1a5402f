import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { StatementSync } from "node:sqlite";
import type { Address, Hex } from "viem";
import type { BlockRef } from "../chain/blocks.ts";

export interface Checkpoint {
  /** Last block whose logs are fully applied. */
  blockNumber: bigint;
  blockHash: Hex;
}

export type IntentOutcome = "mined" | "reverted" | "dropped" | "superseded";

/** A transaction the daemon decided to send, recorded before it is broadcast. */
export interface Intent {
  id: number;
  vmId: bigint;
  /** What the transaction does, e.g. "reportRunning". At most one open intent per VM and action. */
  action: string;
  /** JSON of the call's arguments, enough to rebuild the transaction. */
  args: string;
  /** Hash of the newest signed transaction for this intent, once known; {@link Store.intentTxs} has them all. */
  txHash?: Hex;
  /** That transaction's signed bytes, journalled before it was broadcast. */
  rawTx?: Hex;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

export class StoreError extends Error {
  override readonly name = "StoreError";
}

/**
 * Each entry upgrades the schema by one version; `PRAGMA user_version` holds
 * how many have run. Append, never edit: a deployed file has run the old text.
 */
const migrations = [
  `
  CREATE TABLE checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    block_number INTEGER NOT NULL,
    block_hash TEXT NOT NULL
  );
  -- Hashes of recent blocks, so a reorg shows up as a parent hash we did not see.
  CREATE TABLE blocks (
    number INTEGER PRIMARY KEY,
    hash TEXT NOT NULL
  );
  -- uint256 ids do not fit SQLite's 64-bit INTEGER; they are canonical decimal TEXT.
  CREATE TABLE vms (
    vm_id TEXT PRIMARY KEY,
    first_seen_block INTEGER,
    last_seen_block INTEGER,
    done INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1))
  );
  -- AUTOINCREMENT keeps ids increasing forever, so "oldest first" is "lowest id first".
  CREATE TABLE intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vm_id TEXT NOT NULL,
    action TEXT NOT NULL,
    args TEXT NOT NULL,
    tx_hash TEXT,
    outcome TEXT CHECK (outcome IN ('mined', 'reverted', 'dropped', 'superseded')),
    created_at INTEGER NOT NULL,
    finished_at INTEGER
  );
  -- Two open intents for the same report would mean two transactions for it.
  CREATE UNIQUE INDEX intents_one_open ON intents (vm_id, action) WHERE outcome IS NULL;
  `,
  `
  -- The hash of first_seen_block: a VM is forgotten only once that block has left the chain.
  -- Version 1 recorded the end block of the log's chunk, whose hash the blocks table may still hold.
  ALTER TABLE vms ADD COLUMN first_seen_hash TEXT;
  UPDATE vms SET first_seen_hash = (SELECT hash FROM blocks WHERE blocks.number = vms.first_seen_block);
  `,
  `
  -- What this file's checkpoint, blocks and VMs are about; set once, then checked on every start.
  CREATE TABLE binding (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    chain_id INTEGER NOT NULL,
    vm_registry TEXT NOT NULL,
    provider TEXT NOT NULL
  );
  `,
  `
  -- The confirmed block whose state let the daemon mark the VM done; a reorg to before it re-activates the VM.
  ALTER TABLE vms ADD COLUMN done_block INTEGER;
  `,
  `
  -- The signed transaction itself, journalled before it is broadcast, so a restart can send it again.
  ALTER TABLE intents ADD COLUMN raw_tx TEXT;
  `,
  `
  -- Every transaction signed for an intent: the first, each fee replacement (same nonce), and one signed
  -- anew after another transaction took its nonce. A restart settles the intent from whichever one mined.
  CREATE TABLE intent_txs (
    tx_hash TEXT PRIMARY KEY,
    intent_id INTEGER NOT NULL,
    raw_tx TEXT NOT NULL
  );
  CREATE INDEX intent_txs_by_intent ON intent_txs (intent_id);
  INSERT INTO intent_txs (tx_hash, intent_id, raw_tx)
    SELECT tx_hash, id, raw_tx FROM intents WHERE tx_hash IS NOT NULL AND raw_tx IS NOT NULL;
  -- The next nonce each sending key hands out, moved with every transaction journalled.
  CREATE TABLE nonces (
    account TEXT PRIMARY KEY,
    next_nonce INTEGER NOT NULL
  );
  `,
];

/** A signed transaction for an intent, as journalled before it is broadcast. */
export interface IntentTx {
  txHash: Hex;
  rawTx: Hex;
}

/** The chain, registry and provider a store's contents belong to. */
export interface StoreBinding {
  chainId: number;
  vmRegistry: Address;
  provider: Address;
}

const maxUint256 = (1n << 256n) - 1n;
const hash32 = /^0x[0-9a-fA-F]{64}$/;

function vmKey(vmId: bigint): string {
  if (vmId < 0n || vmId > maxUint256) throw new StoreError(`VM id ${vmId} is not a uint256`);
  return vmId.toString();
}

function blockKey(blockNumber: bigint): bigint {
  if (blockNumber < 0n || blockNumber >= 1n << 63n) throw new StoreError(`block number ${blockNumber} is out of range`);
  return blockNumber;
}

function hash32Hex(what: string, hash: string): Hex {
  if (!hash32.test(hash)) throw new StoreError(`${what} ${JSON.stringify(hash)} is not 0x followed by 64 hex digits`);
  return hash as Hex;
}

/**
 * The daemon's local state in one SQLite file (WAL mode). Every method is
 * synchronous; group writes that must land together in {@link Store.transaction}.
 */
export class Store {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  #depth = 0;
  #closed = false;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Opens (creating when absent) the store file and brings its schema up to date. */
  static open(path: string): Store {
    let db: DatabaseSync;
    try {
      mkdirSync(dirname(path), { recursive: true });
      db = new DatabaseSync(path);
      db.exec("PRAGMA journal_mode = WAL");
      // FULL syncs every commit: an intent that vanished in a power cut could let a report be sent twice.
      db.exec("PRAGMA synchronous = FULL");
      // Lets `inspect` commands read while the daemon writes.
      db.exec("PRAGMA busy_timeout = 5000");
    } catch (error) {
      throw new StoreError(`cannot open the store at ${path}: ${(error as Error).message}`, { cause: error });
    }
    const store = new Store(db);
    try {
      store.#migrate(path);
    } catch (error) {
      db.close();
      throw error;
    }
    return store;
  }

  #migrate(path: string): void {
    this.transaction(() => {
      const version = Number(this.#db.prepare("PRAGMA user_version").get()?.["user_version"] ?? 0);
      if (version > migrations.length) {
        throw new StoreError(
          `the store at ${path} has schema version ${version}, this daemon knows up to ${migrations.length}; run a newer daemon or use another dataDir`,
        );
      }
      for (const sql of migrations.slice(version)) this.#db.exec(sql);
      this.#db.exec(`PRAGMA user_version = ${migrations.length}`);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  /**
   * Runs `fn` in one transaction: all of its writes land, or none do. Nests
   * (inner calls become savepoints). `fn` must be synchronous, since writes
   * after an `await` would run outside the transaction.
   */
  transaction<T>(fn: () => T): T {
    const depth = this.#depth;
    const savepoint = `nested_${depth}`;
    this.#db.exec(depth === 0 ? "BEGIN IMMEDIATE" : `SAVEPOINT ${savepoint}`);
    this.#depth++;
    try {
      const result = fn();
      if (result instanceof Promise) {
        result.catch(() => undefined);
        throw new StoreError("Store.transaction takes a synchronous function; move the await outside the transaction");
      }
      this.#db.exec(depth === 0 ? "COMMIT" : `RELEASE ${savepoint}`);
      return result;
    } catch (error) {
      try {
        this.#db.exec(depth === 0 ? "ROLLBACK" : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
      } catch {
        // SQLite already rolled back (e.g. a failed COMMIT); the caller needs the original error.
      }
      throw error;
    } finally {
      this.#depth--;
    }
  }

  #statement(sql: string): StatementSync {
    if (this.#closed) throw new StoreError("the store is closed");
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * Binds a new store to `binding`, or checks that an existing one was bound to it:
   * a checkpoint or a VM list from another chain, registry or provider is meaningless here.
   * @throws {StoreError} when the store belongs to another chain, registry or provider.
   */
  bind(binding: StoreBinding): void {
    const wanted = { chain_id: binding.chainId, vm_registry: binding.vmRegistry.toLowerCase(), provider: binding.provider.toLowerCase() };
    const row = this.#statement("SELECT chain_id, vm_registry, provider FROM binding WHERE id = 1").get();
    if (row === undefined) {
      this.#statement("INSERT INTO binding (id, chain_id, vm_registry, provider) VALUES (1, ?, ?, ?)").run(wanted.chain_id, wanted.vm_registry, wanted.provider);
      return;
    }
    for (const [field, value] of Object.entries(wanted)) {
      if (row[field] !== value) {
        throw new StoreError(`this store belongs to ${field} ${String(row[field])}, not ${value}; use another dataDir for another chain, registry or provider`);
      }
    }
  }

  getCheckpoint(): Checkpoint | undefined {
    const statement = this.#statement("SELECT block_number, block_hash FROM checkpoint WHERE id = 1");
    statement.setReadBigInts(true);
    const row = statement.get();
    if (row === undefined) return undefined;
    return { blockNumber: row["block_number"] as bigint, blockHash: row["block_hash"] as Hex };
  }

  setCheckpoint(checkpoint: Checkpoint): void {
    this.#statement(
      `INSERT INTO checkpoint (id, block_number, block_hash) VALUES (1, ?, ?)
       ON CONFLICT (id) DO UPDATE SET block_number = excluded.block_number, block_hash = excluded.block_hash`,
    ).run(blockKey(checkpoint.blockNumber), hash32Hex("block hash", checkpoint.blockHash));
  }

  putBlockHash(blockNumber: bigint, hash: Hex): void {
    this.#statement(
      "INSERT INTO blocks (number, hash) VALUES (?, ?) ON CONFLICT (number) DO UPDATE SET hash = excluded.hash",
    ).run(blockKey(blockNumber), hash32Hex("block hash", hash));
  }

  getBlockHash(blockNumber: bigint): Hex | undefined {
    const row = this.#statement("SELECT hash FROM blocks WHERE number = ?").get(blockKey(blockNumber));
    return row === undefined ? undefined : (row["hash"] as Hex);
  }

  /** Forgets `blockNumber` and every later block (they were reorged out). */
  deleteBlocksFrom(blockNumber: bigint): void {
    this.#statement("DELETE FROM blocks WHERE number >= ?").run(blockKey(blockNumber));
  }

  /**
   * Forgets what no reorg can need again once `finalBlock` is final: block
   * hashes below it and VMs marked done on it or before.
   */
  pruneFinal(finalBlock: bigint): void {
    this.#statement("DELETE FROM blocks WHERE number < ?").run(blockKey(finalBlock));
    this.#statement("DELETE FROM vms WHERE done = 1 AND done_block <= ?").run(blockKey(finalBlock));
  }

  /**
   * Records that a log for this VM was seen in block `seenAt`; the earliest
   * such block is kept as the VM's first sighting. A VM marked done becomes
   * active again: a reorg can undo its termination, and a VM that is still
   * terminal costs one more reconcile pass before it is done again.
   */
  upsertVm(vmId: bigint, seenAt: BlockRef): void {
    this.#statement(
      `INSERT INTO vms (vm_id, first_seen_block, first_seen_hash, last_seen_block, done) VALUES (?1, ?2, ?3, ?2, 0)
       ON CONFLICT (vm_id) DO UPDATE SET
         first_seen_hash = CASE WHEN first_seen_block IS NULL OR excluded.first_seen_block < first_seen_block
                           THEN excluded.first_seen_hash ELSE first_seen_hash END,
         first_seen_block = coalesce(min(first_seen_block, excluded.first_seen_block), excluded.first_seen_block),
         last_seen_block = max(coalesce(last_seen_block, excluded.last_seen_block), excluded.last_seen_block),
         done = 0`,
    ).run(vmKey(vmId), blockKey(seenAt.blockNumber), hash32Hex("block hash", seenAt.blockHash));
  }

  /** The first block a log named this VM in, when its hash is known. */
  getVmSighting(vmId: bigint): BlockRef | undefined {
    const statement = this.#statement("SELECT first_seen_block, first_seen_hash FROM vms WHERE vm_id = ?");
    statement.setReadBigInts(true);
    const row = statement.get(vmKey(vmId));
    if (row === undefined || row["first_seen_block"] === null || row["first_seen_hash"] === null) return undefined;
    return { blockNumber: row["first_seen_block"] as bigint, blockHash: row["first_seen_hash"] as Hex };
  }

  /** VMs not yet done, in ascending id order. */
  listActiveVms(): bigint[] {
    // Canonical decimals sort numerically by (length, text).
    return this.#statement("SELECT vm_id FROM vms WHERE done = 0 ORDER BY length(vm_id), vm_id")
      .all()
      .map((row) => BigInt(row["vm_id"] as string));
  }

  /** The VM is terminal on-chain at `atBlock` and its workload is gone; reconcile stops visiting it. */
  markVmDone(vmId: bigint, atBlock: bigint): void {
    this.#statement(
      "INSERT INTO vms (vm_id, done, done_block) VALUES (?1, 1, ?2) ON CONFLICT (vm_id) DO UPDATE SET done = 1, done_block = ?2",
    ).run(vmKey(vmId), blockKey(atBlock));
  }

  /** A reorg rewound the chain to `ancestor`: VMs marked done on a later block's state are active again. */
  reactivateVmsDoneAfter(ancestor: bigint): void {
    this.#statement("UPDATE vms SET done = 0 WHERE done = 1 AND done_block > ?").run(blockKey(ancestor));
  }

  hasVm(vmId: bigint): boolean {
    return this.#statement("SELECT 1 FROM vms WHERE vm_id = ?").get(vmKey(vmId)) !== undefined;
  }

  /**
   * Records a transaction about to be sent and returns its id. Call it before
   * signing, and {@link Store.setIntentTx} after signing, before broadcasting.
   * @throws {StoreError} when the VM already has an open intent for `action`.
   */
  addIntent(intent: { vmId: bigint; action: string; args: string }): number {
    try {
      JSON.parse(intent.args);
    } catch {
      throw new StoreError(`intent args for VM ${intent.vmId} ${intent.action} are not JSON: ${intent.args.slice(0, 80)}`);
    }
    const open = this.openIntentFor(intent.vmId, intent.action);
    if (open !== undefined) {
      throw new StoreError(
        `VM ${intent.vmId} already has an open "${intent.action}" intent (id ${open.id}); finish it before adding another`,
      );
    }
    const result = this.#statement(
      "INSERT INTO intents (vm_id, action, args, created_at) VALUES (?, ?, ?, ?)",
    ).run(vmKey(intent.vmId), intent.action, intent.args, Date.now());
    return Number(result.lastInsertRowid);
  }

  /**
   * Records a signed transaction for the intent before it is broadcast (again for each replacement):
   * its hash and bytes become the intent's newest, join the intent's list, and `from`'s next nonce
   * moves past `nonce`, all in one transaction.
   */
  setIntentTx(id: number, tx: { txHash: Hex; rawTx: Hex; from: Address; nonce: number }): void {
    const { txHash, rawTx, from, nonce } = tx;
    if (!/^0x([0-9a-fA-F]{2})+$/.test(rawTx)) throw new StoreError(`signed transaction for intent ${id} is not 0x followed by hex bytes`);
    if (!Number.isSafeInteger(nonce) || nonce < 0) throw new StoreError(`nonce ${nonce} for intent ${id} is not a non-negative integer`);
    this.transaction(() => {
      const result = this.#statement("UPDATE intents SET tx_hash = ?, raw_tx = ? WHERE id = ? AND outcome IS NULL").run(
        hash32Hex("transaction hash", txHash),
        rawTx,
        id,
      );
      if (result.changes === 0) {
        const outcome = this.#outcome(id);
        throw new StoreError(`intent ${id} is already finished (${outcome}); it cannot take another transaction`);
      }
      this.#statement("INSERT INTO intent_txs (tx_hash, intent_id, raw_tx) VALUES (?, ?, ?) ON CONFLICT (tx_hash) DO NOTHING").run(txHash, id, rawTx);
      this.#statement(
        `INSERT INTO nonces (account, next_nonce) VALUES (?1, ?2)
         ON CONFLICT (account) DO UPDATE SET next_nonce = max(next_nonce, excluded.next_nonce)`,
      ).run(from.toLowerCase(), nonce + 1);
    });
  }

  /** Every transaction signed for the intent, oldest first. */
  intentTxs(id: number): IntentTx[] {
    return this.#statement("SELECT tx_hash, raw_tx FROM intent_txs WHERE intent_id = ? ORDER BY rowid")
      .all(id)
      .map((row) => ({ txHash: row["tx_hash"] as Hex, rawTx: row["raw_tx"] as Hex }));
  }

  /** The next nonce `account` hands out, as last journalled or re-synced. */
  nextNonce(account: Address): number | undefined {
    const row = this.#statement("SELECT next_nonce FROM nonces WHERE account = ?").get(account.toLowerCase());
    return row === undefined ? undefined : Number(row["next_nonce"]);
  }

  /** Re-syncs `account`'s next nonce (from the chain and the open intents); it may move back to fill a gap. */
  setNextNonce(account: Address, next: number): void {
    if (!Number.isSafeInteger(next) || next < 0) throw new StoreError(`next nonce ${next} is not a non-negative integer`);
    this.#statement(
      "INSERT INTO nonces (account, next_nonce) VALUES (?1, ?2) ON CONFLICT (account) DO UPDATE SET next_nonce = excluded.next_nonce",
    ).run(account.toLowerCase(), next);
  }

  /** Closes the intent. Finishing it again with the same outcome is a no-op. */
  finishIntent(id: number, outcome: IntentOutcome): void {
    const result = this.#statement(
      "UPDATE intents SET outcome = ?, finished_at = ? WHERE id = ? AND outcome IS NULL",
    ).run(outcome, Date.now(), id);
    if (result.changes === 0) {
      const current = this.#outcome(id);
      if (current !== outcome) throw new StoreError(`intent ${id} is already finished as ${current}, not ${outcome}`);
    }
  }

  /** Forgets intents finished before `time` (ms since the epoch); open ones stay. */
  pruneIntentsFinishedBefore(time: number): void {
    this.transaction(() => {
      this.#statement("DELETE FROM intent_txs WHERE intent_id IN (SELECT id FROM intents WHERE outcome IS NOT NULL AND finished_at < ?)").run(time);
      this.#statement("DELETE FROM intents WHERE outcome IS NOT NULL AND finished_at < ?").run(time);
    });
  }

  #outcome(id: number): IntentOutcome {
    const row = this.#statement("SELECT outcome FROM intents WHERE id = ?").get(id);
    if (row === undefined) throw new StoreError(`intent ${id} does not exist`);
    return row["outcome"] as IntentOutcome;
  }

  /** Intents not yet finished, oldest first: the sender resumes these after a restart. */
  openIntents(): Intent[] {
    return this.#statement(
      "SELECT id, vm_id, action, args, tx_hash, raw_tx, created_at FROM intents WHERE outcome IS NULL ORDER BY id",
    )
      .all()
      .map(toIntent);
  }

  openIntentFor(vmId: bigint, action: string): Intent | undefined {
    const row = this.#statement(
      "SELECT id, vm_id, action, args, tx_hash, raw_tx, created_at FROM intents WHERE vm_id = ? AND action = ? AND outcome IS NULL",
    ).get(vmKey(vmId), action);
    return row === undefined ? undefined : toIntent(row);
  }
}

function toIntent(row: Record<string, unknown>): Intent {
  const intent: Intent = {
    id: Number(row["id"]),
    vmId: BigInt(row["vm_id"] as string),
    action: row["action"] as string,
    args: row["args"] as string,
    createdAt: Number(row["created_at"]),
  };
  if (row["tx_hash"] !== null) intent.txHash = row["tx_hash"] as Hex;
  if (row["raw_tx"] !== null) intent.rawTx = row["raw_tx"] as Hex;
  return intent;
}
