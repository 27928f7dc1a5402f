import { createRequire } from "node:module";
import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { defineConfig } from "hardhat/config";
import { novaCronTasks } from "./scripts/tasks/index.ts";
import { policyTasks } from "./scripts/tasks/policy/index.ts";

const require = createRequire(import.meta.url);
const SOLC = require.resolve("solc/soljson.js");
/** Optimizer runs of the size-bound contracts: 20,186 and 20,754 bytes, against 23,888 and 23,149 at 10,000 runs. */
const POLICY_ACCOUNT_RUNS = 200;
const VM_REGISTRY_RUNS = 1_000;

/** CI: 256 fuzz runs and short invariant campaigns (the suite stays fast); bench: 10,000 runs of each. */
const SOLIDITY_TEST_PROFILES = {
  ci: { fuzz: { runs: 256 }, invariant: { runs: 256, depth: 32, failOnRevert: true } },
  bench: { fuzz: { runs: 10_000 }, invariant: { runs: 10_000, depth: 64, failOnRevert: true } },
};

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  // vm:request, vm:list, vm:status, vm:stop, vm:start, vm:terminate, provider:register, provider:withdraw;
  // marketplace: order:open/bid/award/accept/cancel, vm:topup/migrate/expire/close, provider:exit/stake/unstake/
  // withdraw-stake, fees:withdraw; governance: gov:delegate/propose/vote/queue/execute (`npx hardhat --help`).
  // policy:create, policy:show, policy:propose, policy:approve, policy:execute, policy:cancel, agent:grant, agent:revoke
  tasks: [...novaCronTasks, ...policyTasks],
  solidity: {
    // solc's WASM build from npm: this machine cannot download compilers.
    compilers: [{ version: "0.8.30", path: SOLC, settings: { optimizer: { enabled: true, runs: 10_000 }, evmVersion: "cancun" } }],
    // Fewer optimizer runs for the two largest contracts keep them 10 % under EIP-170's 24 KiB
    // (test/contracts/ContractSizes.test.ts), at a measured cost of a few hundred gas per transaction
    // (docs/BENCHMARKS.md, "Contract sizes").
    overrides: {
      // PolicyAccount through the IR pipeline: its inliner takes the signed path's internal calls apart (about
      // 2,000 gas per transaction less than the legacy pipeline). Its invariant test builds it with the same
      // settings, so the campaign runs the bytecode that is deployed (the test reads time through
      // vm.getBlockTimestamp(): the IR optimizer may merge block.timestamp reads across a vm.warp).
      ...Object.fromEntries(
        ["contracts/policy/PolicyAccount.sol", "test/policy/PolicyAccount.invariant.t.sol"].map((file) => [
          file,
          { version: "0.8.30", path: SOLC, settings: { optimizer: { enabled: true, runs: POLICY_ACCOUNT_RUNS }, evmVersion: "cancun", viaIR: true } },
        ]),
      ),
      "contracts/VmRegistry.sol": { version: "0.8.30", path: SOLC, settings: { optimizer: { enabled: true, runs: VM_REGISTRY_RUNS }, evmVersion: "cancun" } },
    },
  },
  // Hardhat 3.18 accepts only the `default` Solidity test profile (HHE15 for any other name), so the
  // benchmark profile is chosen by an environment variable: `npm run bench:fuzz` sets it.
  test: { solidity: SOLIDITY_TEST_PROFILES[process.env.NOVACRON_TEST_PROFILE === "bench" ? "bench" : "ci"] },
  networks: {
    // What `npm start` and the daemon's integration tests run as the local chain: blocks come
    // with every transaction AND once a second, so a daemon waiting for confirmations
    // moves on even when nobody sends transactions. Blocks mined in the same second share its
    // timestamp: otherwise each one is a second after the last, and the chain's clock (billing,
    // bid windows, deadlines) runs ahead of the wall clock whenever transactions come quickly.
    devnode: { type: "edr-simulated", chainType: "l1", chainId: 31337, mining: { auto: true, interval: 1000 }, allowBlocksWithSameTimestamp: true },
    // NOVACRON_RPC_URL lets the daemon's integration tests point the same tasks and scripts at their own node.
    localhost: { type: "http", chainType: "l1", url: process.env.NOVACRON_RPC_URL ?? "http://127.0.0.1:8545" },
  },
});
