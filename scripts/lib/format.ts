// Formatting shared by every task: token amounts, VM states, regions, addresses, tables.
import { decodeBytes32String, encodeBytes32String, formatUnits, getAddress, isAddress, parseUnits } from "ethers";
import { UserError } from "./errors.ts";

/** CreditToken's decimals and symbol (fixed in contracts/CreditToken.sol). */
export const TOKEN_DECIMALS = 18;
export const TOKEN_SYMBOL = "NCC";

/** `1234500000000000000000n` -> `"1234.5 NCC"`. */
export function formatTokens(wei: bigint, symbol: string = TOKEN_SYMBOL): string {
  return `${formatUnits(wei, TOKEN_DECIMALS)} ${symbol}`;
}

/** A per-second price with its hourly equivalent: `"0.001 NCC/s (3.6 NCC/h)"`. */
export function formatPrice(weiPerSecond: bigint): string {
  return `${formatUnits(weiPerSecond, TOKEN_DECIMALS)} ${TOKEN_SYMBOL}/s (${formatUnits(weiPerSecond * 3600n, TOKEN_DECIMALS)} ${TOKEN_SYMBOL}/h)`;
}

/** How long `balance` lasts at `weiPerSecond`, e.g. `"1d 3h 46m"`; `undefined` for a zero price. */
export function formatRunway(balance: bigint, weiPerSecond: bigint): string | undefined {
  if (weiPerSecond === 0n) return undefined;
  return formatDuration(balance / weiPerSecond);
}

/** Seconds as `"2d 4h 5m"`, `"4h 0m"`, `"59s"`. */
export function formatDuration(seconds: bigint): string {
  const d = seconds / 86_400n;
  const h = (seconds % 86_400n) / 3_600n;
  const m = (seconds % 3_600n) / 60n;
  if (d > 0n) return `${d}d ${h}h ${m}m`;
  if (h > 0n) return `${h}h ${m}m`;
  if (m > 0n) return `${m}m ${seconds % 60n}s`;
  return `${seconds}s`;
}

/**
 * Parses a token amount typed by a user ("100", "0.5", "1_000") into wei.
 * `what` names the option in the error, e.g. "--deposit".
 */
export function parseTokens(text: string, what: string): bigint {
  const cleaned = text.trim().replaceAll("_", "");
  if (!/^\d+(\.\d+)?$/.test(cleaned)) {
    throw new UserError(`${what} must be a token amount like 100 or 0.5, got "${text}".`);
  }
  try {
    return parseUnits(cleaned, TOKEN_DECIMALS);
  } catch {
    throw new UserError(`${what} has more than ${TOKEN_DECIMALS} decimals: "${text}".`);
  }
}

/** Parses a non-negative integer (wei, MiB, ids...). Accepts `_` separators. */
export function parseInteger(text: string, what: string, { min = 0n, max }: { min?: bigint; max?: bigint } = {}): bigint {
  const cleaned = text.trim().replaceAll("_", "");
  if (!/^\d+$/.test(cleaned)) throw new UserError(`${what} must be a whole number, got "${text}".`);
  const value = BigInt(cleaned);
  if (value < min) throw new UserError(`${what} must be at least ${min}, got ${value}.`);
  if (max !== undefined && value > max) throw new UserError(`${what} must be at most ${max}, got ${value}.`);
  return value;
}

export const UINT32_MAX = 2n ** 32n - 1n;
export const UINT64_MAX = 2n ** 64n - 1n;

/** A required option given as a string: throws a UserError naming it when missing. */
export function required(value: string | undefined, what: string, example: string): string {
  if (value === undefined || value.trim() === "") {
    throw new UserError(`${what} is required, e.g. ${what} ${example}.`);
  }
  return value.trim();
}

/** Parses `--id N` (VM ids start at 1). */
export function parseVmId(text: string | undefined): bigint {
  return parseInteger(required(text, "--id", "1"), "--id", { min: 1n });
}

/** Checksums an address typed by a user. */
export function parseAddress(text: string, what: string): string {
  if (!isAddress(text.trim())) throw new UserError(`${what} must be a 0x-prefixed 20-byte address, got "${text}".`);
  return getAddress(text.trim());
}

/** `0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266` -> `0xf39F…2266` for tables. */
export function shortAddress(address: string): string {
  return address.length <= 12 ? address : `${address.slice(0, 6)}…${address.slice(-4)}`;
}

// One list of state names for the daemon and the tasks; the ABI carries the enum as its index.
import { VM_STATES, type VmStateName } from "../../offchain-daemon/src/chain/vm-registry.ts";
export { VM_STATES, type VmStateName };

export function vmStateName(state: bigint | number): string {
  return VM_STATES[Number(state)] ?? `Unknown(${state})`;
}

/** A region code such as "eu-west-1" as the bytes32 the registry stores (UTF-8, right-padded, at most 31 bytes). */
export function regionToBytes32(region: string): string {
  const trimmed = region.trim();
  if (trimmed === "") throw new UserError("The region must not be empty, e.g. --region eu-west-1.");
  try {
    return encodeBytes32String(trimmed);
  } catch {
    throw new UserError(`The region "${region}" is longer than 31 bytes; use a short code such as eu-west-1.`);
  }
}

/** The inverse of {@link regionToBytes32}; falls back to the hex for values that are not a padded string. */
export function bytes32ToRegion(value: string): string {
  try {
    return decodeBytes32String(value);
  } catch {
    return value;
  }
}

/** Resources as `"1 vCPU, 256 MiB RAM, 1 GiB disk"`. */
export function formatResources(r: { vcpu: bigint | number; memoryMiB: bigint | number; diskGiB: bigint | number }): string {
  return `${r.vcpu} vCPU, ${r.memoryMiB} MiB RAM, ${r.diskGiB} GiB disk`;
}

/** A plain-text table with a header row; columns are padded to their widest cell. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** `label  value` lines with the labels aligned. */
export function renderFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(...fields.map(([label]) => label.length));
  return fields.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`).join("\n");
}
