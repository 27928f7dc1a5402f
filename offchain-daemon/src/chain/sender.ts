import type { Address, Hash, Hex } from "viem";
import { BaseError, ContractFunctionRevertedError, encodeFunctionData, keccak256 } from "viem";
import type { Logger } from "pino";
import type { Store } from "../store/store.ts";
import { vmRegistryAbi } from "./abi.generated.ts";
import type { ChainClients } from "./clients.ts";
import { errorMessage } from "./errors.ts";

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

export type ReportSenderParameters = ChainClients & {
  store: Store;
  vmRegistry: Address;
  logger: Logger;
  /** How long to wait for a receipt before leaving the intent open for the next pass, in ms. Default: 60000. */
  receiptTimeoutMs?: number;
  onOutcome?: (action: ReportAction, outcome: ReportOutcome | "error") => void;
};

/**
 * Sends the operator's status reports. Each report is simulated against the
 * pending block, journalled as an intent, signed, journalled with its hash and
 * signed bytes, and only then broadcast, so that a report the chain no longer
 * accepts (someone else moved the VM on) costs no gas and a crash anywhere
 * between signing and receipt is resolved from the journal on restart,
 * without a second transaction.
 * Sends are serialized: one operator key, one nonce sequence.
 */
export function createReportSender(parameters: ReportSenderParameters) {
  const { publicClient, walletClient, account, store, vmRegistry, logger } = parameters;
  const receiptTimeoutMs = parameters.receiptTimeoutMs ?? 60_000;
  let queue: Promise<unknown> = Promise.resolve();
  let halted: ReportingHaltedError | undefined;

  function halt(message: string): never {
    halted = new ReportingHaltedError(message);
    logger.error({ msg: "reporting halted", error: message });
    throw halted;
  }

  /** Signing for one chain and sending to another would only ever fail; checked before each report. */
  async function checkChain(): Promise<void> {
    const served = await publicClient.getChainId();
    const signedFor = walletClient.chain.id;
    if (served !== signedFor) halt(`the RPC now serves chain ${served}, but reports are signed for chain ${signedFor}; fix rpcUrl and restart`);
  }

  async function awaitReceipt(intentId: number, hash: Hash): Promise<ReportOutcome> {
    const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: receiptTimeoutMs });
    const outcome = receipt.status === "success" ? "mined" : "reverted";
    store.finishIntent(intentId, outcome);
    return outcome;
  }

  async function sendNow(vmId: bigint, action: ReportAction, reason: number): Promise<ReportOutcome> {
    if (halted) throw halted;
    const open = store.openIntentFor(vmId, action);
    if (open?.txHash) {
      if (open.rawTx) await rebroadcast(open.rawTx);
      return awaitReceipt(open.id, open.txHash as Hash);
    }
    const intentId = open?.id ?? store.addIntent({ vmId, action, args: JSON.stringify({ reason }) });
    const args = action === "reportFailed" ? ([vmId, reason] as const) : ([vmId] as const);
    await checkChain();
    try {
      // Against `pending`: a report already waiting in the mempool makes this one superseded, not a duplicate.
      await publicClient.simulateContract({
        account,
        address: vmRegistry,
        abi: vmRegistryAbi,
        functionName: action,
        args: args as never,
        blockTag: "pending",
      });
    } catch (error) {
      const revert = error instanceof BaseError ? error.walk((e) => e instanceof ContractFunctionRevertedError) : null;
      const data = revert instanceof ContractFunctionRevertedError ? revert.data : undefined;
      const errorName = data?.errorName;
      if (errorName !== undefined && SUPERSEDED_ERRORS.has(errorName)) {
        store.finishIntent(intentId, "superseded");
        logger.info({ msg: "report no longer accepted by the chain; skipped", vm_id: String(vmId), action, error: errorName });
        return "skipped";
      }
      if (errorName !== undefined && OPERATOR_ERRORS.has(errorName)) {
        store.finishIntent(intentId, "dropped");
        const registered = errorName === "VmRegistryNotOperator" ? ` (registered operator: ${String(data?.args?.[2])})` : "";
        halt(`the operator key ${account.address} is no longer the operator of VM ${vmId}'s provider${registered}; restart with the registered operator key`);
      }
      // Any other revert is a bug or a chain rule the daemon does not know, and RPC trouble is weather:
      // the intent stays open, the pass fails where /vms shows it, and the next pass tries again.
      throw error;
    }
    // Sign, journal, then send: a crash at any point leaves either nothing sent or a journalled transaction to resend.
    const data = encodeFunctionData({ abi: vmRegistryAbi, functionName: action, args: args as never });
    const prepared = await walletClient.prepareTransactionRequest({ account, to: vmRegistry, data, chain: walletClient.chain });
    const rawTx = await walletClient.signTransaction(prepared as never);
    const hash = keccak256(rawTx);
    store.setIntentTx(intentId, hash, rawTx);
    await walletClient.sendRawTransaction({ serializedTransaction: rawTx });
    logger.info({ msg: "report sent", vm_id: String(vmId), action, reason, tx: hash });
    return awaitReceipt(intentId, hash);
  }

  /**
   * Sends a journalled transaction again. Sending the same signed bytes twice is
   * harmless: a node that has it answers "already known", and a used nonce
   * means it (or another of ours) was mined; the receipt decides.
   */
  async function rebroadcast(rawTx: Hex): Promise<void> {
    await walletClient.sendRawTransaction({ serializedTransaction: rawTx }).catch((error: unknown) => {
      logger.debug({ msg: "rebroadcast refused", tx: keccak256(rawTx), error: errorMessage(error).split("\n")[0] });
    });
  }

  /** Sends `action` for `vmId` (with `reason` for reportFailed) and waits for its receipt. */
  function send(vmId: bigint, action: ReportAction, reason = 0): Promise<ReportOutcome> {
    const run = queue.then(() => sendNow(vmId, action, reason));
    queue = run.catch(() => undefined);
    return run.then(
      (outcome) => (parameters.onOutcome?.(action, outcome), outcome),
      (error: unknown) => {
        parameters.onOutcome?.(action, "error");
        throw error;
      },
    );
  }

  /**
   * Settles intents a previous run left open: a signed transaction is looked up
   * by hash and, when the node does not know it (the crash came before it was
   * sent), sent again and left open for its receipt. One that was never signed
   * is dropped, and the reconciler decides afresh from chain state. Intents
   * finished longer ago than INTENT_RETENTION_MS are pruned.
   */
  async function recover(): Promise<void> {
    store.pruneIntentsFinishedBefore(Date.now() - INTENT_RETENTION_MS);
    for (const intent of store.openIntents()) {
      if (!intent.txHash) {
        store.finishIntent(intent.id, "dropped");
        continue;
      }
      const hash = intent.txHash as Hash;
      const receipt = await publicClient.getTransactionReceipt({ hash }).catch(() => undefined);
      if (receipt) {
        store.finishIntent(intent.id, receipt.status === "success" ? "mined" : "reverted");
      } else if (!(await publicClient.getTransaction({ hash }).catch(() => undefined))) {
        if (intent.rawTx) await rebroadcast(intent.rawTx);
        else store.finishIntent(intent.id, "dropped");
      }
      logger.info({ msg: "recovered intent", vm_id: String(intent.vmId), action: intent.action, tx: hash });
    }
  }

  /** Why reporting stopped, or `undefined` while it works. */
  function fault(): string | undefined {
    return halted?.message;
  }

  return { send, recover, fault };
}

export type ReportSender = ReturnType<typeof createReportSender>;
