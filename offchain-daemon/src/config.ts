import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { isAddress, getAddress } from "viem";
import type { Address, Hex } from "viem";
import { z } from "zod";
import { RAW_BLOCK_MAX_BYTES } from "./ipfs/block.ts";
import { decryptKeystore, KeystoreError, passwordFromFile } from "./keystore.ts";
import { logLevels } from "./log.ts";
import type { LogLevel } from "./log.ts";

/** The provider daemon's settings, validated, with defaults applied and paths made absolute. */
export interface Config {
  /** JSON-RPC endpoint of the chain (http or https). */
  rpcUrl: string;
  /** Chain id the RPC must report; unchecked when absent. */
  chainId?: number;
  /** The operator's private key (the provider's hot key), decrypted from its keystore. Never log it. */
  operatorKey: Hex;
  /**
   * Where the key came from: an encrypted keystore (`operatorKeystore`), or NOVACRON_OPERATOR_KEY, which the
   * service accepts on the local development chain only.
   */
  operatorKeySource: "keystore" | "environment";
  /** The provider's registered owner address, checksummed. */
  provider: Address;
  contracts: { vmRegistry: Address; providerRegistry: Address };
  /** First block of the log backfill on a fresh data directory. Default 0. */
  startBlock: bigint;
  /** Absolute directory for the store, the embedded IPFS blocks and VM work directories. */
  dataDir: string;
  /** Blocks a log must be buried under before the daemon acts on it. Default 1. */
  confirmations: number;
  /** How often the chain head is polled. Default 1000. */
  pollIntervalMs: number;
  /** Blocks per `eth_getLogs` request during backfill. Default 2000. */
  logChunkBlocks: number;
  /** How many VMs are reconciled at once. Default 8. */
  reconcileConcurrency: number;
  /** Embedded IPFS node (default, blocks in `<dataDir>/ipfs`) or a Kubo node's RPC API. */
  ipfs: { mode: "embedded"; directory: string } | { mode: "kubo"; url: string };
  manifest: {
    /** Largest manifest the daemon fetches. Default 65536, at most 256 KiB (one raw IPFS block). */
    maxBytes: number;
    /** Time allowed to fetch one manifest. Default 10000. */
    fetchTimeoutMs: number;
  };
  driver: {
    type: "process";
    /**
     * Manifest command name -> absolute executable. Replaces the default
     * `{ node: <this node>, sh: "/bin/sh" }` entirely when given.
     */
    allowedCommands: Record<string, string>;
    /** Grace period between SIGTERM and SIGKILL. Default 5000. */
    stopTimeoutMs: number;
    /**
     * How long a workload that declares a port has to accept connections on it
     * before it is reported Failed; Running on-chain means serving. Default 30000.
     */
    readyTimeoutMs: number;
  };
  /** How status reports are sent when the chain is slow to take them. */
  tx: {
    /** Blocks a report may wait unmined before it is replaced with higher fees (same nonce). Default 3. */
    replaceAfterBlocks: number;
    /** The most the operator pays per gas, in gwei: replacements stop there. Default 1000. */
    maxFeePerGasGwei: number;
  };
  /** HTTP API for /healthz, /metrics and /vms. Default 127.0.0.1:9464. */
  api: { host: string; port: number };
  /** Default "info". */
  logLevel: LogLevel;
}

/** A config problem, as one line a person can act on: `config error: <field>: <what is expected>, got <value>`. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(problem: string, options?: { cause?: unknown }) {
    super(`config error: ${problem}`, options);
  }
}

/** The keystore has no `passwordFile`: ask for the password (on a terminal) and load again with it. */
export class PasswordNeededError extends ConfigError {
  readonly keystoreFile: string;
  constructor(keystoreFile: string) {
    super(`operatorKeystore: ${keystoreFile} needs a password: set operatorKeystore.passwordFile, or start the daemon on a terminal to type it`);
    this.keystoreFile = keystoreFile;
  }
}

/** Environment variables that override one field each; they win over the config file. */
const envOverrides: { name: string; field: string; value?: (raw: string) => unknown }[] = [
  { name: "NOVACRON_RPC_URL", field: "rpcUrl" },
  { name: "NOVACRON_OPERATOR_KEY", field: "operatorKey" },
  { name: "NOVACRON_DATA_DIR", field: "dataDir" },
  { name: "NOVACRON_VM_REGISTRY", field: "contracts.vmRegistry" },
  { name: "NOVACRON_PROVIDER", field: "provider" },
  { name: "NOVACRON_IPFS_URL", field: "ipfs", value: (raw) => ({ mode: "kubo", url: raw }) },
  // Digits become a number so the range check applies; anything else stays a string and is reported as is.
  { name: "NOVACRON_API_PORT", field: "api.port", value: (raw) => (/^\d+$/.test(raw) ? Number(raw) : raw) },
  { name: "NOVACRON_LOG_LEVEL", field: "logLevel" },
];

