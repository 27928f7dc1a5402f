import { createRequire } from "node:module";
import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { defineConfig } from "hardhat/config";
import { novaCronTasks } from "./scripts/tasks/index.ts";

const require = createRequire(import.meta.url);

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  // vm:request, vm:list, vm:status, vm:stop, vm:start, vm:terminate, provider:register, provider:withdraw
  tasks: novaCronTasks,
  solidity: {
    version: "0.8.30",
    // solc's WASM build from npm: this machine cannot download compilers.
    path: require.resolve("solc/soljson.js"),
    settings: { optimizer: { enabled: true, runs: 10_000 }, evmVersion: "cancun" },
  },
  test: {
    solidity: {
      profiles: {
        // CI: `npx hardhat test` (256 fuzz runs; invariant campaigns kept short so the suite stays fast).
        default: { fuzz: { runs: 256 }, invariant: { runs: 256, depth: 32, failOnRevert: true } },
        // Benchmarks: `npx hardhat test solidity --test-profile bench`.
        bench: { fuzz: { runs: 10_000 }, invariant: { runs: 10_000, depth: 64, failOnRevert: true } },
      },
    },
  },
  networks: {
    // What `npm start` and the daemon's integration tests run as the local chain: blocks come
    // with every transaction AND once a second, so a daemon waiting for confirmations
    // moves on even when nobody sends transactions.
    devnode: { type: "edr-simulated", chainType: "l1", chainId: 31337, mining: { auto: true, interval: 1000 } },
    // NOVACRON_RPC_URL lets the daemon's integration tests point the same tasks and scripts at their own node.
    localhost: { type: "http", chainType: "l1", url: process.env.NOVACRON_RPC_URL ?? "http://127.0.0.1:8545" },
  },
});
