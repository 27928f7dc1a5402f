import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError, loadConfig, PasswordNeededError } from "./config.ts";
import { encryptKeystore } from "./keystore.ts";

const key = `0x${"ab".repeat(32)}` as const;
const password = "correct horse battery";
const vmRegistry = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const providerRegistry = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512";
const provider = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

function minimal(): Record<string, unknown> {
  return {
    rpcUrl: "http://127.0.0.1:8545",
    operatorKeystore: { file: "keystore.json", passwordFile: "password.txt" },
    provider,
    contracts: { vmRegistry, providerRegistry },
    dataDir: "./data",
  };
}

let dir: string;
let counter = 0;

function writeConfig(content: unknown): string {
  const file = join(dir, `config-${counter++}.json`);
  writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
  return file;
}

function configError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.ok(error.message.startsWith("config error: "), error.message);
    assert.ok(!error.message.includes("\n"), `message must be one line: ${error.message}`);
    return error.message;
  }
  assert.fail("expected loadConfig to throw");
}

function withField(path: string, value: unknown): Record<string, unknown> {
  const config = structuredClone(minimal());
  const keys = path.split(".");
  let node = config;
  for (const k of keys.slice(0, -1)) {
    node[k] ??= {};
    node = node[k] as Record<string, unknown>;
  }
  if (value === undefined) delete node[keys.at(-1)!];
  else node[keys.at(-1)!] = value;
  return config;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "novacron-config-"));
  writeFileSync(join(dir, "keystore.json"), JSON.stringify(encryptKeystore(key, password, { scryptN: 2 ** 10 })));
  writeFileSync(join(dir, "password.txt"), `${password}\n`);
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("loadConfig: valid input", () => {
  it("fills every default and resolves paths against the config file's directory", () => {
    const config = loadConfig(writeConfig(minimal()), {});
    assert.equal(config.rpcUrl, "http://127.0.0.1:8545");
    assert.equal(config.chainId, undefined);
    assert.equal(config.operatorKey, key);
    assert.equal(config.operatorKeySource, "keystore");
    assert.equal(config.provider, provider);
    assert.deepEqual(config.contracts, { vmRegistry, providerRegistry });
    assert.equal(config.startBlock, 0n);
    assert.equal(config.dataDir, join(dir, "data"));
    assert.equal(config.confirmations, 1);
    assert.equal(config.pollIntervalMs, 1000);
    assert.equal(config.logChunkBlocks, 2000);
    assert.equal(config.reconcileConcurrency, 8);
    assert.deepEqual(config.ipfs, { mode: "embedded", directory: join(dir, "data", "ipfs") });
    assert.deepEqual(config.manifest, { maxBytes: 65536, fetchTimeoutMs: 10000 });
    assert.deepEqual(config.driver, {
      type: "process",
      allowedCommands: { node: process.execPath, sh: "/bin/sh" },
      stopTimeoutMs: 5000,
      readyTimeoutMs: 30000,
    });
    assert.deepEqual(config.tx, { replaceAfterBlocks: 3, maxFeePerGasGwei: 1000 });
    assert.deepEqual(config.api, { host: "127.0.0.1", port: 9464 });
    assert.equal(config.logLevel, "info");
  });

  it("checksums lower-case addresses", () => {
    const config = loadConfig(writeConfig(withField("provider", provider.toLowerCase())), {});
    assert.equal(config.provider, provider);
  });

  it("reads block numbers beyond 2^53 from decimal strings", () => {
    const config = loadConfig(writeConfig(withField("startBlock", "12345678901234567890")), {});
    assert.equal(config.startBlock, 12345678901234567890n);
  });

  it("takes explicit values over defaults", () => {
    const file = writeConfig({
      ...minimal(),
      chainId: 31337,
      startBlock: 42,
      confirmations: 0,
      ipfs: { mode: "embedded", directory: "blocks" },
      driver: { allowedCommands: { sh: "/bin/sh" }, stopTimeoutMs: 100 },
      api: { port: 0 },
      logLevel: "debug",
    });
    const config = loadConfig(file, {});
    assert.equal(config.chainId, 31337);
    assert.equal(config.startBlock, 42n);
    assert.equal(config.confirmations, 0);
    assert.deepEqual(config.ipfs, { mode: "embedded", directory: join(dir, "blocks") });
    assert.deepEqual(config.driver.allowedCommands, { sh: "/bin/sh" });
    assert.equal(config.driver.stopTimeoutMs, 100);
    assert.deepEqual(config.api, { host: "127.0.0.1", port: 0 });
    assert.equal(config.logLevel, "debug");
  });
});