/** Fields whose values are secrets: errors say what is wrong with them but never show them. */
const secretFields = new Set(["operatorKey"]);

const KEY_IN_FILE =
  "operatorKey: the operator key is never read from the config file; write it to an encrypted keystore with `novacron-daemon keystore import --out FILE` and set operatorKeystore.file (NOVACRON_OPERATOR_KEY is for the local stack only)";

// secp256k1 group order: a private key must be in [1, n).
const secp256k1Order = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

function expecting(what: string) {
  const message = `expected ${what}`;
  return { message, required_error: message, invalid_type_error: message };
}

function int(min: number, max: number, what = `an integer from ${min} to ${max}`) {
  const e = expecting(what);
  return z.number(e).int(e.message).min(min, e.message).max(max, e.message);
}

function httpUrl() {
  const e = expecting("an http:// or https:// URL");
  return z.string(e).refine((value) => {
    if (!URL.canParse(value)) return false;
    const { protocol } = new URL(value);
    return protocol === "http:" || protocol === "https:";
  }, e.message);
}

/**
 * A string checked in order; only the first failed check is reported, and no
 * later check sees a value an earlier one rejected.
 */
function checkedString<T>(what: string, checks: ((value: string) => string | undefined)[], transform: (value: string) => T) {
  return z.string(expecting(what)).transform((value, ctx) => {
    for (const check of checks) {
      const problem = check(value);
      if (problem !== undefined) {
        ctx.addIssue({ code: "custom", message: problem });
        return z.NEVER;
      }
    }
    return transform(value);
  });
}

function address() {
  const what = "a 0x-prefixed 20-byte address";
  return checkedString(
    what,
    [
      (value) => (/^0x[0-9a-fA-F]{40}$/.test(value) ? undefined : `expected ${what}`),
      (value) => (isAddress(value, { strict: true }) ? undefined : "expected a correctly checksummed address (a typo? lower case skips the checksum)"),
    ],
    (value) => getAddress(value),
  );
}

function path() {
  return z.string(expecting("a path")).min(1, "expected a non-empty path");
}

/** What is wrong with `key` as a private key, or undefined when it is one. */
export function privateKeyProblem(key: string): string | undefined {
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) return "expected 0x followed by 64 hex digits";
  if (!(BigInt(key) > 0n && BigInt(key) < secp256k1Order)) return "expected a valid secp256k1 private key (it is zero or too large)";
  return undefined;
}

const privateKey = checkedString("0x followed by 64 hex digits", [privateKeyProblem], (key) => key as Hex);

const blockNumber = z.unknown().transform((value, ctx): bigint => {
  if (value === undefined) return 0n;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  if (typeof value === "string" && /^\d+$/.test(value)) return BigInt(value);
  ctx.addIssue({ code: "custom", message: "expected a block number (a non-negative integer, or a decimal string)" });
  return z.NEVER;
});

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

const allowedCommands = z
  .record(
    // The issue's path ends at the entry, whose value is the executable; name the key itself.
    z.string().superRefine((name, ctx) => {
      if (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) return;
      const message = `expected command names made of letters, digits, '.', '_' or '-', got ${JSON.stringify(name)}`;
      ctx.addIssue({ code: "custom", message, params: { complete: true } });
    }),
    checkedString(
      "an absolute path to an executable",
      [
        (file) => (isAbsolute(file) ? undefined : "expected an absolute path to an executable"),
        (file) => (executable(file) ? undefined : "expected an existing executable file (check the path and its x permission)"),
      ],
      (file) => file,
    ),
    expecting("an object mapping command names to absolute executable paths"),
  )
  .default({ node: process.execPath, sh: "/bin/sh" });

const ipfs = z.discriminatedUnion(
  "mode",
  [
    z.object({ mode: z.literal("embedded"), directory: path().optional() }).strict(),
    z.object({ mode: z.literal("kubo"), url: httpUrl() }).strict(),
  ],
  {
    errorMap: (issue) => ({
      message:
        issue.code === "invalid_type"
          ? 'expected an object: { "mode": "embedded" } or { "mode": "kubo", "url": "http://..." }'
          : 'expected "embedded" or "kubo"',
    }),
  },
);

function section<T extends z.ZodRawShape>(shape: T, what: string) {
  return z.object(shape, expecting(what)).strict();
}

