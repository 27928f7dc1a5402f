// Where a set of transactions' gas goes, from debug_traceTransaction struct logs: one walk per transaction
// that follows call frames, so the marketplace benchmark can report measured categories instead of estimates.
//
// Categories (they add up to the summed gasUsed exactly; refunds are their own negative line):
//   intrinsic     21,000 per transaction
//   calldata      4 gas per zero byte, 16 per non-zero byte of the input
//   calls:<name>  everything spent in calls to a named contract (the CALL itself, cold account, the callee's work)
//   sstoreNewSlot SSTOREs that made a zero slot non-zero (20,000, + 2,100 when the slot was cold)
//   sstore        other SSTOREs of the called contract
//   sload         SLOADs of the called contract
//   events        LOG0..LOG4 of the called contract
//   logic         every other opcode of the called contract (arithmetic, memory, hashing, jumps, ...)
//   refund        storage refunds (negative), as the receipt's gasUsed already subtracts them

type StructLog = { op: string; gas: number; gasCost: number; depth: number; stack?: string[] };
type Rpc = { request(args: { method: string; params: unknown[] }): Promise<unknown> };

export type GasBreakdown = Record<string, number>;

export interface TraceResult {
  breakdown: GasBreakdown;
  /** `address:slot` of every SSTORE with a non-zero value, in any frame. */
  written: Set<string>;
}

const CALLS = new Set(["CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"]);

function calldataGas(input: string): number {
  let gas = 0;
  for (let i = 2; i < input.length; i += 2) gas += input.slice(i, i + 2) === "00" ? 4 : 16;
  return gas;
}

const hexAddress = (word: string) => "0x" + BigInt(word).toString(16).padStart(40, "0");
const hexSlot = (word: string) => "0x" + BigInt(word).toString(16).padStart(64, "0");

/**
 * Traces `hashes` and sums their gas by category. `named` maps lower-case contract addresses to a name: calls to
 * them are summed as `calls:<name>`.
 */
export async function traceGas(rpc: Rpc, hashes: string[], named: Record<string, string>): Promise<TraceResult> {
  const breakdown: GasBreakdown = {};
  const add = (key: string, gas: number) => (breakdown[key] = (breakdown[key] ?? 0) + gas);
  const written = new Set<string>();
  for (const hash of hashes) {
    const tx = (await rpc.request({ method: "eth_getTransactionByHash", params: [hash] })) as { to: string; input: string };
    const receipt = (await rpc.request({ method: "eth_getTransactionReceipt", params: [hash] })) as { gasUsed: string };
    const { structLogs: logs } = (await rpc.request({ method: "debug_traceTransaction", params: [hash, { disableMemory: true, disableStorage: true }] })) as {
      structLogs: StructLog[];
    };
    const input = calldataGas(tx.input);
    add("intrinsic", 21_000);
    add("calldata", input);
    // Address whose storage each depth writes (a DELEGATECALL keeps its caller's).
    const contexts: string[] = [tx.to.toLowerCase()];
    let measured = 0;
    for (let i = 0; i < logs.length; i++) {
      const log = logs[i]!;
      contexts.length = log.depth;
      const stack = log.stack ?? [];
      const arg = (n: number) => stack[stack.length - 1 - n]!;
      if (CALLS.has(log.op)) {
        const callee = hexAddress(arg(1));
        // The frame's cost is the gas it took from the caller: the gas left at the caller's next opcode.
        let back = i + 1;
        while (back < logs.length && logs[back]!.depth > log.depth) back++;
        const spent = log.gas - (back < logs.length ? logs[back]!.gas : 0);
        if (i + 1 < logs.length && logs[i + 1]!.depth > log.depth) contexts.push(log.op === "DELEGATECALL" ? contexts[contexts.length - 1]! : callee);
        if (log.depth === 1) {
          add(named[callee] !== undefined ? `calls:${named[callee]}` : "calls:other", spent);
          measured += spent;
        }
        continue;
      }
      if (log.op === "SSTORE" && BigInt(arg(1)) !== 0n) written.add(`${contexts[contexts.length - 1]}:${hexSlot(arg(0))}`);
      if (log.depth !== 1) continue;
      measured += log.gasCost;
      if (log.op === "SSTORE") add(log.gasCost >= 20_000 ? "sstoreNewSlot" : "sstore", log.gasCost);
      else if (log.op === "SLOAD") add("sload", log.gasCost);
      else if (log.op.startsWith("LOG")) add("events", log.gasCost);
      else add("logic", log.gasCost);
    }
    add("refund", Number(BigInt(receipt.gasUsed)) - 21_000 - input - measured);
  }
  return { breakdown, written };
}
