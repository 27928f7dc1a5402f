/** The two EIP-1559 fee fields of a transaction, in wei per gas. */
export type Fees = { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint };

/**
 * A replacement must raise both fees, or nodes drop it as underpriced: geth's pool wants +10 %,
 * others (and geth's blob pool) +12.5 %. An eighth more plus one wei satisfies all of them, a zero fee too.
 */
function raised(fee: bigint): bigint {
  return fee + fee / 8n + 1n;
}

/**
 * The fees of a transaction that replaces one sent with `previous`: at least 12.5 % more on both
 * fields, and at least what the market asks now, since a base fee that rose past the old offer is
 * usually why the transaction is stuck.
 */
export function replacementFees(previous: Fees, market: Fees): Fees {
  const maxPriorityFeePerGas = max(raised(previous.maxPriorityFeePerGas), market.maxPriorityFeePerGas);
  const maxFeePerGas = max(raised(previous.maxFeePerGas), market.maxFeePerGas, maxPriorityFeePerGas);
  return { maxFeePerGas, maxPriorityFeePerGas };
}

/** `fees` held to `cap` wei per gas: the most the operator pays, however busy the chain. */
export function cappedFees(fees: Fees, cap: bigint): Fees {
  const maxFeePerGas = fees.maxFeePerGas < cap ? fees.maxFeePerGas : cap;
  return { maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas < maxFeePerGas ? fees.maxPriorityFeePerGas : maxFeePerGas };
}

/** Whether `fees` pay what `market` asks on both fields. */
export function meetsMarket(fees: Fees, market: Fees): boolean {
  return fees.maxFeePerGas >= market.maxFeePerGas && fees.maxPriorityFeePerGas >= market.maxPriorityFeePerGas;
}

function max(...values: bigint[]): bigint {
  return values.reduce((a, b) => (a > b ? a : b));
}