const schema = section(
  {
    rpcUrl: httpUrl(),
    chainId: int(1, Number.MAX_SAFE_INTEGER, "a positive integer").optional(),
    // Only ever from NOVACRON_OPERATOR_KEY: loadConfig refuses it in the file before validation.
    operatorKey: privateKey.optional(),
    operatorKeystore: section({ file: path(), passwordFile: path().optional() }, "an object with file and optionally passwordFile").optional(),
    provider: address(),
    // Absent `contracts` reports each missing address rather than the whole object.
    contracts: z.preprocess(
      (value) => value ?? {},
      section({ vmRegistry: address(), providerRegistry: address() }, "an object with vmRegistry and providerRegistry"),
    ),
    startBlock: blockNumber,
    dataDir: path(),
    confirmations: int(0, 64).default(1),
    pollIntervalMs: int(100, 60_000).default(1000),
    logChunkBlocks: int(1, 100_000).default(2000),
    reconcileConcurrency: int(1, 256).default(8),
    ipfs: ipfs.default({ mode: "embedded" }),
    manifest: section(
      { maxBytes: int(1, RAW_BLOCK_MAX_BYTES).default(65_536), fetchTimeoutMs: int(100, 300_000).default(10_000) },
      "an object with maxBytes and fetchTimeoutMs",
    ).default({}),
    driver: section(
      {
        type: z.literal("process", { errorMap: () => ({ message: 'expected "process" (the only driver in this version)' }) }).default("process"),
        allowedCommands,
        stopTimeoutMs: int(0, 300_000).default(5000),
        readyTimeoutMs: int(0, 600_000).default(30_000),
      },
      "an object with type, allowedCommands, stopTimeoutMs and readyTimeoutMs",
    ).default({}),
    tx: section(
      {
        replaceAfterBlocks: int(1, 1000).default(3),
        // Fractions are allowed (0.05 gwei suits an L2); the service rounds to whole wei.
        maxFeePerGasGwei: z
          .number(expecting("a number of gwei greater than 0 and at most 1000000"))
          .refine((gwei) => gwei > 0 && gwei <= 1_000_000, "expected a number of gwei greater than 0 and at most 1000000")
          .default(1000),
      },
      "an object with replaceAfterBlocks and maxFeePerGasGwei",
    ).default({}),
    api: section(
      { host: z.string(expecting("a host name or IP address")).min(1, "expected a host name or IP address").default("127.0.0.1"), port: int(0, 65_535).default(9464) },
      "an object with host and port",
    ).default({}),
    logLevel: z.enum(logLevels, { errorMap: () => ({ message: `expected one of ${logLevels.join(", ")}` }) }).default("info"),
  },
  "a JSON object",
);

