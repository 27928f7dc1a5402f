import { setTimeout as sleep } from "node:timers/promises";
import type { Address, Hash, Hex } from "viem";
import {
  BaseError,
  ContractFunctionRevertedError,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
  encodeFunctionData,
  keccak256,
  parseGwei,
  parseTransaction,
} from "viem";
import type { Logger } from "pino";
import type { Intent, IntentTx, Store } from "../store/store.ts";
import { vmRegistryAbi } from "./abi.generated.ts";
import type { ChainClients } from "./clients.ts";
import { errorMessage } from "./errors.ts";
import { cappedFees, meetsMarket, replacementFees, type Fees } from "./fees.ts";
import { createNonceCounter } from "./nonces.ts";

export type ReportAction = "reportProvisioning" | "reportRunning" | "reportFailed";
export type ReportOutcome = "mined" | "reverted" | "skipped";

/**
 * The chain refuses this daemon's reports for a reason that no retry fixes:
 * its key is not the provider's operator any more, or the RPC serves another
 * chain. Reporting stops until an operator restarts the daemon with the right
 * key or RPC; `/healthz` shows why.
 */
export class ReportingHaltedError extends Error {
  override readonly name = "ReportingHaltedError";
}

/** The VM moved on (the tenant stopped it, another report landed first): the report is not needed any more. */
const SUPERSEDED_ERRORS = new Set(["VmRegistryUnexpectedState"]);
/** The key is not the operator of the VM's provider: every later report would revert too. */
const OPERATOR_ERRORS = new Set(["VmRegistryNotOperator", "VmRegistryNotAnOperator"]);

/** How long finished intents stay in the journal for inspection; older ones are pruned at start. */
const INTENT_RETENTION_MS = 30 * 24 * 3600 * 1000;

/** Broadcast retries wait 0.5 s, 1 s, 2 s ... up to 8 s; after the last, the check for dropped transactions sends again. */
const BROADCAST_BACKOFF_MS = 500;
const BROADCAST_BACKOFF_MAX_MS = 8_000;
const BROADCAST_ATTEMPTS = 6;

/**
 * Answers, not failures: the node already holds the transaction, its nonce is used (the receipt
 * check decides), another of ours with this nonce and higher fees is in the pool, or a nonce below
 * it is missing (the gap is filled, then the dropped-transaction check sends it again).
 */
const BROADCAST_ANSWERS = [
  /already known|known transaction|already imported/i,
  /nonce too low|nonce has already been used|nonce is too low/i,
  /replacement transaction underpriced|underpriced replacement/i,
  /nonce too high|can't be queued/i,
];

export type ReportSenderParameters = ChainClients & {
  store: Store;
  vmRegistry: Address;
  logger: Logger;
  /** How long `send` waits for a receipt before failing the pass; the report stays in flight. In ms. Default: 60000. */
  receiptTimeoutMs?: number;
  /** Blocks a report may wait unmined at the head of the queue (or below the market fee) before it is replaced. Default: 3. */
  replaceAfterBlocks?: number;
  /** The most the operator pays per gas, in wei; replacements stop there. Default: 1000 gwei. */
  maxFeePerGas?: bigint;
  onOutcome?: (action: ReportAction, outcome: ReportOutcome | "error") => void;
};

type SignedTx = IntentTx & { nonce: number; fees: Fees };
type SigningRequest = { data: Hex; gas: bigint; fees: Fees; nonce?: number };
type Outcome = "mined" | "reverted" | "superseded" | "dropped";

/** A report whose transaction is signed and journalled, and not yet settled by a receipt. */
type Flight = {
  /** The journal's intent, once the first transaction is journalled (or left open by an earlier run). */
  intentId?: number;
  vmId: bigint;
  action: ReportAction;
  reason: number;
  /** Oldest first; the newest is the one broadcast. All share a nonce, unless another transaction took it. */
  txs: SignedTx[];
  /** The head when the newest transaction was broadcast, and when the first was; set by the next check when unknown. */
  sentAt?: bigint;
  firstSentAt?: bigint;
  /** Since when the nonce is used on-chain with no receipt of ours. */
  nonceTakenSince?: bigint;
  broadcastError?: string;
  trouble?: string;
  /** A broadcast loop or a re-signing runs; the checks leave the flight alone meanwhile. */
  busy: boolean;
  outcome: Promise<ReportOutcome>;
  settle: (outcome: ReportOutcome) => void;
  abandon: (error: Error) => void;
};