describe("loadConfig: environment overrides", () => {
  const otherKey = `0x${"cd".repeat(32)}`;
  const otherAddress = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

  it("lets every NOVACRON_* variable win over the file", () => {
    const config = loadConfig(writeConfig(withField("operatorKeystore", undefined)), {
      NOVACRON_RPC_URL: "https://rpc.example.org/v1",
      NOVACRON_OPERATOR_KEY: otherKey,
      NOVACRON_DATA_DIR: "/var/lib/novacron",
      NOVACRON_VM_REGISTRY: otherAddress,
      NOVACRON_PROVIDER: otherAddress,
      NOVACRON_IPFS_URL: "http://127.0.0.1:5001",
      NOVACRON_API_PORT: "9999",
      NOVACRON_LOG_LEVEL: "warn",
    });
    assert.equal(config.rpcUrl, "https://rpc.example.org/v1");
    assert.equal(config.operatorKey, otherKey);
    assert.equal(config.operatorKeySource, "environment");
    assert.equal(config.dataDir, "/var/lib/novacron");
    assert.equal(config.contracts.vmRegistry, otherAddress);
    assert.equal(config.contracts.providerRegistry, providerRegistry);
    assert.equal(config.provider, otherAddress);
    assert.deepEqual(config.ipfs, { mode: "kubo", url: "http://127.0.0.1:5001" });
    assert.equal(config.api.port, 9999);
    assert.equal(config.logLevel, "warn");
  });

  it("resolves a relative NOVACRON_DATA_DIR against the working directory", () => {
    const config = loadConfig(writeConfig(minimal()), { NOVACRON_DATA_DIR: "state" });
    assert.equal(config.dataDir, resolve(process.cwd(), "state"));
  });

  it("treats an empty variable as unset", () => {
    const config = loadConfig(writeConfig(minimal()), { NOVACRON_RPC_URL: "", NOVACRON_API_PORT: "" });
    assert.equal(config.rpcUrl, "http://127.0.0.1:8545");
    assert.equal(config.api.port, 9464);
  });

  it("works without a config file when the environment and defaults cover the rest", () => {
    const message = configError(() =>
      loadConfig(undefined, {
        NOVACRON_RPC_URL: "http://127.0.0.1:8545",
        NOVACRON_OPERATOR_KEY: key,
        NOVACRON_DATA_DIR: "/tmp/x",
        NOVACRON_VM_REGISTRY: vmRegistry,
        NOVACRON_PROVIDER: provider,
      }),
    );
    assert.equal(
      message,
      "config error: contracts.providerRegistry: expected a 0x-prefixed 20-byte address, got nothing (set it in the config file)",
    );
  });

  it("names the variable when an overridden value is bad", () => {
    assert.equal(
      configError(() => loadConfig(writeConfig(minimal()), { NOVACRON_API_PORT: "http" })),
      'config error: api.port (from NOVACRON_API_PORT): expected an integer from 0 to 65535, got "http"',
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(minimal()), { NOVACRON_API_PORT: "70000" })),
      "config error: api.port (from NOVACRON_API_PORT): expected an integer from 0 to 65535, got 70000",
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(minimal()), { NOVACRON_IPFS_URL: "localhost:5001" })),
      'config error: ipfs.url (from NOVACRON_IPFS_URL): expected an http:// or https:// URL, got "localhost:5001"',
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(minimal()), { NOVACRON_LOG_LEVEL: "verbose" })),
      'config error: logLevel (from NOVACRON_LOG_LEVEL): expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"',
    );
  });
});