/**
 * Reads the config file (when given), applies NOVACRON_* environment
 * overrides (an empty variable counts as unset), validates, and fills defaults.
 * Relative paths in the file are relative to the file's directory; relative
 * paths from the environment are relative to the working directory.
 * @throws {ConfigError} naming the first bad field and what it expects.
 */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv, options: { password?: string } = {}): Config {
  const raw = file === undefined ? {} : readConfigFile(file);
  if ("operatorKey" in raw) throw new ConfigError(KEY_IN_FILE);
  const fromEnv = new Map<string, string>();
  for (const override of envOverrides) {
    const value = env[override.name];
    if (value === undefined || value === "") continue;
    if (setField(raw, override.field, override.value ? override.value(value) : value)) fromEnv.set(override.field, override.name);
  }

  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    // One problem per field: 1.5 for a field with a minimum of 100 is one mistake, not two.
    const seen = new Set<string>();
    const issues = parsed.error.issues.filter((issue) => {
      const field = issue.path.join(".");
      if (issue.code !== "unrecognized_keys" && seen.has(field)) return false;
      seen.add(field);
      return true;
    });
    const problems = issues.map((issue) => describeIssue(issue, raw, fromEnv));
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? "s" : ""})` : "";
    throw new ConfigError(`${problems[0]}${more}`);
  }

  const fileBase = file === undefined ? process.cwd() : dirname(resolve(file));
  const dataDir = resolve(fromEnv.has("dataDir") ? process.cwd() : fileBase, parsed.data.dataDir);
  const { ipfs: ipfsConfig, chainId, operatorKey, operatorKeystore, ...rest } = parsed.data;
  return {
    ...rest,
    ...resolveOperatorKey(operatorKey, operatorKeystore, fileBase, options.password),
    ...(chainId === undefined ? {} : { chainId }),
    dataDir,
    ipfs:
      ipfsConfig.mode === "kubo"
        ? ipfsConfig
        : { mode: "embedded", directory: ipfsConfig.directory === undefined ? join(dataDir, "ipfs") : resolve(fileBase, ipfsConfig.directory) },
  };
}

function resolveOperatorKey(
  fromEnv: Hex | undefined,
  keystore: { file: string; passwordFile?: string } | undefined,
  fileBase: string,
  password: string | undefined,
): Pick<Config, "operatorKey" | "operatorKeySource"> {
  if (fromEnv !== undefined && keystore !== undefined) throw new ConfigError("operatorKeystore and NOVACRON_OPERATOR_KEY are both set: keep one");
  if (fromEnv !== undefined) return { operatorKey: fromEnv, operatorKeySource: "environment" };
  if (keystore === undefined) {
    throw new ConfigError(
      "operatorKeystore: expected the operator's keystore ({ \"file\": ..., \"passwordFile\": ... }; write one with `novacron-daemon keystore new` or `import`), got nothing",
    );
  }
  const keystoreFile = resolve(fileBase, keystore.file);
  if (keystore.passwordFile !== undefined) password = passwordFromFile(readSecretFile(resolve(fileBase, keystore.passwordFile), "operatorKeystore.passwordFile"));
  if (password === undefined) throw new PasswordNeededError(keystoreFile);
  try {
    return { operatorKey: decryptKeystore(readSecretFile(keystoreFile, "operatorKeystore.file"), password, keystoreFile), operatorKeySource: "keystore" };
  } catch (error) {
    if (error instanceof KeystoreError) throw new ConfigError(`operatorKeystore: ${error.message}`);
    throw error;
  }
}

function unreadable(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : String(code ?? error);
}

function readSecretFile(file: string, field: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`${field}: cannot read ${file}: ${unreadable(error)}`);
  }
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read config file ${resolve(file)}: ${unreadable(error)}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (error) {
    // No `cause`: the SyntaxError's message may quote the file, operator key included.
    throw new ConfigError(`config file ${resolve(file)} is not valid JSON: ${jsonProblem(error as SyntaxError, text)}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(`config file ${resolve(file)} must hold a JSON object, got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`);
  }
  return value as Record<string, unknown>;
}

/**
 * V8's JSON errors can quote a slice of the file, which may hold the operator
 * key; keep only the description and turn the offset into a line and column.
 */
function jsonProblem(error: SyntaxError, text: string): string {
  const at = /^(.*?) in JSON at position (\d+)/.exec(error.message);
  if (at) {
    const before = text.replace(/^\uFEFF/, "").slice(0, Number(at[2]));
    const lines = before.split("\n");
    return `${at[1]} at line ${lines.length} column ${(lines.at(-1)?.length ?? 0) + 1}`;
  }
  if (error.message.startsWith("Unexpected end")) return "it ends too early";
  return "unexpected character";
}

/** Sets `a.b.c` in `target`, creating missing objects; returns false when a parent is not an object (validation reports it). */
function setField(target: Record<string, unknown>, field: string, value: unknown): boolean {
  const keys = field.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    node[key] ??= {};
    const next = node[key];
    if (next === null || typeof next !== "object" || Array.isArray(next)) return false;
    node = next as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
  return true;
}

function valueAt(root: unknown, path: (string | number)[]): unknown {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

function describeIssue(issue: z.ZodIssue, raw: unknown, fromEnv: Map<string, string>): string {
  const field = issue.path.join(".");
  if (issue.code === "unrecognized_keys") {
    const names = issue.keys.map((key) => (field ? `${field}.${key}` : key));
    return `${names.join(", ")}: unknown field${names.length > 1 ? "s" : ""} (check the spelling)`;
  }
  const source = [...fromEnv].find(([overridden]) => field === overridden || field.startsWith(`${overridden}.`));
  const label = source ? `${field} (from ${source[1]})` : field || "config";
  if (issue.code === "custom" && issue.params?.["complete"] === true) return `${label}: ${issue.message}`;
  const value = valueAt(raw, issue.path);
  if (value === undefined) {
    const envName = envOverrides.find((override) => override.field === field)?.name;
    const hint = envName ? ` (set it in the config file or ${envName})` : " (set it in the config file)";
    return `${label}: ${issue.message}, got nothing${hint}`;
  }
  return `${label}: ${issue.message}, got ${show(value, field)}`;
}

function show(value: unknown, field: string): string {
  if (secretFields.has(field)) {
    return typeof value === "string" ? `a ${value.length}-character string (not shown: it is a secret)` : `a ${typeof value}`;
  }
  if (Array.isArray(value)) return "an array";
  if (value !== null && typeof value === "object") return "an object";
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}..."` : text;
}