/**
 * Sends the operator's status reports, many at once from one key. Each report
 * is simulated against the pending block, signed with a nonce from a local
 * counter, journalled (intent, hash and signed bytes), and only then broadcast,
 * so that a report the chain no longer accepts costs no gas and a crash
 * anywhere is resolved from the journal on restart, without a second
 * transaction. While reports are in flight, one check per poll settles
 * them from receipts, sends again what the node dropped, replaces what is stuck
 * with higher fees (same nonce), and signs anew what lost its nonce to another
 * transaction; `degraded()` says what is wrong meanwhile.
 */
export function createReportSender(parameters: ReportSenderParameters) {
  const { publicClient, account, store, vmRegistry, logger } = parameters;
  const chainId = parameters.walletClient.chain.id;
  const receiptTimeoutMs = parameters.receiptTimeoutMs ?? 60_000;
  const replaceAfterBlocks = BigInt(parameters.replaceAfterBlocks ?? 3);
  const feeCap = parameters.maxFeePerGas ?? parseGwei("1000");
  const pollMs = publicClient.pollingInterval;
  const nonces = createNonceCounter({ client: publicClient, store, address: account.address, logger });
  /** By VM and action: at most one report of each in flight, as the journal allows one open intent. */
  const flights = new Map<string, Flight>();
  const keyOf = (vmId: bigint, action: string) => `${vmId}/${action}`;
  /** Signing requests waiting for the next journal write; one write (one fsync) takes them all. */
  let unsigned: Array<{ flight: Flight; request: SigningRequest; resolve: (tx: SignedTx) => void; reject: (error: unknown) => void }> = [];
  /** Nonces found missing below ours in flight, and the head when last seen missing. */
  const gaps = new Map<number, bigint>();
  /** While a check runs, settled reports are finished in one write at its end. */
  let settling: Array<{ flight: Flight; outcome: Outcome }> | undefined;
  const stopped = new AbortController();
  let halted: ReportingHaltedError | undefined;
  let head: bigint | undefined;
  // Taking a nonce, signing and journalling run one at a time; everything else runs in parallel.
  let signing: Promise<unknown> = Promise.resolve();
  let checking: Promise<void> | undefined;
  let chainCheck: { at: number; done: Promise<void> } | undefined;
  let market: { at: number; fees: Promise<Fees> } | undefined;

  function halt(message: string): never {
    halted = new ReportingHaltedError(message);
    logger.error({ msg: "reporting halted", error: message });
    throw halted;
  }

  function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = signing.then(fn);
    signing = run.catch(() => undefined);
    return run;
  }

  /** Signing for one chain and sending to another would only ever fail; checked at most once a poll, before reports. */
  function checkChain(): Promise<void> {
    if (chainCheck === undefined || Date.now() - chainCheck.at >= pollMs) {
      const done = publicClient.getChainId().then((served) => {
        if (served !== chainId) halt(`the RPC now serves chain ${served}, but reports are signed for chain ${chainId}; fix rpcUrl and restart`);
      });
      chainCheck = { at: Date.now(), done };
      done.catch(() => (chainCheck = undefined));
    }
    return chainCheck.done;
  }

  /** What the chain asks per gas now, asked at most once a poll. */
  function marketFees(): Promise<Fees> {
    if (market === undefined || Date.now() - market.at >= pollMs) {
      const fees = publicClient.estimateFeesPerGas({ type: "eip1559" }) as Promise<Fees>;
      market = { at: Date.now(), fees };
      fees.catch(() => (market = undefined));
    }
    return market.fees;
  }

  function callArgs(flight: Flight): never {
    return (flight.action === "reportFailed" ? [flight.vmId, flight.reason] : [flight.vmId]) as never;
  }

  function callData(flight: Flight): Hex {
    return encodeFunctionData({ abi: vmRegistryAbi, functionName: flight.action, args: callArgs(flight) });
  }

  function heldNonces(): number[] {
    return [...flights.values()].flatMap((flight) => flight.txs.slice(-1).map((tx) => tx.nonce));
  }

  function describe(flight: Flight) {
    return { vm_id: String(flight.vmId), action: flight.action, intent: flight.intentId };
  }

  /**
   * Simulates the report against `pending` (a report already waiting in the mempool makes this one
   * superseded, not a duplicate) and returns the gas it needs, or "skipped" when the VM moved on.
   */
  async function simulate(flight: Flight): Promise<bigint | "skipped"> {
    if (halted) throw halted;
    await checkChain();
    try {
      const gas = await publicClient.estimateContractGas({
        account,
        address: vmRegistry,
        abi: vmRegistryAbi,
        functionName: flight.action,
        args: callArgs(flight),
        blockTag: "pending",
      });
      // The state may change between the estimate and inclusion (a slot warmed or cleared by another report).
      return gas + gas / 5n;
    } catch (error) {
      const revert = error instanceof BaseError ? error.walk((e) => e instanceof ContractFunctionRevertedError) : null;
      const data = revert instanceof ContractFunctionRevertedError ? revert.data : undefined;
      const errorName = data?.errorName;
      if (errorName !== undefined && SUPERSEDED_ERRORS.has(errorName)) {
        finish(flight, "superseded");
        logger.info({ msg: "report no longer accepted by the chain; skipped", ...describe(flight), error: errorName });
        return "skipped";
      }
      if (errorName !== undefined && OPERATOR_ERRORS.has(errorName)) {
        finish(flight, "dropped");
        const registered = errorName === "VmRegistryNotOperator" ? ` (registered operator: ${String(data?.args?.[2])})` : "";
        halt(`the operator key ${account.address} is no longer the operator of VM ${flight.vmId}'s provider${registered}; restart with the registered operator key`);
      }
      // Any other revert is a bug or a chain rule the daemon does not know, and RPC trouble is weather:
      // the intent stays open, the pass fails where /vms shows it, and the next pass tries again.
      throw error;
    }
  }

  /**
   * Signs `flight`'s call with `fees` (and `nonce`, or the next one) and journals it; only then may it
   * be broadcast. Requests that arrive while a journal write runs wait for the next, which signs them
   * all with consecutive nonces and journals them in one transaction: one fsync for many reports.
   */
  function signAndJournal(flight: Flight, request: SigningRequest): Promise<SignedTx> {
    const journalled = new Promise<SignedTx>((resolve, reject) => unsigned.push({ flight, request, resolve, reject }));
    void exclusive(journalWaiting);
    return journalled;
  }

  async function journalWaiting(): Promise<void> {
    const batch = unsigned;
    unsigned = [];
    if (batch.length === 0) return;
    try {
      if (!nonces.synced()) await nonces.sync(heldNonces());
      let next = nonces.peek();
      const signed: SignedTx[] = [];
      for (const { request } of batch) {
        const nonce = request.nonce ?? next++;
        const rawTx = await account.signTransaction({ type: "eip1559", chainId, to: vmRegistry, data: request.data, gas: request.gas, nonce, ...request.fees });
        signed.push({ txHash: keccak256(rawTx), rawTx, nonce, fees: request.fees });
      }
      // All or none: a batch journalled in part would leave a nonce gap that no transaction fills.
      store.transaction(() =>
        batch.forEach(({ flight }, i) => {
          const tx = signed[i]!;
          flight.intentId ??= store.addIntent({ vmId: flight.vmId, action: flight.action, args: JSON.stringify({ reason: flight.reason }) });
          store.setIntentTx(flight.intentId, { txHash: tx.txHash, rawTx: tx.rawTx, from: account.address, nonce: tx.nonce });
        }),
      );
      batch.forEach(({ flight, resolve }, i) => {
        const tx = signed[i]!;
        nonces.used(tx.nonce);
        flight.txs.push(tx);
        resolve(tx);
      });
    } catch (error) {
      for (const { flight, reject } of batch) {
        if (flight.txs.length === 0) flight.intentId = undefined; // the rolled-back intent row is gone
        reject(error);
      }
    }
  }

  /**
   * Broadcasts the flight's newest transaction, retrying RPC failures (refusals, resets, timeouts)
   * with a growing, bounded wait. It never throws: a report that cannot be broadcast stays in
   * flight, `degraded()` says why, and the check for dropped transactions sends it again later.
   */
  async function broadcast(flight: Flight): Promise<void> {
    if (flight.busy) return;
    flight.busy = true;
    try {
      for (let attempt = 1; !stopped.signal.aborted; attempt++) {
        const tx = flight.txs.at(-1)!;
        try {
          await publicClient.sendRawTransaction({ serializedTransaction: tx.rawTx });
          flight.broadcastError = undefined;
          logger.info({ msg: "report sent", ...describe(flight), tx: tx.txHash, nonce: tx.nonce, attempt });
          return;
        } catch (error) {
          // viem's first line is generic ("Missing or invalid parameters."); the node's words are in the details.
          const full = errorMessage(error);
          const message = error instanceof BaseError && error.details ? `${error.shortMessage} ${error.details}` : full.split("\n")[0]!;
          if (BROADCAST_ANSWERS.some((answer) => answer.test(full))) {
            flight.broadcastError = undefined;
            logger.debug({ msg: "broadcast answered; the checks decide", ...describe(flight), tx: tx.txHash, answer: message });
            return;
          }
          flight.broadcastError = `broadcast failed for the ${flight.action} report of VM ${flight.vmId} (attempt ${attempt}): ${message}`;
          logger.warn({ msg: "broadcast failed", ...describe(flight), tx: tx.txHash, attempt, error: message });
          if (attempt >= BROADCAST_ATTEMPTS) return;
          const wait = Math.min(BROADCAST_BACKOFF_MS * 2 ** (attempt - 1), BROADCAST_BACKOFF_MAX_MS);
          await sleep(wait, undefined, { signal: stopped.signal }).catch(() => undefined);
        }
      }
    } finally {
      flight.busy = false;
    }
  }

  function finish(flight: Flight, outcome: Outcome): void {
    if (settling) settling.push({ flight, outcome });
    else finishAll([{ flight, outcome }]);
  }

  function finishAll(finished: Array<{ flight: Flight; outcome: Outcome }>): void {
    store.transaction(() => finished.forEach(({ flight, outcome }) => flight.intentId !== undefined && store.finishIntent(flight.intentId, outcome)));
    for (const { flight, outcome } of finished) {
      forget(flight);
      if (outcome === "dropped") flight.abandon(new Error(`the ${flight.action} report of VM ${flight.vmId} was dropped`));
      else flight.settle(outcome === "superseded" ? "skipped" : outcome);
    }
  }

  /** Takes `flight` off the map, unless a later send for the same report already took its place. */
  function forget(flight: Flight): void {
    const key = keyOf(flight.vmId, flight.action);
    if (flights.get(key) === flight) flights.delete(key);
  }

  function newFlight(intent: { id?: number; vmId: bigint; action: ReportAction; reason: number }, txs: SignedTx[] = []): Flight {
    let settle!: Flight["settle"];
    let abandon!: Flight["abandon"];
    const outcome = new Promise<ReportOutcome>((resolve, reject) => {
      settle = resolve;
      abandon = reject;
    });
    // Nobody may be waiting for a recovered report; its end is logged, not thrown.
    outcome.catch(() => undefined);
    const flight: Flight = { vmId: intent.vmId, action: intent.action, reason: intent.reason, txs, busy: false, outcome, settle, abandon };
    if (intent.id !== undefined) flight.intentId = intent.id;
    return flight;
  }

  /** Settles the flight from whichever of its transactions has a receipt; none while the nonce is used means another transaction took it. */
  async function settleFromReceipts(flight: Flight): Promise<void> {
    const receipts = await Promise.all(
      flight.txs.map((tx) =>
        publicClient.getTransactionReceipt({ hash: tx.txHash }).catch((error: unknown) => {
          if (error instanceof TransactionReceiptNotFoundError) return undefined;
          throw error; // RPC trouble is not an answer; the next check asks again
        }),
      ),
    );
    const receipt = receipts.find((found) => found !== undefined);
    if (receipt) {
      finish(flight, receipt.status === "success" ? "mined" : "reverted");
      logger.info({ msg: "report settled", ...describe(flight), tx: receipt.transactionHash, status: receipt.status, block: String(receipt.blockNumber) });
      return;
    }
    flight.nonceTakenSince ??= head!;
    // An RPC behind a load balancer may show the nonce used before it serves the receipt: wait a few blocks.
    if (head! - flight.nonceTakenSince < replaceAfterBlocks) return;
    flight.busy = true;
    try {
      const nonce = flight.txs.at(-1)!.nonce;
      logger.warn({ msg: "another transaction took the report's nonce; signing it anew", ...describe(flight), nonce });
      flight.trouble = `nonce ${nonce} of the ${flight.action} report of VM ${flight.vmId} was used by another transaction from the operator key; the report was signed anew`;
      await exclusive(() => nonces.sync(heldNonces()));
      const gas = await simulate(flight);
      if (gas === "skipped") return;
      await signAndJournal(flight, { data: callData(flight), gas, fees: cappedFees(await marketFees(), feeCap) });
      flight.sentAt = flight.firstSentAt = head;
      flight.nonceTakenSince = undefined;
    } finally {
      flight.busy = false;
    }
    void broadcast(flight);
  }

  /** A stuck report gets the same nonce with fees 12.5 % higher (or the market's), unless that would pass the cap. */
  async function replace(flight: Flight, waited: bigint): Promise<void> {
    const previous = flight.txs.at(-1)!;
    const wanted = cappedFees(replacementFees(previous.fees, await marketFees()), feeCap);
    const minimum = replacementFees(previous.fees, { maxFeePerGas: 0n, maxPriorityFeePerGas: 0n });
    const stuck = `the ${flight.action} report of VM ${flight.vmId} (nonce ${previous.nonce}) is not mined after ${waited} blocks`;
    flight.sentAt = head;
    if (wanted.maxFeePerGas < minimum.maxFeePerGas || wanted.maxPriorityFeePerGas < minimum.maxPriorityFeePerGas) {
      flight.trouble = `${stuck}; its fees are at the cap of ${feeCap} wei per gas (tx.maxFeePerGasGwei)`;
      logger.warn({ msg: "report stuck at the fee cap", ...describe(flight), tx: previous.txHash, max_fee_per_gas: String(previous.fees.maxFeePerGas) });
      return;
    }
    const parsed = parseTransaction(previous.rawTx);
    const tx = await signAndJournal(flight, { data: parsed.data!, gas: parsed.gas!, fees: wanted, nonce: previous.nonce });
    flight.trouble = `${stuck}; replaced by ${tx.txHash} with maxFeePerGas ${wanted.maxFeePerGas} wei`;
    logger.warn({
      msg: "report not mined; replaced with higher fees",
      ...describe(flight),
      replaced: previous.txHash,
      tx: tx.txHash,
      nonce: tx.nonce,
      max_fee_per_gas: String(wanted.maxFeePerGas),
      max_priority_fee_per_gas: String(wanted.maxPriorityFeePerGas),
    });
    void broadcast(flight);
  }

  /** One flight at one check: settled, dropped, stuck, or waiting its turn. */
  async function visit(flight: Flight, minedCount: number): Promise<void> {
    flight.sentAt ??= head!;
    flight.firstSentAt ??= head!;
    const newest = flight.txs.at(-1)!;
    if (newest.nonce < minedCount) return settleFromReceipts(flight);
    flight.nonceTakenSince = undefined;
    if (head! <= flight.sentAt) return;
    const known = await publicClient.getTransaction({ hash: newest.txHash }).then(
      () => true,
      (error: unknown) => {
        if (error instanceof TransactionNotFoundError) return false;
        throw error;
      },
    );
    if (!known) {
      // Dropped (evicted, a node restarted, a broadcast that never arrived): the same signed bytes go again.
      flight.trouble = `transaction ${newest.txHash} of the ${flight.action} report of VM ${flight.vmId} was dropped from the mempool; sent again`;
      logger.warn({ msg: "report transaction unknown to the node; re-syncing the nonce and sending it again", ...describe(flight), tx: newest.txHash, nonce: newest.nonce });
      await exclusive(() => nonces.sync(heldNonces()));
      flight.sentAt = head;
      void broadcast(flight);
      return;
    }
    const waited = head! - flight.firstSentAt;
    // A report waiting behind an earlier nonce is not stuck itself, unless its own fees fell below the market.
    if (head! - flight.sentAt >= replaceAfterBlocks && (newest.nonce === minedCount || !meetsMarket(newest.fees, await marketFees()))) {
      await replace(flight, waited);
    }
  }

  /**
   * A nonce below one of ours in flight that neither the chain nor any report of ours holds (a reorg
   * undid a mined report, or another sender's transaction was dropped) blocks every later one: nodes
   * never mine past a gap. Once it has lasted a block, it is filled with an empty transfer to the
   * key itself; the reconciler sends again whatever report the reorg undid.
   */
  async function fillGaps(minedCount: number): Promise<void> {
    const held = new Set(heldNonces());
    const highest = Math.max(-1, ...held);
    for (const nonce of gaps.keys()) if (nonce < minedCount || held.has(nonce)) gaps.delete(nonce);
    for (let nonce = minedCount; nonce < highest; nonce++) {
      if (held.has(nonce)) continue;
      const seenAt = gaps.get(nonce);
      gaps.set(nonce, head!);
      if (seenAt === undefined || head! <= seenAt) continue;
      const fees = cappedFees(await marketFees(), feeCap);
      const rawTx = await account.signTransaction({ type: "eip1559", chainId, to: account.address, value: 0n, gas: 21_000n, nonce, ...fees });
      logger.warn({ msg: "filling a nonce gap with an empty transaction", nonce, tx: keccak256(rawTx) });
      await publicClient.sendRawTransaction({ serializedTransaction: rawTx }).catch((error: unknown) => {
        logger.warn({ msg: "filling a nonce gap failed; retrying on the next block", nonce, error: errorMessage(error).split("\n")[0] });
      });
    }
  }

  async function check(): Promise<void> {
    const [latest, minedCount] = await Promise.all([
      publicClient.getBlockNumber({ cacheTime: 0 }),
      publicClient.getTransactionCount({ address: account.address, blockTag: "latest" }),
    ]);
    head = latest;
    await fillGaps(minedCount).catch((error: unknown) => {
      logger.warn({ msg: "looking for nonce gaps failed; retrying", error: errorMessage(error).split("\n")[0] });
    });
    settling = [];
    try {
      await Promise.all(
        [...flights.values()]
          .filter((flight) => !flight.busy && flight.txs.length > 0)
          .map((flight) =>
            visit(flight, minedCount).catch((error: unknown) => {
              logger.warn({ msg: "checking a report in flight failed; retrying", ...describe(flight), error: errorMessage(error).split("\n")[0] });
            }),
          ),
      );
    } finally {
      const finished = settling;
      settling = undefined;
      if (finished.length > 0) finishAll(finished);
    }
  }

  /** Checks the reports in flight once a poll, while there are any. */
  function keepChecking(): void {
    checking ??= (async () => {
      while (flights.size > 0 && !stopped.signal.aborted) {
        await sleep(pollMs, undefined, { signal: stopped.signal }).catch(() => undefined);
        if (stopped.signal.aborted) break;
        await check().catch((error: unknown) => {
          logger.warn({ msg: "checking reports in flight failed; retrying", error: errorMessage(error).split("\n")[0] });
        });
      }
    })().finally(() => {
      checking = undefined;
      if (flights.size > 0 && !stopped.signal.aborted) keepChecking();
    });
  }

  function track(intent: Intent, journalled: IntentTx[]): Flight {
    const reason = Number((JSON.parse(intent.args) as { reason?: number }).reason ?? 0);
    const txs = journalled.map((tx) => {
      const parsed = parseTransaction(tx.rawTx);
      return { ...tx, nonce: parsed.nonce!, fees: { maxFeePerGas: parsed.maxFeePerGas!, maxPriorityFeePerGas: parsed.maxPriorityFeePerGas! } };
    });
    const flight = newFlight({ id: intent.id, vmId: intent.vmId, action: intent.action as ReportAction, reason }, txs);
    flights.set(keyOf(intent.vmId, intent.action), flight);
    keepChecking();
    return flight;
  }

  function waitFor(flight: Flight): Promise<ReportOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const tx = flight.txs.at(-1);
        reject(new Error(`the ${flight.action} report of VM ${flight.vmId} is not mined within ${receiptTimeoutMs} ms (tx ${tx?.txHash}); it stays in flight`));
      }, receiptTimeoutMs);
    });
    return Promise.race([flight.outcome, timeout]).finally(() => clearTimeout(timer));
  }

  async function report(vmId: bigint, action: ReportAction, reason: number): Promise<ReportOutcome> {
    if (halted) throw halted;
    if (stopped.signal.aborted) throw new Error("the report sender is stopped");
    const key = keyOf(vmId, action);
    const inFlight = flights.get(key);
    if (inFlight) return waitFor(inFlight);
    const open = store.openIntentFor(vmId, action);
    if (open?.txHash) return waitFor(track(open, store.intentTxs(open.id)));
    // An intent left open without a transaction (by an older daemon) is taken over; otherwise the row is written with the first transaction.
    const flight = newFlight({ ...(open && { id: open.id }), vmId, action, reason });
    // In flight from here, so that a second send for the same report waits for this one instead of signing another.
    flights.set(key, flight);
    try {
      const gas = await simulate(flight);
      if (gas === "skipped") return "skipped";
      // Sign, journal, then send: a crash at any point leaves either nothing sent or a journalled transaction to resend.
      await signAndJournal(flight, { data: callData(flight), gas, fees: cappedFees(await marketFees(), feeCap) });
    } catch (error) {
      // Nothing journalled: the next pass simulates again.
      forget(flight);
      flight.abandon(error as Error);
      throw error;
    }
    void broadcast(flight);
    keepChecking();
    return waitFor(flight);
  }

  /** Sends `action` for `vmId` (with `reason` for reportFailed) and waits for its receipt. Reports for different VMs run in parallel. */
  function send(vmId: bigint, action: ReportAction, reason = 0): Promise<ReportOutcome> {
    return report(vmId, action, reason).then(
      (outcome) => (parameters.onOutcome?.(action, outcome), outcome),
      (error: unknown) => {
        parameters.onOutcome?.(action, "error");
        throw error;
      },
    );
  }

  /**
   * Resumes intents a previous run left open. One never signed is dropped, and the reconciler
   * decides afresh from chain state. One with transactions is settled from whichever of them has a
   * receipt, or else tracked again, its newest transaction sent again (the same bytes) when the node
   * does not know it. The nonce counter is then re-synced from the chain. Intents finished longer
   * ago than INTENT_RETENTION_MS are pruned.
   */
  async function recover(): Promise<void> {
    store.pruneIntentsFinishedBefore(Date.now() - INTENT_RETENTION_MS);
    for (const intent of store.openIntents()) {
      const journalled = store.intentTxs(intent.id);
      if (journalled.length === 0) {
        // Never signed, or journalled before signed bytes were kept: nothing to send again.
        const receipt = intent.txHash ? await publicClient.getTransactionReceipt({ hash: intent.txHash as Hash }).catch(() => undefined) : undefined;
        store.finishIntent(intent.id, receipt ? (receipt.status === "success" ? "mined" : "reverted") : "dropped");
        continue;
      }
      track(intent, journalled);
    }
    await exclusive(() => nonces.sync(heldNonces()));
    const [latest, minedCount] = await Promise.all([
      publicClient.getBlockNumber({ cacheTime: 0 }),
      publicClient.getTransactionCount({ address: account.address, blockTag: "latest" }),
    ]);
    head = latest;
    for (const flight of [...flights.values()]) {
      flight.sentAt = flight.firstSentAt = latest;
      const newest = flight.txs.at(-1)!;
      if (newest.nonce < minedCount) await settleFromReceipts(flight);
      else if (!(await publicClient.getTransaction({ hash: newest.txHash }).catch(() => undefined))) void broadcast(flight);
      logger.info({ msg: "recovered intent", ...describe(flight), tx: newest.txHash, open: flights.has(keyOf(flight.vmId, flight.action)) });
    }
  }

  /** Why reporting stopped, or `undefined` while it works. */
  function fault(): string | undefined {
    return halted?.message;
  }

  /** What is wrong with the reports in flight (stuck, dropped, broadcasts failing), or `undefined` while nothing is. */
  function degraded(): string | undefined {
    const troubled = [...flights.values()].filter((flight) => flight.broadcastError !== undefined || flight.trouble !== undefined);
    if (troubled.length === 0) return undefined;
    const first = troubled[0]!;
    const more = troubled.length > 1 ? ` (and ${troubled.length - 1} more report${troubled.length > 2 ? "s" : ""} in trouble)` : "";
    return `${first.broadcastError ?? first.trouble}${more}`;
  }

  /** Stops checking and broadcasting. Reports in flight stay journalled for the next start; their `send` calls fail now. */
  function close(): void {
    stopped.abort();
    for (const flight of flights.values()) flight.abandon(new Error("the report sender is stopped; the report stays journalled and resumes at the next start"));
    flights.clear();
  }

  return { send, recover, fault, degraded, close };
}

export type ReportSender = ReturnType<typeof createReportSender>;