describe("loadConfig: bad input", () => {
  it("reports a missing file", () => {
    const file = join(dir, "absent.json");
    assert.equal(configError(() => loadConfig(file, {})), `config error: cannot read config file ${file}: no such file`);
  });

  it("reports a directory given as the file", () => {
    assert.equal(configError(() => loadConfig(dir, {})), `config error: cannot read config file ${dir}: it is a directory`);
  });

  it("reports invalid JSON with a line and column, without quoting the file", () => {
    const file = writeConfig(`{\n  "operatorKey": "${key}"\n  "rpcUrl": "x"\n}`);
    const message = configError(() => loadConfig(file, {}));
    assert.equal(message, `config error: config file ${file} is not valid JSON: Expected ',' or '}' after property value at line 3 column 3`);
    const truncated = writeConfig(`{"operatorKey": "${key}"`);
    assert.equal(configError(() => loadConfig(truncated, {})), `config error: config file ${truncated} is not valid JSON: Expected ',' or '}' after property value at line 1 column ${`{"operatorKey": "${key}"`.length + 1}`);
    const broken = writeConfig(`{"operatorKey": "${key}", "a": tru}`);
    const brokenMessage = configError(() => loadConfig(broken, {}));
    assert.ok(!brokenMessage.includes(key.slice(2, 20)), brokenMessage);
    assert.ok(brokenMessage.startsWith(`config error: config file ${broken} is not valid JSON: `), brokenMessage);
  });

  it("reports JSON that is not an object", () => {
    const file = writeConfig("[1, 2]");
    assert.equal(configError(() => loadConfig(file, {})), `config error: config file ${file} must hold a JSON object, got an array`);
  });

  it("reports a short address with the field path", () => {
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("contracts.vmRegistry", "0x12")), {})),
      'config error: contracts.vmRegistry: expected a 0x-prefixed 20-byte address, got "0x12"',
    );
  });

  it("reports a mis-checksummed address", () => {
    const typo = provider.replace("0xf39Fd", "0xf39fD");
    assert.match(
      configError(() => loadConfig(writeConfig(withField("provider", typo)), {})),
      /^config error: provider: expected a correctly checksummed address/,
    );
  });

  it("reports a missing required field and the variable that can set it", () => {
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("rpcUrl", undefined)), {})),
      "config error: rpcUrl: expected an http:// or https:// URL, got nothing (set it in the config file or NOVACRON_RPC_URL)",
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("contracts", undefined)), { NOVACRON_VM_REGISTRY: vmRegistry })),
      "config error: contracts.providerRegistry: expected a 0x-prefixed 20-byte address, got nothing (set it in the config file)",
    );
  });

  it("never shows the operator key", () => {
    const noKeystore = () => writeConfig(withField("operatorKeystore", undefined));
    const short = `0x${"ab".repeat(31)}`;
    const message = configError(() => loadConfig(noKeystore(), { NOVACRON_OPERATOR_KEY: short }));
    assert.equal(message, "config error: operatorKey (from NOVACRON_OPERATOR_KEY): expected 0x followed by 64 hex digits, got a 64-character string (not shown: it is a secret)");
    const zero = `0x${"0".repeat(64)}`;
    assert.equal(
      configError(() => loadConfig(noKeystore(), { NOVACRON_OPERATOR_KEY: zero })),
      "config error: operatorKey (from NOVACRON_OPERATOR_KEY): expected a valid secp256k1 private key (it is zero or too large), got a 66-character string (not shown: it is a secret)",
    );
    const envMessage = configError(() => loadConfig(noKeystore(), { NOVACRON_OPERATOR_KEY: "not-a-secret-but-hidden" }));
    assert.ok(!envMessage.includes("not-a-secret"), envMessage);
  });

  it("refuses an operator key in the config file, without showing it", () => {
    const message = configError(() => loadConfig(writeConfig({ ...minimal(), operatorKey: key }), {}));
    assert.match(message, /^config error: operatorKey: the operator key is never read from the config file; write it to an encrypted keystore with `novacron-daemon keystore import --out FILE`/);
    assert.ok(!message.includes(key.slice(2, 20)), message);
  });

  it("needs exactly one key source", () => {
    assert.match(configError(() => loadConfig(writeConfig(withField("operatorKeystore", undefined)), {})), /^config error: operatorKeystore: expected the operator's keystore .*, got nothing$/);
    assert.equal(configError(() => loadConfig(writeConfig(minimal()), { NOVACRON_OPERATOR_KEY: key })), "config error: operatorKeystore and NOVACRON_OPERATOR_KEY are both set: keep one");
  });

  it("reads the keystore's password from its file, or from the caller, and says which keystore needs one", () => {
    const noPasswordFile = writeConfig(withField("operatorKeystore.passwordFile", undefined));
    assert.throws(() => loadConfig(noPasswordFile, {}), (error: unknown) => error instanceof PasswordNeededError && error.keystoreFile === join(dir, "keystore.json"));
    assert.equal(loadConfig(noPasswordFile, {}, { password }).operatorKey, key);
  });

  it("says 'wrong password' or which file is missing or corrupt, in one line", () => {
    writeFileSync(join(dir, "wrong.txt"), "tr0ub4dor&3");
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("operatorKeystore.passwordFile", "wrong.txt")), {})),
      `config error: operatorKeystore: wrong password for keystore ${join(dir, "keystore.json")}`,
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("operatorKeystore.passwordFile", "absent.txt")), {})),
      `config error: operatorKeystore.passwordFile: cannot read ${join(dir, "absent.txt")}: no such file`,
    );
    writeFileSync(join(dir, "corrupt.json"), "{\"version\": 3, \"crypto\": {}}");
    assert.match(
      configError(() => loadConfig(writeConfig(withField("operatorKeystore.file", "corrupt.json")), {})),
      /^config error: operatorKeystore: keystore .*corrupt\.json is not a usable version 3 keystore: cipher undefined is not supported \(aes-128-ctr is\)$/,
    );
  });

  it("rejects a websocket RPC URL", () => {
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("rpcUrl", "ws://127.0.0.1:8545")), {})),
      'config error: rpcUrl: expected an http:// or https:// URL, got "ws://127.0.0.1:8545"',
    );
  });

  it("rejects out-of-range and non-integer numbers", () => {
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("confirmations", 65)), {})),
      "config error: confirmations: expected an integer from 0 to 64, got 65",
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("pollIntervalMs", 1.5)), {})),
      "config error: pollIntervalMs: expected an integer from 100 to 60000, got 1.5",
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("logChunkBlocks", "2000")), {})),
      'config error: logChunkBlocks: expected an integer from 1 to 100000, got "2000"',
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("manifest.maxBytes", 2 * 1024 * 1024)), {})),
      "config error: manifest.maxBytes: expected an integer from 1 to 262144, got 2097152",
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("tx.replaceAfterBlocks", 0)), {})),
      "config error: tx.replaceAfterBlocks: expected an integer from 1 to 1000, got 0",
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("tx.maxFeePerGasGwei", 0)), {})),
      "config error: tx.maxFeePerGasGwei: expected a number of gwei greater than 0 and at most 1000000, got 0",
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("tx.maxFeePerGasGwei", "50")), {})),
      'config error: tx.maxFeePerGasGwei: expected a number of gwei greater than 0 and at most 1000000, got "50"',
    );
    assert.equal(loadConfig(writeConfig(withField("tx.maxFeePerGasGwei", 0.05)), {}).tx.maxFeePerGasGwei, 0.05);
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("startBlock", -1)), {})),
      "config error: startBlock: expected a block number (a non-negative integer, or a decimal string), got -1",
    );
  });

  it("rejects unknown fields so typos do not pass silently", () => {
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("confirmation", 3)), {})),
      "config error: confirmation: unknown field (check the spelling)",
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("api.prot", 1)), {})),
      "config error: api.prot: unknown field (check the spelling)",
    );
  });

  it("rejects an unknown IPFS mode and a Kubo node without a URL", () => {
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("ipfs", { mode: "remote" })), {})),
      'config error: ipfs.mode: expected "embedded" or "kubo", got "remote"',
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("ipfs", "kubo")), {})),
      'config error: ipfs: expected an object: { "mode": "embedded" } or { "mode": "kubo", "url": "http://..." }, got "kubo"',
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("ipfs", { mode: "kubo" })), {})),
      "config error: ipfs.url: expected an http:// or https:// URL, got nothing (set it in the config file)",
    );
  });

  it("rejects commands that are not absolute executables", () => {
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("driver.allowedCommands", { python: "python3" })), {})),
      'config error: driver.allowedCommands.python: expected an absolute path to an executable, got "python3"',
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("driver.allowedCommands", { tool: join(dir, "missing") })), {})),
      `config error: driver.allowedCommands.tool: expected an existing executable file (check the path and its x permission), got "${join(dir, "missing")}"`,
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("driver.allowedCommands", { "my tool": "/bin/sh" })), {})),
      `config error: driver.allowedCommands.my tool: expected command names made of letters, digits, '.', '_' or '-', got "my tool"`,
    );
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("driver.type", "qemu")), {})),
      'config error: driver.type: expected "process" (the only driver in this version), got "qemu"',
    );
  });

  it("rejects a bad log level", () => {
    assert.equal(
      configError(() => loadConfig(writeConfig(withField("logLevel", "verbose")), {})),
      'config error: logLevel: expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"',
    );
  });

  it("names the first problem and counts the rest", () => {
    const config = { ...withField("confirmations", -1), pollIntervalMs: 5, logChunkBlocks: 0 };
    assert.equal(
      configError(() => loadConfig(writeConfig(config), {})),
      "config error: confirmations: expected an integer from 0 to 64, got -1 (and 2 more problems)",
    );
  });
});
